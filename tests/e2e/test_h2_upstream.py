"""HTTP/2 to servers (backend `protocol: h2` over TLS by ALPN, and `h2c` with prior
knowledge): HTTP/1.1 clients through Strata to the h2 origin (h2_backend.py). Translation
(GET, large bodies streamed both ways, chunked request bodies with trailers and response
trailers, HEAD/204/304, 100-continue), multiplexing (concurrent requests on few
connections, the server's SETTINGS_MAX_CONCURRENT_STREAMS), retries (GOAWAY, REFUSED_STREAM,
a reset before any response byte), a server that cuts a response or sends a malformed one,
a slow client reader (Strata's memory stays bounded), `strata check` on protocol
combinations; then h2 clients (curl, python3-h2, grpcio in the four call shapes) through
Strata to HTTP/2 servers."""
import hashlib
import os
import shutil
import socket
import subprocess
import threading
import time

import pytest

from conftest import LOOPBACK, free_port, run_strata, wait_for
from http_backend import http_config, http_request

pytestmark = pytest.mark.skipif(not shutil.which("curl"), reason="curl not installed")

CURL_TIMEOUT = 30


def h2_backend_yaml(origin, tls, extra=""):
    if tls:
        cert = origin.tls[0]
        proto = f"protocol: h2\ntls: {{ ca: {cert} }}\n"
    else:
        proto = "protocol: h2c\n"
    return {"h2": {"servers": [origin.address], "extra": proto + extra}}


def start(strata, origin, tls, extra="", workers=1, routes=None, http_extra=""):
    port = free_port()
    cfg = http_config(port, h2_backend_yaml(origin, tls, extra), workers=workers, routes=routes,
                      http_extra=http_extra)
    s = strata(cfg, listen_ports=[port])
    return s, port


def curl(port, path, *args, timeout=CURL_TIMEOUT):
    """(exit code, status, headers dict (lowercase; last value wins), body bytes)."""
    cmd = ["curl", "-sS", "-D", "-", "-o", "-", "--max-time", str(timeout),
           f"http://{LOOPBACK}:{port}{path}", *args]
    r = subprocess.run(cmd, capture_output=True, timeout=timeout + 5)
    return (r.returncode, *split_heads(r.stdout))


def split_heads(out):
    """The last head (interim ones skipped) and the body from curl's -D - -o - output."""
    status, headers = 0, {}
    while out.startswith(b"HTTP/"):
        head, _, out = out.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        headers = {}
        for ln in lines[1:]:
            k, _, v = ln.partition(":")
            headers[k.strip().lower()] = v.strip()
        if status >= 200:
            break
    return status, headers, out


def raw_exchange(port, raw):
    return http_request(port, raw, timeout=10.0)


def post_random(port, path, tmp_path, size, *args):
    """POSTs `size` random bytes from a file with curl: (data, curl's result)."""
    data = os.urandom(size)
    src = tmp_path / "up.bin"
    src.write_bytes(data)
    return data, curl(port, path, "--data-binary", f"@{src}", *args)


def read_chunked(data):
    """(body, trailers dict) of a chunked body at the start of data."""
    body, trailers = b"", {}
    while True:
        line, _, data = data.partition(b"\r\n")
        size = int(line.split(b";")[0], 16)
        if size == 0:
            break
        body += data[:size]
        data = data[size + 2:]
    for ln in data.split(b"\r\n"):
        if not ln:
            break
        k, _, v = ln.decode("latin-1").partition(":")
        trailers[k.strip().lower()] = v.strip()
    return body, trailers


def access_line(s, pattern, timeout=10.0):
    """The first access-log line (stdout) matching the regex `pattern`."""
    import re
    rx = re.compile(pattern)
    found = wait_for(lambda: [ln for ln in s.stdout().splitlines() if rx.search(ln)], timeout,
                     what=f"access log line /{pattern}/")
    return found[0]


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for ln in f:
            if ln.startswith("VmRSS:"):
                return int(ln.split()[1])
    return 0


BOTH = pytest.mark.parametrize("tls", [False, True], ids=["h2c", "h2"])


# --------------------------------------------------------------------------- translation

