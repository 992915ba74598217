"""A gRPC-Web client as a browser's grpc-web library speaks it (grpc/grpc doc/PROTOCOL-WEB.md),
for tests of a proxy that translates gRPC-Web to gRPC (as Envoy's grpc_web filter does).

Wire format, as the spec says:
  - request: POST /pkg.Service/Method, content-type application/grpc-web+proto (binary)
    or application/grpc-web-text (the body base64), x-grpc-web: 1, x-user-agent:
    grpc-web-javascript/0.1, accept: the same content type, grpc-timeout if a deadline;
    body = gRPC frames: 1 flag byte (0 = data) + 4-byte big-endian length + message
  - response: HTTP 200, content-type application/grpc-web(-text)+proto; body = data frames,
    then one trailer frame (flag 0x80) whose payload is "key: value\\r\\n" lines
    (lower-case names, no terminating empty line) with grpc-status and grpc-message;
    a trailers-only answer carries grpc-status in the HTTP headers and no body.
  - text mode: the response body is base64 that may be padded at any chunk boundary
    (each flush is encoded on its own), so it is decoded piece by piece.

Functions:
  frame(message, flags=0) / trailer_frame({k: v})   encode one frame
  encode_messages(messages, text=False)            request body
  build_request(path, messages, text=False, metadata=(), timeout=None, authority=...)
                                                   -> (headers list, body bytes)
  decode_text(body)                                base64 with padding in the middle
  parse_frames(body)                               -> [(flags, payload)] (raises on a cut frame)
  parse_trailers(payload)                          -> {name: value}
  parse_response(body, text=False, headers=None)   -> GrpcWebResult (messages, trailers,
                                                   grpc_status, grpc_message)
  call(port, path, messages, text=False, http2=False, tls=False, ...) -> GrpcWebResult
                                                   over HTTP/1.1 (http.client) or HTTP/2
                                                   (h2_backend.H2Client)
"""
import base64
import binascii
import http.client
import ssl
import struct

DEFAULT_UA = "grpc-web-javascript/0.1"


def frame(message, flags=0):
    return struct.pack("!BI", flags, len(message)) + bytes(message)


def trailer_frame(trailers):
    payload = "".join(f"{k.lower()}: {v}\r\n" for k, v in dict(trailers).items()).encode()
    return frame(payload, 0x80)


def content_type(text=False):
    return "application/grpc-web-text" if text else "application/grpc-web+proto"


def encode_messages(messages, text=False):
    body = b"".join(frame(m) for m in messages)
    return base64.b64encode(body) if text else body


def build_request(path, messages, text=False, metadata=(), timeout=None,
                  authority="localhost"):
    """(headers, body) of a gRPC-Web POST as grpc-web's JS client sends it (the
    pseudo-header-free HTTP/1.1 form; for h2 the caller adds :method/:path/...)."""
    ct = content_type(text)
    headers = [("host", authority), ("content-type", ct), ("accept", ct),
               ("x-grpc-web", "1"), ("x-user-agent", DEFAULT_UA)]
    if timeout is not None:
        headers.append(("grpc-timeout", f"{max(1, int(timeout * 1000))}m"))
    headers += [(k.lower(), v) for k, v in metadata]
    return headers, encode_messages(messages, text)


def decode_text(body):
    """Decodes a grpc-web-text body: base64 pieces, each possibly padded ('=' may appear
    before the end). Whitespace is ignored."""
    data = b"".join(bytes(body).split())
    out = b""
    pos = 0
    while pos < len(data):
        # a piece ends after its padding, or at the end of the data
        end = pos
        while end < len(data) and data[end:end + 1] != b"=":
            end += 1
        while end < len(data) and data[end:end + 1] == b"=":
            end += 1
        piece = data[pos:end]
        if len(piece) % 4 and end == len(data) and not piece.endswith(b"="):
            piece += b"=" * (-len(piece) % 4)  # unpadded last piece (Envoy accepts it too)
        if len(piece) % 4:
            raise ValueError(f"base64 piece of {len(piece)} characters at {pos}")
        try:
            out += base64.b64decode(piece, validate=True)
        except binascii.Error as e:
            raise ValueError(f"bad base64 at {pos}: {e}") from None
        pos = end
    return out


