"""L4 relay correctness: bulk data both ways, half-close, many concurrent connections,
IPv6, several listen addresses, and the per-connection log line."""

import hashlib
import random
import socket
import struct
import threading
import time

import pytest

from conftest import (closed_by_peer, connect, free_port, have_ipv6_loopback, raise_nofile,
                      recv_exact, recv_until_eof, simple_config)

MiB = 1 << 20
CHUNK = 256 * 1024


def stream_random(sock, seed, total):
    """Sends `total` pseudo-random bytes from Random(seed); returns their sha256 hex."""
    rnd = random.Random(seed)
    h = hashlib.sha256()
    left = total
    while left:
        block = rnd.randbytes(min(CHUNK, left))
        h.update(block)
        sock.sendall(block)
        left -= len(block)
    return h.hexdigest()


def expected_digest(seed, total):
    rnd = random.Random(seed)
    h = hashlib.sha256()
    left = total
    while left:
        block = rnd.randbytes(min(CHUNK, left))
        h.update(block)
        left -= len(block)
    return h.hexdigest()


def drain_digest(sock, limit):
    """Reads to EOF; returns (byte count, sha256 hex). Fails past `limit` bytes."""
    h = hashlib.sha256()
    n = 0
    while True:
        b = sock.recv(MiB)
        if not b:
            return n, h.hexdigest()
        h.update(b)
        n += len(b)
        assert n <= limit, f"received more than {limit} bytes"


def read_digest(sock, total):
    """Reads exactly `total` bytes; returns their sha256 hex."""
    h = hashlib.sha256()
    n = 0
    while n < total:
        b = sock.recv(min(MiB, total - n))
        if not b:
            raise ConnectionError(f"EOF after {n} of {total} bytes")
        h.update(b)
        n += len(b)
    return h.hexdigest()


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_bulk_100mib_each_way_concurrently(strata, backends):
    """100 MiB client->server and 100 MiB server->client at the same time, independent
    pseudo-random streams, checked by sha256 at the receiving ends."""
    size = 100 * MiB
    result = {}

    def handler(c):
        # Server: send its own stream while reading the client's to EOF.
        c.settimeout(60)
        t = threading.Thread(target=lambda: result.__setitem__(
            "server_sent", stream_random(c, 2, size)))
        t.start()
        result["server_got"] = drain_digest(c, size + MiB)
        t.join(timeout=60)
        c.shutdown(socket.SHUT_WR)

    srv = backends.threaded(handler)
    port = free_port()
    s = strata(simple_config(port, [("b1", srv.address)]), listen_ports=[port])

    c = connect(port, timeout=60)
    try:
        sent = {}
        t = threading.Thread(target=lambda: sent.__setitem__("d", stream_random(c, 1, size)))
        t.start()
        got = read_digest(c, size)
        t.join(timeout=60)
        assert not t.is_alive(), "client sender did not finish"
        c.shutdown(socket.SHUT_WR)
        tail = recv_until_eof(c, limit=MiB)
    finally:
        c.close()

    assert tail == b"", f"{len(tail)} unexpected bytes after the server's stream"
    assert got == expected_digest(2, size), "server->client stream corrupted through strata"
    deadline = time.monotonic() + 30
    while "server_got" not in result and time.monotonic() < deadline:
        time.sleep(0.05)
    assert srv.errors == [], srv.errors
    assert result.get("server_got") == (size, sent["d"]), \
        "client->server stream corrupted or truncated through strata"

    logs = s.wait_conn_logs(1)
    assert logs[0]["bytes_in"] == str(size) and logs[0]["bytes_out"] == str(size), logs[0]


@pytest.mark.timeout(120)
@pytest.mark.parametrize("io_uring", [True, False])
def test_half_close_then_reply(strata, backends, io_uring):
    """Client sends 8 MiB and shuts down writing; the server reads to EOF and only then
    answers with sha256 + 24 MiB derived from it; the client must receive all of it. The
    relay passes the FIN on after the bytes, with and without io_uring for its sends."""
    up, down = 8 * MiB, 24 * MiB

    def handler(c):
        n, digest = drain_digest(c, up + MiB)
        c.sendall(digest.encode() + b"\n")
        stream_random(c, digest, down)
        c.shutdown(socket.SHUT_WR)

    srv = backends.threaded(handler)
    port = free_port()
    top = "" if io_uring else "tuning: { io_uring: false }"
    s = strata(simple_config(port, [("b1", srv.address)], top_extra=top), listen_ports=[port])

    c = connect(port, timeout=30)
    try:
        sent = stream_random(c, 7, up)
        c.shutdown(socket.SHUT_WR)
        line = recv_exact(c, 65)
        assert line.decode().strip() == sent, "server saw different bytes than were sent"
        got = read_digest(c, down)
        rest = recv_until_eof(c, limit=MiB)
    finally:
        c.close()
    assert got == expected_digest(sent, down), "reply after half-close corrupted"
    assert rest == b"", f"{len(rest)} bytes after the reply"
    assert srv.errors == []
    log = s.wait_conn_logs(1)[0]
    assert log["bytes_in"] == str(up), log
    assert log["bytes_out"] == str(65 + down), log


