"""WebSocket over HTTP/2 (RFC 8441): an h2 client (python3-h2, h2_backend.H2Client) opens an
extended CONNECT (`:method CONNECT`, `:protocol websocket`) through Strata, on an h2c
listener and over TLS with ALPN h2, to
  (a) an HTTP/1.1 WebSocket server (python3-websockets): Strata sends the Upgrade with a
      Sec-WebSocket-Key of its own, checks the 101's Accept, answers the client 200 and
      relays DATA ⇄ raw bytes;
  (b) the h2 origin (h2_backend.py, protocol h2c and h2): the extended CONNECT passed on,
      DATA both ways; 502 from a server that does not advertise
      SETTINGS_ENABLE_CONNECT_PROTOCOL.
Messages both ways, large ones (flow control and back-pressure), a close from either side,
refusals (no 101: the client gets the status), CONNECT without :protocol refused, and the
access log and metrics counting the tunnel as they count an HTTP/1 WebSocket."""
import asyncio
import os
import socket
import struct
import threading
import time

import h2.settings
import pytest

from conftest import LOOPBACK, free_port, wait_for
from h2_backend import H2Client
from http_backend import http_config

websockets = pytest.importorskip("websockets")

TIMEOUT = 30


# --------------------------------------------------------------------------- WebSocket frames

