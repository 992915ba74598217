"""An HTTP/2 origin (and a small HTTP/2 client) for the end-to-end tests, on Debian's
python3-h2. It serves h2c with prior knowledge, or h2 over TLS (ALPN "h2"), one thread per
connection (conftest.ThreadedServer), and records what reached it.

    srv = H2Backend(name="a").start()                    # h2c
    srv = H2Backend(name="b", tls=(cert, key)).start()   # h2 over TLS (fixture h2_cert)
    srv.port, srv.address, srv.requests, srv.connections, srv.streams, srv.max_concurrent

Fixtures (conftest.py): `h2_origin(name=..., **options)` starts one and stops it at
teardown; `h2_cert` is a self-signed ECDSA certificate (CN localhost, SAN localhost and
127.0.0.1): (cert path, key path).

Server options (constructor keywords, also attributes that can be changed while it runs):
  name                    sent back in every response as `x-backend: NAME`
  tls=(cert, key)         TLS with ALPN h2 (h2c with prior knowledge when None)
  max_concurrent_streams  SETTINGS_MAX_CONCURRENT_STREAMS (None: not sent = unlimited).
                          A stream over the limit is refused (RST_STREAM REFUSED_STREAM)
                          and counted in .over_limit (.max_concurrent shows the most seen)
  initial_window          SETTINGS_INITIAL_WINDOW_SIZE (None: 65535). Small values are
                          only safe with clients that wait for the SETTINGS before sending
                          bodies; for a slow reader use /slowread instead
  max_frame_size          SETTINGS_MAX_FRAME_SIZE (None: 16384)
  enable_connect_protocol SETTINGS_ENABLE_CONNECT_PROTOCOL (RFC 8441), default True
  goaway_after=N          on each connection, after the Nth stream: GOAWAY (NO_ERROR, last
                          stream id = that stream), the streams up to it are answered,
                          later ones refused (RST_STREAM REFUSED_STREAM), then the
                          connection is closed when its streams are done
  refuse_streams=N        the next N streams (any path, any connection) are answered with
                          RST_STREAM REFUSED_STREAM (counted down; .refused counts them)
  goaway_all()            (a method) every open connection sends GOAWAY now, finishes its
                          streams and closes
  respond=fn(req)         called when a request is complete; returns None (the behaviours
                          below) or (status, headers dict/list, body[, trailers])

Behaviours, chosen by the path (its first segment) with options from the query string;
every option can also be given as a request header `x-h2-OPTION` (the header wins):
  /echo (and any path not below)  200; body = the request body; headers x-req-method,
          x-req-path, x-req-authority, x-req-scheme, x-req-protocol, x-req-headers (JSON
          list of the regular request headers), x-req-body-length, x-req-body-sha256;
          when the request has `te: trailers`: response trailers x-trailer-backend: NAME,
          x-trailer-body-length, and the request's trailers echoed as x-req-trailer-NAME
  /inspect  200, application/json body with the same fields (and the trailers)
  /sink     200, body "ok\\n": only the x-req-body-* headers (for large uploads)
  /bytes?n=N (or mib=M)  200 with N bytes (M MiB) of pattern_bytes(0, N), streamed as the
          client's flow-control window allows (content-length sent unless cl=0)
  /status/NNN (or status=NNN)  that status; 1xx not allowed; 204 and 304 without body
  /refuse   RST_STREAM REFUSED_STREAM as soon as the headers arrive
  /reset?code=N   RST_STREAM with error code N (default 2 INTERNAL_ERROR) after the headers
          arrive (after=response: after sending the response headers)
  /slowread?rate=BYTES_PER_S  reads the request body slowly: flow-control credit is given
          back at `rate` (default 16384), so the client runs out of window (back-pressure);
          then answers like /sink. The connection window is shared, so other streams on
          the connection stall too
  /ws (extended CONNECT with :protocol websocket, or any :protocol): 200, then every byte
          of the client's DATA frames is echoed back in DATA frames; /ws-frames does the
          same with WebSocket framing (client frames unmasked and echoed as server frames,
          a close frame answered with a close frame)
  options for all paths: delay=MS (wait before answering), status=NNN (echo),
          expect=417 (with `expect: 100-continue`: answer 417 without reading the body;
          otherwise a 100 is sent before the body is read), trailers=0 (no trailers even
          with te: trailers), chunk=N (DATA frame size cap for /bytes)
  HEAD on any path: the GET response's headers (content-length included), no body.

Counters: .connections (accepted), .streams (requests seen), .max_concurrent (the most
streams open at once on one connection, as h2 counts them after each read),
.requests ([H2Request]), .goaways_sent, .goaways_received (kept from h2, which
would end the connection at once; the open streams are still answered), .refused,
.over_limit, .resets_received, .protocol_errors,
.errors (handler exceptions). wait_requests(n) waits for n requests.

The client: H2Client(port, tls=False, ...) speaks h2 (prior knowledge or TLS ALPN h2)
with python3-h2: request(...) -> H2Response, or start(...)/wait(...) for many streams at
once, connect_ws(...) for extended CONNECT; see the class.
"""
import base64
import hashlib
import json
import os
import select
import socket
import ssl
import struct
import threading
import time
from urllib.parse import parse_qsl

