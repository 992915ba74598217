"""mode: http — request smuggling: Strata's HTTP/1.1 front must never let a second, hidden
request reach a server. Each case sends raw bytes (in one write, and for some split into
small writes), then checks both ends:
  the client   the exact list of statuses (400, or 501/505/414/431 where that is the right
               answer), nothing else on the wire, and Strata closing after an error answer;
  the origin   the exact list of (method, path, body) it received, and for attacks that the
               bytes of the smuggled "GET /admin" never reached it at all, not even in part.
Valid messages that look alike (chunked with extensions and trailers, tab as OWS, repeated
equal Content-Lengths, keep-alive, bodies holding request-like text) must keep working, so
the suite cannot pass by refusing everything."""
import socket
import threading
import time

import pytest

from conftest import LOOPBACK, free_port
from http_backend import HttpBackend, http_config

SMUG = b"GET /admin HTTP/1.1\r\nHost: x\r\n\r\n"  # the request an attack tries to hide
READ_LIMIT = 1 << 16  # more than any expected answer: an answer loop shows as overflow
TIMEOUT = 3.0  # per conversation; Strata answers every case here within milliseconds
SETTLE = 0.3  # after the client is done: time for late bytes to reach the origin
LIMITS = "max_request_line: 1k\nmax_header_size: 4k\nmax_headers: 20"


# --------------------------------------------------------------------------- the origin

class RecordingSocket:
    """A socket whose received bytes are also appended to `sink` (all of them, even those
    of a request the origin never completes)."""

    def __init__(self, sock, sink):
        self._sock = sock
        self._sink = sink

    def recv(self, n):
        data = self._sock.recv(n)
        self._sink += data
        return data

    def __getattr__(self, name):
        return getattr(self._sock, name)


class RawOrigin(HttpBackend):
    """HttpBackend that also keeps every byte received, per connection."""

    def __init__(self, **kw):
        super().__init__(**kw)
        self.raw = []
        self._raw_lock = threading.Lock()

    def _handle(self, sock):
        sink = bytearray()
        with self._raw_lock:
            self.raw.append(sink)
        super()._handle(RecordingSocket(sock, sink))

    def raw_bytes(self):
        with self._raw_lock:
            return b"".join(bytes(b) for b in self.raw)

    def seen(self):
        return [(r.method, r.path, r.body) for r in self.requests]


@pytest.fixture
def proxy(strata):
    """(Strata's port, the origin): a `mode: http` listener with small head limits."""
    origin = RawOrigin(name="o").start()
    try:
        port = free_port()
        cfg = http_config(port, {"app": {"servers": [origin.address]}}, http_extra=LIMITS)
        strata(cfg, listen_ports=[port])
        yield port, origin
    finally:
        origin.stop()


# --------------------------------------------------------------------------- the client

def converse(port, raw, split=None, pause=0.002):
    """Sends `raw` (in one write, or in pieces of `split` bytes `pause` s apart), then reads
    until Strata closes, READ_LIMIT bytes, or TIMEOUT. Returns (bytes, how it ended):
    "eof" or "reset" (closed by Strata), "timeout" or "limit" (not closed)."""
    s = socket.create_connection((LOOPBACK, port), timeout=TIMEOUT)
    try:
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            if split is None:
                s.sendall(raw)
            else:
                for i in range(0, len(raw), split):  # bounded by len(raw)
                    s.sendall(raw[i:i + split])
                    time.sleep(pause)
        except (BrokenPipeError, ConnectionResetError):
            pass  # Strata answered and closed before the rest: what it sent is still read
        out = b""
        deadline = time.monotonic() + TIMEOUT
        for _ in range(READ_LIMIT):  # each pass reads >= 1 byte or returns
            left = deadline - time.monotonic()
            if left <= 0:
                return out, "timeout"
            s.settimeout(left)
            try:
                chunk = s.recv(65536)
            except socket.timeout:
                return out, "timeout"
            except ConnectionResetError:
                return out, "reset"
            if not chunk:
                return out, "eof"
            out += chunk
            if len(out) > READ_LIMIT:
                return out, "limit"
        return out, "limit"
    finally:
        s.close()