def mask_bytes(payload, mask):
    n = len(payload)
    if not n:
        return b""
    key = (mask * (n // 4 + 1))[:n]
    return (int.from_bytes(payload, "big") ^ int.from_bytes(key, "big")).to_bytes(n, "big")


def frame(opcode, payload, masked=True, fin=True):
    """One WebSocket frame (client frames are masked)."""
    n = len(payload)
    b0 = (0x80 if fin else 0) | opcode
    mbit = 0x80 if masked else 0
    if n < 126:
        head = bytes([b0, mbit | n])
    elif n < 65536:
        head = bytes([b0, mbit | 126]) + struct.pack("!H", n)
    else:
        head = bytes([b0, mbit | 127]) + struct.pack("!Q", n)
    if not masked:
        return head + payload
    mask = os.urandom(4)
    return head + mask + mask_bytes(payload, mask)


def frame_size(buf):
    """Bytes of the first frame in buf once its head is there (else None)."""
    if len(buf) < 2:
        return None
    n, pos = buf[1] & 0x7F, 2
    if n == 126:
        if len(buf) < 4:
            return None
        n, pos = struct.unpack("!H", buf[2:4])[0], 4
    elif n == 127:
        if len(buf) < 10:
            return None
        n, pos = struct.unpack("!Q", buf[2:10])[0], 10
    if buf[1] & 0x80:
        pos += 4
    return pos + n


def parse_frame(buf):
    """(fin, opcode, payload) of a whole frame."""
    fin, opcode = bool(buf[0] & 0x80), buf[0] & 0x0F
    n, pos = buf[1] & 0x7F, 2
    if n == 126:
        pos = 4
    elif n == 127:
        pos = 10
    if buf[1] & 0x80:
        return fin, opcode, mask_bytes(bytes(buf[pos + 4:]), bytes(buf[pos:pos + 4]))
    return fin, opcode, bytes(buf[pos:])


class WsOverH2:
    """A WebSocket client on one HTTP/2 stream (RFC 8441), frames written by hand."""

    def __init__(self, port, path="/chat", tls=False, headers=(), timeout=TIMEOUT, settings=None):
        self.c = H2Client(port, tls=tls, timeout=timeout, settings=settings)
        if settings:  # the connection's window as large as a stream's
            self.c.h2.increment_flow_control_window(4 << 20)
            self.c._flush()
        self.timeout = timeout
        self.sid = self.c.connect_ws(path, headers=headers)
        self.r = self.c.responses[self.sid]
        self.buf = bytearray()

    def send(self, data, opcode=None):
        if opcode is None:
            opcode = 1 if isinstance(data, str) else 2
        if isinstance(data, str):
            data = data.encode()
        self.c.send(self.sid, frame(opcode, data))

    def _frame(self, timeout):
        deadline = time.monotonic() + (timeout or self.timeout)
        while True:
            self.buf += self.r.body
            self.r.body = b""
            size = frame_size(self.buf)
            if size is not None and len(self.buf) >= size:
                fr = parse_frame(self.buf[:size])
                del self.buf[:size]
                return fr
            if self.r.done:
                return None
            left = deadline - time.monotonic()
            assert left > 0, f"no whole frame within {timeout or self.timeout}s ({len(self.buf)} B)"
            self.c._pump_once(min(left, 0.2))

    def recv(self, timeout=None):
        """The next data message (str or bytes); (\"close\", payload) for a close frame;
        None when the stream ended."""
        parts, first = [], None
        while True:
            fr = self._frame(timeout)
            if fr is None:
                return None
            fin, opcode, payload = fr
            if opcode == 8:
                return ("close", payload)
            if opcode in (9, 10):
                continue  # ping, pong
            first = first if first is not None else opcode
            parts.append(payload)
            if fin:
                data = b"".join(parts)
                return data.decode() if first == 1 else data

    def close(self, code=1000):
        self.c.send(self.sid, frame(8, struct.pack("!H", code)))

    def wait_end(self, timeout=None):
        self.c.pump_until(lambda: self.r.done, timeout, what="the end of the tunnel stream")
        return self.r

    def shutdown(self):
        self.c.close()


# --------------------------------------------------------------------------- servers

class WsOrigin:
    """A python3-websockets server (HTTP/1.1 Upgrade) on an event loop of its own thread.
    handler(ws) runs per connection; .requests holds (path, headers) of each handshake.
    rcvbuf fixes the accepted sockets' receive buffer: the kernel's autotuning can grow it to
    tcp_rmem's maximum (32 MiB on some machines), which would hide what Strata holds back."""

    def __init__(self, handler, process_request=None, rcvbuf=None, **serve_kw):
        self.handler = handler
        self.process_request = process_request
        self.rcvbuf = rcvbuf
        self.serve_kw = serve_kw
        self.requests = []
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    def start(self):
        self.thread.start()

        async def handle(ws, path=None):
            self.requests.append((ws.path, ws.request_headers))
            await self.handler(ws)

        where = {"host": LOOPBACK, "port": 0}
        if self.rcvbuf is not None:
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, self.rcvbuf)  # accepts inherit it
            sock.bind((LOOPBACK, 0))
            where = {"sock": sock}

        async def serve():
            return await websockets.serve(handle, max_size=None, compression=None,
                                          process_request=self.process_request, **where,
                                          **self.serve_kw)
        self.server = asyncio.run_coroutine_threadsafe(serve(), self.loop).result(10)
        self.port = self.server.sockets[0].getsockname()[1]
        self.address = f"{LOOPBACK}:{self.port}"
        return self

    def stop(self):
        async def close():
            self.server.close()
            await self.server.wait_closed()
        try:
            asyncio.run_coroutine_threadsafe(close(), self.loop).result(10)
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(10)
            self.loop.close()


@pytest.fixture
def ws_origin():
    started = []

    def start(handler, process_request=None, **serve_kw):
        o = WsOrigin(handler, process_request, **serve_kw).start()
        started.append(o)
        return o
    yield start
    for o in started:
        o.stop()


async def echo(ws):
    try:
        async for msg in ws:
            await ws.send(msg)
    except websockets.ConnectionClosed:
        pass


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    from test_tls import pki as tls_pki
    return tls_pki.__wrapped__(tmp_path_factory)


def run(strata, backends, tls_pki=None, h2="cleartext: true", http_extra="", routes=None,
        idle="1m"):
    """Strata with listener `web` (h2c, or h2 over TLS with the test PKI) and an admin port."""
    port, admin = free_port(), free_port()
    extra = ""
    if tls_pki is not None:
        from test_tls import tls_block
        extra = tls_block(tls_pki)
        h2 = "enabled: true"
    cfg = http_config(port, backends, admin_port=admin, routes=routes, workers=1,
                      http_extra=f"h2: {{ {h2} }}\n" + http_extra, listener_extra=extra)
    cfg = cfg.replace("idle: 1m", f"idle: {idle}")
    s = strata(cfg, listen_ports=[port], admin_port=admin)
    s.port, s.admin = port, admin
    return s


def access_lines(s, n, pred=lambda ln: True):
    def lines():
        out = [ln for ln in s.stdout().splitlines() if " method=" in ln and pred(ln)]
        return out if len(out) >= n else None
    return wait_for(lines, 10, what=f"{n} access log lines")


def h2_origin_backend(origin, tls):
    if tls:
        return {"h2": {"servers": [origin.address],
                       "extra": f"protocol: h2\ntls: {{ ca: {origin.tls[0]} }}\n"}}
    return {"h2": {"servers": [origin.address], "extra": "protocol: h2c\n"}}


def exchange(ws, sizes):
    """Messages of each size both ways (echoed), text and binary, in order."""
    for i, n in enumerate(sizes):
        data = os.urandom(n) if i % 2 else ("t%d-" % i + "x" * n)[:max(n, 1)]
        ws.send(data)
        got = ws.recv()
        assert got == data, f"message {i} of {n} bytes: {len(got or '')} bytes back"


SMALL = (1, 5, 125, 126, 1000, 65535, 65536, 70000)
LARGE = (1 << 20, 4 << 20)


# --------------------------------------------------------------------------- to HTTP/1 servers

@pytest.mark.timeout(120)
@pytest.mark.parametrize("tls", [False, True], ids=["h2c", "h2-tls"])
def test_ws_h2_client_to_http1_server(strata, ws_origin, pki, tls):
    o = ws_origin(echo)
    s = run(strata, {"ws": {"servers": [o.address]}}, tls_pki=pki if tls else None)
    ws = WsOverH2(s.port, "/chat?room=1", tls=tls, headers=[("sec-websocket-protocol", "chat")])
    try:
        assert ws.r.status == 200
        assert ws.r.header("sec-websocket-accept") is None  # RFC 8441 §5: none in HTTP/2
        exchange(ws, SMALL + LARGE)
        for i in range(50):
            ws.send(f"message {i}")
        for i in range(50):
            assert ws.recv() == f"message {i}"
        ws.close()
        assert ws.recv() == ("close", struct.pack("!H", 1000))
        assert ws.wait_end().ended  # the server closed: END_STREAM
    finally:
        ws.shutdown()
    path, hdrs = o.requests[0]
    assert path == "/chat?room=1"
    assert hdrs["Upgrade"].lower() == "websocket" and "upgrade" in hdrs["Connection"].lower()
    assert hdrs["Sec-WebSocket-Version"] == "13" and len(hdrs["Sec-WebSocket-Key"]) == 24
    assert hdrs["Sec-WebSocket-Protocol"] == "chat"
    ln = access_lines(s, 1)[0]
    assert 'method="GET"' in ln and 'status="101"' in ln or "status=101" in ln, ln
    assert 'end="tunnel_closed"' in ln or "end=tunnel_closed" in ln, ln


@pytest.mark.timeout(120)
def test_ws_h2_server_speaks_first_and_closes(strata, ws_origin):
    big = os.urandom(3 << 20)

    async def push(ws):
        await ws.send("hello")
        await ws.send(big)
        await ws.close(4000, "bye")

    o = ws_origin(push)
    s = run(strata, {"ws": {"servers": [o.address]}})
    ws = WsOverH2(s.port)
    try:
        assert ws.recv() == "hello", (ws.r, s.stdout())
        assert ws.recv() == big
        kind, payload = ws.recv()
        assert kind == "close" and struct.unpack("!H", payload[:2])[0] == 4000
        ws.close(4000)
        assert ws.wait_end().ended
    finally:
        ws.shutdown()


@pytest.mark.timeout(120)
def test_ws_h2_client_ends_its_side(strata, ws_origin):
    """END_STREAM from the client: the server sees its EOF after the bytes before it."""
    seen = []

    async def reader(ws):
        try:
            async for msg in ws:
                seen.append(msg)
        except websockets.ConnectionClosed:
            pass

    o = ws_origin(reader)
    s = run(strata, {"ws": {"servers": [o.address]}})
    ws = WsOverH2(s.port)
    try:
        ws.send("one")
        ws.send(b"\x00" * 200000)
        ws.close()
        ws.c.end(ws.sid)
        r = ws.wait_end()
        assert r.ended or r.reset is not None
    finally:
        ws.shutdown()
    wait_for(lambda: len(seen) == 2, 10, what="the server read both messages")
    assert seen == ["one", b"\x00" * 200000]


@pytest.mark.timeout(120)
def test_ws_h2_back_pressure_from_a_client_that_does_not_read(strata, ws_origin):
    """The client stops acknowledging DATA: the server's sends stall (Strata holds a bounded
    amount), then everything arrives intact once the client reads again. The client's
    windows are 1 MiB, as browsers' are (with 64 KiB ones, the WINDOW_UPDATEs of a fast
    transfer pass max_window_updates_per_second)."""
    msg, count, sent = os.urandom(1 << 20), 48, []

    async def push(ws):
        for i in range(count):
            await ws.send(msg)
            sent.append(i)
        await echo(ws)

    o = ws_origin(push)
    s = run(strata, {"ws": {"servers": [o.address]}})
    ws = WsOverH2(s.port, settings={h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: 1 << 20})
    ws.c.auto_ack = False
    acked = len(ws.r.body)
    try:
        time.sleep(1.5)
        for _ in range(10):
            ws.c._pump_once(0.1)  # reads what came, acknowledges nothing
        stalled = len(sent)
        print(f"server stalled after {stalled} of {count} MiB")
        assert stalled < count // 2, f"{stalled} MiB sent to a client that reads nothing"
        held = len(ws.r.body) - acked
        assert held <= 1 << 20  # the client's window, no more
        ws.c.auto_ack = True
        ws.c.ack(ws.sid, held)  # what came while it did not read
        for i in range(count):
            assert ws.recv() == msg, f"message {i}"
        assert len(sent) == count
        ws.send("after")
        assert ws.recv() == "after"
    finally:
        ws.shutdown()
    assert ws.c.goaway is None


@pytest.mark.timeout(120)
def test_ws_h2_back_pressure_to_a_server_that_does_not_read(strata, ws_origin):
    """The server reads nothing for a while: the client's sends stall on its stream window
    (Strata reads no more than it can pass on), then all of them arrive."""
    count, msg = 32, os.urandom(1 << 20)
    go, got = threading.Event(), []

    async def slow(ws):
        while not go.is_set():
            await asyncio.sleep(0.05)
        async for m in ws:
            got.append(len(m))
            if len(got) == count:
                await ws.send("all read")

    # websockets queues no more than one message unread, the kernel no more than 256 KiB
    o = ws_origin(slow, max_queue=1, rcvbuf=256 << 10)
    s = run(strata, {"ws": {"servers": [o.address]}})
    ws = WsOverH2(s.port)
    sent = []

    def sender():
        for _ in range(count):
            ws.send(msg)
            sent.append(1)
    t = threading.Thread(target=sender, daemon=True)
    try:
        t.start()
        time.sleep(1.5)
        stalled = len(sent)
        print(f"client stalled after {stalled} of {count} MiB")
        assert stalled < count // 2, f"{stalled} MiB taken while the server read nothing"
        go.set()
        t.join(60)
        assert not t.is_alive() and len(sent) == count
        assert ws.recv() == "all read"
        assert got == [1 << 20] * count
    finally:
        go.set()
        t.join(10)
        ws.shutdown()


def test_ws_idle_tunnel_ends(strata, ws_origin):
    o = ws_origin(echo)
    s = run(strata, {"ws": {"servers": [o.address]}}, idle="1s")
    ws = WsOverH2(s.port)
    try:
        exchange(ws, (3,))
        t0 = time.monotonic()
        # the stream is reset, or the connection, as quiet as its one stream, closed
        ws.c.pump_until(lambda: ws.r.done or ws.c.closed, 10, what="the idle tunnel's end")
        assert 0.5 < time.monotonic() - t0 < 5
    finally:
        ws.shutdown()
    ln = access_lines(s, 1)[0]
    assert "tunnel_idle" in ln, ln


def test_ws_refused_by_server_status_passed_on(strata, origin):
    """No 101: the server's answer (status, fields, body) goes to the h2 client as it is."""
    o = origin("a", lambda req: (b"HTTP/1.1 403 Forbidden\r\nx-why: no\r\n"
                                 b"Content-Length: 8\r\n\r\ngo away\n"))
    s = run(strata, {"ws": {"servers": [o.address]}})
    with H2Client(s.port, timeout=10) as c:
        sid = c.start("CONNECT", "/chat", headers=[("sec-websocket-version", "13")], end=False,
                      protocol="websocket")
        r = c.wait([sid])[sid]
        assert r.status == 403 and r.header("x-why") == "no" and r.body == b"go away\n", r
        # the same connection opens a tunnel afterwards... to the same refusing server
        assert c.request("GET", "/plain").status == 403
    req = o.requests[0]
    assert req.header("upgrade") == "websocket" and len(req.header("sec-websocket-key")) == 24
    assert access_lines(s, 2)


def test_ws_bad_accept_answers_502(strata, origin):
    def respond(req):
        return (b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                b"Connection: Upgrade\r\nSec-WebSocket-Accept: AAAAAAAAAAAAAAAAAAAAAAAAAAA=\r\n\r\n")
    o = origin("a", respond)
    s = run(strata, {"ws": {"servers": [o.address]}})
    with H2Client(s.port, timeout=10) as c:
        sid = c.start("CONNECT", "/chat", headers=[("sec-websocket-version", "13")], end=False,
                      protocol="websocket")
        r = c.wait([sid])[sid]
        assert r.status == 502


def raw_request(port, headers, timeout=5.0):
    """One HEADERS frame (stream 1, END_HEADERS, no END_STREAM) on a new h2c connection,
    written by hand (python3-h2 refuses these heads itself). Returns (server SETTINGS dict,
    response status or None, RST_STREAM error code or None)."""
    import socket
    import hpack
    import hyperframe.frame as hf
    sock = socket.create_connection((LOOPBACK, port), timeout=timeout)
    try:
        hdr = hf.HeadersFrame(1)
        hdr.data = hpack.Encoder().encode(headers)
        hdr.flags.add("END_HEADERS")
        sock.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + hf.SettingsFrame(0).serialize() +
                     hdr.serialize())
        buf, settings, dec = b"", None, hpack.Decoder()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            while len(buf) >= 9:
                f, n = hf.Frame.parse_frame_header(memoryview(buf[:9]))
                if len(buf) < 9 + n:
                    break
                f.parse_body(memoryview(buf[9:9 + n]))
                buf = buf[9 + n:]
                if isinstance(f, hf.SettingsFrame) and "ACK" not in f.flags:
                    settings = dict(f.settings)
                elif isinstance(f, hf.HeadersFrame) and f.stream_id == 1:
                    return settings, int(dict(dec.decode(f.data))[":status"]), None
                elif isinstance(f, hf.RstStreamFrame) and f.stream_id == 1:
                    return settings, None, f.error_code
                elif isinstance(f, hf.GoAwayFrame):
                    return settings, None, -1
            chunk = sock.recv(65536)
            if not chunk:
                break
            buf += chunk
        return settings, None, None
    finally:
        sock.close()