import h2.config
import h2.connection
import h2.errors
import h2.events
import h2.exceptions
import h2.settings
from hyperframe.frame import GoAwayFrame, SettingsFrame

from conftest import LOOPBACK, ThreadedServer, wait_count

_PATTERN = bytes(range(251)) * 300  # 75,300 bytes; pattern byte i is i % 251


def pattern_bytes(offset, n):
    """n bytes of the /bytes pattern starting at `offset` (byte i is i % 251)."""
    out = []
    while n > 0:
        k = min(n, 65536)
        o = offset % 251
        out.append(_PATTERN[o:o + k])
        offset += k
        n -= k
    return b"".join(out)


def pattern_sha256(n):
    h = hashlib.sha256()
    off = 0
    while off < n:
        k = min(n - off, 65536)
        h.update(pattern_bytes(off, k))
        off += k
    return h.hexdigest()


class _GoawayFilter:
    """h2 treats a GOAWAY (sent or received) as the end of the connection and refuses every
    frame after it, while RFC 9113 lets the streams up to the last stream id finish. So the
    bytes read are cut into frames here and GOAWAY frames are taken out (and recorded as
    (error code, last stream id, debug data)) before h2 sees them. `preface`: the number of
    bytes of client preface to pass through first (server side)."""

    def __init__(self, preface=0):
        self.buf = b""
        self.preface = preface
        self.goaways = []

    def feed(self, data):
        self.buf += data
        out = b""
        if self.preface:
            k = min(self.preface, len(self.buf))
            out, self.buf, self.preface = self.buf[:k], self.buf[k:], self.preface - k
        pos = 0
        while len(self.buf) - pos >= 9:
            n = int.from_bytes(self.buf[pos:pos + 3], "big")
            if len(self.buf) - pos < 9 + n:
                break
            if self.buf[pos + 3] == 7 and n >= 8:
                p = self.buf[pos + 9:pos + 9 + n]
                self.goaways.append((int.from_bytes(p[4:8], "big"),
                                     int.from_bytes(p[0:4], "big") & 0x7FFFFFFF, p[8:]))
            else:
                out += self.buf[pos:pos + 9 + n]
            pos += 9 + n
        self.buf = self.buf[pos:]
        return out


class H2Request:
    def __init__(self, conn_id, stream_id, headers, tls):
        self.conn_id = conn_id
        self.stream_id = stream_id
        self.raw_headers = headers  # list of (name, value) as received, pseudo-headers first
        self.pseudo = {k: v for k, v in headers if k.startswith(":")}
        self.headers = [(k, v) for k, v in headers if not k.startswith(":")]
        self.body = b""
        self.trailers = []
        self.tls = tls
        self.complete = False
        self.reset = None  # error code of a RST_STREAM received

    method = property(lambda self: self.pseudo.get(":method"))
    path = property(lambda self: self.pseudo.get(":path"))
    authority = property(lambda self: self.pseudo.get(":authority"))
    scheme = property(lambda self: self.pseudo.get(":scheme"))
    protocol = property(lambda self: self.pseudo.get(":protocol"))

    def header(self, name, default=None):
        name = name.lower()
        for k, v in self.headers:
            if k == name:
                return v
        return default

    def header_all(self, name):
        return [v for k, v in self.headers if k == name.lower()]

    def __repr__(self):
        return f"<H2Request {self.method} {self.path} conn={self.conn_id} stream={self.stream_id}>"


def _options(req):
    """Query-string options, overridden by x-h2-* headers."""
    path = req.path or "/"
    opts = {}
    if "?" in path:
        opts.update(parse_qsl(path.split("?", 1)[1], keep_blank_values=True))
    for k, v in req.headers:
        if k.startswith("x-h2-"):
            opts[k[5:]] = v
    return opts


def _route(req):
    path = (req.path or "/").split("?", 1)[0]
    seg = path.strip("/").split("/")
    return seg[0], seg[1:]


class _Stream:
    def __init__(self, req):
        self.req = req
        self.opts = _options(req)
        self.route, self.args = _route(req)
        self.respond_at = None      # monotonic time to answer at (None: not scheduled)
        self.answered = False       # response headers sent
        self.out = []               # queued response body pieces (bytes)
        self.gen = None             # (offset, remaining) of a /bytes body
        self.out_trailers = None
        self.out_end = False        # end the stream once the queue is empty
        self.finished = False       # END_STREAM sent or reset
        self.slow = None            # bytes per second for /slowread
        self.unacked = 0
        self.last_ack = time.monotonic()
        self.ws = None              # "raw" or "frames"
        self.wsbuf = b""
        self.skip_body = False      # 417 sent: discard the body


