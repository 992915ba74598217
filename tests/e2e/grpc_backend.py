"""A gRPC server and client for the end-to-end tests, on Debian's python3-grpcio, without
protoc: messages are raw bytes (no serializers), so whatever a test sends comes back.

    srv = GrpcBackend(name="a").start()          # plaintext h2c; tls=(cert, key) for TLS
    srv.address, srv.port, srv.calls, srv.metadata, srv.peers, srv.health
    c = GrpcClient(srv.address)                  # or a Strata listener's address
    r = c.unary(b"hi", metadata=[("x-k", "v")])  # GrpcResult: .code, .details, .response(s),
                                                 # .initial, .trailing (metadata dicts)

Fixture (conftest.py): `grpc_origin(name=..., tls=False)`.

Service `strata.test.Echo` (full method names `/strata.test.Echo/<Method>`):
  Unary          returns the request message
  ClientStream   returns the messages received, concatenated
  ServerStream   returns `x-count` (metadata, default 3) messages b"<i>:" + request,
                 with `x-interval-ms` (default 0) between them
  Bidi           returns each message as it arrives (b"echo:" + message)
  Sleep          sleeps `x-sleep-ms` (metadata) or int(request) ms, in 10 ms steps that stop
                 when the call is cancelled or its deadline passes (.cancelled counts
                 those); returns b"slept"
  Fail           aborts with status `x-status` (int, default 3 INVALID_ARGUMENT), details
                 `x-details` (default "failed on purpose"), trailing metadata
                 x-fail-reason: test and x-fail-bin (binary, b"\\x00\\x01\\x02")
Every call gets initial metadata `x-backend: NAME` and trailing metadata
`x-backend-trailer: NAME` (Fail: in its trailers too). The deadline the server saw is in
.deadlines (seconds left when the call started, None without a deadline).

`grpc.health.v1.Health/Check`: HealthCheckResponse written by hand (field 1 varint:
1 SERVING, 2 NOT_SERVING) for the service named in the request (field 1 string; "" = the
server); .health maps service -> status, {"": 1, "strata.test.Echo": 1} by default; an
unknown service answers NOT_FOUND as the protocol says.

GrpcClient(address, tls_root=None, authority=None, options=()) calls any of them:
unary, client_stream, server_stream, bidi, sleep, fail, health, cancel_server_stream,
call (any method path, unary), each returning a GrpcResult; `timeout` (seconds) sets the
deadline. HTTP proxies from the environment are ignored (grpc.enable_http_proxy 0).
"""
import threading
import time
from concurrent import futures

import grpc

SERVICE = "strata.test.Echo"
HEALTH = "grpc.health.v1.Health"


def _md(context):
    return {k: v for k, v in context.invocation_metadata()}


def health_request(service=""):
    """HealthCheckRequest {string service = 1} as protobuf bytes."""
    b = service.encode()
    return (b"\x0a" + _varint(len(b)) + b) if b else b""


def health_response(status):
    """HealthCheckResponse {ServingStatus status = 1} as protobuf bytes (1 = SERVING)."""
    return b"\x08" + _varint(status)


def _varint(n):
    out = b""
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out += bytes([b | 0x80])
        else:
            return out + bytes([b])


def parse_varint(buf, pos=0):
    shift = n = 0
    while True:
        b = buf[pos]
        n |= (b & 0x7F) << shift
        pos += 1
        if not b & 0x80:
            return n, pos
        shift += 7


def parse_health_request(data):
    """The `service` field of a HealthCheckRequest ("" when absent)."""
    pos = 0
    service = ""
    while pos < len(data):
        tag, pos = parse_varint(data, pos)
        field, wt = tag >> 3, tag & 7
        if wt == 2:
            n, pos = parse_varint(data, pos)
            if field == 1:
                service = data[pos:pos + n].decode()
            pos += n
        elif wt == 0:
            _, pos = parse_varint(data, pos)
        else:
            raise ValueError(f"unexpected wire type {wt}")
    return service


def parse_health_response(data):
    """The `status` of a HealthCheckResponse (0 UNKNOWN when absent)."""
    pos = 0
    status = 0
    while pos < len(data):
        tag, pos = parse_varint(data, pos)
        if tag == 0x08:
            status, pos = parse_varint(data, pos)
        else:
            raise ValueError(f"unexpected tag {tag}")
    return status


