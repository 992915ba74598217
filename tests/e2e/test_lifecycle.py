"""Process lifecycle: graceful stop (SIGTERM/SIGINT with drain) and the built-in demo."""

import http.client
import random
import signal
import socket
import subprocess
import time

import pytest

from conftest import (LOOPBACK, Strata, closed_by_peer, connect, free_port, http_get, recv_exact,
                      recv_line, simple_config, stop_process, wait_for)


def refuses_new_connections(port):
    """True if a new connection is refused, or accepted and closed at once without data."""
    try:
        c = connect(port, timeout=1)
    except (ConnectionRefusedError, socket.timeout, OSError):
        return True
    try:
        return closed_by_peer(c, 1.0)
    finally:
        c.close()


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_drain_keeps_open_connection_then_exits_0(strata, backends, sig):
    srv = backends.echo()
    port = free_port()
    s = strata(simple_config(port, [("e1", srv.address)], drain="10s"), listen_ports=[port])
    c = connect(port)
    try:
        c.sendall(b"before")
        assert recv_exact(c, 6) == b"before"
        s.send_signal(sig)
        wait_for(lambda: refuses_new_connections(port), 5,
                 what="new connections refused after the stop signal")
        for i in range(5):  # the open connection keeps working during the drain
            msg = b"during-%d" % i
            c.sendall(msg)
            assert recv_exact(c, len(msg)) == msg
            time.sleep(0.1)
        assert s.alive(), "strata exited while a connection was still open"
    finally:
        c.close()
    t0 = time.monotonic()
    try:
        rc = s.proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        pytest.fail(f"strata still running 5s after the last connection closed; log:\n{s.log()}")
    assert rc == 0, f"exit code {rc}; log:\n{s.log()}"
    assert time.monotonic() - t0 < 3
    assert s.conn_logs()[-1]["end"] == "client_close", s.conn_logs()


def test_drain_timeout_closes_lingering_connection(strata, backends):
    srv = backends.echo()
    port = free_port()
    s = strata(simple_config(port, [("e1", srv.address)], drain="1s"), listen_ports=[port])
    c = connect(port)
    try:
        c.sendall(b"x")
        assert recv_exact(c, 1) == b"x"
        t0 = time.monotonic()
        s.send_signal(signal.SIGTERM)
        assert closed_by_peer(c, 6), "connection not closed after the drain timeout"
        took = time.monotonic() - t0
    finally:
        c.close()
    assert 0.8 <= took <= 4.0, f"closed {took:.2f}s after SIGTERM with drain 1s"
    rc = s.proc.wait(timeout=5)
    assert rc == 0, f"exit {rc}; log:\n{s.log()}"
    assert s.conn_logs()[-1]["end"] == "shutdown", s.conn_logs()


def test_idle_process_stops_at_once(strata, backends):
    srv = backends.echo()
    port = free_port()
    s = strata(simple_config(port, [("e1", srv.address)], drain="10s"), listen_ports=[port])
    t0 = time.monotonic()
    rc, clean = s.stop(signal.SIGTERM, timeout=5)
    assert clean and rc == 0, f"exit {rc}; log:\n{s.log()}"
    assert time.monotonic() - t0 < 2, "no open connection, yet the stop waited"


# ------------------------------------------------------------------------- demo

def ports_free(ports):
    for p in ports:
        with socket.socket() as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                s.bind(("127.0.0.1", p))
            except OSError:
                return False
    return True


def start_demo(strata_bin, tmp_path, args_for_base, bases):
    """Starts the demo on the first base whose ports look free and that binds; returns
    (Strata, base). Each attempt that cannot bind (exit 3) moves on to the next base."""
    for base in bases:
        if not ports_free(range(base, base + 91)):
            continue
        s = Strata(strata_bin, tmp_path, "", name=f"demo{base}.yaml", args=args_for_base(base))
        try:
            s.wait_listening([base, base + 1, base + 2, base + 3, base + 80, base + 90],
                             timeout=10)
            return s, base
        except AssertionError:
            rc, _ = s.stop(signal.SIGTERM, timeout=5)
            if rc == 3:
                continue
            raise
    pytest.skip("no free port range found for the demo")