class H2Backend:
    def __init__(self, name="h2", tls=None, port=0, host=LOOPBACK, max_concurrent_streams=None,
                 initial_window=None, max_frame_size=None, enable_connect_protocol=True,
                 goaway_after=None, refuse_streams=0, respond=None):
        self.name = name
        self.tls = tls
        self.max_concurrent_streams = max_concurrent_streams
        self.initial_window = initial_window
        self.max_frame_size = max_frame_size
        self.enable_connect_protocol = enable_connect_protocol
        self.goaway_after = goaway_after
        self.refuse_streams = refuse_streams
        self.respond = respond
        self.requests = []
        self.connections = 0
        self.streams = 0
        self.max_concurrent = 0
        self.goaways_sent = 0
        self.goaways_received = 0
        self.refused = 0
        self.resets_received = 0
        self.protocol_errors = []
        self.over_limit = 0
        self._goaway_epoch = 0
        self.alpn = []  # negotiated ALPN per TLS connection
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._ctx = None
        if tls:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(tls[0], tls[1])
            ctx.set_alpn_protocols(["h2"])
            self._ctx = ctx
        self._server = ThreadedServer(self._handle, port=port, host=host)

    # -- lifecycle
    def start(self):
        self._server.start()
        return self

    def stop(self):
        self._stop.set()
        self._server.stop()

    port = property(lambda self: self._server.port)
    address = property(lambda self: self._server.address)
    errors = property(lambda self: self._server.errors)

    def goaway_all(self):
        """Every open connection sends GOAWAY (NO_ERROR, last stream id = the highest it
        has seen) at its next turn (within ~50 ms), answers its open streams, refuses
        newer ones and closes when they are done; new connections are served as usual."""
        with self._lock:
            self._goaway_epoch += 1

    def wait_requests(self, n, timeout=5.0):
        return wait_count(self.requests, n, timeout)

    # -- one connection
    def _handle(self, sock):
        with self._lock:
            self.connections += 1
            conn_id = self.connections
        sock.settimeout(10)
        if self._ctx:
            try:
                sock = self._ctx.wrap_socket(sock, server_side=True)
            except (ssl.SSLError, OSError):
                return
            with self._lock:
                self.alpn.append(sock.selected_alpn_protocol())
        sock.settimeout(10)
        try:
            _Conn(self, sock, conn_id).run()
        finally:
            sock.close()


