"""mode: http — response bodies moved by splice(2): a body no filter sees, sent with a
Content-Length longer than a buffer, goes from the server's socket to a plain HTTP/1
client's without entering user space. What must hold either way: the bytes arrive whole
and in order (also pipelined, and on reused connections), a slow reader holds the server
back instead of making Strata buffer, a server or a client gone mid-body ends only that
exchange, and bodies a filter must see, TLS clients and chunked bodies are still copied."""
import hashlib
import json
import os
import socket
import threading
import time

from conftest import LOOPBACK, ThreadedServer, connect, recv_until_eof, wait_for
from http_backend import http_config, parse_response

MIB = 1 << 20


def run(strata, backend_addr, http_extra="access_log: { format: json }", extra=""):
    from conftest import free_ports
    port, admin = free_ports(2)
    cfg = http_config(port, {"app": {"servers": [backend_addr], "extra": extra}},
                      admin_port=admin, http_extra=http_extra, workers=1)
    return strata(cfg, listen_ports=[port], admin_port=admin), port, admin


def access_log(s, n, pred=lambda e: True):
    """The first n access-log entries (JSON on stdout) that satisfy pred, waited for."""
    def found():
        es = [json.loads(ln) for ln in s.stdout().splitlines() if ln.startswith("{")]
        es = [e for e in es if pred(e)]
        return es if len(es) >= n else None
    return wait_for(found, 5, what=f"{n} access log entries")


def spliced(s, admin):
    return s.metrics(admin).get("strata_listener_http_spliced_bytes_total", listener="web") or 0


def read_response(f, limit=256 * MIB):
    """One response with a Content-Length body from f (a socket's makefile("rb"), which keeps
    what it read past this response): (status line, headers dict, body)."""
    status = f.readline().decode("latin-1").rstrip("\r\n")
    assert status, "connection closed before the head"
    headers = {}
    for _ in range(100):
        ln = f.readline().decode("latin-1").rstrip("\r\n")
        if not ln:
            break
        k, _, v = ln.partition(":")
        headers[k.strip().lower()] = v.strip()
    n = int(headers["content-length"])
    assert n <= limit
    body = f.read(n)
    assert len(body) == n, f"closed after {len(body)} of {n} body bytes"
    return status, headers, body


def request_head(c, buf):
    """(head, rest) of the next request head on the origin's socket c after buf, or None
    when the connection closes first (these origins' requests have no body)."""
    for _ in range(10000):
        if b"\r\n\r\n" in buf:
            return buf.split(b"\r\n\r\n", 1)
        d = c.recv(65536)
        if not d:
            return None
        buf += d
    return None


class BodyOrigin:
    """Answers every request on a connection with a Content-Length body (`bodies` by path),
    in order, keep-alive; counts connections and requests."""

    def __init__(self, bodies):
        self.bodies = bodies
        self.requests = []
        self.conn_ids = []
        self.server = ThreadedServer(self.handle).start()

    def handle(self, c):
        conn_id = self.server.accepted
        buf = b""
        for _ in range(1000):
            got = request_head(c, buf)
            if got is None:
                return
            head, buf = got
            path = head.split(b" ")[1].decode()
            self.requests.append(path)
            self.conn_ids.append(conn_id)
            body = self.bodies[path]
            c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body) + body)

    def stop(self):
        self.server.stop()


def test_large_bodies_arrive_whole_pipelined_and_on_reused_connections(strata):
    bodies = {"/a": os.urandom(3 * MIB + 7), "/b": os.urandom(MIB), "/small": b"tiny"}
    o = BodyOrigin(bodies)
    try:
        s, port, admin = run(strata, o.server.address)
        c = connect(port)
        f = c.makefile("rb")
        # three requests at once (pipelined), then two more on the same connection
        c.sendall(b"".join(b"GET %s HTTP/1.1\r\nHost: x\r\n\r\n" % p.encode()
                           for p in ("/a", "/small", "/b")))
        for i, p in enumerate(("/a", "/small", "/b", "/b", "/a")):
            if i >= 3:
                c.sendall(b"GET %s HTTP/1.1\r\nHost: x\r\n\r\n" % p.encode())
            status, headers, body = read_response(f)
            assert status.startswith("HTTP/1.1 200"), status
            assert hashlib.sha256(body).digest() == hashlib.sha256(bodies[p]).digest(), p
        c.close()
        assert o.requests == ["/a", "/small", "/b", "/b", "/a"]
        assert len(set(o.conn_ids)) == 1, o.conn_ids  # the server connection was kept
        # most of the large bodies went by splice (what came with each head was copied)
        big = 2 * len(bodies["/a"]) + 2 * len(bodies["/b"])
        n = wait_for(lambda: spliced(s, admin) or None, 5, what="spliced bytes counted")
        assert big - 4 * 64 * 1024 <= n <= big, (n, big)
        m = s.metrics(admin)
        assert m.get("strata_listener_bytes_out_total", listener="web") >= big
    finally:
        o.stop()