@BOTH
def test_get(strata, h2_origin, tls):
    o = h2_origin(name="a", tls=tls)
    s, port = start(strata, o, tls)
    rc, status, h, body = curl(port, "/echo?x=1")
    assert rc == 0 and status == 200, s.log()[-3000:]
    assert h["x-backend"] == "a"
    assert h["x-req-method"] == "GET" and h["x-req-path"] == "/echo?x=1"
    assert h["x-req-scheme"] == ("https" if tls else "http")
    assert h["x-req-authority"] == f"{LOOPBACK}:{port}"
    if tls:
        assert o.alpn == ["h2"]
    line = access_line(s, r'path="/echo".*status=200')
    assert 'end="ok"' in line


@BOTH
def test_large_bodies_streamed_both_ways(strata, h2_origin, tls, tmp_path):
    o = h2_origin(name="a", tls=tls)
    s, port = start(strata, o, tls)
    data, (rc, status, h, body) = post_random(port, "/echo", tmp_path, 8 << 20,
                                              "-H", "Content-Type: application/octet-stream")
    assert rc == 0 and status == 200, s.log()[-3000:]
    assert h["x-req-body-length"] == str(len(data))
    assert h["x-req-body-sha256"] == hashlib.sha256(data).hexdigest()
    assert hashlib.sha256(body).hexdigest() == hashlib.sha256(data).hexdigest()
    # 32 MiB down, streamed as the client reads
    rc, status, h, body = curl(port, "/bytes?mib=32")
    assert rc == 0 and status == 200 and len(body) == 32 << 20
    assert h["content-length"] == str(32 << 20)


@BOTH
def test_chunked_request_with_trailers_and_response_trailers(strata, h2_origin, tls):
    o = h2_origin(name="a", tls=tls)
    s, port = start(strata, o, tls)
    # a chunked request body with trailers: DATA frames, then a trailing HEADERS
    raw = (f"POST /sink HTTP/1.1\r\nHost: {LOOPBACK}:{port}\r\nTE: trailers\r\n"
           "Transfer-Encoding: chunked\r\nTrailer: X-Sum\r\nConnection: close\r\n\r\n"
           "5\r\nhello\r\n6\r\n world\r\n0\r\nX-Sum: 42\r\n\r\n").encode()
    out = raw_exchange(port, raw)
    assert out.startswith(b"HTTP/1.1 200"), out[:500]
    req = o.requests[-1]
    assert req.body == b"hello world" and ("x-sum", "42") in req.trailers, req.trailers
    assert req.header("te") == "trailers"
    # a response of unknown length with trailers: re-chunked for the client, trailers last
    raw = (f"GET /bytes?n=100000&cl=0 HTTP/1.1\r\nHost: x\r\nTE: trailers\r\n"
           "Connection: close\r\n\r\n").encode()
    out = raw_exchange(port, raw)
    head, _, rest = out.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200"), out[:500]
    assert b"transfer-encoding: chunked" in head.lower()
    body, trailers = read_chunked(rest)
    assert len(body) == 100000
    assert trailers.get("x-trailer-backend") == "a", trailers


@BOTH
def test_head_204_304(strata, h2_origin, tls):
    o = h2_origin(name="a", tls=tls)
    s, port = start(strata, o, tls)
    rc, status, h, body = curl(port, "/bytes?n=1000", "-I")
    assert rc == 0 and status == 200 and h["content-length"] == "1000" and not body.strip()
    for code in (204, 304):
        raw = (f"GET /status/{code} HTTP/1.1\r\nHost: x\r\n\r\n"
               f"GET /echo HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").encode()
        out = raw_exchange(port, raw)
        first, _, rest = out.partition(b"\r\n\r\n")
        assert first.startswith(f"HTTP/1.1 {code}".encode()), out[:300]
        assert b"transfer-encoding" not in first.lower()
        # the next response follows at once: no body was framed for 204/304
        assert rest.startswith(b"HTTP/1.1 200"), out[:600]


@BOTH
def test_expect_100_continue(strata, h2_origin, tls, tmp_path):
    o = h2_origin(name="a", tls=tls)
    s, port = start(strata, o, tls)
    data, (rc, status, h, body) = post_random(port, "/sink", tmp_path, 300 << 10,
                                              "-H", "Expect: 100-continue")
    assert rc == 0 and status == 200, s.log()[-3000:]
    assert h["x-req-body-length"] == str(len(data))


