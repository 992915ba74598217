"""Binary upgrade: a new `strata run` of a file with `upgrade_socket` takes the listening
sockets of the running process over (SCM_RIGHTS), and the old one drains and exits; under
wrk load (keep-alive and new connections) not one request fails and no connection is
refused or reset. The new process then serves the admin listener and can be upgraded in
turn."""

import shutil
import subprocess
import time

import pytest

from conftest import LOOPBACK, Strata, http_get, sanitizer_reports, wait_for
from test_reload import free_ports, letters, start_wrk, wrk_result, WRK_ERRORS  # noqa: F401


def config(ports, letters, sock, body_letter="a"):
    return (f"workers: 2\ntimeouts: {{ drain: 5s }}\nupgrade_socket: {sock}\n"
            f"admin: {{ listen: {LOOPBACK}:{ports['admin']} }}\n"
            "listeners:\n"
            f'  - {{ name: web, listen: "{LOOPBACK}:{ports["web"]}", mode: http, '
            "routes: [ { backend: b } ] }\n"
            f'backends:\n  b: {{ servers: [ "{LOOPBACK}:{letters[body_letter]}" ] }}\n')


@pytest.mark.skipif(not shutil.which("wrk"), reason="wrk not installed")
def test_upgrade_under_load_loses_nothing(strata_bin, tmp_path, letters):
    ports = dict(zip(["web", "admin"], free_ports(2)))
    sock = tmp_path / "upgrade.sock"
    procs = []
    try:
        old = Strata(strata_bin, tmp_path, config(ports, letters, sock), name="old.yaml")
        procs.append(old)
        old.wait_listening([ports["web"], ports["admin"]])
        wait_for(sock.exists, 5, what="the upgrade socket")
        url = f"http://{LOOPBACK}:{ports['web']}/x"
        loads = [start_wrk(url, 6, 8), start_wrk(url, 6, 4, ["-H", "Connection: close"])]
        time.sleep(1.0)
        # the new "binary": the same executable, a file whose backend answers B
        new = Strata(strata_bin, tmp_path, config(ports, letters, sock, "b"), name="new.yaml")
        procs.append(new)
        new.wait_log(r"took over \d+ listening sockets")
        try:
            rc = old.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            pytest.fail(f"the old process did not exit; log:\n{old.log()[-3000:]}")
        assert rc == 0, old.log()[-3000:]
        assert "binary upgrade: the new process serves" in old.log()
        assert http_get(ports["web"], "/x")[1] == "B\n"
        assert http_get(ports["admin"], "/healthz")[0] == 200
        results = [wrk_result(p) for p in loads]
        for n, out in results:
            assert n > 0 and not WRK_ERRORS.search(out), out
        print(f"{sum(n for n, _ in results)} requests through a binary upgrade")

        # and the new process can be upgraded in turn (it took the path over)
        third = Strata(strata_bin, tmp_path, config(ports, letters, sock, "c"), name="third.yaml")
        procs.append(third)
        third.wait_log(r"took over \d+ listening sockets")
        assert new.proc.wait(timeout=15) == 0
        assert http_get(ports["web"], "/x")[1] == "C\n"
    finally:
        for p in procs:
            p.stop()
    assert not sum((sanitizer_reports(p) for p in procs), [])


def test_no_process_on_the_socket_is_a_plain_start(strata_bin, tmp_path, letters):
    ports = dict(zip(["web", "admin"], free_ports(2)))
    sock = tmp_path / "upgrade.sock"
    sock.write_text("stale")  # a leftover file, nobody listening
    s = Strata(strata_bin, tmp_path, config(ports, letters, sock), name="s.yaml")
    try:
        s.wait_listening([ports["web"]])
        assert http_get(ports["web"], "/x")[1] == "A\n"
        assert "took over" not in s.log()
    finally:
        rc, _ = s.stop()
    assert rc == 0 and not sanitizer_reports(s)
    assert not sock.exists()