EXT_CONNECT = [(":method", "CONNECT"), (":protocol", "websocket"), (":scheme", "http"),
               (":path", "/chat"), (":authority", "localhost"), ("sec-websocket-version", "13")]


def test_connect_without_protocol_refused(strata, ws_origin):
    o = ws_origin(echo)
    s = run(strata, {"ws": {"servers": [o.address]}})
    settings, status, rst = raw_request(s.port, [(":method", "CONNECT"),
                                                 (":authority", "example.com:443")])
    assert settings.get(8) == 1  # SETTINGS_ENABLE_CONNECT_PROTOCOL
    assert status == 501, (status, rst)
    # :protocol without CONNECT, or an extended CONNECT without :path: malformed (reset)
    for bad in ([(k, v) for k, v in EXT_CONNECT if k != ":path"],
                [(k, "GET" if k == ":method" else v) for k, v in EXT_CONNECT]):
        _, status, rst = raw_request(s.port, bad)
        assert status is None and rst == 1, (bad, status, rst)  # PROTOCOL_ERROR
    # the extended CONNECT itself is answered 200 by the same listener
    assert raw_request(s.port, EXT_CONNECT)[1] == 200
    wait_for(lambda: len(o.requests) == 1, 5, what="one WebSocket handshake at the origin")