def test_grpc_unary_from_an_http1_client(strata, grpc_origin):
    """gRPC over HTTP/1.1 to Strata, HTTP/2 to the gRPC server: the message both ways,
    grpc-status in the response trailers (re-chunked for the client)."""
    import struct
    o = grpc_origin(name="g")
    port = free_port()
    cfg = http_config(port, {"g": {"servers": [o.address], "extra": "protocol: h2c\n"}},
                      workers=1)
    strata(cfg, listen_ports=[port])
    results = {}
    for method, msg in (("Unary", b"hello grpc"), ("Fail", b"x")):
        frame = b"\x00" + struct.pack(">I", len(msg)) + msg
        raw = (f"POST /strata.test.Echo/{method} HTTP/1.1\r\nHost: x\r\n"
               "Content-Type: application/grpc\r\nTE: trailers\r\n"
               f"Content-Length: {len(frame)}\r\nConnection: close\r\n\r\n").encode() + frame
        out = raw_exchange(port, raw)
        head, _, rest = out.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200"), out[:500]
        results[method] = read_chunked(rest)
    body, trailers = results["Unary"]
    assert body == b"\x00" + struct.pack(">I", 10) + b"hello grpc"
    assert trailers.get("grpc-status") == "0" and trailers.get("x-backend-trailer") == "g"
    body, trailers = results["Fail"]
    assert trailers.get("grpc-status") == "3", trailers


# --------------------------------------------------------------------------- multiplexing