def test_slow_reader_holds_the_server_back(strata):
    """64 MiB to a client that stops reading: the server is held back by TCP (Strata holds at
    most a pipe), then the client reads the rest and gets every byte."""
    size = 64 * MIB
    sent = [0]
    done = threading.Event()

    def handle(c):
        if request_head(c, b"") is None:
            return
        c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % size)
        block = bytes(range(256)) * 256  # 64 KiB
        for _ in range(size // len(block)):
            c.sendall(block)
            sent[0] += len(block)
        done.set()

    srv = ThreadedServer(handle).start()
    try:
        s, port, admin = run(strata, srv.address)
        c = connect(port, timeout=30)
        c.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
        c.sendall(b"GET /big HTTP/1.1\r\nHost: x\r\n\r\n")
        first = c.recv(65536)
        assert first.startswith(b"HTTP/1.1 200")
        time.sleep(1.5)  # the client reads nothing
        held = sent[0]
        # socket buffers on loopback hold several MiB each way, a pipe 256 KiB
        assert held < size - 16 * MIB, held
        assert not done.is_set()
        got = len(first.split(b"\r\n\r\n", 1)[1])
        digest = hashlib.sha256(first.split(b"\r\n\r\n", 1)[1])
        deadline = time.monotonic() + 30
        while got < size and time.monotonic() < deadline:
            d = c.recv(1 << 20)
            assert d, f"closed after {got} bytes"
            digest.update(d)
            got += len(d)
        assert got == size
        block = bytes(range(256)) * 256
        want = hashlib.sha256()
        for _ in range(size // len(block)):
            want.update(block)
        assert digest.digest() == want.digest()
        assert spliced(s, admin) > size // 2
        c.close()
    finally:
        srv.stop()


def test_server_gone_mid_body_ends_that_exchange_only(strata):
    def handle(c):
        got = request_head(c, b"")
        if got is None:
            return
        if b"/cut" in got[0]:
            c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % (4 * MIB))
            c.sendall(b"x" * MIB)  # then gone, 3 MiB short
            return
        c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % (2 * MIB) + b"y" * (2 * MIB))

    srv = ThreadedServer(handle).start()
    try:
        s, port, admin = run(strata, srv.address)
        c = connect(port, timeout=10)
        c.sendall(b"GET /cut HTTP/1.1\r\nHost: x\r\n\r\n")
        t0 = time.monotonic()
        got = recv_until_eof(c)  # Strata closes the client connection: the body is short
        assert time.monotonic() - t0 < 5
        assert got.startswith(b"HTTP/1.1 200")
        assert len(got.split(b"\r\n\r\n", 1)[1]) == MIB
        e, = access_log(s, 1, lambda e: e["path"] == "/cut")
        assert e["end"] == "server_abort" and "before the end of the body" in e["detail"], e
        # the next client is served whole
        c2 = connect(port)
        c2.sendall(b"GET /ok HTTP/1.1\r\nHost: x\r\n\r\n")
        status, _, body = read_response(c2.makefile("rb"))
        assert status.startswith("HTTP/1.1 200") and body == b"y" * (2 * MIB)
        c2.close()
    finally:
        srv.stop()


def test_client_gone_mid_body_then_others_served(strata):
    o = BodyOrigin({"/big": os.urandom(16 * MIB), "/b": os.urandom(MIB)})
    try:
        s, port, admin = run(strata, o.server.address)
        for _ in range(3):
            c = connect(port)
            c.sendall(b"GET /big HTTP/1.1\r\nHost: x\r\n\r\n")
            c.recv(100000)
            c.close()  # gone with most of the body still coming
        es = access_log(s, 3, lambda e: e["path"] == "/big")
        assert all(e["end"] == "client_abort" for e in es), es
        c = connect(port)
        f = c.makefile("rb")
        for _ in range(3):
            c.sendall(b"GET /b HTTP/1.1\r\nHost: x\r\n\r\n")
            status, _, body = read_response(f)
            assert status.startswith("HTTP/1.1 200") and body == o.bodies["/b"]
        c.close()
        assert s.alive()
    finally:
        o.stop()


def test_chunked_bodies_are_copied(strata):
    """A chunked body is decoded and framed again: copied, not spliced, the same bytes."""
    text = (b"compressible line of text\n" * 200000)[: 3 * MIB]

    def handle(c):
        buf = b""
        for _ in range(100):
            got = request_head(c, buf)
            if got is None:
                return
            head, buf = got
            out = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
            for i in range(0, len(text), MIB):
                part = text[i:i + MIB]
                out += b"%x\r\n" % len(part) + part + b"\r\n"
            c.sendall(out + b"0\r\n\r\n")

    srv = ThreadedServer(handle).start()
    try:
        s, port, admin = run(strata, srv.address)
        c = connect(port)
        c.sendall(b"GET /chunked HTTP/1.1\r\nHost: x\r\n\r\n")
        data = b""
        deadline = time.monotonic() + 10
        while not data.endswith(b"0\r\n\r\n") and time.monotonic() < deadline:
            data += c.recv(1 << 20)
        (st, _, body), = parse_response(data)
        assert st == 200 and body == text
        c.close()
        assert spliced(s, admin) == 0
    finally:
        srv.stop()


# ---- request bodies (uploads) ----