def split_responses(data):
    """Every response in `data` as (status, headers (lowercase names), body), and the bytes
    left that do not make a complete response."""
    out = []
    for _ in range(1000):  # bounded: far more than any case answers
        head, sep, rest = data.partition(b"\r\n\r\n")
        if not sep:
            break
        lines = head.decode("latin-1").split("\r\n")
        parts = lines[0].split(" ", 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/") or not parts[1].isdigit():
            break
        headers = {}
        for ln in lines[1:]:
            k, _, v = ln.partition(":")
            headers.setdefault(k.strip().lower(), v.strip())
        if "content-length" in headers:
            n = int(headers["content-length"])
            if len(rest) < n:
                break
            body, rest = rest[:n], rest[n:]
        elif headers.get("transfer-encoding", "").lower() == "chunked":
            body, rest = _dechunk(rest)
            if body is None:
                break
        else:
            body, rest = rest, b""  # until close
        out.append((int(parts[1]), headers, body))
        data = rest
    return out, data


def _dechunk(data):
    body = b""
    for _ in range(10000):
        line, sep, data = data.partition(b"\r\n")
        if not sep:
            return None, b""
        n = int(line.split(b";")[0], 16)
        if n == 0:
            end = data.find(b"\r\n\r\n") if not data.startswith(b"\r\n") else -2
            return (body, data[end + 4:]) if end != -1 else (None, b"")
        body += data[:n]
        data = data[n + 2:]
    return None, b""


def check_client(data, how, statuses):
    """The client got exactly `statuses`, nothing more; an error answer (the last, when its
    status is >= 400) says Connection: close and the connection is then closed."""
    resps, rest = split_responses(data)
    got = [r[0] for r in resps]
    assert got == statuses and rest == b"", (
        f"client got statuses {got} (expected {statuses}), ended by {how}, "
        f"bytes: {data[:700]!r}")
    assert how in ("eof", "reset"), f"Strata did not close the connection ({how}): {data[:300]!r}"
    if statuses and statuses[-1] >= 400:
        assert resps[-1][1].get("connection", "").lower() == "close", resps[-1][1]
    return resps


def check_origin(origin, expected, forbidden=b"/admin"):
    """The origin received exactly `expected` [(method, path, body)], in order, and no byte
    of `forbidden` reached it."""
    origin.wait_requests(len(expected), timeout=TIMEOUT)
    time.sleep(SETTLE)  # anything more in flight lands now
    assert origin.seen() == expected, (
        f"origin received {origin.seen()} (expected {expected}); raw: "
        f"{origin.raw_bytes()[:700]!r}")
    if forbidden:
        raw = origin.raw_bytes()
        assert forbidden not in raw, f"{forbidden!r} reached the origin: {raw[:700]!r}"


# --------------------------------------------------------------------------- the cases

def post(fields, body=b"", line=b"POST / HTTP/1.1", host=True):
    """A request from its parts: `fields` are raw field lines without CRLF."""
    head = line + b"\r\n" + (b"Host: x\r\n" if host else b"")
    return head + b"".join(f + b"\r\n" for f in fields) + b"\r\n" + body


def chunk(data, ext=b""):
    return b"%x%s\r\n%s\r\n" % (len(data), ext, data)


def cl(body):
    return b"Content-Length: %d" % len(body)


TE = b"Transfer-Encoding: chunked"
ZERO_SMUG = b"0\r\n\r\n" + SMUG  # ends a chunked body, then the hidden request
SMUG_CHUNKED = chunk(SMUG) + b"0\r\n\r\n"  # the hidden request as chunk data
CLOSE = b"Connection: close"


class Case:
    """One vector: raw bytes, the statuses the client must get, what the origin must
    receive, and the bytes that must never reach it (None: none checked)."""

    def __init__(self, cid, raw, statuses=(400,), origin=(), forbidden=b"/admin", marks=(),
                 check=None):
        self.id = cid
        self.raw = raw
        self.statuses = list(statuses)
        self.origin = list(origin)
        self.forbidden = forbidden
        self.marks = marks
        self.check = check  # extra check on the origin's recorded requests

    def param(self):
        return pytest.param(self, id=self.id, marks=self.marks)


def one_cl_header(value):
    def check(reqs):
        assert [r.header_all("content-length") for r in reqs][:1] == [[value]], reqs[0].headers
        assert reqs[0].header("transfer-encoding") is None
    return check


def rechunked(reqs):
    assert reqs[0].header_all("transfer-encoding") == ["chunked"], reqs[0].headers
    assert reqs[0].header("content-length") is None


def host_is(value):
    def check(reqs):
        assert reqs[0].header_all("host") == [value], reqs[0].headers
    return check


BIG_EXT = b";" + b"e" * 2000  # longer than H1_MAX_CHUNK_LINE (1024)

ATTACKS = [
    # -- CL.TE and TE.CL: both framings in one request
    Case("cl-te", post([cl(ZERO_SMUG), TE], ZERO_SMUG)),
    Case("te-cl", post([TE, b"Content-Length: 4"], SMUG_CHUNKED)),
    Case("te-cl-zero", post([TE, b"Content-Length: 0"], SMUG_CHUNKED)),
    Case("cl-te-keepalive-first", post([b"Connection: keep-alive", cl(ZERO_SMUG), TE], ZERO_SMUG)),
    # -- TE.TE: obfuscated Transfer-Encoding
    Case("te-xchunked", post([b"Transfer-Encoding: xchunked"], ZERO_SMUG), statuses=[501]),
    Case("te-xchunked-with-cl", post([b"Transfer-Encoding: xchunked", cl(ZERO_SMUG)],
                                     ZERO_SMUG)),
    Case("te-space-before-colon", post([b"Transfer-Encoding : chunked", cl(ZERO_SMUG)],
                                       ZERO_SMUG)),
    Case("te-space-before-colon-alone", post([b"Transfer-Encoding : chunked"], ZERO_SMUG)),
    Case("te-chunked-identity", post([b"Transfer-Encoding: chunked, identity"], ZERO_SMUG)),
    Case("te-identity-chunked", post([b"Transfer-Encoding: identity, chunked"], ZERO_SMUG),
         statuses=[501]),
    Case("te-chunked-chunked", post([b"Transfer-Encoding: chunked, chunked"], ZERO_SMUG)),
    Case("te-two-fields", post([TE, TE], ZERO_SMUG)),
    Case("te-two-fields-chunked-then-identity",
         post([TE, b"Transfer-Encoding: identity"], ZERO_SMUG)),
    Case("te-two-fields-gzip-then-chunked",
         post([b"Transfer-Encoding: gzip", TE], ZERO_SMUG), statuses=[501]),
    Case("te-obs-fold-continuation", post([TE, b" identity"], ZERO_SMUG)),
    Case("te-obs-fold-value", post([b"Transfer-Encoding:", b" chunked", cl(ZERO_SMUG)],
                                   ZERO_SMUG)),
    Case("te-vertical-tab", post([b"Transfer-Encoding:\x0bchunked", cl(ZERO_SMUG)], ZERO_SMUG)),
    Case("te-vertical-tab-after", post([b"Transfer-Encoding: chunked\x0b"], ZERO_SMUG)),
    Case("te-nul", post([b"Transfer-Encoding: chunked\x00", cl(ZERO_SMUG)], ZERO_SMUG)),
    Case("te-quoted", post([b'Transfer-Encoding: "chunked"'], ZERO_SMUG)),
    Case("te-chunked-with-parameter", post([b"Transfer-Encoding: chunked;q=1"], ZERO_SMUG)),
    Case("te-empty", post([b"Transfer-Encoding:", cl(ZERO_SMUG)], ZERO_SMUG)),
    Case("te-in-http10", post([TE], ZERO_SMUG, line=b"POST / HTTP/1.0", host=False)),
    # -- Content-Length
    Case("cl-two-different", post([b"Content-Length: 5", b"Content-Length: 6"], b"hello!" + SMUG)),
    Case("cl-list-different", post([b"Content-Length: 5, 6"], b"hello!" + SMUG)),
    Case("cl-plus", post([b"Content-Length: +5"], b"hello" + SMUG)),
    Case("cl-minus", post([b"Content-Length: -1"], SMUG)),
    Case("cl-hex", post([b"Content-Length: 0x5"], b"hello" + SMUG)),
    Case("cl-inner-space", post([b"Content-Length:  5 5"], b"hello" + SMUG)),
    Case("cl-20-digits", post([b"Content-Length: 99999999999999999999"], SMUG)),
    Case("cl-2-pow-64", post([b"Content-Length: 18446744073709551621"], b"hello" + SMUG)),
    Case("cl-empty", post([b"Content-Length:"], SMUG)),
    Case("cl-only-commas", post([b"Content-Length: , ,"], SMUG)),
    # -- chunked bodies: the head is fine, the framing is not (a first chunk may already
    #    have gone to the server: it must never see the request complete)
    Case("chunk-size-overflow", post([TE], chunk(b"hello") + b"fffffffffffffffff\r\n" + SMUG)),
    Case("chunk-size-2-pow-64", post([TE], b"10000000000000005\r\nhello\r\n0\r\n\r\n" + SMUG)),
    Case("chunk-size-negative", post([TE], b"-5\r\nhello\r\n" + ZERO_SMUG)),
    Case("chunk-size-0x", post([TE], b"0x5\r\nhello\r\n" + ZERO_SMUG)),
    Case("chunk-size-plus", post([TE], b"+5\r\nhello\r\n" + ZERO_SMUG)),
    Case("chunk-size-leading-space", post([TE], b" 5\r\nhello\r\n" + ZERO_SMUG)),
    Case("chunk-size-junk", post([TE], chunk(b"hello") + b"5junk\r\nhello\r\n" + ZERO_SMUG)),
    Case("chunk-size-space-junk", post([TE], b"5 junk\r\nhello\r\n" + ZERO_SMUG)),
    Case("chunk-size-empty", post([TE], b"\r\nhello\r\n" + ZERO_SMUG)),
    Case("chunk-data-no-crlf", post([TE], b"5\r\nhelloXX" + ZERO_SMUG)),
    Case("chunk-data-longer-than-size", post([TE], b"3\r\nhello\r\n" + ZERO_SMUG)),
    Case("chunk-data-bare-lf", post([TE], b"5\r\nhello\n" + ZERO_SMUG)),
    Case("chunk-size-bare-lf", post([TE], b"5\nhello\r\n" + ZERO_SMUG)),
    Case("chunk-last-bare-lf", post([TE], chunk(b"hello") + b"0\n\n" + SMUG)),
    Case("chunk-ext-huge", post([TE], chunk(b"hello", BIG_EXT) + ZERO_SMUG)),
    Case("chunk-ext-bare-lf", post([TE], b"5;a=b\nhello\r\n" + ZERO_SMUG)),
    Case("chunk-ext-bare-cr", post([TE], b"5;a=b\rhello\r\n" + ZERO_SMUG)),
    Case("chunk-trailer-bare-lf", post([TE], chunk(b"hello") + b"0\r\nX-T: 1\n\r\n" + SMUG)),
    Case("chunk-trailer-obs-fold",
         post([TE], chunk(b"hello") + b"0\r\nX-T: 1\r\n 2\r\n\r\n" + SMUG)),
    # -- the head: line endings, field syntax, request line
    Case("head-bare-lf", b"GET / HTTP/1.1\nHost: x\n\n" + SMUG),
    Case("head-bare-lf-one-field", b"GET / HTTP/1.1\r\nHost: x\nX: y\r\n\r\n" + SMUG),
    Case("head-bare-lf-end", b"GET / HTTP/1.1\r\nHost: x\r\n\n" + SMUG),
    Case("head-bare-cr-field", b"GET / HTTP/1.1\r\nHost: x\rX: y\r\n\r\n" + SMUG),
    Case("head-bare-cr-request-line", b"GET /\r HTTP/1.1\r\nHost: x\r\n\r\n" + SMUG),
    Case("head-obs-fold", post([b"X-Foo: a", b" b", cl(SMUG)], SMUG)),
    Case("head-obs-fold-tab", post([b"X-Foo: a", b"\tb"]) + SMUG),
    Case("name-space-before-colon", post([b"X-Foo : bar"]) + SMUG),
    Case("name-space-inside", post([b"X Foo: bar"]) + SMUG),
    Case("name-empty", post([b": bar"]) + SMUG),
    Case("name-non-token", post([b"X(Foo): bar"]) + SMUG),
    Case("value-nul", post([b"X-Foo: a\x00b"]) + SMUG),
    Case("method-non-token", b"G(ET / HTTP/1.1\r\nHost: x\r\n\r\n" + SMUG),
    Case("method-at-sign", b"GE@T / HTTP/1.1\r\nHost: x\r\n\r\n" + SMUG),
    Case("request-line-two-spaces", b"GET  / HTTP/1.1\r\nHost: x\r\n\r\n" + SMUG),
    Case("request-line-trailing-space", b"GET / HTTP/1.1 \r\nHost: x\r\n\r\n" + SMUG),
    Case("request-line-tab", b"GET\t/ HTTP/1.1\r\nHost: x\r\n\r\n" + SMUG),
    Case("target-nul", b"GET /\x00 HTTP/1.1\r\nHost: x\r\n\r\n" + SMUG),
    Case("absolute-form-other-host", b"GET http://a.example/x HTTP/1.1\r\nHost: b.example\r\n\r\n"
         + SMUG),
    Case("host-missing", post([b"Content-Length: 0"], host=False) + SMUG),
    Case("host-twice-same", post([b"Host: x"]) + SMUG),
    Case("host-twice-different", post([b"Host: y"]) + SMUG),
    Case("version-1.2", b"GET / HTTP/1.2\r\nHost: x\r\n\r\n" + SMUG, statuses=[505]),
    Case("version-2.0", b"GET / HTTP/2.0\r\nHost: x\r\n\r\n" + SMUG, statuses=[505]),
    Case("version-garbage", b"GET / HTTP/1.x\r\nHost: x\r\n\r\n" + SMUG),
    Case("request-line-too-long", b"GET /" + b"a" * 1100 + b" HTTP/1.1\r\nHost: x\r\n\r\n" + SMUG,
         statuses=[414]),
    Case("head-too-large", post([b"X-Big: " + b"b" * 4200]) + SMUG, statuses=[431]),
    Case("too-many-fields", post([b"X-%d: v" % i for i in range(25)]) + SMUG, statuses=[431]),
    # -- pipelined: a valid request, then an attack. The first is answered and forwarded,
    #    the second refused; nothing of it reaches the server.
    Case("pipelined-then-cl-te", b"GET /first HTTP/1.1\r\nHost: x\r\n\r\n"
         + post([cl(ZERO_SMUG), TE], ZERO_SMUG), statuses=[200, 400],
         origin=[("GET", "/first", b"")]),
    Case("pipelined-then-bare-lf", b"GET /first HTTP/1.1\r\nHost: x\r\n\r\n"
         + b"GET / HTTP/1.1\nHost: x\n\n" + SMUG, statuses=[200, 400],
         origin=[("GET", "/first", b"")]),
    Case("pipelined-then-two-hosts", b"GET /first HTTP/1.1\r\nHost: x\r\n\r\n"
         + post([b"Host: y"]) + SMUG, statuses=[200, 400], origin=[("GET", "/first", b"")]),
    Case("pipelined-then-bad-chunk", post([TE], chunk(b"hello") + b"0\r\n\r\n")
         + post([TE], b"zz\r\n" + ZERO_SMUG), statuses=[200, 400],
         origin=[("POST", "/", b"hello")]),
    # -- Transfer_Encoding is just another field: the body ends where Strata says it does
    Case("te-underscore-no-cl", post([b"Transfer_Encoding: chunked"], chunk(b"hello") + ZERO_SMUG),
         statuses=[200, 400], origin=[("POST", "/", b"")]),
]

VALID = [
    Case("valid-te-tab-ows", post([b"Transfer-Encoding:\tchunked", CLOSE], chunk(b"hello")
                                  + b"0\r\n\r\n"), statuses=[200], origin=[("POST", "/", b"hello")],
         check=rechunked),
    Case("valid-te-uppercase", post([b"Transfer-Encoding: CHUNKED", CLOSE], chunk(b"hello")
                                    + b"0\r\n\r\n"), statuses=[200],
         origin=[("POST", "/", b"hello")], check=rechunked),
    Case("valid-cl-repeated-equal", post([b"Content-Length: 5", b"Content-Length: 5", CLOSE],
                                         b"hello"), statuses=[200],
         origin=[("POST", "/", b"hello")], check=one_cl_header("5")),
    Case("valid-cl-list-equal", post([b"Content-Length: 5, 5", CLOSE], b"hello"), statuses=[200],
         origin=[("POST", "/", b"hello")], check=one_cl_header("5")),
    Case("valid-te-underscore-with-cl", post([b"Content-Length: 5", b"Transfer_Encoding: chunked",
                                              CLOSE], b"0\r\n\r\n"), statuses=[200],
         origin=[("POST", "/", b"0\r\n\r\n")], check=one_cl_header("5")),
    Case("valid-chunked-extensions-trailers",
         post([TE], chunk(b"hello", b";a=b;c=\"q;\\\"x\"") + chunk(b" world", b" ; flag")
              + b"0;last\r\nX-Trailer: t\r\nX-Other: u\r\n\r\n")
         + b"GET /next HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
         statuses=[200, 200], origin=[("POST", "/", b"hello world"), ("GET", "/next", b"")],
         check=rechunked),
    Case("valid-cl-keepalive", post([b"Content-Length: 3"], b"one") + post([b"Content-Length: 3"],
                                                                           b"two")
         + post([b"Content-Length: 5", CLOSE], b"three"), statuses=[200, 200, 200],
         origin=[("POST", "/", b"one"), ("POST", "/", b"two"), ("POST", "/", b"three")],
         check=one_cl_header("3")),
    Case("valid-get-with-body-then-pipelined",
         b"GET /a HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello"
         + b"GET /b HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
         statuses=[200, 200], origin=[("GET", "/a", b"hello"), ("GET", "/b", b"")],
         check=one_cl_header("5")),
    Case("valid-body-looks-like-request-cl", post([cl(SMUG), CLOSE], SMUG), statuses=[200],
         origin=[("POST", "/", SMUG)], forbidden=None, check=one_cl_header(str(len(SMUG)))),
    Case("valid-body-looks-like-request-chunked", post([TE, CLOSE], SMUG_CHUNKED),
         statuses=[200], origin=[("POST", "/", SMUG)], forbidden=None, check=rechunked),
    Case("valid-body-looks-like-cl-te", post([cl(ZERO_SMUG), CLOSE], ZERO_SMUG), statuses=[200],
         origin=[("POST", "/", ZERO_SMUG)], forbidden=None),
    # a field named in Connection is hop-by-hop, but never the framing: the body stays body
    Case("valid-connection-names-content-length",
         post([cl(SMUG), b"Connection: Content-Length, close"], SMUG), statuses=[200],
         origin=[("POST", "/", SMUG)], forbidden=None, check=one_cl_header(str(len(SMUG)))),
    Case("valid-connection-names-transfer-encoding",
         post([TE, b"Connection: Transfer-Encoding, close"], SMUG_CHUNKED), statuses=[200],
         origin=[("POST", "/", SMUG)], forbidden=None, check=rechunked),
    # framing fields in trailers are dropped, never passed on
    Case("valid-trailer-framing-fields-dropped",
         post([TE, CLOSE], chunk(b"hello") + b"0\r\nContent-Length: 99\r\n"
              b"Transfer-Encoding: gzip\r\nX-Kept: k\r\n\r\n"),
         statuses=[200], origin=[("POST", "/", b"hello")], forbidden=b"Content-Length: 99",
         check=rechunked),
    Case("valid-absolute-form-same-host",
         b"GET http://a.example/x HTTP/1.1\r\nHost: A.example:80\r\nConnection: close\r\n\r\n",
         statuses=[200], origin=[("GET", "/x", b"")], check=host_is("a.example")),
    Case("valid-leading-empty-line", b"\r\nGET /e HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
         statuses=[200], origin=[("GET", "/e", b"")]),
]

CASES = {c.id: c for c in ATTACKS + VALID}
assert len(CASES) == len(ATTACKS) + len(VALID), "case ids must be unique"

# the vectors also sent byte by byte or in small pieces: head, body and pipelined errors
SPLIT_IDS = ["cl-te", "te-cl", "te-obs-fold-continuation", "head-bare-lf",
             "head-bare-cr-field", "chunk-size-overflow", "chunk-data-no-crlf",
             "chunk-ext-bare-lf", "host-twice-same", "pipelined-then-cl-te",
             "pipelined-then-bad-chunk", "valid-chunked-extensions-trailers",
             "valid-get-with-body-then-pipelined", "valid-body-looks-like-request-chunked",
             "valid-connection-names-content-length"]


def run_case(proxy, case, split=None):
    port, origin = proxy
    data, how = converse(port, case.raw, split=split)
    check_client(data, how, case.statuses)
    check_origin(origin, case.origin, case.forbidden)
    if case.check:
        case.check(origin.requests)


@pytest.mark.parametrize("case", [c.param() for c in ATTACKS + VALID])
def test_one_write(proxy, case):
    run_case(proxy, case)


@pytest.mark.parametrize("split", [1, 5])
@pytest.mark.parametrize("case", [CASES[i].param() for i in SPLIT_IDS])
def test_small_writes(proxy, case, split):
    run_case(proxy, case, split=split)


def test_good_and_bad_on_one_connection(proxy):
    """A guard for the suite itself: on one connection, two good requests are answered and
    forwarded, then a bad one is refused, so neither a Strata that refuses everything nor
    one that refuses nothing passes."""
    port, origin = proxy
    data, how = converse(port, b"GET /ok HTTP/1.1\r\nHost: x\r\n\r\n"
                         b"POST /ok2 HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nhi"
                         b"GET /bad HTTP/1.1\r\n\r\n")
    check_client(data, how, [200, 200, 400])
    check_origin(origin, [("GET", "/ok", b""), ("POST", "/ok2", b"hi")])