def concurrent(port, paths, timeout=CURL_TIMEOUT):
    """Runs one curl per path at once; returns [(rc, status, headers, body)]."""
    out = [None] * len(paths)

    def one(i, p):
        out[i] = curl(port, p, timeout=timeout)

    ts = [threading.Thread(target=one, args=(i, p)) for i, p in enumerate(paths)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(timeout + 10)
    return out


@BOTH
def test_concurrent_requests_share_few_connections(strata, h2_origin, tls):
    o = h2_origin(name="a", tls=tls)
    s, port = start(strata, o, tls)
    res = concurrent(port, [f"/echo?delay=300&i={i}" for i in range(20)])
    assert all(r[0] == 0 and r[1] == 200 for r in res), (res, s.log()[-3000:])
    assert o.connections <= 2, o.connections
    assert o.max_concurrent >= 10, o.max_concurrent
    assert not o.protocol_errors
    # later requests reuse the same connection
    before = o.connections
    for _ in range(5):
        assert curl(port, "/echo")[1] == 200
    assert o.connections == before


@BOTH
def test_settings_max_concurrent_streams_honoured(strata, h2_origin, tls):
    o = h2_origin(name="a", tls=tls, max_concurrent_streams=2)
    s, port = start(strata, o, tls)
    assert curl(port, "/echo")[1] == 200  # the server's SETTINGS are known from here on
    res = concurrent(port, [f"/echo?delay=400&i={i}" for i in range(8)])
    assert all(r[0] == 0 and r[1] == 200 for r in res), (res, s.log()[-3000:])
    assert o.max_concurrent <= 2 and not o.protocol_errors and not o.over_limit, \
        (o.max_concurrent, o.protocol_errors, o.over_limit)
    assert o.connections >= 3, o.connections  # more connections opened, none overloaded


@BOTH
def test_backend_max_streams_cap(strata, h2_origin, tls):
    o = h2_origin(name="a", tls=tls)
    s, port = start(strata, o, tls, extra="h2: { max_streams: 3 }\n")
    assert curl(port, "/echo")[1] == 200
    res = concurrent(port, [f"/echo?delay=300&i={i}" for i in range(9)])
    assert all(r[1] == 200 for r in res), res
    assert o.max_concurrent <= 3 and o.connections >= 3, (o.max_concurrent, o.connections)


def test_small_window_still_streams(strata, h2_origin):
    """h2.window at its minimum (below HTTP/2's default, which the server may use until our
    SETTINGS reach it): a large response still streams."""
    o = h2_origin(name="a")
    s, port = start(strata, o, False, extra="h2: { window: 16k }\n")
    rc, status, h, body = curl(port, "/bytes?mib=5")
    assert rc == 0 and status == 200 and len(body) == 5 << 20


# --------------------------------------------------------------------------- retries and failures

@BOTH
def test_refused_stream_retried(strata, h2_origin, tls):
    o = h2_origin(name="a", tls=tls, refuse_streams=2)
    s, port = start(strata, o, tls)
    # a POST (without a body: one already read from the client cannot be sent again) is
    # retried too: the server did not process the stream
    rc, status, h, body = curl(port, "/echo", "-X", "POST")
    assert rc == 0 and status == 200, s.log()[-3000:]
    assert o.refused == 2
    line = access_line(s, r'status=200')
    assert "retries=2" in line, line


@BOTH
def test_goaway_streams_above_last_id_retried(strata, h2_origin, tls):
    o = h2_origin(name="a", tls=tls, goaway_after=3)
    s, port = start(strata, o, tls)
    assert curl(port, "/echo")[1] == 200
    res = concurrent(port, [f"/echo?delay=200&i={i}" for i in range(5)])
    assert all(r[0] == 0 and r[1] == 200 for r in res), (res, s.log()[-3000:])
    assert o.goaways_sent >= 1 and o.connections >= 2
    # every connection that sent GOAWAY is left alone: new requests keep working
    for _ in range(4):
        assert curl(port, "/echo")[1] == 200


@BOTH
def test_goaway_on_idle_connection(strata, h2_origin, tls):
    o = h2_origin(name="a", tls=tls)
    s, port = start(strata, o, tls)
    assert curl(port, "/echo")[1] == 200
    o.goaway_all()
    wait_for(lambda: o.goaways_sent >= 1, 5, what="GOAWAY sent")
    time.sleep(0.3)
    assert curl(port, "/echo")[1] == 200
    assert o.connections == 2


@BOTH
def test_reset_before_response_retried_then_502(strata, h2_origin, tls):
    o = h2_origin(name="a", tls=tls)
    s, port = start(strata, o, tls)
    rc, status, h, body = curl(port, "/reset")
    # the one server is left out of the retry: nothing else to try
    assert status in (502, 503), (status, body)
    line = access_line(s, r'path="/reset"')
    assert 'end="server_reset"' in line, line
    assert curl(port, "/echo")[1] == 200  # the connection still serves others


@BOTH
def test_server_cuts_response(strata, h2_origin, tls):
    o = h2_origin(name="a", tls=tls)
    s, port = start(strata, o, tls)
    rc, status, h, body = curl(port, "/reset?after=response")
    assert rc != 0, "the client must see the response cut"
    line = access_line(s, r'path="/reset"')
    assert 'end="server_abort"' in line, line
    assert curl(port, "/echo")[1] == 200


class RawH2Server:
    """A python3-h2 server on loopback, one connection at a time, whose answer to each
    request is `on_request(conn_index, h2conn, stream_id)`; it returns True to close the
    connection (after a short pause, so what was sent reaches Strata first)."""

    def __init__(self, on_request):
        self.on_request = on_request
        self.lsock = socket.socket()
        self.lsock.bind((LOOPBACK, 0))
        self.lsock.listen(8)
        self.address = f"{LOOPBACK}:{self.lsock.getsockname()[1]}"
        self.connections = 0
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        import h2.config
        import h2.connection
        import h2.events
        while True:
            try:
                c, _ = self.lsock.accept()
            except OSError:
                return
            self.connections += 1
            c.settimeout(10)
            conn = h2.connection.H2Connection(h2.config.H2Configuration(
                client_side=False, validate_outbound_headers=False,
                normalize_outbound_headers=False))
            conn.initiate_connection()
            close = False
            try:
                c.sendall(conn.data_to_send())
                while not close:
                    data = c.recv(65536)
                    if not data:
                        break
                    for ev in conn.receive_data(data):
                        if isinstance(ev, h2.events.RequestReceived):
                            close = self.on_request(self.connections, conn, ev.stream_id) or close
                    c.sendall(conn.data_to_send())
                if close:
                    time.sleep(0.3)
            except Exception:  # noqa: BLE001 - a test server: the client sees the close
                pass
            c.close()

    def close(self):
        self.lsock.close()


def raw_strata(strata, server):
    port = free_port()
    cfg = http_config(port, {"raw": {"servers": [server.address],
                                     "extra": "protocol: h2c\n"}}, workers=1)
    return strata(cfg, listen_ports=[port]), port


def test_server_dies_mid_response(strata):
    """The head and part of the body, then the connection closes: the client sees a cut;
    the next request gets a new connection."""
    def answer(n, conn, sid):
        conn.send_headers(sid, [(":status", "200"), ("content-length", "99000")])
        for i in range(1 if n == 1 else 9):
            conn.send_data(sid, b"x" * 11000, end_stream=i == 8)
        return n == 1  # the first connection dies here

    srv = RawH2Server(answer)
    try:
        s, port = raw_strata(strata, srv)
        rc, status, h, body = curl(port, "/x")
        assert rc != 0 and status == 200 and len(body) < 99000, (rc, status, len(body))
        line = access_line(s, r'path="/x"')
        assert 'end="server_abort"' in line, line
        rc, status, h, body = curl(port, "/y")
        assert rc == 0 and status == 200 and len(body) == 99000
        assert srv.connections == 2
    finally:
        srv.close()


@pytest.mark.parametrize("head", [
    [(":status", "2x0")],
    [("x-no-status", "1")],
    [(":status", "200"), ("Upper-Case", "1")],
    [(":status", "200"), ("connection", "close")],
    [(":status", "200"), (":path", "/")],
    [(":status", "200"), ("content-length", "5")],
], ids=["bad-status", "no-status", "uppercase", "connection", "request-pseudo", "length"])
def test_malformed_response_head_answers_502(strata, head):
    def answer(n, conn, sid):
        conn.send_headers(sid, head, end_stream=True)

    srv = RawH2Server(answer)
    try:
        s, port = raw_strata(strata, srv)
        rc, status, h, body = curl(port, "/m")
        assert status == 502, (status, body)
        line = access_line(s, r'path="/m"')
        assert 'end="bad_response"' in line, line
    finally:
        srv.close()


def test_h2c_to_an_http1_server_fails_cleanly(strata):
    """protocol h2c to a server that answers the preface in HTTP/1.1 and closes: 502 (503
    once the one server is left out), and Strata goes on."""
    lsock = socket.socket()
    lsock.bind((LOOPBACK, 0))
    lsock.listen(8)

    def serve():
        while True:
            try:
                c, _ = lsock.accept()
            except OSError:
                return
            try:
                c.settimeout(5)
                c.recv(1000)
                c.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n"
                          b"Connection: close\r\n\r\n")
            except OSError:
                pass
            c.close()

    threading.Thread(target=serve, daemon=True).start()
    try:
        port = free_port()
        cfg = http_config(port, {"h1": {"servers": [f"{LOOPBACK}:{lsock.getsockname()[1]}"],
                                        "extra": "protocol: h2c\n"}}, workers=1)
        s = strata(cfg, listen_ports=[port])
        for _ in range(2):
            rc, status, h, body = curl(port, "/x")
            assert status in (502, 503), (status, body)
        assert s.alive()
    finally:
        lsock.close()