def test_half_close_server_side(strata, backends):
    """The server shuts down writing first; the client still sends and gets a reply."""
    def handler(c):
        c.sendall(b"ready\n")
        c.shutdown(socket.SHUT_WR)
        data = recv_until_eof(c, limit=MiB)
        # The server can no longer answer on this socket; recording what arrived is the test.
        handler.got = data

    handler.got = None
    srv = backends.threaded(handler)
    port = free_port()
    strata(simple_config(port, [("b1", srv.address)]), listen_ports=[port])
    c = connect(port)
    try:
        assert recv_exact(c, 6) == b"ready\n"
        assert c.recv(1) == b"", "client should see EOF after the server's SHUT_WR"
        c.sendall(b"still talking after your FIN\n")
        c.shutdown(socket.SHUT_WR)
        deadline = time.monotonic() + 5
        while handler.got is None and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        c.close()
    assert handler.got == b"still talking after your FIN\n"


def test_conn_log_line_client_close(strata, backends):
    srv = backends.echo(greeting=b"hi\n")
    port = free_port()
    s = strata(simple_config(port, [("e1", srv.address)]), listen_ports=[port])
    c = connect(port)
    try:
        assert recv_exact(c, 3) == b"hi\n"
        c.sendall(b"x" * 1000)
        assert recv_exact(c, 1000) == b"x" * 1000
        client = "%s:%d" % c.getsockname()[:2]
    finally:
        c.close()
    log = s.wait_conn_logs(1)[0]
    assert log == {**log, "listener": "web", "client": client, "server": "e1",
                   "bytes_in": "1000", "bytes_out": "1003", "end": "client_close"}, log
    assert int(log["duration_ms"]) >= 0


def test_conn_log_line_server_close(strata, backends):
    def handler(c):
        recv_exact(c, 1000)
        c.sendall(b"y" * 3000)

    srv = backends.threaded(handler)
    port = free_port()
    s = strata(simple_config(port, [("t1", srv.address)]), listen_ports=[port])
    c = connect(port)
    try:
        c.sendall(b"q" * 1000)
        assert recv_until_eof(c) == b"y" * 3000
    finally:
        c.close()
    log = s.wait_conn_logs(1)[0]
    assert (log["server"], log["bytes_in"], log["bytes_out"], log["end"]) == \
        ("t1", "1000", "3000", "server_close"), log


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_1000_concurrent_connections(strata, backends):
    """1,000 connections open at once, each echoes its own payload; all are active in
    /metrics at the same time, and all close cleanly."""
    n = 1000
    assert raise_nofile(8192) >= 2 * n + 100, "cannot raise RLIMIT_NOFILE for the test"
    srv = backends.echo()
    port, admin = free_port(), free_port()
    s = strata(simple_config(port, [("e1", srv.address)], admin_port=admin),
               listen_ports=[port], admin_port=admin)
    socks = []
    try:
        for i in range(n):
            socks.append(connect(port, timeout=10))
        payloads = [b"conn-%04d-" % i + random.Random(i).randbytes(40).hex().encode()
                    for i in range(n)]
        for sk, p in zip(socks, payloads):
            sk.sendall(p)
        bad = []
        for i, (sk, p) in enumerate(zip(socks, payloads)):
            got = recv_exact(sk, len(p))
            if got != p:
                bad.append((i, got[:20]))
        assert not bad, f"{len(bad)} connections got wrong data, first: {bad[:3]}"
        m = s.metrics(admin)
        assert m.get("strata_listener_connections_active", listener="web") == n, \
            [k for k in m if k[0] == "strata_listener_connections_active"]
        # A second round on every connection: they are all still relayed.
        for sk, p in zip(socks, payloads):
            sk.sendall(p[::-1])
        for sk, p in zip(socks, payloads):
            assert recv_exact(sk, len(p)) == p[::-1]
    finally:
        for sk in socks:
            sk.close()
    s.wait_conn_logs(n, timeout=20)
    m = s.metrics(admin)
    assert m.get("strata_listener_connections_total", listener="web") == n
    assert m.get("strata_listener_connections_active", listener="web") == 0