def test_ws_off_by_config(strata, ws_origin):
    o = ws_origin(echo)
    s = run(strata, {"ws": {"servers": [o.address]}}, h2="cleartext: true, websocket: false")
    settings, status, rst = raw_request(s.port, EXT_CONNECT)
    assert not settings.get(8)
    assert status is None and rst is not None, (status, rst)
    assert o.requests == []


def test_ws_counted_like_http1(strata, ws_origin):
    o = ws_origin(echo)
    s = run(strata, {"ws": {"servers": [o.address]}})
    ws = WsOverH2(s.port)
    try:
        exchange(ws, (10,))
        ws.close()
        assert ws.recv()[0] == "close"
        ws.wait_end()
    finally:
        ws.shutdown()

    async def h1():
        async with websockets.connect(f"ws://{LOOPBACK}:{s.port}/chat", open_timeout=5) as c:
            await c.send("x")
            assert await asyncio.wait_for(c.recv(), 5) == "x"
    asyncio.run(asyncio.wait_for(h1(), 20))
    lines = access_lines(s, 2)
    assert len(lines) == 2, lines
    for ln in lines:
        assert "101" in ln and "GET" in ln and "tunnel_closed" in ln, ln
    m = s.metrics(s.admin)
    assert m.get("strata_listener_http_responses_total", listener="web", code="1xx") == 2