def run_origin(strata, origin, http_extra="access_log: { format: json }"):
    a = origin()
    s, port, admin = run(strata, a.address, http_extra=http_extra)
    return a, s, port, admin


def test_large_uploads_arrive_whole_then_pipelined_requests(strata, origin):
    """Two 8 MiB uploads and a GET in one write: the bodies reach the server whole (most of
    them by splice) and the GET after them is parsed, not taken as body bytes."""
    a, s, port, admin = run_origin(strata, origin)
    up1, up2 = os.urandom(8 * MIB), os.urandom(8 * MIB + 3)
    c = connect(port, timeout=20)
    f = c.makefile("rb")
    c.sendall(b"PUT /u1 HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(up1) + up1 +
              b"PUT /u2 HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(up2) + up2 +
              b"GET /after HTTP/1.1\r\nHost: x\r\n\r\n")
    for path in ("/u1", "/u2", "/after"):
        status, _, body = read_response(f)
        assert status.startswith("HTTP/1.1 200") and body == f"{'PUT' if path != '/after' else 'GET'} {path}\n".encode()
    c.close()
    assert [r.path for r in a.requests] == ["/u1", "/u2", "/after"]
    assert a.requests[0].body == up1 and a.requests[1].body == up2
    assert a.connections == 1  # the server connection carried all three
    n = spliced(s, admin)
    assert len(up1) + len(up2) - 2 * 64 * 1024 <= n <= len(up1) + len(up2), n
    es = access_log(s, 3)
    assert es[0]["bytes_in"] > len(up1) and es[1]["bytes_in"] > len(up2)


def test_upload_over_max_request_body_is_refused_not_spliced(strata, origin):
    a, s, port, admin = run_origin(strata, origin, http_extra="max_request_body: 1m")
    c = connect(port, timeout=10)
    c.sendall(b"PUT /big HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % (4 * MIB))
    try:
        c.sendall(b"z" * (4 * MIB))
    except OSError:
        pass  # Strata may close once it answered
    got = recv_until_eof(c)
    assert got.startswith(b"HTTP/1.1 413"), got[:100]
    assert spliced(s, admin) == 0
    assert not [r for r in a.requests if r.path == "/big" and len(r.body) == 4 * MIB]


def test_upload_with_expect_100_continue(strata, origin):
    a, s, port, admin = run_origin(strata, origin)
    body = os.urandom(2 * MIB)
    c = connect(port, timeout=10)
    f = c.makefile("rb")
    c.sendall(b"POST /e HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\nExpect: 100-continue\r\n\r\n"
              % len(body))
    assert f.readline() == b"HTTP/1.1 100 Continue\r\n" and f.readline() == b"\r\n"
    c.sendall(body)
    status, _, got = read_response(f)
    assert status.startswith("HTTP/1.1 200") and got == b"POST /e\n"
    assert a.requests[0].body == body
    assert spliced(s, admin) > 0


def test_client_gone_mid_upload_the_server_connection_is_not_reused(strata, origin):
    a, s, port, admin = run_origin(strata, origin)
    c = connect(port)
    c.sendall(b"PUT /cut HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % (16 * MIB))
    c.sendall(b"q" * (3 * MIB))
    time.sleep(0.3)
    c.close()  # 13 MiB short
    e, = access_log(s, 1, lambda e: e["path"] == "/cut")
    assert e["end"] == "client_abort", e
    c = connect(port)
    f = c.makefile("rb")
    body = os.urandom(MIB)
    c.sendall(b"PUT /next HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
    status, _, got = read_response(f)
    assert status.startswith("HTTP/1.1 200") and got == b"PUT /next\n"
    nxt = [r for r in a.requests if r.path == "/next"]
    assert len(nxt) == 1 and nxt[0].body == body
    assert nxt[0].conn_id != 1 or not [r for r in a.requests if r.path == "/cut"]
    c.close()


def test_upload_retried_on_another_server_after_a_refused_connect(strata, origin):
    """The body waits (in the client's socket) while a server refuses the connect; the retry
    on the other server gets it whole. Round robin over a dead server and a live one: of two
    uploads one meets the dead server first."""
    from conftest import free_port
    a = origin()
    dead = f"{LOOPBACK}:{free_port()}"  # nothing listens there
    port, admin = free_port(), free_port()
    cfg = http_config(port, {"app": {"servers": [dead, a.address], "extra": "retries: 2"}},
                      admin_port=admin, workers=1, http_extra="access_log: { format: json }")
    s = strata(cfg, listen_ports=[port], admin_port=admin)
    bodies = [os.urandom(4 * MIB), os.urandom(4 * MIB)]
    for i, body in enumerate(bodies):
        c = connect(port, timeout=10)
        f = c.makefile("rb")
        c.sendall(b"PUT /r%d HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % (i, len(body))
                  + body)
        status, _, got = read_response(f)
        assert status.startswith("HTTP/1.1 200") and got == b"PUT /r%d\n" % i
        c.close()
    assert [r.body for r in a.requests] == bodies
    assert sum(e["retries"] for e in access_log(s, 2)) >= 1
    assert spliced(s, admin) > 0