class _Conn:
    """The state of one server connection; runs in its own thread."""

    def __init__(self, srv, sock, conn_id):
        self.srv = srv
        self.sock = sock
        self.conn_id = conn_id
        self.streams = {}
        self.nstreams = 0
        self.goaway_sid = None
        self.last_sid = 0
        self.goaway_epoch = srv._goaway_epoch
        self.filter = _GoawayFilter(preface=24)
        cfg = h2.config.H2Configuration(client_side=False, header_encoding="utf-8",
                                        validate_inbound_headers=True)
        self.h2 = h2.connection.H2Connection(config=cfg)
        init = {}
        if srv.initial_window is not None:
            init[h2.settings.SettingCodes.INITIAL_WINDOW_SIZE] = srv.initial_window
        if srv.max_frame_size is not None:
            init[h2.settings.SettingCodes.MAX_FRAME_SIZE] = srv.max_frame_size
        if srv.enable_connect_protocol:
            init[h2.settings.SettingCodes.ENABLE_CONNECT_PROTOCOL] = 1
        if init:
            self.h2.local_settings = h2.settings.Settings(client=False, initial_values=init)

    def flush(self):
        data = self.h2.data_to_send()
        if data:
            self.sock.sendall(data)

    def run(self):
        self.h2.initiate_connection()
        data = self.h2.data_to_send()
        if self.srv.max_concurrent_streams is not None:
            # Sent in a SETTINGS frame of its own (in the same write), kept from h2: h2 would
            # make a stream over the limit a connection error, where servers refuse that
            # stream (RFC 9113 5.1.2 allows both); the limit is applied in _request.
            data += SettingsFrame(0, settings={
                SettingsFrame.MAX_CONCURRENT_STREAMS: self.srv.max_concurrent_streams}).serialize()
        self.sock.sendall(data)
        deadline = time.monotonic() + 600  # no connection outlives 10 minutes
        while not self.srv._stop.is_set() and time.monotonic() < deadline:
            wait = self._next_wait()
            pending = isinstance(self.sock, ssl.SSLSocket) and self.sock.pending()
            if not pending:
                r, _, _ = select.select([self.sock], [], [], wait)
            if pending or r:
                try:
                    data = self.sock.recv(65536)
                except (ssl.SSLError, OSError):
                    return
                if not data:
                    return
                n_goaways = len(self.filter.goaways)
                data = self.filter.feed(data)
                if len(self.filter.goaways) > n_goaways:
                    with self.srv._lock:
                        self.srv.goaways_received += len(self.filter.goaways) - n_goaways
                try:
                    events = self.h2.receive_data(data) if data else []
                except h2.exceptions.ProtocolError as e:
                    with self.srv._lock:
                        self.srv.protocol_errors.append(repr(e))
                    try:
                        self.flush()
                    except OSError:
                        pass
                    return
                with self.srv._lock:
                    self.srv.max_concurrent = max(self.srv.max_concurrent,
                                                  self.h2.open_inbound_streams)
                for ev in events:
                    try:
                        self._event(ev)
                    except h2.exceptions.ProtocolError as e:  # a stream closed meanwhile
                        self.srv.errors.append(f"conn {self.conn_id}: {e!r}")
                    if isinstance(ev, h2.events.ConnectionTerminated):
                        self.flush()
                        return
            if self.srv._goaway_epoch != self.goaway_epoch and self.goaway_sid is None:
                self._send_goaway(self.last_sid)
            self._tick()
            try:
                self.flush()
            except OSError:
                return
            if self.goaway_sid is not None and not any(
                    not st.finished for st in self.streams.values()):
                return

    def _next_wait(self):
        now = time.monotonic()
        wait = 0.05
        for st in self.streams.values():
            if st.finished:
                continue
            if st.respond_at is not None and not st.answered:
                wait = min(wait, max(0.0, st.respond_at - now))
            if st.answered and (st.out or st.gen or st.out_end) \
                    and self.h2.local_flow_control_window(st.req.stream_id) > 0:
                return 0.0
            if st.slow:
                wait = min(wait, 0.02)
        return wait

    # -- events
    def _event(self, ev):
        srv = self.srv
        if isinstance(ev, h2.events.RequestReceived):
            self._request(ev)
        elif isinstance(ev, h2.events.DataReceived):
            st = self.streams.get(ev.stream_id)
            if st is None:
                self.h2.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
                return
            if st.slow:
                st.unacked += ev.flow_controlled_length
            elif ev.flow_controlled_length:
                try:
                    self.h2.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
                except h2.exceptions.StreamClosedError:
                    pass
            if st.skip_body or st.finished:
                return
            if st.ws:
                self._ws_data(st, ev.data)
                return
            st.req.body += ev.data
        elif isinstance(ev, h2.events.TrailersReceived):
            st = self.streams.get(ev.stream_id)
            if st:
                st.req.trailers = list(ev.headers)
        elif isinstance(ev, h2.events.StreamEnded):
            st = self.streams.get(ev.stream_id)
            if st is None:
                return
            st.req.complete = True
            if st.ws:
                st.out_end = True
                return
            if st.slow and st.unacked:
                return  # answered once the body is all read (in _tick)
            self._schedule(st)
        elif isinstance(ev, h2.events.StreamReset):
            with srv._lock:
                srv.resets_received += 1
            st = self.streams.get(ev.stream_id)
            if st:
                st.req.reset = ev.error_code
                st.finished = True

    def _request(self, ev):
        srv = self.srv
        sid = ev.stream_id
        req = H2Request(self.conn_id, sid, list(ev.headers), srv._ctx is not None)
        st = _Stream(req)
        self.streams[sid] = st
        self.last_sid = max(self.last_sid, sid)
        self.nstreams += 1
        with srv._lock:
            srv.streams += 1
            srv.requests.append(req)
            refuse = srv.refuse_streams > 0
            if refuse:
                srv.refuse_streams -= 1
        if self.goaway_sid is not None and sid > self.goaway_sid:
            refuse = True
        limit = srv.max_concurrent_streams
        if limit is not None and sum(not x.finished for x in self.streams.values()) > limit:
            refuse = True
            with srv._lock:
                srv.over_limit += 1
        if refuse or st.route == "refuse":
            self._reset(st, h2.errors.ErrorCodes.REFUSED_STREAM)
            with srv._lock:
                srv.refused += 1
            return
        if srv.goaway_after and self.nstreams >= srv.goaway_after and self.goaway_sid is None:
            self._send_goaway(sid)
        if st.route == "reset" and st.opts.get("after", "headers") == "headers":
            self._reset(st, int(st.opts.get("code", 2)))
            return
        if req.method == "CONNECT":
            if req.protocol and srv.enable_connect_protocol:
                st.ws = "frames" if st.route == "ws-frames" else "raw"
                self.h2.send_headers(sid, [(":status", "200"), ("x-backend", srv.name)])
                st.answered = True
            else:
                self.h2.send_headers(sid, [(":status", "405"), ("x-backend", srv.name)],
                                     end_stream=True)
                st.finished = True
            return
        if st.route == "slowread":
            st.slow = max(1, int(st.opts.get("rate", 16384)))
        if (req.header("expect") or "").lower() == "100-continue" and not ev.stream_ended:
            if st.opts.get("expect") == "417":
                self.h2.send_headers(sid, [(":status", "417"), ("x-backend", srv.name),
                                           ("content-length", "0")], end_stream=True)
                st.answered = True
                st.skip_body = True
                st.finished = True
                try:
                    self.h2.reset_stream(sid, h2.errors.ErrorCodes.NO_ERROR)
                except h2.exceptions.ProtocolError:
                    pass
                return
            self.h2.send_headers(sid, [(":status", "100")])
        if ev.stream_ended:
            req.complete = True
            self._schedule(st)

    def _send_goaway(self, last_sid):
        # h2 treats a GOAWAY it sends as the end of the connection (it would refuse to
        # answer the streams before it), so the frame is written around it.
        self.goaway_sid = last_sid
        self.flush()
        self.sock.sendall(GoAwayFrame(0, last_stream_id=last_sid, error_code=0).serialize())
        with self.srv._lock:
            self.srv.goaways_sent += 1

    def _reset(self, st, code):
        try:
            self.h2.reset_stream(st.req.stream_id, code)
        except h2.exceptions.ProtocolError:
            pass
        st.finished = True

    def _schedule(self, st):
        delay = float(st.opts.get("delay", 0) or 0) / 1000.0
        st.respond_at = time.monotonic() + delay

    # -- answers
    def _answer(self, st):
        srv = self.srv
        req = st.req
        sid = req.stream_id
        st.answered = True
        head = req.method == "HEAD"
        trailers = None
        body = b""
        cl = True
        out = srv.respond(req) if srv.respond else None
        if out is not None:
            status, hdrs, body = out[0], out[1], out[2]
            trailers = out[3] if len(out) > 3 else None
            hdrs = list(hdrs.items()) if isinstance(hdrs, dict) else list(hdrs)
        else:
            status, hdrs = int(st.opts.get("status", 200)), []
            if st.route == "status" and st.args and st.args[0].isdigit():
                status = int(st.args[0])
            digest = hashlib.sha256(req.body).hexdigest()
            info = [("x-req-body-length", str(len(req.body))), ("x-req-body-sha256", digest)]
            if st.route == "bytes":
                n = int(st.opts.get("n", 0)) or int(float(st.opts.get("mib", 0)) * 1048576)
                st.gen = [0, n]
                hdrs = [("content-type", "application/octet-stream")]
                cl = st.opts.get("cl", "1") != "0"
                if cl:
                    hdrs.append(("content-length", str(n)))
                cl = False
            elif st.route in ("sink", "slowread"):
                body = b"ok\n"
                hdrs = [("content-type", "text/plain")] + info
            elif st.route == "inspect":
                body = json.dumps({
                    "method": req.method, "path": req.path, "authority": req.authority,
                    "scheme": req.scheme, "protocol": req.protocol, "headers": req.headers,
                    "trailers": req.trailers, "body_length": len(req.body),
                    "body_sha256": digest, "conn_id": req.conn_id, "stream_id": sid,
                    "tls": req.tls}).encode()
                hdrs = [("content-type", "application/json")]
            else:  # echo
                body = req.body
                hdrs = [("content-type", "application/octet-stream"),
                        ("x-req-method", req.method or ""), ("x-req-path", req.path or ""),
                        ("x-req-authority", req.authority or ""),
                        ("x-req-scheme", req.scheme or ""),
                        ("x-req-headers", json.dumps(req.headers))] + info
                if req.protocol:
                    hdrs.append(("x-req-protocol", req.protocol))
            te = (req.header("te") or "").lower()
            if "trailers" in te and st.opts.get("trailers", "1") != "0":
                trailers = [("x-trailer-backend", srv.name),
                            ("x-trailer-body-length", str(len(req.body)))]
                trailers += [("x-req-trailer-" + k, v) for k, v in req.trailers]
        if status in (204, 304) or 100 <= status < 200:
            body, cl, trailers, st.gen = b"", False, None, None
        hnames = {k.lower() for k, _ in hdrs}
        if cl and "content-length" not in hnames and status != 204:
            hdrs.append(("content-length", str(len(body))))
        if st.gen is not None and head:
            st.gen = None
        headers = [(":status", str(status)), ("x-backend", srv.name)] + \
            [(k.lower(), str(v)) for k, v in hdrs if k.lower() != "x-backend"]
        if head:
            body, trailers = b"", None
        if st.route == "reset" and st.opts.get("after") == "response":
            self.h2.send_headers(sid, headers)
            self._reset(st, int(st.opts.get("code", 2)))
            return
        no_body = not body and not st.gen and not trailers
        self.h2.send_headers(sid, headers, end_stream=no_body)
        if no_body:
            st.finished = True
            return
        if body:
            st.out.append(body)
        st.out_trailers = trailers
        st.out_end = True

    def _tick(self):
        now = time.monotonic()
        for sid, st in list(self.streams.items()):
            if st.finished:
                continue
            try:
                if st.slow and st.unacked:
                    credit = int(st.slow * (now - st.last_ack))
                    if credit > 0:
                        k = min(credit, st.unacked)
                        self.h2.acknowledge_received_data(k, sid)
                        st.unacked -= k
                        st.last_ack = now
                    if not st.unacked and st.req.complete and st.respond_at is None:
                        self._schedule(st)
                else:
                    st.last_ack = now
                if not st.answered and st.respond_at is not None and now >= st.respond_at:
                    self._answer(st)
                if st.answered and not st.finished:
                    self._pump(st)
            except (h2.exceptions.StreamClosedError, h2.exceptions.ProtocolError):
                st.finished = True
        if len(self.streams) > 64:  # forget finished streams (their requests stay recorded)
            for sid in [s for s, st in self.streams.items() if st.finished]:
                del self.streams[sid]

    def _pump(self, st):
        sid = st.req.stream_id
        cap = int(st.opts.get("chunk", 0) or 0) or 1 << 30
        for _ in range(64):  # bounded per tick; flush happens in between ticks
            room = min(self.h2.local_flow_control_window(sid), self.h2.max_outbound_frame_size,
                       cap)
            if room <= 0:
                return
            if st.out:
                piece = st.out[0]
                chunk, rest = piece[:room], piece[room:]
                if rest:
                    st.out[0] = rest
                else:
                    st.out.pop(0)
                self.h2.send_data(sid, chunk)
            elif st.gen and st.gen[1] > 0:
                k = min(room, st.gen[1])
                self.h2.send_data(sid, pattern_bytes(st.gen[0], k))
                st.gen[0] += k
                st.gen[1] -= k
            else:
                break
            data = self.h2.data_to_send()
            if data:
                self.sock.sendall(data)
        if st.out or (st.gen and st.gen[1] > 0) or not st.out_end:
            return
        if st.out_trailers:
            self.h2.send_headers(sid, st.out_trailers, end_stream=True)
        else:
            self.h2.end_stream(sid)
        st.finished = True

    # -- WebSocket over extended CONNECT
    def _ws_data(self, st, data):
        if st.ws == "raw":
            st.out.append(data)
            return
        st.wsbuf += data
        for _ in range(10000):
            fr = ws_parse_frame(st.wsbuf)
            if fr is None:
                return
            fin, opcode, payload, used = fr
            st.wsbuf = st.wsbuf[used:]
            st.out.append(ws_frame(opcode, payload, fin=fin))
            if opcode == 8:
                st.out_end = True
                return