class GrpcBackend:
    def __init__(self, name="grpc", tls=None, port=0, host="127.0.0.1", workers=16):
        self.name = name
        self.tls = tls
        self.host = host
        self.port = port
        self.calls = {}          # method name -> count
        self.metadata = []       # (method, {key: value}) per call, in order
        self.peers = []          # context.peer() per call
        self.deadlines = []      # time_remaining() at the start of each call
        self.cancelled = 0       # Sleep calls that stopped because of cancel/deadline
        self.health = {"": 1, SERVICE: 1}
        self._lock = threading.Lock()
        self._server = grpc.server(futures.ThreadPoolExecutor(max_workers=workers),
                                   options=[("grpc.so_reuseport", 0)])
        h = grpc.method_handlers_generic_handler
        self._server.add_generic_rpc_handlers((
            h(SERVICE, {
                "Unary": grpc.unary_unary_rpc_method_handler(self._unary),
                "ClientStream": grpc.stream_unary_rpc_method_handler(self._client_stream),
                "ServerStream": grpc.unary_stream_rpc_method_handler(self._server_stream),
                "Bidi": grpc.stream_stream_rpc_method_handler(self._bidi),
                "Sleep": grpc.unary_unary_rpc_method_handler(self._sleep),
                "Fail": grpc.unary_unary_rpc_method_handler(self._fail),
            }),
            h(HEALTH, {"Check": grpc.unary_unary_rpc_method_handler(self._check)}),
        ))

    def start(self):
        addr = f"{self.host}:{self.port}"
        if self.tls:
            with open(self.tls[0], "rb") as f:
                cert = f.read()
            with open(self.tls[1], "rb") as f:
                key = f.read()
            creds = grpc.ssl_server_credentials([(key, cert)])
            self.port = self._server.add_secure_port(addr, creds)
        else:
            self.port = self._server.add_insecure_port(addr)
        assert self.port, f"gRPC server could not bind {addr}"
        self._server.start()
        return self

    def stop(self, grace=0):
        self._server.stop(grace).wait(5)

    @property
    def address(self):
        return f"{self.host}:{self.port}"

    # -- handlers
    def _begin(self, method, context):
        with self._lock:
            self.calls[method] = self.calls.get(method, 0) + 1
            self.metadata.append((method, _md(context)))
            self.peers.append(context.peer())
            self.deadlines.append(context.time_remaining())
        context.send_initial_metadata((("x-backend", self.name),))
        context.set_trailing_metadata((("x-backend-trailer", self.name),))

    def _unary(self, request, context):
        self._begin("Unary", context)
        return request

    def _client_stream(self, request_iterator, context):
        self._begin("ClientStream", context)
        return b"".join(request_iterator)

    def _server_stream(self, request, context):
        self._begin("ServerStream", context)
        md = _md(context)
        count = int(md.get("x-count", 3))
        interval = int(md.get("x-interval-ms", 0)) / 1000.0
        for i in range(count):
            if not context.is_active():
                return
            yield f"{i}:".encode() + request
            if interval:
                time.sleep(interval)

    def _bidi(self, request_iterator, context):
        self._begin("Bidi", context)
        for m in request_iterator:
            yield b"echo:" + m

    def _sleep(self, request, context):
        self._begin("Sleep", context)
        md = _md(context)
        ms = int(md.get("x-sleep-ms") or (request.decode() if request else "0") or 0)
        end = time.monotonic() + ms / 1000.0
        while time.monotonic() < end:
            if not context.is_active():
                with self._lock:
                    self.cancelled += 1
                return b""
            time.sleep(0.01)
        return b"slept"

    def _fail(self, request, context):
        self._begin("Fail", context)
        md = _md(context)
        code = int(md.get("x-status", 3))
        details = md.get("x-details", "failed on purpose")
        context.set_trailing_metadata((("x-backend-trailer", self.name),
                                       ("x-fail-reason", "test"),
                                       ("x-fail-bin", b"\x00\x01\x02")))
        status = next(s for s in grpc.StatusCode if s.value[0] == code)
        context.abort(status, details)

    def _check(self, request, context):
        self._begin("Check", context)
        service = parse_health_request(request)
        if service not in self.health:
            context.abort(grpc.StatusCode.NOT_FOUND, f"unknown service {service!r}")
        return health_response(self.health[service])


# --------------------------------------------------------------------------- client

class GrpcResult:
    def __init__(self):
        self.code = None          # grpc.StatusCode
        self.details = None
        self.response = None      # unary responses
        self.responses = []       # streamed responses
        self.initial = {}         # initial metadata
        self.trailing = {}        # trailing metadata
        self.elapsed = None

    @property
    def ok(self):
        return self.code == grpc.StatusCode.OK

    def __repr__(self):
        return f"<GrpcResult {self.code} {self.details!r} {self.response!r} {self.responses!r}>"


