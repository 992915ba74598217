"""`promtool check metrics` (Prometheus's own linter) on Strata's /metrics, with every kind
of listener (http, tcp, udp), routes, backends, servers, geo and traffic through each, so
that the families with labels and histograms are all present.

promtool comes from Debian's prometheus package without installing it (the package would
add a daemon): `scripts/install-deps.sh test` downloads the .deb and keeps build/tools/
promtool. $PROMTOOL names another one. Outside CI a machine without it skips this test and
says why; in CI (CI=true) a missing promtool fails it.

promtool 2.42 lints only the Prometheus text format: its parser does not read OpenMetrics
(on Strata's OpenMetrics answer it reports every counter as "no help text", since it
looks for the HELP of `x_total` where OpenMetrics names the family `x`), so only the text
format is checked here; test_observe.py checks the OpenMetrics answer's shape."""
import os
import shutil
import socket
import subprocess

import pytest

from conftest import LOOPBACK, REPO, EchoServer, connect, free_port, recv_exact
from test_geo import geo_db, get_from  # noqa: F401 - fixture used by name


def promtool_path():
    for p in (os.environ.get("PROMTOOL"), str(REPO / "build" / "tools" / "promtool"),
              shutil.which("promtool")):
        if p and os.access(p, os.X_OK):
            return p
    if os.environ.get("CI") == "true":
        pytest.fail("promtool not found (CI=true): run `scripts/install-deps.sh test`",
                    pytrace=False)
    pytest.skip("promtool not found: `scripts/install-deps.sh test` puts it in build/tools "
                "(or set PROMTOOL)")


def promtool_check(promtool, text):
    r = subprocess.run([promtool, "check", "metrics"], input=text.encode(),
                       capture_output=True, timeout=60)
    return r.returncode, (r.stdout + r.stderr).decode()


def config(port, relay, udp, admin, srv, origin_addr, db):
    return f"""
workers: 2
admin: {{ listen: {LOOPBACK}:{admin} }}
geo: {{ database: "{db}" }}
analytics: {{ enabled: true, api_key_header: x-api-key }}
listeners:
  - name: web
    listen: "{LOOPBACK}:{port}"
    mode: http
    routes:
      - name: api
        match: {{ path_prefix: /api/ }}
        backend: app
      - name: rest
        backend: app
  - name: relay
    listen: "{LOOPBACK}:{relay}"
    mode: tcp
    backend: echo
  - name: dns
    listen: "{LOOPBACK}:{udp}"
    mode: udp
    backend: echo
backends:
  app:
    servers: [ {{ name: o1, address: "{origin_addr}" }} ]
  echo:
    servers: [ {{ name: e1, address: "{srv.address}" }} ]
"""


def test_promtool_check_metrics(strata, origin, geo_db):  # noqa: F811 - fixture
    promtool = promtool_path()
    # promtool must be able to fail: a counter without _total and a bad name are reported
    rc, out = promtool_check(promtool, "# HELP x_bytes b\n# TYPE x_bytes counter\nx_bytes 1\n")
    assert rc != 0 and "_total" in out, out

    o = origin("a")
    srv = EchoServer().start()
    try:
        port, relay, udp, admin = free_port(), free_port(), free_port(), free_port()
        s = strata(config(port, relay, udp, admin, srv, o.address, geo_db),
                   listen_ports=[port, relay], admin_port=admin)
        for src in ("127.0.0.2", "127.0.0.3", "127.0.0.1"):
            assert get_from(port, src, "/api/v1/users/42")[0] == 200
        assert get_from(port, "127.0.0.2", "/missing")[0] == 200
        c = connect(relay)
        c.sendall(b"ping\n")
        assert recv_exact(c, 5) == b"ping\n"
        c.close()
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        u.sendto(b"x", (LOOPBACK, udp))
        u.close()

        text = s.metrics(admin).text
        assert "strata_route_request_duration_seconds_bucket{" in text
        assert "strata_listener_datagrams_in_total{" in text
        rc, out = promtool_check(promtool, text)
        assert rc == 0 and out.strip() == "", out
    finally:
        srv.stop()