# --------------------------------------------------------------------------- WebSocket frames

def ws_frame(opcode, payload, fin=True, mask=None):
    """One WebSocket frame; mask: 4 bytes (client frames) or None (server frames)."""
    b0 = (0x80 if fin else 0) | opcode
    n = len(payload)
    mbit = 0x80 if mask else 0
    if n < 126:
        head = bytes([b0, mbit | n])
    elif n < 65536:
        head = bytes([b0, mbit | 126]) + struct.pack("!H", n)
    else:
        head = bytes([b0, mbit | 127]) + struct.pack("!Q", n)
    if mask:
        payload = bytes(c ^ mask[i % 4] for i, c in enumerate(payload))
        head += mask
    return head + payload


def ws_parse_frame(buf):
    """(fin, opcode, unmasked payload, bytes used) of the first whole frame in buf, or None."""
    if len(buf) < 2:
        return None
    fin, opcode = bool(buf[0] & 0x80), buf[0] & 0x0F
    masked, n = bool(buf[1] & 0x80), buf[1] & 0x7F
    pos = 2
    if n == 126:
        if len(buf) < 4:
            return None
        n, pos = struct.unpack("!H", buf[2:4])[0], 4
    elif n == 127:
        if len(buf) < 10:
            return None
        n, pos = struct.unpack("!Q", buf[2:10])[0], 10
    mask = None
    if masked:
        if len(buf) < pos + 4:
            return None
        mask, pos = buf[pos:pos + 4], pos + 4
    if len(buf) < pos + n:
        return None
    payload = buf[pos:pos + n]
    if mask:
        payload = bytes(c ^ mask[i % 4] for i, c in enumerate(payload))
    return fin, opcode, payload, pos + n