def parse_frames(body):
    """[(flags, payload)] of a body made of whole frames; raises ValueError on a cut one."""
    out = []
    pos = 0
    body = bytes(body)
    while pos < len(body):
        if len(body) - pos < 5:
            raise ValueError(f"{len(body) - pos} bytes left, less than a frame header")
        flags, n = struct.unpack("!BI", body[pos:pos + 5])
        if len(body) - pos - 5 < n:
            raise ValueError(f"frame of {n} bytes cut after {len(body) - pos - 5}")
        out.append((flags, body[pos + 5:pos + 5 + n]))
        pos += 5 + n
    return out


def parse_trailers(payload):
    """The trailer frame's "key: value\\r\\n" lines -> {lower-case key: value}."""
    out = {}
    for line in payload.decode("latin-1").split("\r\n"):
        if not line:
            continue
        k, sep, v = line.partition(":")
        if not sep:
            raise ValueError(f"trailer line without ':': {line!r}")
        out[k.strip().lower()] = v.strip()
    return out


class GrpcWebResult:
    def __init__(self):
        self.http_status = None
        self.headers = {}         # response headers, lower-case
        self.messages = []        # data frames' payloads
        self.trailers = {}        # from the trailer frame (or the headers, trailers-only)
        self.trailer_frames = 0   # how many frames had flag 0x80 (must be 1, last)
        self.frames_after_trailer = 0
        self.raw = b""            # the body as received

    @property
    def grpc_status(self):
        v = self.trailers.get("grpc-status")
        return int(v) if v is not None else None

    @property
    def grpc_message(self):
        return self.trailers.get("grpc-message")

    def __repr__(self):
        return f"<GrpcWebResult http={self.http_status} grpc-status={self.grpc_status} " \
               f"{self.grpc_message!r} messages={self.messages!r}>"


def parse_response(body, text=False, headers=None):
    res = GrpcWebResult()
    res.raw = bytes(body)
    res.headers = {k.lower(): v for k, v in (headers or {}).items()}
    data = decode_text(body) if text else bytes(body)
    seen_trailer = False
    for flags, payload in parse_frames(data):
        if seen_trailer:
            res.frames_after_trailer += 1
        if flags & 0x80:
            res.trailer_frames += 1
            seen_trailer = True
            res.trailers.update(parse_trailers(payload))
        else:
            res.messages.append(payload)
    if not res.trailer_frames and "grpc-status" in res.headers:  # trailers-only
        res.trailers = {k: v for k, v in res.headers.items() if k.startswith("grpc-")}
    return res


def call(port, path, messages=(), text=False, http2=False, tls=False, host="127.0.0.1",
         metadata=(), timeout=10.0, grpc_timeout=None, authority="localhost"):
    """One gRPC-Web call (HTTP/1.1 by default, HTTP/2 with http2=True); GrpcWebResult."""
    headers, body = build_request(path, messages, text, metadata, grpc_timeout, authority)
    if http2:
        from h2_backend import H2Client
        with H2Client(port, host=host, tls=tls, timeout=timeout) as c:
            hdrs = [(k, v) for k, v in headers if k != "host"]
            hdrs.append(("content-length", str(len(body))))
            r = c.request("POST", path, headers=hdrs, body=body, authority=authority)
        res = parse_response(r.body, text, dict(r.headers))
        res.http_status = r.status
        # a trailers-only answer over h2 may come as HEADERS with END_STREAM
        if res.grpc_status is None and r.trailers:
            res.trailers = dict(r.trailers)
        return res
    if tls:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        conn = http.client.HTTPSConnection(host, port, timeout=timeout, context=ctx)
    else:
        conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        conn.putrequest("POST", path, skip_host=True, skip_accept_encoding=True)
        for k, v in headers:
            conn.putheader(k, v)
        conn.putheader("content-length", str(len(body)))
        conn.endheaders(body)
        resp = conn.getresponse()
        data = resp.read()
        res = parse_response(data, text, {k.lower(): v for k, v in resp.getheaders()})
        res.http_status = resp.status
        return res
    finally:
        conn.close()
