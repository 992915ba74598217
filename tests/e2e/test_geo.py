"""Geo: client locations from a MaxMind-format database that the test writes itself
(tests/geo/make_test_mmdb.pl, Debian's libmaxmind-db-writer-perl). Clients come from
loopback sources the database places around the world: 127.0.0.2 FR/EU AS64500,
127.0.0.3 US/NA AS64501, 127.0.0.4 DE/EU, 127.0.0.5 JP/AS; 127.0.0.1 is unknown.
Covers the top-N countries, routes matching a country or a continent, L4 ACLs on
countries, the access log's country and asn, and `strata check` on bad geo settings."""
import json
import os
import subprocess
import time

import pytest

from conftest import (LOOPBACK, connect_from, echo_or_closed, free_port, http_get,
                      run_strata, simple_config, wait_for)
from http_backend import http_config, parse_response

HERE = os.path.dirname(os.path.abspath(__file__))
MAKE_DB = os.path.join(HERE, "..", "geo", "make_test_mmdb.pl")


@pytest.fixture
def geo_db(tmp_path):
    path = tmp_path / "test.mmdb"
    subprocess.run(["perl", MAKE_DB, str(path)], check=True, timeout=60)
    return path


def get_from(port, source, target="/", host="example.com"):
    """One request from `source`; returns (status, body)."""
    c = connect_from(port, source)
    with c:
        c.sendall(f"GET {target} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while True:
            chunk = c.recv(65536)
            if not chunk:
                break
            data += chunk
    (status, _, body), = parse_response(data)
    return status, body.decode()


def send_plan(port):
    """Twelve requests: 6 from FR, 3 from US, 1 from DE and 2 from an unknown address."""
    for src, n in [("127.0.0.2", 6), ("127.0.0.3", 3), ("127.0.0.4", 1), ("127.0.0.1", 2)]:
        for _ in range(n):
            assert get_from(port, src)[0] == 200


def named(name):
    return lambda req, n=name: (200, {"content-type": "text/plain"}, n.encode())


def test_top_countries_and_access_log_fields(strata, origin, geo_db, tmp_path):
    o = origin("a", named("a"))
    port, admin = free_port(), free_port()
    log = tmp_path / "access.log"
    cfg = http_config(port, {"app": {"servers": [o.address]}}, admin_port=admin,
                      top_extra=f'geo: {{ database: "{geo_db}" }}',
                      http_extra=f'access_log: {{ format: json, path: "{log}" }}')
    strata(cfg, listen_ports=[port], admin_port=admin)
    send_plan(port)

    def top():
        j = json.loads(http_get(admin, "/api/v1/top?range=minute")[1])
        return j if sum(r["count"] for r in j["tables"]["countries"]) >= 10 else None
    j = wait_for(top, 6, interval=0.2, what="countries in the top-N")
    assert j["geo"] == "on"
    countries = {r["key"]: r["count"] for r in j["tables"]["countries"]}
    assert countries == {"FR": 6, "US": 3, "DE": 1}, countries
    assert j["tables"]["countries"][0]["key"] == "FR"
    assert j["tables"]["countries"][0]["bytes"] > 6 * 100
    lines = wait_for(lambda: (lambda ls: ls if len(ls) >= 12 else None)(
        [json.loads(ln) for ln in log.read_text().splitlines()] if log.exists() else []),
        5, what="12 access log lines")
    seen = {(e["client"].split(":")[0], e["country"], e["asn"]) for e in lines}
    assert seen == {("127.0.0.2", "FR", 64500), ("127.0.0.3", "US", 64501),
                    ("127.0.0.4", "DE", 0), ("127.0.0.1", "-", 0)}, seen


def test_country_trends(strata, origin, geo_db):
    """Requests and bytes per country in /api/v1/trends (per second and per minute), the
    busiest countries by name and the rest in "other"; off without a database."""
    o = origin("a", named("a"))
    port, admin = free_port(), free_port()
    cfg = http_config(port, {"app": {"servers": [o.address]}}, admin_port=admin,
                      top_extra=f'geo: {{ database: "{geo_db}" }}')
    strata(cfg, listen_ports=[port], admin_port=admin)
    send_plan(port)

    def trends(range_, points):
        status, body = http_get(admin, f"/api/v1/trends?range={range_}&points={points}")
        assert status == 200, body
        j = json.loads(body)
        got = {c["country"]: (sum(c["requests"]), sum(c["bytes"])) for c in j["countries"]}
        return j, got
    j, got = wait_for(lambda: (lambda t: t if sum(r for r, _ in t[1].values()) >= 10 else None)(
        trends("hour", 120)), 6, interval=0.3, what="10 requests in the country trends")
    assert j["countries_state"] == "on"
    assert {k: r for k, (r, _) in got.items()} == {"FR": 6, "US": 3, "DE": 1, "other": 0}, got
    assert got["FR"][1] > 6 * 100 and got["US"][1] > 3 * 100
    assert all(len(c["requests"]) == 120 == len(c["bytes"]) for c in j["countries"])
    assert len(j["series"]["requests"]) == 120 and sum(j["series"]["requests"]) == 12
    _, day = trends("day", 3)
    assert {k: r for k, (r, _) in day.items()} == {"FR": 6, "US": 3, "DE": 1, "other": 0}, day
    for bad in ("0", "3601", "x", ""):
        status, body = http_get(admin, f"/api/v1/trends?range=hour&points={bad}")
        assert status == 400 and "points" in body, (bad, status, body)

    port2, admin2 = free_port(), free_port()
    strata(http_config(port2, {"app": {"servers": [o.address]}}, admin_port=admin2),
           listen_ports=[port2], admin_port=admin2)
    assert get_from(port2, "127.0.0.2")[0] == 200
    j = json.loads(http_get(admin2, "/api/v1/trends?points=10")[1])
    assert j["countries_state"].startswith("off: no geo.database"), j["countries_state"]
    assert [c["country"] for c in j["countries"]] == ["other"]


def test_routes_match_country_and_continent(strata, origin, geo_db):
    eu, us, other = origin("eu", named("eu")), origin("us", named("us")), origin("o", named("o"))
    port = free_port()
    routes = ("- match: { country: [FR, de] }\n  backend: eu\n"
              "- match: { continent: NA, path_prefix: /api/ }\n  backend: us\n"
              "- backend: other\n")
    cfg = http_config(port, {"eu": {"servers": [eu.address]}, "us": {"servers": [us.address]},
                             "other": {"servers": [other.address]}},
                      routes=routes, top_extra=f'geo: {{ database: "{geo_db}" }}')
    strata(cfg, listen_ports=[port])
    want = {("127.0.0.2", "/"): "eu", ("127.0.0.4", "/x"): "eu", ("127.0.0.3", "/api/v"): "us",
            ("127.0.0.3", "/web"): "o", ("127.0.0.5", "/api/v"): "o", ("127.0.0.1", "/"): "o"}
    got = {k: get_from(port, k[0], k[1])[1] for k in want}
    assert got == want


def test_l4_acl_on_countries(strata, backends, geo_db):
    srv = backends.echo()
    port, port2 = free_port(), free_port()
    cfg = simple_config(port, [("e1", srv.address)], top_extra=f'geo: {{ database: "{geo_db}" }}',
                        listener_extra="acl: { deny_countries: [US, JP] }")
    s = strata(cfg, listen_ports=[port])

    def attempt(p, src):
        c = connect_from(p, src)
        with c:
            return echo_or_closed(c, b"hi")
    assert [attempt(port, s) for s in ("127.0.0.2", "127.0.0.3", "127.0.0.5", "127.0.0.1")] == \
        ["ok", "closed", "closed", "ok"]
    # the connection log says where each client was
    seen = {(e["client"].split(":")[0], e["end"], e["country"], e["asn"])
            for e in s.wait_conn_logs(4)}
    assert seen == {("127.0.0.2", "client_close", "FR", "64500"),
                    ("127.0.0.3", "denied", "US", "64501"),
                    ("127.0.0.5", "denied", "JP", "64502"),
                    ("127.0.0.1", "client_close", "-", "0")}, seen
    cfg2 = simple_config(port2, [("e1", srv.address)], top_extra=f'geo: {{ database: "{geo_db}" }}',
                         listener_extra="acl: { allow_countries: FR }")
    strata(cfg2, listen_ports=[port2], name="allow.yaml")
    assert [attempt(port2, s) for s in ("127.0.0.2", "127.0.0.4", "127.0.0.1")] == \
        ["ok", "closed", "closed"]


def test_check_reports_bad_geo_settings(strata_bin, tmp_path, geo_db):
    def check(text):
        p = tmp_path / "c.yaml"
        p.write_text(text)
        r = run_strata(strata_bin, "check", str(p))
        return r.returncode, r.stdout + r.stderr

    base = ("listeners:\n  - name: web\n    listen: 127.0.0.1:1\n    mode: http\n"
            "    routes:\n      - match: {{ {match} }}\n        backend: b\n"
            "backends:\n  b:\n    servers: [127.0.0.1:2]\n")
    rc, out = check(base.format(match="country: FR"))
    assert rc != 0 and "c.yaml:6:" in out and "geo.database" in out, out
    top = f'geo: {{ database: "{geo_db}" }}\n'
    rc, out = check(top + base.format(match="country: France"))
    assert rc != 0 and "c.yaml:7:" in out and "two-letter" in out, out
    rc, out = check(top + base.format(match="continent: [EU, XX]"))
    assert rc != 0 and "continent code" in out and "XX" in out, out
    rc, out = check(top + base.format(match="continent: [EU], country: [fr]"))
    assert rc == 0, out
    rc, out = check(f'geo: {{ database: "{tmp_path}/missing.mmdb" }}\n' +
                    base.format(match="path: /"))
    assert rc != 0 and "c.yaml:1:" in out and "missing.mmdb" in out, out
    junk = tmp_path / "junk.mmdb"
    junk.write_bytes(b"not a database" * 10)
    rc, out = check(f'geo: {{ database: "{junk}" }}\n' + base.format(match="path: /"))
    assert rc != 0 and "junk.mmdb" in out, out


def test_udp_acl_on_countries(strata, geo_db):
    from test_udp import UdpEcho, exchange, free_udp_port, udp_config
    import socket
    echo = UdpEcho()
    try:
        port, admin = free_udp_port(), free_port()
        cfg = udp_config(port, [("e1", echo.address)], admin,
                         top_extra=f'geo: {{ database: "{geo_db}" }}\n')
        cfg = cfg.replace("    backend: dns\n", "    backend: dns\n    acl: { deny_countries: US }\n", 1)
        s = strata(cfg, admin_port=admin)
        wait_for(lambda: exchange(port, b"probe") == b"probe", 5, what="udp listener up")

        def from_source(src):
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as c:
                c.bind((src, 0))
                c.settimeout(1.0)
                c.sendto(b"hello " + src.encode(), (LOOPBACK, port))
                try:
                    return c.recvfrom(1024)[0].decode()
                except socket.timeout:
                    return None
        assert from_source("127.0.0.2") == "hello 127.0.0.2"
        assert from_source("127.0.0.3") is None
        m = s.metrics(admin)
        assert m.get("strata_listener_denied_total", listener="dns") == 1, m.text
    finally:
        echo.stop()