def test_ipv6_listener_and_backend(strata, backends):
    if not have_ipv6_loopback():
        pytest.skip("no IPv6 loopback (::1) on this machine")
    srv6 = backends.echo(greeting=b"v6\n", host="::1")
    port = free_port(host="::1", family=socket.AF_INET6)
    cfg = simple_config(port, [("six", srv6.address)], listen_host="::1")
    strata(cfg, listen_ports=[port], host="::1")
    c = connect(port, host="::1")
    try:
        assert recv_exact(c, 3) == b"v6\n"
        c.sendall(b"over ipv6")
        assert recv_exact(c, 9) == b"over ipv6"
    finally:
        c.close()


def test_listen_on_several_addresses(strata, backends):
    srv = backends.echo(greeting=b"g\n")
    p1, p2 = free_port(), free_port()
    cfg = f"""
timeouts: {{ drain: 1s }}
listeners:
  - name: multi
    listen: [ "127.0.0.1:{p1}", "127.0.0.1:{p2}" ]
    mode: tcp
    backend: app
backends:
  app:
    servers: [ "{srv.address}" ]
"""
    strata(cfg, listen_ports=[p1, p2])
    for p in (p1, p2):
        c = connect(p)
        try:
            assert recv_exact(c, 2) == b"g\n"
            c.sendall(b"ping")
            assert recv_exact(c, 4) == b"ping"
        finally:
            c.close()


def test_metrics_count_bytes_and_connections(strata, backends):
    def handler(c):
        recv_exact(c, 1000)
        c.sendall(b"z" * 3000)

    srv = backends.threaded(handler)
    port, admin = free_port(), free_port()
    s = strata(simple_config(port, [("t1", srv.address)], admin_port=admin),
               listen_ports=[port], admin_port=admin)
    for _ in range(3):
        c = connect(port)
        try:
            c.sendall(b"a" * 1000)
            assert recv_until_eof(c) == b"z" * 3000
        finally:
            c.close()
    s.wait_conn_logs(3)
    m = s.metrics(admin)
    want = {
        "strata_listener_connections_total": 3,
        "strata_listener_connections_active": 0,
        "strata_listener_connections_rejected_total": 0,
        "strata_listener_bytes_in_total": 3000,
        "strata_listener_bytes_out_total": 9000,
    }
    got = {k: m.get(k, listener="web") for k in want}
    assert got == want, f"\n{m.text}"
    assert m.get("strata_server_connections_total", backend="app", server="t1") == 3
    assert m.get("strata_server_connections_active", backend="app", server="t1") == 0
    sb = {m.get("strata_server_bytes_in_total", backend="app", server="t1"),
          m.get("strata_server_bytes_out_total", backend="app", server="t1")}
    assert sb == {3000.0, 9000.0}, f"\n{m.text}"
    assert m.get("strata_server_up", backend="app", server="t1") == 1
    for name in ("strata_listener_connect_failures_total", "strata_listener_timeouts_total",
                 "strata_server_connect_errors_total"):
        assert name in m.names(), f"{name} missing from /metrics"


def vmrss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError(f"no VmRSS for {pid}")


@pytest.mark.timeout(120)
def test_backpressure_slow_reader_bounded_memory(strata, backends):
    """The server sends 64 MiB to a client that does not read for a while: Strata must stop
    reading from the server instead of buffering it all, then deliver every byte."""
    size = 64 * MiB

    def handler(c):
        stream_random(c, 11, size)
        c.shutdown(socket.SHUT_WR)
        recv_until_eof(c, limit=MiB)

    srv = backends.threaded(handler)
    port = free_port()
    s = strata(simple_config(port, [("b1", srv.address)]), listen_ports=[port])
    base = vmrss_kib(s.pid)
    c = connect(port, timeout=30)
    try:
        c.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
        time.sleep(2.0)  # the server writes as fast as it can; nobody reads
        grown = vmrss_kib(s.pid) - base
        assert grown < 24 * 1024, f"strata RSS grew {grown} KiB while the client did not read"
        got = read_digest(c, size)
        assert c.recv(1) == b""
    finally:
        c.close()
    assert got == expected_digest(11, size)


def test_client_reset_closes_server_side(strata, backends):
    closed = threading.Event()

    def handler(c):
        c.sendall(b"go\n")
        try:
            while c.recv(65536):
                pass
        except OSError:
            pass
        closed.set()

    srv = backends.threaded(handler)
    port, admin = free_port(), free_port()
    s = strata(simple_config(port, [("b1", srv.address)], admin_port=admin),
               listen_ports=[port], admin_port=admin)
    c = connect(port)
    assert recv_exact(c, 3) == b"go\n"
    c.sendall(b"x" * 100000)
    # SO_LINGER 0: close() sends a RST instead of a FIN.
    c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    c.close()
    assert closed.wait(5), "server side still open 5s after the client reset"
    assert s.wait_conn_logs(1)[0]["end"] in ("client_close", "client_error"), s.conn_logs()
    m = s.metrics(admin)
    assert m.get("strata_listener_connections_active", listener="web") == 0, m.text
    assert m.get("strata_server_connections_active", backend="app", server="b1") == 0, m.text


