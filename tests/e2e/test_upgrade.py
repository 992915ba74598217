"""Binary upgrade: a new `strata run` of a file with `upgrade_socket` takes the listening
sockets of the running process over (SCM_RIGHTS), and the old one drains and exits; under
wrk load (keep-alive and new connections) not one request fails and no connection is
refused or reset. The new process then serves the admin listener and can be upgraded in
turn."""

import re
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


class DelayedUdpEcho:
    """UDP echo: a datagram starting with b"slow" is answered `delay` seconds later (from
    a timer thread), the others at once. .peers: the source addresses seen."""

    def __init__(self, delay=1.5):
        import socket
        import threading
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((LOOPBACK, 0))
        self.sock.settimeout(0.1)
        self.address = f"{LOOPBACK}:{self.sock.getsockname()[1]}"
        self.delay = delay
        self.peers = set()
        self._timers = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _send(self, data, peer):
        try:
            self.sock.sendto(data, peer)
        except OSError:
            pass

    def _run(self):
        import threading
        while not self._stop.is_set():
            try:
                data, peer = self.sock.recvfrom(65536)
            except OSError:
                continue
            self.peers.add(peer)
            if data.startswith(b"slow"):
                t = threading.Timer(self.delay, self._send, (data, peer))
                self._timers.append(t)
                t.start()
            else:
                self._send(data, peer)

    def stop(self):
        self._stop.set()
        for t in self._timers:
            t.cancel()
        self._thread.join(timeout=5)
        self.sock.close()


def test_upgrade_hands_udp_over_new_clients_served_old_flows_replied(strata_bin, tmp_path):
    """Once the new process serves, the old one reads no datagram from the UDP listener
    any more: each of 80 new clients gets its answer (none dropped by the draining old
    process). An old flow's pending reply still reaches its client through the old
    process; that client's next datagram opens a flow in the new one."""
    import socket
    from test_udp import free_udp_port, udp_bound
    echo = DelayedUdpEcho()
    uport = free_udp_port()
    admin = free_ports(1)[0]
    sock = tmp_path / "upgrade.sock"
    text = (f"workers: 2\ntimeouts: {{ drain: 10s }}\nupgrade_socket: {sock}\n"
            f"admin: {{ listen: {LOOPBACK}:{admin} }}\n"
            "listeners:\n"
            f'  - {{ name: dgram, listen: "{LOOPBACK}:{uport}", mode: udp, backend: u, '
            "udp: { flow_idle: 3s } }\n"
            f'backends:\n  u: {{ servers: [ "{echo.address}" ] }}\n')
    procs, clients = [], []

    def client():
        c = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        c.settimeout(2)
        clients.append(c)
        return c

    try:
        old = Strata(strata_bin, tmp_path, text, name="old.yaml")
        procs.append(old)
        old.wait_listening([admin])
        wait_for(lambda: udp_bound(uport), 5, what="the UDP port bound")
        a = client()
        a.sendto(b"a0", (LOOPBACK, uport))
        assert a.recvfrom(100)[0] == b"a0"
        a.sendto(b"slow-a", (LOOPBACK, uport))  # answered after the upgrade
        new = Strata(strata_bin, tmp_path, text, name="new.yaml")
        procs.append(new)
        old.wait_log(r"binary upgrade: the new process serves")
        time.sleep(0.2)  # the old workers apply the drain
        lost = []
        for i in range(80):
            c = client()
            c.sendto(b"n%d" % i, (LOOPBACK, uport))
            try:
                assert c.recvfrom(100)[0] == b"n%d" % i
            except socket.timeout:
                lost.append(i)
        assert not lost, f"{len(lost)} of 80 new clients got no answer: {lost}"
        assert a.recvfrom(100)[0] == b"slow-a"  # the old flow's reply, by the old process
        a.sendto(b"a1", (LOOPBACK, uport))
        assert a.recvfrom(100)[0] == b"a1"  # now a flow of the new process
        assert old.proc.wait(timeout=15) == 0  # its flow ended idle, then it exited
        assert new.alive()
        assert re.search(r"flow listener=dgram .*dgrams_in=2 .*end=idle_timeout", old.log())
    finally:
        for c in clients:
            c.close()
        for p in procs:
            p.stop()
        echo.stop()
    assert not sum((sanitizer_reports(p) for p in procs), [])