class GrpcClient:
    def __init__(self, address, tls_root=None, authority=None, options=()):
        opts = [("grpc.enable_http_proxy", 0), ("grpc.enable_retries", 0)] + list(options)
        if authority:
            opts.append(("grpc.default_authority", authority))
        if tls_root:
            with open(tls_root, "rb") as f:
                creds = grpc.ssl_channel_credentials(root_certificates=f.read())
            if authority:
                opts.append(("grpc.ssl_target_name_override", authority.split(":")[0]))
            self.channel = grpc.secure_channel(address, creds, options=opts)
        else:
            self.channel = grpc.insecure_channel(address, options=opts)

    def close(self):
        self.channel.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def _finish(self, res, call, t0):
        res.elapsed = time.monotonic() - t0
        try:
            res.initial = dict(call.initial_metadata() or ())
            res.trailing = dict(call.trailing_metadata() or ())
            res.code = call.code()
            res.details = call.details()
        except grpc.RpcError:
            pass
        return res

    def call(self, method, request=b"", metadata=(), timeout=10.0):
        """A unary call to any method path ("/pkg.Service/Method")."""
        res = GrpcResult()
        t0 = time.monotonic()
        fn = self.channel.unary_unary(method)
        try:
            res.response, call = fn.with_call(request, metadata=list(metadata), timeout=timeout)
        except grpc.RpcError as e:
            call = e
        return self._finish(res, call, t0)

    def unary(self, request=b"hello", metadata=(), timeout=10.0):
        return self.call(f"/{SERVICE}/Unary", request, metadata, timeout)

    def sleep(self, ms, timeout=10.0, metadata=()):
        return self.call(f"/{SERVICE}/Sleep", str(ms).encode(), metadata, timeout)

    def fail(self, code=3, details="failed on purpose", timeout=10.0):
        return self.call(f"/{SERVICE}/Fail", b"",
                         [("x-status", str(code)), ("x-details", details)], timeout)

    def health(self, service="", timeout=10.0):
        """GrpcResult with .serving = the status number (1 SERVING) when OK."""
        res = self.call(f"/{HEALTH}/Check", health_request(service), (), timeout)
        res.serving = parse_health_response(res.response) if res.ok else None
        return res

    def client_stream(self, requests, metadata=(), timeout=10.0):
        res = GrpcResult()
        t0 = time.monotonic()
        fn = self.channel.stream_unary(f"/{SERVICE}/ClientStream")
        try:
            res.response, call = fn.with_call(iter(list(requests)), metadata=list(metadata),
                                              timeout=timeout)
        except grpc.RpcError as e:
            call = e
        return self._finish(res, call, t0)

    def server_stream(self, request=b"hi", count=3, interval_ms=0, metadata=(), timeout=10.0):
        res = GrpcResult()
        t0 = time.monotonic()
        fn = self.channel.unary_stream(f"/{SERVICE}/ServerStream")
        md = [("x-count", str(count)), ("x-interval-ms", str(interval_ms))] + list(metadata)
        call = fn(request, metadata=md, timeout=timeout)
        try:
            for m in call:
                res.responses.append(m)
        except grpc.RpcError:
            pass
        return self._finish(res, call, t0)

    def bidi(self, requests, metadata=(), timeout=10.0):
        """Sends the messages one at a time, each after the previous answer arrived (a real
        ping-pong, so a proxy that buffers the whole stream would hang until the deadline)."""
        res = GrpcResult()
        t0 = time.monotonic()
        fn = self.channel.stream_stream(f"/{SERVICE}/Bidi")
        requests = list(requests)
        turn = threading.Semaphore(1)

        def gen():
            for m in requests:
                if not turn.acquire(timeout=timeout):
                    return
                yield m

        call = fn(gen(), metadata=list(metadata), timeout=timeout)
        try:
            for m in call:
                res.responses.append(m)
                turn.release()
        except grpc.RpcError:
            pass
        return self._finish(res, call, t0)

    def cancel_server_stream(self, after=1, count=1000, interval_ms=20, timeout=10.0):
        """Starts ServerStream, reads `after` messages, cancels: .code is CANCELLED."""
        res = GrpcResult()
        t0 = time.monotonic()
        fn = self.channel.unary_stream(f"/{SERVICE}/ServerStream")
        call = fn(b"c", metadata=[("x-count", str(count)), ("x-interval-ms", str(interval_ms))],
                  timeout=timeout)
        try:
            for m in call:
                res.responses.append(m)
                if len(res.responses) >= after:
                    call.cancel()
                    break
        except grpc.RpcError:
            pass
        return self._finish(res, call, t0)