@BOTH
def test_response_timeout_resets_the_stream_only(strata, h2_origin, tls):
    """A server that does not answer in time: 504 for that request, its stream reset at
    the server, and the requests beside it on the same connection answered."""
    o = h2_origin(name="a", tls=tls)
    s, port = start(strata, o, tls, http_extra="response_timeout: 700ms")
    assert curl(port, "/echo")[1] == 200
    res = concurrent(port, ["/echo?delay=3000"] + [f"/echo?delay=100&i={i}" for i in range(4)])
    assert res[0][1] == 504 and all(r[1] == 200 for r in res[1:]), res
    wait_for(lambda: o.resets_received >= 1, 5, what="the reset reaching the origin")
    assert o.connections == 1
    line = access_line(s, r'delay=3000')
    assert 'end="server_timeout"' in line, line


def test_connect_refused_answers_502(strata):
    port, dead = free_port(), free_port()
    cfg = http_config(port, {"h2": {"servers": [f"{LOOPBACK}:{dead}"],
                                    "extra": "protocol: h2c\n"}}, workers=1)
    s = strata(cfg, listen_ports=[port])
    res = concurrent(port, ["/a", "/b", "/c"])
    assert all(r[1] == 502 for r in res), res


# --------------------------------------------------------------------------- back-pressure