def check_demo(s, base):
    ns = []
    for i in range(3):
        c = connect(base)
        try:
            line = recv_line(c).decode()
            assert line.startswith("strata demo server "), line
            ns.append(int(line.rsplit(" ", 1)[1]))
            msg = b"echo me %d\n" % i
            c.sendall(msg)
            assert recv_exact(c, len(msg)) == msg
        finally:
            c.close()
    assert sorted(ns) == [1, 2, 3], f"three connections saw servers {ns}"
    # L7: Strata's own answer, a redirect, the rewritten /api/ route over three web
    # servers, the host route, and the 90/10 split
    h = base + 80
    assert http_get(h, "/hello") == (200, "hello from Strata itself\n")
    conn = http.client.HTTPConnection(LOOPBACK, h, timeout=5)
    conn.request("GET", "/old/page")
    r = conn.getresponse()
    assert r.status == 301 and r.getheader("location") == f"http://127.0.0.1:{h}/api/"
    r.read()
    webs = set()
    for i in range(3):
        conn.request("GET", "/api/x")
        r = conn.getresponse()
        body = r.read().decode()
        assert body.endswith(": GET /x\n") and r.getheader("x-demo-route") == "api", body
        webs.add(body.split(":")[0])
    assert webs == {f"hello from demo web {n}" for n in (1, 2, 3)}, webs
    conn.request("GET", "/", headers={"Host": "canary.demo"})
    assert conn.getresponse().read().decode().startswith("hello from demo web 3")
    canary = 0
    for i in range(200):
        conn.request("GET", "/")
        canary += conn.getresponse().read().decode().startswith("hello from demo web 3")
    assert 5 <= canary <= 40, f"{canary} of 200 requests reached the canary (10% expected)"
    conn.close()
    # the same routes over TLS, with the certificate the demo made (verified by name)
    import ssl
    ctx = ssl.create_default_context()
    ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
    tls = http.client.HTTPSConnection(LOOPBACK, base + 43, timeout=5, context=ctx)
    tls.request("GET", "/api/tls")
    r = tls.getresponse()
    assert r.status == 200 and r.read().decode().endswith(": GET /tls\n")
    cert = tls.sock.getpeercert(binary_form=True)
    assert cert and tls.sock.version() in ("TLSv1.2", "TLSv1.3")
    tls.close()
    # HTTP/2 on both demo listeners: h2 by ALPN over TLS, h2c with prior knowledge
    for args in (["--http2", "-k", f"https://127.0.0.1:{base + 43}/api/h2"],
                 ["--http2-prior-knowledge", f"http://127.0.0.1:{h}/api/h2"]):
        out = subprocess.run(["curl", "-s", "-o", "-", "-w", "%{http_version}", "--max-time", "5",
                              *args], capture_output=True, text=True, timeout=10).stdout
        assert out.endswith(": GET /h2\n2"), (args, out)
    status, body = http_get(base + 90, "/metrics")
    assert status == 200 and "strata_listener_connections_total" in body, body[:300]
    assert 'strata_listener_http_requests_total{listener="demo-http"}' in body
    out = s.stdout()
    assert str(base) in out, f"demo output does not mention port {base}:\n{out}"


def test_demo(strata_bin, tmp_path):
    rnd = random.Random()
    bases = [rnd.randrange(20000, 30000) for _ in range(8)]
    s, base = start_demo(strata_bin, tmp_path, lambda b: ["demo", str(b)], bases)
    try:
        check_demo(s, base)
    finally:
        rc, clean = s.stop(signal.SIGTERM, timeout=10)
    assert clean and rc == 0, f"demo exit {rc}; log:\n{s.log()}"


def test_no_arguments_runs_demo_on_7000(strata_bin, tmp_path):
    if not ports_free(range(7000, 7091)):
        pytest.skip("ports 7000..7090 are not free here")
    s, base = start_demo(strata_bin, tmp_path, lambda b: [], [7000])
    try:
        check_demo(s, base)
    finally:
        stop_process(s.proc, signal.SIGTERM, 10)
        s.stop()
