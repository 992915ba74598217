"""mode: http with HTTP/2 clients (listeners[].http.h2): h2c with prior knowledge beside
HTTP/1 on one listener, h2 by ALPN over TLS, Strata's own answers, request bodies and
limits, malformed heads, drain, access log. The attacks are in test_h2_attacks.py; both
use the clients here: a well-behaved one (python3-h2, curl) and a raw one that writes
frames exactly as a test says (hyperframe + hpack)."""
import os
import shutil
import signal
import socket
import ssl
import subprocess
import time

import h2.config
import h2.connection
import h2.events
import h2.settings
import hpack
import hyperframe.frame as hf
import pytest

from conftest import LOOPBACK, free_port, recv_until_eof, wait_for
from http_backend import http_config

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
ERR = {0: "NO_ERROR", 1: "PROTOCOL_ERROR", 2: "INTERNAL_ERROR", 3: "FLOW_CONTROL_ERROR",
       7: "REFUSED_STREAM", 8: "CANCEL", 11: "ENHANCE_YOUR_CALM", 6: "FRAME_SIZE_ERROR",
       5: "STREAM_CLOSED", 9: "COMPRESSION_ERROR"}


def h2_request(port, path="/", method="GET", headers=(), body=None, tls_ctx=None,
               sni="site.test", authority=None, timeout=10.0, read_trailers=False):
    """One request on a new HTTP/2 connection (h2c prior knowledge, or TLS with tls_ctx).
    Returns (status, headers dict, body bytes[, trailers dict])."""
    raw = socket.create_connection((LOOPBACK, port), timeout=timeout)
    sock = tls_ctx.wrap_socket(raw, server_hostname=sni) if tls_ctx else raw
    try:
        conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
        conn.initiate_connection()
        conn.update_settings({h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: 1 << 20})
        conn.increment_flow_control_window(1 << 24)
        sid = conn.get_next_available_stream_id()
        hdrs = [(":method", method), (":scheme", "https" if tls_ctx else "http"),
                (":authority", authority or f"{LOOPBACK}:{port}"), (":path", path)]
        hdrs += list(headers)
        conn.send_headers(sid, hdrs, end_stream=body is None)
        sock.sendall(conn.data_to_send())
        events = _send_body(sock, conn, sid, body) if body is not None else []
        status, rh, data, trailers = None, {}, b"", {}
        deadline = time.monotonic() + timeout
        done = False
        while not done and time.monotonic() < deadline:
            if not events:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                events = conn.receive_data(chunk)
            for ev in events:
                if isinstance(ev, h2.events.ResponseReceived) and ev.stream_id == sid:
                    rh = {k.decode(): v.decode() for k, v in ev.headers}
                    status = int(rh[":status"])
                elif isinstance(ev, h2.events.DataReceived) and ev.stream_id == sid:
                    data += ev.data
                    conn.acknowledge_received_data(ev.flow_controlled_length, sid)
                elif isinstance(ev, h2.events.TrailersReceived) and ev.stream_id == sid:
                    trailers = {k.decode(): v.decode() for k, v in ev.headers}
                elif isinstance(ev, (h2.events.StreamEnded, h2.events.StreamReset)) \
                        and ev.stream_id == sid:
                    done = True
                    if isinstance(ev, h2.events.StreamReset) and status is None:
                        status = -ev.error_code
            events = []
            sock.sendall(conn.data_to_send())
        return (status, rh, data, trailers) if read_trailers else (status, rh, data)
    finally:
        sock.close()


def _send_body(sock, conn, sid, body):
    """Sends body as the windows allow; returns the events read meanwhile (the server may
    answer, and end the stream, before the body is all sent)."""
    events, off = [], 0
    while off < len(body) or not body:
        if any(isinstance(e, (h2.events.StreamEnded, h2.events.StreamReset)) and
               e.stream_id == sid for e in events):
            return events
        room = min(conn.local_flow_control_window(sid), conn.max_outbound_frame_size)
        if room <= 0:
            chunk = sock.recv(65536)
            if not chunk:
                return events
            events += conn.receive_data(chunk)
            sock.sendall(conn.data_to_send())
            continue
        piece = body[off:off + room]
        off += len(piece)
        conn.send_data(sid, piece, end_stream=off >= len(body))
        sock.sendall(conn.data_to_send())
        if not body:
            break
    return events