# --------------------------------------------------------------------------- client

class H2Response:
    def __init__(self, stream_id):
        self.stream_id = stream_id
        self.status = None
        self.headers = []        # regular response headers (pseudo-headers left out)
        self.informational = []  # header lists of 1xx responses
        self.body = b""
        self.trailers = []
        self.ended = False       # END_STREAM received
        self.reset = None        # error code of a RST_STREAM received

    def header(self, name, default=None):
        for k, v in self.headers:
            if k == name.lower():
                return v
        return default

    def trailer(self, name, default=None):
        for k, v in self.trailers:
            if k == name.lower():
                return v
        return default

    @property
    def done(self):
        return self.ended or self.reset is not None

    def __repr__(self):
        return f"<H2Response stream={self.stream_id} {self.status} {len(self.body)}B" \
               f"{' reset=%s' % self.reset if self.reset is not None else ''}>"


class H2Client:
    """A blocking HTTP/2 client on python3-h2, for one connection.

        c = H2Client(port)                          # h2c, prior knowledge
        c = H2Client(port, tls=True)                # TLS, ALPN h2, no verification
        r = c.request("GET", "/echo", headers=[("te", "trailers")], body=b"x")
        sids = [c.start("GET", f"/delay?delay=100") for _ in range(10)]
        rs = c.wait(sids)                           # {sid: H2Response}
        sid = c.connect_ws("/ws"); c.send(sid, b"hi"); c.read(sid, 2)
        c.goaway                                    # (error code, last stream id) or None
                                                    # (GOAWAY frames are kept from h2, so
                                                    # streams up to the last id still end)
        c.remote_settings                           # the server's h2 settings
        c.close()

    Every wait is bounded by `timeout` (seconds; AssertionError when it expires). Request
    bodies are sent as the server's flow-control windows allow (`.blocked` counts the
    times the client had to wait for a window). Received data is acknowledged at once
    unless auto_ack=False (then call ack(sid, n)).
    """

    def __init__(self, port, host=LOOPBACK, tls=False, server_hostname="localhost",
                 timeout=10.0, settings=None, auto_ack=True, alpn=("h2",)):
        self.timeout = timeout
        self.auto_ack = auto_ack
        self.responses = {}
        self.goaway = None
        self._filter = _GoawayFilter()
        self.blocked = 0
        self.closed = False
        self.events = []
        raw = socket.create_connection((host, port), timeout=timeout)
        raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if tls:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
            ctx.set_alpn_protocols(list(alpn))
            try:
                self.sock = ctx.wrap_socket(raw, server_hostname=server_hostname)
            except BaseException:
                raw.close()
                raise
            self.alpn = self.sock.selected_alpn_protocol()
        else:
            self.sock = raw
            self.alpn = None
        cfg = h2.config.H2Configuration(client_side=True, header_encoding="utf-8")
        self.h2 = h2.connection.H2Connection(config=cfg)
        if settings:
            self.h2.local_settings = h2.settings.Settings(client=True, initial_values=settings)
        self.h2.initiate_connection()
        self._flush()
        self._settings_seen = False
        self.pump_until(lambda: self._settings_seen, what="the server's SETTINGS")

    remote_settings = property(lambda self: self.h2.remote_settings)

    def _flush(self):
        data = self.h2.data_to_send()
        if data:
            self.sock.sendall(data)

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    # -- reading
    def _pump_once(self, wait):
        if not (isinstance(self.sock, ssl.SSLSocket) and self.sock.pending()):
            r, _, _ = select.select([self.sock], [], [], wait)
            if not r:
                return
        try:
            data = self.sock.recv(65536)
        except (ConnectionError, ssl.SSLError):
            data = b""
        if not data:
            self.closed = True
            return
        data = self._filter.feed(data)
        if self._filter.goaways:
            code, last, _ = self._filter.goaways[-1]
            self.goaway = (code, last)
        for ev in self.h2.receive_data(data) if data else []:
            self.events.append(ev)
            self._event(ev)
        self._flush()

    def pump_until(self, cond, timeout=None, what="condition"):
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while not cond():
            if self.closed:
                if cond():
                    break
                raise ConnectionError(f"connection closed while waiting for {what}")
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"timed out waiting for {what}")
            self._pump_once(min(left, 0.2))
        return True

    def _event(self, ev):
        if isinstance(ev, h2.events.RemoteSettingsChanged):
            self._settings_seen = True
            return
        if isinstance(ev, h2.events.ConnectionTerminated):
            self.goaway = (ev.error_code, ev.last_stream_id)
            return
        sid = getattr(ev, "stream_id", None)
        r = self.responses.get(sid)
        if r is None:
            if isinstance(ev, h2.events.DataReceived) and ev.flow_controlled_length:
                self.h2.acknowledge_received_data(ev.flow_controlled_length, sid)
            return
        if isinstance(ev, h2.events.ResponseReceived):
            r.status = int(dict(ev.headers)[":status"])
            r.headers = [(k, v) for k, v in ev.headers if not k.startswith(":")]
        elif isinstance(ev, h2.events.InformationalResponseReceived):
            r.informational.append(list(ev.headers))
        elif isinstance(ev, h2.events.DataReceived):
            r.body += ev.data
            if self.auto_ack and ev.flow_controlled_length:
                try:
                    self.h2.acknowledge_received_data(ev.flow_controlled_length, sid)
                except h2.exceptions.StreamClosedError:
                    pass
        elif isinstance(ev, h2.events.TrailersReceived):
            r.trailers = list(ev.headers)
        elif isinstance(ev, h2.events.StreamEnded):
            r.ended = True
        elif isinstance(ev, h2.events.StreamReset):
            r.reset = ev.error_code

    def ack(self, sid, n):
        self.h2.acknowledge_received_data(n, sid)
        self._flush()

    # -- sending
    def start(self, method, path, headers=(), body=b"", trailers=None, authority="localhost",
              scheme=None, end=True, protocol=None):
        """Sends a request (the body as the windows allow, waiting for WINDOW_UPDATEs);
        returns its stream id. end=False leaves the stream open for send()/end()."""
        sid = self.h2.get_next_available_stream_id()
        if scheme is None:
            scheme = "https" if isinstance(self.sock, ssl.SSLSocket) else "http"
        hdrs = [(":method", method), (":scheme", scheme), (":authority", authority),
                (":path", path)]
        if protocol:
            hdrs.append((":protocol", protocol))
        hdrs += [(k.lower(), str(v)) for k, v in headers]
        self.responses[sid] = H2Response(sid)
        no_body = not body and not trailers and end
        self.h2.send_headers(sid, hdrs, end_stream=no_body)
        self._flush()
        if no_body:
            return sid
        if body:
            self.send(sid, body)
        if self.responses[sid].done:
            return sid
        if trailers:
            self.h2.send_headers(sid, [(k.lower(), str(v)) for k, v in trailers],
                                 end_stream=True)
            self._flush()
        elif end:
            self.end(sid)
        return sid

    def send(self, sid, data, end=False):
        view = memoryview(bytes(data))
        deadline = time.monotonic() + self.timeout
        while len(view):
            r = self.responses.get(sid)
            if r is not None and r.done:
                return  # answered or reset early (417, refused): stop sending
            room = min(self.h2.local_flow_control_window(sid), self.h2.max_outbound_frame_size)
            if room <= 0:
                self.blocked += 1
                if time.monotonic() > deadline:
                    raise AssertionError(f"stream {sid}: no window for {self.timeout}s")
                self._pump_once(0.05)
                if self.closed:
                    raise ConnectionError("connection closed while sending")
                continue
            self.h2.send_data(sid, view[:room].tobytes())
            view = view[room:]
            self._flush()
        if end:
            self.end(sid)

    def end(self, sid):
        try:
            self.h2.end_stream(sid)
        except h2.exceptions.StreamClosedError:
            return  # reset by the server meanwhile
        self._flush()

    def reset(self, sid, code=h2.errors.ErrorCodes.CANCEL):
        self.h2.reset_stream(sid, code)
        self._flush()

    def ping(self, data=b"12345678"):
        self.h2.ping(data)
        self._flush()

    # -- waiting
    def wait(self, sids, timeout=None):
        sids = list(sids)
        self.pump_until(lambda: all(self.responses[s].done for s in sids), timeout,
                        what=f"streams {sids}")
        return {s: self.responses[s] for s in sids}

    def request(self, method, path, headers=(), body=b"", trailers=None, timeout=None, **kw):
        sid = self.start(method, path, headers=headers, body=body, trailers=trailers, **kw)
        return self.wait([sid], timeout)[sid]

    def wait_headers(self, sid, timeout=None):
        r = self.responses[sid]
        self.pump_until(lambda: r.status is not None or r.done, timeout,
                        what=f"response headers on stream {sid}")
        return r

    def connect_ws(self, path="/ws", protocol="websocket", headers=(), timeout=None):
        """Extended CONNECT (RFC 8441): returns the stream id once the 2xx arrived (raises
        AssertionError with the status otherwise)."""
        hdrs = [("sec-websocket-version", "13")] + list(headers)
        sid = self.start("CONNECT", path, headers=hdrs, end=False, protocol=protocol)
        r = self.wait_headers(sid, timeout)
        assert r.status is not None and 200 <= r.status < 300, \
            f"extended CONNECT answered {r.status} (reset={r.reset})"
        return sid

    def read(self, sid, n, timeout=None):
        """Waits until at least n body bytes arrived on sid; returns and consumes them."""
        r = self.responses[sid]
        self.pump_until(lambda: len(r.body) >= n or r.done, timeout,
                        what=f"{n} bytes on stream {sid}")
        out, r.body = r.body[:n], r.body[n:]
        return out


def h2_request(port, method="GET", path="/", tls=False, **kw):
    """One request on a new connection; returns the H2Response."""
    with H2Client(port, tls=tls) as c:
        return c.request(method, path, **kw)


def make_cert(directory, cn="localhost"):
    """A self-signed ECDSA P-256 certificate for `cn`, 127.0.0.1 and ::1 (openssl req);
    returns (cert path, key path)."""
    import subprocess
    cert, key = os.path.join(directory, "h2.crt"), os.path.join(directory, "h2.key")
    r = subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-keyout", key, "-out", cert, "-days", "2", "-subj", f"/CN={cn}",
         "-addext", f"subjectAltName=DNS:{cn},IP:127.0.0.1,IP:::1"],
        capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    return cert, key


def b64(data):
    return base64.b64encode(data).decode()