# --------------------------------------------------------------------------- to HTTP/2 servers

@pytest.mark.timeout(120)
@pytest.mark.parametrize("up_tls", [False, True], ids=["to-h2c", "to-h2"])
@pytest.mark.parametrize("tls", [False, True], ids=["h2c", "h2-tls"])
def test_ws_h2_client_to_h2_server(strata, h2_origin, pki, tls, up_tls):
    o = h2_origin("a", tls=up_tls)
    s = run(strata, h2_origin_backend(o, up_tls), tls_pki=pki if tls else None)
    ws = WsOverH2(s.port, "/ws-frames", tls=tls)
    try:
        assert ws.r.status == 200 and ws.r.header("x-backend") == "a"
        exchange(ws, SMALL + LARGE)
        ws.close()
        assert ws.recv() == ("close", struct.pack("!H", 1000))
        assert ws.wait_end().ended
    finally:
        ws.shutdown()
    req = o.requests[0]
    assert req.method == "CONNECT" and req.protocol == "websocket" and req.path == "/ws-frames"


def test_ws_raw_echo_to_h2_server(strata, h2_origin):
    o = h2_origin("a")
    s = run(strata, h2_origin_backend(o, False))
    with H2Client(s.port, timeout=10) as c:
        sid = c.connect_ws("/ws")
        payload = os.urandom(300000)
        c.send(sid, payload)
        assert c.read(sid, len(payload), timeout=20) == payload
        c.end(sid)
        c.wait([sid], 10)