class Raw:
    """A client connection that sends frames as given and reads what comes back."""

    def __init__(self, port, settings=None, timeout=10.0, preface=True):
        self.sock = socket.create_connection((LOOPBACK, port), timeout=timeout)
        self.enc = hpack.Encoder()
        self.buf = b""
        self.frames_in = []
        if preface:
            self.sock.sendall(PREFACE + hf.SettingsFrame(0, settings or {}).serialize())

    def close(self):
        self.sock.close()

    def send(self, *frames):
        data = b"".join(f if isinstance(f, bytes) else f.serialize() for f in frames)
        try:
            self.sock.sendall(data)
            return True
        except OSError:
            return False

    def block(self, hdrs):
        return self.enc.encode(hdrs)

    def headers(self, sid, path="/hello", end_stream=True, extra=(), method="GET"):
        f = hf.HeadersFrame(sid, self.block([(":method", method), (":scheme", "http"),
                                             (":authority", "x"), (":path", path)] +
                                            list(extra)))
        f.flags.add("END_HEADERS")
        if end_stream:
            f.flags.add("END_STREAM")
        return f

    def read(self, until=None, timeout=5.0):
        """Reads frames until until(frame) is true, EOF or timeout; returns those read."""
        got = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            while len(self.buf) >= 9:
                f, length = hf.Frame.parse_frame_header(memoryview(self.buf[:9]))
                if len(self.buf) < 9 + length:
                    break
                f.parse_body(memoryview(self.buf[9:9 + length]))
                self.buf = self.buf[9 + length:]
                got.append(f)
                self.frames_in.append(f)
                if until and until(f):
                    return got
            self.sock.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                chunk = self.sock.recv(65536)
            except socket.timeout:
                break
            except OSError:
                break
            if not chunk:
                self.eof = True
                break
            self.buf += chunk
        return got

    def goaway(self, timeout=5.0):
        """The GOAWAY frame the server sends (read until it or EOF), or None."""
        for f in self.read(lambda f: isinstance(f, hf.GoAwayFrame), timeout):
            if isinstance(f, hf.GoAwayFrame):
                return f
        return None


def proc_stats(pid):
    """(resident KiB, CPU seconds used) of a process."""
    rss = 0
    with open(f"/proc/{pid}/status") as f:
        for ln in f:
            if ln.startswith("VmRSS:"):
                rss = int(ln.split()[1])
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return rss, (int(fields[11]) + int(fields[12])) / ticks


# --------------------------------------------------------------------------- configs

ROUTES = """\
- { match: { path: /hello }, respond: { status: 200, body: "hi there\\n" } }
- { match: { path: /old }, redirect: { location: /new, status: 301 } }
- { match: { path_prefix: /app }, backend: app }
"""


def h2_config(port, admin_port=None, h2="cleartext: true", routes=ROUTES, http_extra="",
              backends=None, **kw):
    backends = backends or {"app": {"servers": ["127.0.0.1:1"]}}
    return http_config(port, backends, routes=routes, admin_port=admin_port,
                       http_extra=f"h2: {{ {h2} }}\n" + http_extra, **kw)


@pytest.fixture
def h2c(strata):
    """Factory: a Strata with one h2c-enabled listener (s.port) and an admin port (s.admin)."""
    def start(h2="cleartext: true", routes=ROUTES, http_extra="", **kw):
        port, admin = two_ports()
        s = strata(h2_config(port, admin, h2, routes, http_extra, **kw), listen_ports=[port],
                   admin_port=admin)
        s.port, s.admin = port, admin
        return s
    return start


def two_ports():
    """Two distinct free ports (the listener's and the admin's)."""
    port = free_port()
    for _ in range(100):
        admin = free_port()
        if admin != port:
            return port, admin
    raise AssertionError("no second free port")