def test_slow_reader_bounded_memory(strata, h2_origin):
    """A 200 MiB response to a client that reads slowly: flow control holds the server
    back, Strata's memory stays within a few MiB of where it started."""
    o = h2_origin(name="a")
    s, port = start(strata, o, False, extra="h2: { window: 256k }\n")
    assert curl(port, "/echo")[1] == 200
    base = rss_kib(s.pid)
    total = 200 << 20
    sock = socket.create_connection((LOOPBACK, port), timeout=30)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 << 10)
    sock.sendall(f"GET /bytes?n={total} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
                 .encode())
    got, peak = 0, base
    slow_until = time.monotonic() + 3.0
    deadline = time.monotonic() + 120
    try:
        while time.monotonic() < deadline:
            if time.monotonic() < slow_until:
                time.sleep(0.05)  # trickle: 64 KiB every 50 ms
                chunk = sock.recv(64 << 10)
            else:
                chunk = sock.recv(1 << 20)
            if not chunk:
                break
            got += len(chunk)
            peak = max(peak, rss_kib(s.pid))
    finally:
        sock.close()
    assert got > total, (got, total)  # the head, then all of the body
    print(f"slow reader: {got >> 20} MiB relayed, RSS {base >> 10} MiB before, "
          f"peak {peak >> 10} MiB")
    assert peak - base < 24 << 10, f"RSS grew by {(peak - base) >> 10} MiB"


# --------------------------------------------------------------------------- configuration

def test_check_protocol_combinations(strata_bin, tmp_path):
    cfg = tmp_path / "bad.yaml"
    cfg.write_text(f"""listeners:
  - {{ name: web, listen: "{LOOPBACK}:1", mode: http, backend: a }}
backends:
  a:
    protocol: h2
    servers: [ "{LOOPBACK}:2" ]
  b:
    protocol: h2c
    tls: true
    servers: [ "{LOOPBACK}:2" ]
  c:
    protocol: h2
    tls: {{ alpn: [http/1.1] }}
    servers: [ "{LOOPBACK}:2" ]
  d:
    protocol: h2c
    health_check: {{ type: http }}
    servers: [ "{LOOPBACK}:2" ]
  e:
    h2: {{ max_streams: 10 }}
    servers: [ "{LOOPBACK}:2" ]
  f:
    protocol: http2
    servers: [ "{LOOPBACK}:2" ]
""")
    r = run_strata(strata_bin, "check", str(cfg))
    assert r.returncode != 0
    err = r.stderr
    assert "bad.yaml:5:15: error: backends.a.protocol: `h2` is HTTP/2 over TLS and needs `tls`" \
        in err, err
    assert "bad.yaml:8:15: error: backends.b.protocol: `h2c` is cleartext" in err, err
    assert "bad.yaml:13:18: error: backends.c.tls.alpn: `protocol: h2` needs `h2`" in err, err
    assert "backends.d.protocol: health_check type http" in err, err
    assert "backends.e.h2: applies to `protocol: h2` or `h2c` only" in err, err
    assert 'backends.f.protocol: unknown value "http2"' in err, err
    good = tmp_path / "good.yaml"
    good.write_text(f"""listeners:
  - {{ name: web, listen: "{LOOPBACK}:1", mode: http, backend: a }}
backends:
  a:
    protocol: h2
    tls: true
    h2: {{ max_streams: 50, window: 1m }}
    servers: [ "{LOOPBACK}:2" ]
  b:
    protocol: h2c
    health_check: {{ type: tcp }}
    servers: [ "{LOOPBACK}:2" ]
""")
    r = run_strata(strata_bin, "check", str(good))
    assert r.returncode == 0, r.stderr


def test_h2_server_without_alpn_h2_fails_the_connect(strata, h2_cert):
    """protocol h2 to a TLS server that does not agree to h2 by ALPN: a connect failure."""
    import ssl
    lsock = socket.socket()
    lsock.bind((LOOPBACK, 0))
    lsock.listen(8)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(*h2_cert)
    ctx.set_alpn_protocols(["http/1.1"])

    def serve():
        while True:
            try:
                c, _ = lsock.accept()
            except OSError:
                return
            try:
                c.settimeout(5)
                t = ctx.wrap_socket(c, server_side=True)
                t.recv(100)
                t.close()
            except (OSError, ssl.SSLError):
                c.close()

    threading.Thread(target=serve, daemon=True).start()
    try:
        port = free_port()
        cfg = http_config(port, {"h2": {"servers": [f"{LOOPBACK}:{lsock.getsockname()[1]}"],
                                        "extra": f"protocol: h2\ntls: {{ ca: {h2_cert[0]} }}\n"}},
                          workers=1)
        s = strata(cfg, listen_ports=[port])
        rc, status, h, body = curl(port, "/x")
        assert status == 502 and b"ALPN" in body, (status, body)
    finally:
        lsock.close()


# --------------------------------------------------------------------------- h2 clients