def test_ws_h2_server_without_connect_protocol_502(strata, h2_origin):
    o = h2_origin("a", enable_connect_protocol=False)
    s = run(strata, h2_origin_backend(o, False))
    with H2Client(s.port, timeout=10) as c:
        sid = c.start("CONNECT", "/ws", headers=[("sec-websocket-version", "13")], end=False,
                      protocol="websocket")
        r = c.wait([sid])[sid]
        assert r.status == 502


def test_ws_retried_on_a_server_that_takes_extended_connect(strata, h2_origin):
    plain = h2_origin("plain", enable_connect_protocol=False)
    ext = h2_origin("ext")
    s = run(strata, {"h2": {"servers": [plain.address, ext.address], "extra": "protocol: h2c\n"}})
    for _ in range(4):  # whichever the balancer picks first
        with H2Client(s.port, timeout=10) as c:
            sid = c.connect_ws("/ws")
            assert c.responses[sid].header("x-backend") == "ext"
            c.send(sid, b"ping")
            assert c.read(sid, 4) == b"ping"
            c.end(sid)
            c.wait([sid], 10)
    assert all(r.method != "CONNECT" for r in plain.requests)


@pytest.mark.timeout(120)
@pytest.mark.parametrize("up_tls", [False, True], ids=["to-h2c", "to-h2"])
def test_ws_http1_client_to_h2_server(strata, h2_origin, up_tls):
    """An HTTP/1.1 client's WebSocket upgrade to an h2 server: extended CONNECT upstream, a
    101 with the Accept of the client's key back; frames both ways; the close."""
    o = h2_origin("a", tls=up_tls)
    s = run(strata, h2_origin_backend(o, up_tls))

    async def scenario():
        async with websockets.connect(f"ws://{LOOPBACK}:{s.port}/ws-frames", open_timeout=5,
                                      max_size=None, compression=None) as ws:
            for n in SMALL + LARGE:
                data = os.urandom(n)
                await ws.send(data)
                assert await asyncio.wait_for(ws.recv(), 30) == data
            await ws.send("text")
            assert await asyncio.wait_for(ws.recv(), 30) == "text"
    asyncio.run(asyncio.wait_for(scenario(), 90))
    req = o.requests[0]
    assert req.method == "CONNECT" and req.protocol == "websocket" and req.path == "/ws-frames"
    ln = access_lines(s, 1)[0]
    assert "101" in ln and "tunnel_closed" in ln and 'version="1.1"' in ln, ln