def test_server_reset_closes_client_side(strata, backends):
    def handler(c):
        c.sendall(b"bye\n")
        time.sleep(0.2)
        c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))

    srv = backends.threaded(handler)
    port = free_port()
    s = strata(simple_config(port, [("b1", srv.address)]), listen_ports=[port])
    c = connect(port)
    try:
        assert recv_exact(c, 4) == b"bye\n"
        assert closed_by_peer(c, 5), "client still open 5s after the server reset"
    finally:
        c.close()
    # A reset is an error rather than an orderly close; either reason is acceptable.
    assert s.wait_conn_logs(1)[0]["end"] in ("server_close", "server_error"), s.conn_logs()


def test_connect_timeout(strata):
    """A server whose accept queue is full never answers the SYN: the connect timeout
    (500ms) ends the attempt, and the client is closed with end=connect_failed."""
    with socket.socket() as full:
        full.bind(("127.0.0.1", 0))
        full.listen(0)
        fillers = []
        try:
            for _ in range(3):  # fill the accept queue (never accepted)
                f = socket.socket()
                f.setblocking(False)
                f.connect_ex(full.getsockname())
                fillers.append(f)
            time.sleep(0.2)
            port = free_port()
            cfg = simple_config(port, [("slow", "127.0.0.1:%d" % full.getsockname()[1])],
                                backend_extra="retries: 0\ntimeouts: { connect: 500ms }")
            s = strata(cfg, listen_ports=[port])
            c = connect(port)
            try:
                t0 = time.monotonic()
                assert closed_by_peer(c, 5), "client not closed after the connect timeout"
                took = time.monotonic() - t0
            finally:
                c.close()
        finally:
            for f in fillers:
                f.close()
    assert 0.4 <= took <= 2.5, f"closed after {took:.2f}s, connect timeout is 500ms"
    assert s.wait_conn_logs(1)[0]["end"] == "connect_failed", s.conn_logs()


def syscall_counts(pid, names, action):
    """Runs action() while strace counts the given system calls of pid (every thread);
    returns {name: calls}."""
    import subprocess
    import tempfile
    with tempfile.NamedTemporaryFile(mode="r", suffix=".strace") as out:
        tracer = subprocess.Popen(["strace", "-f", "-qq", "-c", "-e", "trace=" + ",".join(names),
                                   "-p", str(pid), "-o", out.name],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            time.sleep(0.5)  # attached to every thread
            action()
            # The client can read a send's bytes before strace has seen that send return
            # (the traced thread waits stopped at the call's exit); counted only then.
            time.sleep(0.3)
        finally:
            tracer.terminate()
            tracer.wait(timeout=10)
        counts = {n: 0 for n in names}
        for line in out.read().splitlines():
            f = line.split()
            if f and f[-1] in counts and f[3].isdigit():
                counts[f[-1]] = int(f[3])
        return counts


def echo_rounds(port, conns=20, rounds=50):
    """Each round writes a distinct message on every connection, then reads every echo."""
    socks = [connect(port, timeout=10) for _ in range(conns)]
    try:
        for r in range(rounds):
            msgs = [f"round {r} conn {i} ".encode() * (1 + i % 4) for i in range(conns)]
            for s, m in zip(socks, msgs):
                s.sendall(m)
            for s, m in zip(socks, msgs):
                assert recv_exact(s, len(m)) == m
    finally:
        for s in socks:
            s.close()


@pytest.mark.timeout(120)
@pytest.mark.parametrize("io_uring", [True, False])
def test_turn_sends_batched_by_io_uring(strata, backends, io_uring):
    """With tuning.io_uring (the default) the relay's sends of a loop turn go to the kernel
    together in io_uring_enter calls, not one sendto each; with it off, one sendto each.
    Either way every message arrives intact and in order."""
    srv = backends.echo()
    port = free_port()
    top = "" if io_uring else "tuning: { io_uring: false }"
    s = strata(simple_config(port, [("b1", srv.address)], workers=1, top_extra=top),
               listen_ports=[port])
    echo_rounds(port, conns=4, rounds=5)  # warm: connections and pools in place
    counts = syscall_counts(s.proc.pid, ["sendto", "io_uring_enter"], lambda: echo_rounds(port))
    messages = 2 * 20 * 50  # each way
    if io_uring:
        assert counts["sendto"] < messages / 10, counts
        assert 0 < counts["io_uring_enter"] < messages, counts
    else:
        assert counts["io_uring_enter"] == 0, counts
        assert counts["sendto"] >= messages, counts