@pytest.fixture
def h2_front(strata):
    """Factory: a Strata listener that also speaks h2c to clients, in front of `origin`
    (h2c or h2)."""
    def start_front(origin, tls):
        return start(strata, origin, tls, http_extra="h2: { cleartext: true }")

    return start_front


@BOTH
def test_h2_client_to_h2_server(h2_front, h2_origin, tls, tmp_path):
    """curl --http2-prior-knowledge through Strata to an HTTP/2 origin: a GET, a large
    upload echoed back, response trailers."""
    o = h2_origin(name="a", tls=tls)
    s, port = h2_front(o, tls)
    base = ["curl", "-sS", "--http2-prior-knowledge", "--max-time", str(CURL_TIMEOUT)]
    r = subprocess.run(base + ["-D", "-", f"http://{LOOPBACK}:{port}/echo?x=1"],
                       capture_output=True, timeout=CURL_TIMEOUT + 5)
    assert r.returncode == 0 and r.stdout.startswith(b"HTTP/2 200"), r.stdout[:300]
    data = os.urandom(4 << 20)
    (tmp_path / "up.bin").write_bytes(data)
    r = subprocess.run(base + ["--data-binary", f"@{tmp_path / 'up.bin'}", "-o",
                               str(tmp_path / "down.bin"), f"http://{LOOPBACK}:{port}/echo"],
                       capture_output=True, timeout=CURL_TIMEOUT + 5)
    assert r.returncode == 0 and (tmp_path / "down.bin").read_bytes() == data
    r = subprocess.run(base + ["-v", "-H", "te: trailers", "-o", "/dev/null",
                               f"http://{LOOPBACK}:{port}/bytes?n=1000&cl=0"],
                       capture_output=True, timeout=CURL_TIMEOUT + 5)
    assert r.returncode == 0 and b"x-trailer-backend: a" in r.stderr


def test_h2_client_streams_multiplexed_both_sides(h2_front, h2_origin):
    """Twenty streams on one client connection through Strata to an origin that takes four
    at a time: all answered, the origin never sees more than four on a connection; a
    stream the client resets is reset at the origin, the others go on."""
    from h2_backend import H2Client
    o = h2_origin(name="a", max_concurrent_streams=4)
    s, port = h2_front(o, False)
    c = H2Client(port, timeout=20)
    try:
        assert c.request("GET", "/echo").status == 200
        sids = [c.start("GET", f"/echo?delay=200&i={i}") for i in range(20)]
        assert {r.status for r in c.wait(sids).values()} == {200}
        assert o.max_concurrent <= 4 and not o.over_limit and not o.protocol_errors
        sid = c.start("GET", "/bytes?mib=50")
        time.sleep(0.2)
        c.reset(sid)
        assert c.request("GET", "/echo").status == 200
        wait_for(lambda: o.resets_received >= 1, 5, what="the reset reaching the origin")
    finally:
        c.close()


def test_grpc_end_to_end_all_call_shapes(strata, grpc_origin):
    """grpcio through Strata (h2c both sides): the four call shapes, messages streamed,
    metadata and trailers (grpc-status, details, custom trailing metadata) passed on."""
    import grpc
    from grpc_backend import GrpcClient
    o = grpc_origin(name="g")
    port = free_port()
    cfg = http_config(port, {"g": {"servers": [o.address], "extra": "protocol: h2c\n"}},
                      workers=1, http_extra="h2: { cleartext: true }")
    strata(cfg, listen_ports=[port])
    c = GrpcClient(f"{LOOPBACK}:{port}")
    r = c.unary(b"hi there", metadata=[("x-k", "v")])
    assert r.ok and r.response == b"hi there", r
    assert r.initial.get("x-backend") == "g" and r.trailing.get("x-backend-trailer") == "g"
    r = c.server_stream(b"s", count=5, interval_ms=20)
    assert r.ok and r.responses == [f"{i}:".encode() + b"s" for i in range(5)], r
    r = c.client_stream([b"a", b"b", b"c"])
    assert r.ok and r.response == b"abc", r
    r = c.bidi([b"1", b"2", b"3"])
    assert r.ok and r.responses == [b"echo:1", b"echo:2", b"echo:3"], r
    r = c.fail(code=5, details="nothing here")
    assert r.code == grpc.StatusCode.NOT_FOUND and r.details == "nothing here", r
    assert r.trailing.get("x-fail-reason") == "test"