def test_ws_http1_client_to_h2_server_without_connect_protocol(strata, h2_origin):
    o = h2_origin("a", enable_connect_protocol=False)
    s = run(strata, h2_origin_backend(o, False))

    async def scenario():
        with pytest.raises(websockets.InvalidStatusCode) as e:
            async with websockets.connect(f"ws://{LOOPBACK}:{s.port}/ws", open_timeout=5):
                pass
        assert e.value.status_code == 502
    asyncio.run(asyncio.wait_for(scenario(), 30))


def test_ws_routed_as_a_get_upgrade(strata, ws_origin, origin):
    """Routes see an extended CONNECT as HTTP/1's upgrade does: a GET to its :path."""
    o = ws_origin(echo)
    other = origin("other")
    routes = ("- match: { method: GET, path_prefix: /chat }\n  backend: ws\n"
              "- backend: other\n")
    s = run(strata, {"ws": {"servers": [o.address]}, "other": {"servers": [other.address]}},
            routes=routes)
    ws = WsOverH2(s.port, "/chat/room")
    try:
        exchange(ws, (20,))
    finally:
        ws.shutdown()
    with H2Client(s.port, timeout=10) as c:  # another path goes elsewhere, as a GET would
        sid = c.start("CONNECT", "/elsewhere", headers=[("sec-websocket-version", "13")],
                      end=False, protocol="websocket")
        r = c.wait_headers(sid)
        assert r.status != 200 or r.header("x-backend") == "other"
    assert len(o.requests) == 1 and o.requests[0][0] == "/chat/room"
    assert other.requests and other.requests[0].method == "GET"