def limit_hits(s, limit):
    v = s.metrics(s.admin).get("strata_listener_h2_limit_hits_total", listener="web",
                               limit=limit)
    return v or 0


def access_lines(s, n):
    def lines():
        out = [ln for ln in s.stdout().splitlines() if " method=" in ln]
        return out if len(out) >= n else None
    return wait_for(lines, 5, what=f"{n} access log lines")


# --------------------------------------------------------------------------- scenarios

def test_h2c_and_http1_share_a_listener(h2c):
    s = h2c()
    status, hdrs, body = h2_request(s.port, "/hello")
    assert (status, body) == (200, b"hi there\n")
    assert hdrs["content-length"] == "9" and hdrs["content-type"].startswith("text/plain")
    status, hdrs, _ = h2_request(s.port, "/old")
    assert status == 301 and hdrs["location"] == "/new"
    assert h2_request(s.port, "/nothing/here")[0] == 404
    status, hdrs, body = h2_request(s.port, "/hello", method="HEAD")
    assert (status, body, hdrs.get("content-length")) == (200, b"", "9")
    # an HTTP/1 client on the same listener
    c = socket.create_connection((LOOPBACK, s.port), timeout=5)
    c.sendall(b"GET /hello HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    data = recv_until_eof(c)
    c.close()
    assert data.startswith(b"HTTP/1.1 200") and data.endswith(b"hi there\n")
    if shutil.which("curl"):
        r = subprocess.run(["curl", "-s", "--http2-prior-knowledge", "-w", " %{http_version}",
                            f"http://{LOOPBACK}:{s.port}/hello"], capture_output=True,
                           timeout=20)
        assert r.stdout == b"hi there\n 2"
    lines = access_lines(s, 5)
    assert sum('version="2"' in ln for ln in lines) >= 4
    assert any('version="1.1"' in ln and 'path="/hello"' in ln for ln in lines), lines
    m = s.metrics(s.admin)
    assert m.get("strata_listener_h2_connections_total", listener="web") >= 4


def test_h2_preface_without_h2_is_an_http1_error(strata):
    port = free_port()
    strata(http_config(port, {"app": {"servers": ["127.0.0.1:1"]}}), listen_ports=[port])
    raw = Raw(port)
    data = raw.sock.recv(4096)
    raw.close()
    assert data.startswith(b"HTTP/1.1 4") or data.startswith(b"HTTP/1.1 5"), data


def test_h2_answers_and_request_bodies(h2c):
    s = h2c(http_extra="max_request_body: 1k")
    # a body longer than the stream window, answered by Strata: taken and dropped
    status, _, body = h2_request(s.port, "/hello", method="POST", body=b"x" * 300000)
    assert (status, body) == (200, b"hi there\n")
    status, _, body = h2_request(s.port, "/app/upload", method="POST", body=b"x" * 5000,
                                 headers=[("content-length", "5000")])
    assert status == 413 and b"max_request_body" in body
    assert h2_request(s.port, "/app/x", method="CONNECT")[0] in (-1, 501)  # h2 refuses a
    # CONNECT with :path (malformed, reset) or Strata answers 501


def test_h2_malformed_heads_are_reset_and_the_connection_goes_on(h2c):
    s = h2c()
    raw = Raw(s.port)
    bad = [[("x-Upper", "1")], [("connection", "close")], [("te", "gzip")],
           [("x-sp", " lead")]]
    sid = 1
    for extra in bad:
        raw.send(raw.headers(sid, extra=extra))
        sid += 2
    raw.send(raw.headers(sid))  # a good one
    frames = raw.read(lambda f: f.stream_id == sid and "END_STREAM" in f.flags, timeout=5)
    resets = {f.stream_id: ERR.get(f.error_code) for f in frames
              if isinstance(f, hf.RstStreamFrame)}
    assert resets == {1: "PROTOCOL_ERROR", 3: "PROTOCOL_ERROR", 5: "PROTOCOL_ERROR",
                      7: "PROTOCOL_ERROR"}, frames
    assert any(isinstance(f, hf.DataFrame) and f.stream_id == sid and f.data == b"hi there\n"
               for f in frames)
    raw.close()


def test_h2_too_many_fields_is_431(h2c):
    s = h2c()
    hdrs = [(f"x-f{i}", "v") for i in range(150)]
    status, _, body = h2_request(s.port, "/hello", headers=hdrs)
    assert status == 431
    assert limit_hits(s, "max_header_size") >= 1


def test_h2_over_tls_by_alpn(strata, pki):
    port = free_port()
    cfg = h2_config(port, h2="enabled: true",
                    listener_extra=tls_block(pki))
    strata(cfg, listen_ports=[port])
    status, _, body = h2_request(port, "/hello", tls_ctx=h2_tls_ctx(pki, ("h2", "http/1.1")))
    assert (status, body) == (200, b"hi there\n")
    # an HTTP/1.1 client on the same listener
    raw = socket.create_connection((LOOPBACK, port), timeout=5)
    with h2_tls_ctx(pki, ("http/1.1",)).wrap_socket(raw, server_hostname="site.test") as t:
        assert t.selected_alpn_protocol() == "http/1.1"
        t.sendall(b"GET /hello HTTP/1.1\r\nHost: site.test\r\nConnection: close\r\n\r\n")
        data = recv_until_eof(t)
    assert data.startswith(b"HTTP/1.1 200")


def test_h2_not_offered_over_tls_unless_enabled(strata, pki):
    port = free_port()
    strata(h2_config(port, h2="enabled: false", listener_extra=tls_block(pki)),
           listen_ports=[port])
    raw = socket.create_connection((LOOPBACK, port), timeout=5)
    with h2_tls_ctx(pki, ("h2", "http/1.1")).wrap_socket(raw, server_hostname="site.test") as t:
        assert t.selected_alpn_protocol() == "http/1.1"


def test_h2_drain_sends_goaway_with_the_last_stream(h2c):
    s = h2c(http_extra="")
    # a stream the client's closed window holds open
    raw = Raw(s.port, settings={hf.SettingsFrame.INITIAL_WINDOW_SIZE: 0})
    raw.send(raw.headers(1), raw.headers(3))
    raw.read(lambda f: isinstance(f, hf.HeadersFrame) and f.stream_id == 3, timeout=5)
    idle = Raw(s.port)
    idle.read(lambda f: isinstance(f, hf.SettingsFrame) and "ACK" in f.flags, timeout=5)
    s.send_signal(signal.SIGTERM)
    g = raw.goaway(5)
    assert g is not None and g.last_stream_id == 3 and ERR[g.error_code] == "NO_ERROR"
    g = idle.goaway(5)
    assert g is not None and g.last_stream_id == 0
    # the held stream still gets its body once the client opens its window
    raw.send(hf.WindowUpdateFrame(1, 100), hf.WindowUpdateFrame(3, 100),
             hf.WindowUpdateFrame(0, 1000))
    frames = raw.read(lambda f: isinstance(f, hf.DataFrame) and f.stream_id == 3 and
                      "END_STREAM" in f.flags, timeout=5)
    assert any(isinstance(f, hf.DataFrame) and f.stream_id == 3 for f in frames)
    wait_for(lambda: not s.alive(), 10, what="strata exits after the drain")
    raw.close()
    idle.close()


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    from test_tls import pki as tls_pki
    return tls_pki.__wrapped__(tmp_path_factory)


def tls_block(pki):
    from test_tls import tls_block as block
    return block(pki)


def h2_tls_ctx(pki, alpn):
    ctx = ssl.create_default_context(cafile=str(pki / "ca.pem"))
    ctx.set_alpn_protocols(list(alpn))
    return ctx


# --------------------------------------------------------------------------- to HTTP/1 servers

@pytest.fixture
def h2o(strata, origin):
    """Factory: Strata (h2c) in front of one HTTP/1 origin (s.origin) for /app."""
    def start(respond=None, h2="cleartext: true", http_extra=""):
        o = origin("a", respond)
        port, admin = two_ports()
        s = strata(h2_config(port, admin, h2, http_extra=http_extra,
                             backends={"app": {"servers": [o.address]}}),
                   listen_ports=[port], admin_port=admin)
        s.port, s.admin, s.origin = port, admin, o
        return s
    return start


def test_h2_client_to_http1_server(h2o):
    s = h2o()
    status, hdrs, body = h2_request(s.port, "/app/x?q=1", headers=[("x-test", "1")])
    assert (status, body) == (200, b"GET /app/x?q=1\n")
    assert hdrs["x-backend"] == "a" and "connection" not in hdrs
    req = s.origin.requests[-1]
    assert req.version == "HTTP/1.1" and req.header("host") == f"{LOOPBACK}:{s.port}"
    assert req.header("x-test") == "1" and req.header("x-forwarded-proto") == "http"
    # bodies, with a length and without one (chunked to the server), larger than a window
    payload = os.urandom(300000)
    status, _, _ = h2_request(s.port, "/app/up", method="POST", body=payload,
                              headers=[("content-length", str(len(payload)))])
    assert status == 200 and s.origin.requests[-1].body == payload
    status, _, _ = h2_request(s.port, "/app/up", method="POST", body=payload)
    req = s.origin.requests[-1]
    assert status == 200 and req.body == payload
    assert "chunked" in req.header("transfer-encoding", "")
    lines = access_lines(s, 3)
    assert all('version="2"' in ln and 'end="ok"' in ln for ln in lines), lines


def test_h2_large_response_streamed(h2o):
    big = os.urandom(5 << 20)
    s = h2o(respond=lambda req: (200, {"content-type": "application/octet-stream"}, big))
    status, hdrs, body = h2_request(s.port, "/app/big", timeout=30)
    assert status == 200 and body == big and hdrs["content-length"] == str(len(big))


def test_h2_fast_reader_window_updates_are_not_a_flood(h2o):
    """A client with 64 KiB windows answers each DATA frame with WINDOW_UPDATEs: thousands a
    second on a fast download. Only updates beyond what Strata's DATA earned count against
    max_window_updates_per_second (100 here), so the download completes."""
    big = b"w" * (16 << 20)
    s = h2o(respond=lambda req: (200, {"content-type": "application/octet-stream"}, big),
            h2="cleartext: true, max_window_updates_per_second: 100")
    # python3-h2 with its default 64 KiB windows, acknowledging every DATA frame
    conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
    conn.initiate_connection()
    sock = socket.create_connection((LOOPBACK, s.port), timeout=10)
    sock.sendall(conn.data_to_send())
    sid = conn.get_next_available_stream_id()
    conn.send_headers(sid, [(":method", "GET"), (":scheme", "http"), (":path", "/app/big"),
                            (":authority", "x")], end_stream=True)
    sock.sendall(conn.data_to_send())
    got, ended, deadline = 0, False, time.monotonic() + 60
    while not ended and time.monotonic() < deadline:
        data = sock.recv(1 << 16)
        if not data:
            break
        for ev in conn.receive_data(data):
            if isinstance(ev, h2.events.DataReceived):
                got += len(ev.data)
                conn.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
            ended |= isinstance(ev, (h2.events.StreamEnded, h2.events.ConnectionTerminated))
        sock.sendall(conn.data_to_send())
    sock.close()
    assert got == len(big)
    m = s.metrics(s.admin)
    assert not m.get("strata_listener_h2_limit_hits_total", listener="web",
                     limit="max_window_updates_per_second"), "a fast reader was taken for a flood"


def test_h2_head_204_304(h2o):
    def respond(req):
        if req.path.endswith("/204"):
            return b"HTTP/1.1 204 No Content\r\nx-a: 1\r\n\r\n"
        if req.path.endswith("/304"):
            return b"HTTP/1.1 304 Not Modified\r\netag: \"e\"\r\ncontent-length: 42\r\n\r\n"
        return 200, {}, b"0123456789"
    s = h2o(respond=respond)
    status, hdrs, body = h2_request(s.port, "/app/x", method="HEAD")
    assert (status, body, hdrs.get("content-length")) == (200, b"", "10")
    status, hdrs, body = h2_request(s.port, "/app/204")
    assert (status, body, hdrs.get("x-a")) == (204, b"", "1")
    status, hdrs, body = h2_request(s.port, "/app/304")
    assert (status, body, hdrs.get("etag")) == (304, b"", '"e"')
    assert h2_request(s.port, "/app/x")[2] == b"0123456789"  # the connection still good


def test_h2_response_trailers_from_a_chunked_http1_server(h2o):
    raw = (b"HTTP/1.1 200 OK\r\ncontent-type: application/grpc\r\n"
           b"transfer-encoding: chunked\r\n\r\n"
           b"5\r\nhello\r\n0\r\ngrpc-status: 0\r\ngrpc-message: fine\r\n\r\n")
    s = h2o(respond=lambda req: raw)
    status, hdrs, body, trailers = h2_request(s.port, "/app/t", headers=[("te", "trailers")],
                                              read_trailers=True)
    assert (status, body) == (200, b"hello")
    assert trailers == {"grpc-status": "0", "grpc-message": "fine"}


def test_h2_request_trailers_to_http1_server(strata, backends):
    """A request body with trailers (unknown length): chunked to the server, trailers in
    its last chunk."""
    seen = []

    def handler(c):
        data = b""
        while not data.endswith(b"\r\n\r\n") or b"\r\n0\r\n" not in data:
            chunk = c.recv(65536)
            if not chunk:
                return
            data += chunk
        seen.append(data)
        c.sendall(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
    b = backends.threaded(handler)
    port = free_port()
    strata(h2_config(port, backends={"app": {"servers": [b.address]}}), listen_ports=[port])
    sock = socket.create_connection((LOOPBACK, port), timeout=10)
    conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
    conn.initiate_connection()
    conn.send_headers(1, [(":method", "POST"), (":scheme", "http"), (":authority", "x"),
                          (":path", "/app/t"), ("te", "trailers")])
    conn.send_data(1, b"abc")
    conn.send_headers(1, [("x-checksum", "900150983cd24fb0")], end_stream=True)
    sock.sendall(conn.data_to_send())
    wait_for(lambda: seen, 10, what="the request at the server")
    head, _, body = seen[0].partition(b"\r\n\r\n")
    assert b"transfer-encoding: chunked" in head.lower()
    assert body == b"3\r\nabc\r\n0\r\nx-checksum: 900150983cd24fb0\r\n\r\n", body
    sock.close()


def test_h2_expect_100_continue(h2o):
    s = h2o()
    sock = socket.create_connection((LOOPBACK, s.port), timeout=10)
    conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
    conn.initiate_connection()
    conn.send_headers(1, [(":method", "PUT"), (":scheme", "http"), (":authority", "x"),
                          (":path", "/app/c"), ("expect", "100-continue"),
                          ("content-length", "4")])
    sock.sendall(conn.data_to_send())
    informational = None
    for _ in range(50):
        for ev in conn.receive_data(sock.recv(65536)):
            if isinstance(ev, h2.events.InformationalResponseReceived):
                informational = dict(ev.headers)[b":status"]
        sock.sendall(conn.data_to_send())
        if informational:
            break
    assert informational == b"100"
    conn.send_data(1, b"data", end_stream=True)
    sock.sendall(conn.data_to_send())
    assert s.origin.wait_requests(1, 10) and s.origin.requests[-1].body == b"data"
    sock.close()


def test_h2_slow_reader_bounds_memory(h2o):
    """A client that never opens its window: the server is read no faster (back-pressure);
    Strata holds about stream_buffer for the stream, not the 20 MB the server sends."""
    big = b"x" * (20 << 20)
    s = h2o(respond=lambda req: (200, {}, big),
            h2="cleartext: true, stream_stall_timeout: 3s")
    rss0, _ = proc_stats(s.pid)
    raw = Raw(s.port, settings={hf.SettingsFrame.INITIAL_WINDOW_SIZE: 0})
    raw.send(raw.headers(1, path="/app/big"))
    raw.read(lambda f: isinstance(f, hf.HeadersFrame), timeout=5)
    time.sleep(1.0)
    rss1, _ = proc_stats(s.pid)
    assert rss1 - rss0 < 8 * 1024, (rss0, rss1)
    frames = raw.read(lambda f: isinstance(f, hf.RstStreamFrame), timeout=8)
    assert any(isinstance(f, hf.RstStreamFrame) and ERR[f.error_code] == "CANCEL"
               for f in frames)
    raw.close()
    assert limit_hits(s, "stream_stall_timeout") >= 1


def test_h2_max_requests_per_connection_goaway(h2c):
    s = h2c(http_extra="max_requests_per_connection: 2")
    raw = Raw(s.port)
    raw.send(raw.headers(1), raw.headers(3))
    g = raw.goaway(5)
    assert g is not None and g.last_stream_id == 3 and ERR[g.error_code] == "NO_ERROR"
    frames = raw.frames_in + raw.read(timeout=1)
    done = {f.stream_id for f in frames if isinstance(f, hf.DataFrame) and
            "END_STREAM" in f.flags}
    assert done == {1, 3}, frames
    raw.close()


def test_h2c_preface_and_http1_in_pieces(h2c):
    """The first bytes decide, however they arrive: a preface in two pieces is HTTP/2, a
    request line that starts like nothing else is HTTP/1."""
    s = h2c()
    raw = Raw(s.port, preface=False)
    raw.send(PREFACE[:5])
    time.sleep(0.3)
    raw.send(PREFACE[5:] + hf.SettingsFrame(0, {}).serialize(), raw.headers(1))
    frames = raw.read(lambda f: isinstance(f, hf.DataFrame) and "END_STREAM" in f.flags,
                      timeout=5)
    assert any(isinstance(f, hf.DataFrame) and f.data == b"hi there\n" for f in frames)
    raw.close()
    c = socket.create_connection((LOOPBACK, s.port), timeout=5)
    c.sendall(b"GE")
    time.sleep(0.3)
    c.sendall(b"T /hello HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    data = recv_until_eof(c)
    c.close()
    assert data.startswith(b"HTTP/1.1 200") and data.endswith(b"hi there\n")
    c = socket.create_connection((LOOPBACK, s.port), timeout=5)
    c.sendall(b"PRI * HTTP/2.0\r\n\r\nXX\r\n\r\n")  # almost a preface: HTTP/1's to refuse
    data = c.recv(4096)
    c.close()
    assert data.startswith(b"HTTP/1.1 4") or data.startswith(b"HTTP/1.1 5"), data


def test_h2_idle_connection_ends_with_goaway(h2c):
    s = h2c(http_extra="keepalive_timeout: 1s")
    raw = Raw(s.port)
    raw.send(raw.headers(1))
    g = raw.goaway(6)
    assert g is not None and g.last_stream_id == 1 and ERR[g.error_code] == "NO_ERROR"
    raw.read(timeout=2)
    assert getattr(raw, "eof", False)
    raw.close()


def test_h2_streamed_body_past_max_request_body(h2o):
    s = h2o(http_extra="max_request_body: 1k")
    status, _, body = h2_request(s.port, "/app/up", method="POST", body=b"x" * 5000)
    assert status == 413 or status < 0, (status, body)  # answered, or reset once started
    assert h2_request(s.port, "/app/x")[0] == 200


def test_h2_slow_server_bounds_upload(strata, backends):
    """A server that does not read: the client's window reopens only as the body moves on,
    so what it can send (and what Strata holds) stays bounded."""
    import threading
    go = threading.Event()

    def slow(c):
        go.wait(10)
        data = b""
        c.settimeout(5)
        while b"\r\n0\r\n\r\n" not in data[-16:]:
            chunk = c.recv(1 << 20)
            if not chunk:
                return
            data += chunk
        c.sendall(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
    b = backends.threaded(slow)
    port = free_port()
    s = strata(h2_config(port, backends={"app": {"servers": [b.address]}}), listen_ports=[port])
    rss0, _ = proc_stats(s.pid)
    raw = Raw(port)
    raw.send(raw.headers(1, path="/app/up", end_stream=False, method="POST"))
    window, conn_window, sent = 65535, 65535, 0
    deadline = time.monotonic() + 2.0
    while time.monotonic() < deadline:
        n = min(window, conn_window, 16384)
        if n > 0:
            raw.send(hf.DataFrame(1, b"x" * n))
            sent += n
            window -= n
            conn_window -= n
            continue
        for f in raw.read(lambda f: isinstance(f, hf.WindowUpdateFrame), timeout=0.2):
            if isinstance(f, hf.WindowUpdateFrame):
                if f.stream_id == 1:
                    window += f.window_increment
                else:
                    conn_window += f.window_increment
    rss1, _ = proc_stats(s.pid)
    print(f"upload held back: {sent} bytes sent, rss +{rss1 - rss0} KiB")
    assert sent < 16 << 20, sent  # kernel buffers and one window, not what was offered
    assert rss1 - rss0 < 16 * 1024, (rss0, rss1)
    go.set()
    end = hf.DataFrame(1, b"")
    end.flags.add("END_STREAM")
    raw.send(end)
    frames = raw.read(lambda f: isinstance(f, hf.DataFrame) and "END_STREAM" in f.flags,
                      timeout=10)
    assert any(isinstance(f, hf.HeadersFrame) and f.stream_id == 1 for f in frames), frames
    raw.close()


@pytest.mark.skipif(not shutil.which("h2load"), reason="h2load (nghttp2-client) not installed")
def test_h2_many_streams_to_http1_servers(h2o):
    """h2load: 4 connections of 25 concurrent streams each, 400 requests to an HTTP/1
    server (a pooled server connection per stream in flight)."""
    s = h2o()
    r = subprocess.run(["h2load", "-n", "400", "-c", "4", "-m", "25",
                        f"http://{LOOPBACK}:{s.port}/app/load"], capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "400 succeeded, 0 failed, 0 errored" in r.stdout, r.stdout
    assert "status codes: 400 2xx" in r.stdout, r.stdout


def test_h2_grpc_answer_is_trailers_only(h2c):
    """Strata's own answer to a gRPC call over h2: one HEADERS frame that ends the stream
    (gRPC's trailers-only), with the status in grpc-status."""
    s = h2c()
    raw = Raw(s.port)
    raw.send(raw.headers(1, path="/pkg.Svc/Method", method="POST",
                         extra=[("content-type", "application/grpc"), ("te", "trailers")]))
    frames = raw.read(lambda f: f.stream_id == 1 and "END_STREAM" in f.flags, timeout=5)
    mine = [f for f in frames if f.stream_id == 1]
    assert len(mine) == 1 and isinstance(mine[0], hf.HeadersFrame), frames
    hdrs = dict(hpack.Decoder().decode(mine[0].data))
    assert hdrs[":status"] == "200" and hdrs["grpc-status"] == "12", hdrs
    raw.close()


def test_h2_drain_timeout_closes_what_is_left(h2c):
    """A stream that never finishes: after timeouts.drain the session is closed, the stream
    logged end=shutdown, and Strata exits 0."""
    s = h2c(h2="cleartext: true, stream_stall_timeout: 1m")
    raw = Raw(s.port, settings={hf.SettingsFrame.INITIAL_WINDOW_SIZE: 0})
    raw.send(raw.headers(1))
    raw.read(lambda f: isinstance(f, hf.HeadersFrame) and f.stream_id == 1, timeout=5)
    s.send_signal(signal.SIGTERM)
    assert raw.goaway(5) is not None
    wait_for(lambda: not s.alive(), 15, what="strata exits after timeouts.drain")
    assert s.proc.returncode == 0
    assert any('end="shutdown"' in ln for ln in access_lines(s, 1))
    raw.close()
