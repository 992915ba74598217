"""mode: http — the HTTP/1.1 session: proxying, keep-alive both sides, pipelining, bodies
(length, chunked, until close) both ways, 100-continue, HEAD/204/304, HTTP/1.0 clients,
WebSocket upgrade, timeouts and the answers Strata makes (408, 502, 503, 504), the access
log and the HTTP metrics."""
import http.client
import json
import socket
import threading
import time

import pytest

from conftest import LOOPBACK, connect, free_port, wait_for
from http_backend import CLOSE, http_config, http_request, parse_response


def run_http(strata, backends, routes=None, http_extra="", admin=False, **kw):
    port = free_port()
    admin_port = free_port() if admin else None
    cfg = http_config(port, backends, routes=routes, admin_port=admin_port,
                      http_extra=http_extra, **kw)
    s = strata(cfg, listen_ports=[port], admin_port=admin_port)
    return s, port, admin_port


def one(backend, extra=""):
    return {"app": {"servers": [backend.address], "extra": extra}}


def test_get_through_proxy_with_keepalive_reuse(strata, origin):
    a = origin()
    s, port, _ = run_http(strata, one(a), http_extra="access_log: { format: json }")
    conn = http.client.HTTPConnection(LOOPBACK, port, timeout=5)
    for i in range(20):
        conn.request("GET", f"/item/{i}?q=1", headers={"X-Test": "yes"})
        r = conn.getresponse()
        assert r.status == 200
        assert r.read() == f"GET /item/{i}?q=1\n".encode()
        assert r.getheader("x-backend") == "a"
    conn.close()
    assert len(a.requests) == 20
    # one client connection, two workers at most: the server saw few connections
    assert a.connections <= 2, a.connections
    req = a.requests[0]
    assert req.header("host") == f"{LOOPBACK}:{port}"
    assert req.header("x-test") == "yes"
    assert req.header("x-forwarded-for") == LOOPBACK
    assert req.header("x-request-id")
    lines = wait_for(lambda: (lambda ls: ls if len(ls) >= 20 else None)(
        [json.loads(ln) for ln in s.stdout().splitlines() if ln.startswith("{")]), 5,
        what="20 access log lines")
    e = lines[0]
    assert e["method"] == "GET" and e["path"] == "/item/0" and e["status"] == 200
    assert e["backend"] == "app" and e["server"] == a.address and e["end"] == "ok"
    assert e["request_id"] == req.header("x-request-id")


def test_upstream_connections_reused_across_clients(strata, origin):
    a = origin()
    s, port, _ = run_http(strata, one(a), workers=1)
    for i in range(30):
        conn = http.client.HTTPConnection(LOOPBACK, port, timeout=5)
        conn.request("GET", f"/{i}")
        assert conn.getresponse().read() == f"GET /{i}\n".encode()
        conn.close()
    assert len(a.requests) == 30
    assert a.connections == 1, f"{a.connections} upstream connections for 30 clients"


def test_pipelined_requests_answered_in_order(strata, origin):
    a = origin()
    s, port, _ = run_http(strata, one(a))
    raw = b"".join(f"GET /p{i} HTTP/1.1\r\nHost: x\r\n\r\n".encode() for i in range(10))
    raw += b"GET /last HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    out = parse_response(http_request(port, raw))
    assert [r[2] for r in out] == [f"GET /p{i}\n".encode() for i in range(10)] + [b"GET /last\n"]


def test_chunked_request_and_response(strata, origin):
    def respond(req):
        body = req.body[::-1]
        chunks = b"".join(b"%x\r\n%s\r\n" % (len(body[i:i + 7]), body[i:i + 7])
                          for i in range(0, len(body), 7))
        return (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + chunks +
                b"0\r\nX-Trailer: t\r\n\r\n")

    a = origin(respond=respond)
    s, port, _ = run_http(strata, one(a))
    payload = bytes(range(256)) * 100
    chunks = b"".join(b"%x;ext=1\r\n%s\r\n" % (len(payload[i:i + 1000]), payload[i:i + 1000])
                      for i in range(0, len(payload), 1000))
    raw = (b"POST /up HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
           b"Connection: close\r\n\r\n" + chunks + b"0\r\n\r\n")
    got = http_request(port, raw)
    out = parse_response(got)
    assert len(out) == 1 and out[0][0] == 200
    assert out[0][2] == payload[::-1]
    assert got.endswith(b"\r\n0\r\nX-Trailer: t\r\n\r\n")  # trailers passed on
    assert a.requests[0].body == payload
    assert a.requests[0].header("transfer-encoding") == "chunked"


def test_large_body_streams_both_ways(strata, origin):
    big = b"x" * (8 << 20)

    def respond(req):
        return 200, {}, big

    a = origin(respond=respond)
    s, port, _ = run_http(strata, one(a))
    conn = http.client.HTTPConnection(LOOPBACK, port, timeout=20)
    body = b"y" * (5 << 20)
    conn.request("PUT", "/big", body=body)
    r = conn.getresponse()
    assert r.status == 200
    assert r.read() == big
    assert a.requests[0].body == body


def test_response_until_close_is_rechunked(strata, origin):
    a = origin(respond=lambda req: b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nuntil-close-body")
    # the backend handler returns, so it closes after writing: a body delimited by close
    s, port, _ = run_http(strata, one(a))
    conn = http.client.HTTPConnection(LOOPBACK, port, timeout=5)
    conn.request("GET", "/")
    r = conn.getresponse()
    assert r.status == 200 and r.getheader("transfer-encoding") == "chunked"
    assert r.read() == b"until-close-body"
    conn.request("GET", "/again")  # the client connection stays usable
    assert conn.getresponse().read() == b"until-close-body"


def test_expect_100_continue(strata, origin):
    a = origin()
    s, port, _ = run_http(strata, one(a))
    c = socket.create_connection((LOOPBACK, port), timeout=5)
    c.sendall(b"POST /e HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n")
    got = c.recv(4096)
    assert got.startswith(b"HTTP/1.1 100 Continue\r\n\r\n"), got
    c.sendall(b"hello")
    data = got[len(b"HTTP/1.1 100 Continue\r\n\r\n"):]
    deadline = time.monotonic() + 5
    while b"POST /e" not in data and time.monotonic() < deadline:
        data += c.recv(4096)
    assert b"200" in data and b"POST /e" in data
    assert a.requests[0].body == b"hello"
    assert a.requests[0].header("expect") is None


def test_head_204_304_have_no_body(strata, origin):
    def respond(req):
        if req.path == "/204":
            return b"HTTP/1.1 204 No Content\r\n\r\n"
        if req.path == "/304":
            return b"HTTP/1.1 304 Not Modified\r\nETag: \"x\"\r\n\r\n"
        return 200, {}, b"0123456789"

    a = origin(respond=respond)
    s, port, _ = run_http(strata, one(a))
    conn = http.client.HTTPConnection(LOOPBACK, port, timeout=5)
    conn.request("HEAD", "/h")
    r = conn.getresponse()
    assert r.status == 200 and r.read() == b"" and r.getheader("content-length") == "10"
    for path, status in (("/204", 204), ("/304", 304)):
        conn.request("GET", path)
        r = conn.getresponse()
        assert r.status == status and r.read() == b""
    conn.request("GET", "/after")
    assert conn.getresponse().read() == b"0123456789"


def test_http10_client(strata, origin):
    a = origin(respond=lambda req: (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                                    b"5\r\nhello\r\n0\r\n\r\n"))
    s, port, _ = run_http(strata, one(a))
    out = http_request(port, b"GET /old HTTP/1.0\r\n\r\n")
    head, _, body = out.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200")
    assert b"chunked" not in head.lower()
    assert body == b"hello"  # raw, delimited by the close
    assert a.requests[0].version == "HTTP/1.1" and a.requests[0].header("host") == ""


def test_websocket_echo_through_proxy(strata):
    import asyncio
    websockets = pytest.importorskip("websockets")

    async def echo(ws, path=None):
        async for msg in ws:
            await ws.send(msg)

    async def scenario():
        server = await websockets.serve(echo, LOOPBACK, 0)
        try:
            wport = server.sockets[0].getsockname()[1]
            port = free_port()
            strata(http_config(port, {"ws": {"servers": [f"{LOOPBACK}:{wport}"]}}),
                   listen_ports=[port])
            async with websockets.connect(f"ws://{LOOPBACK}:{port}/chat", open_timeout=5,
                                          max_size=None) as ws:
                for i in range(50):
                    await ws.send(f"message {i}")
                    assert await asyncio.wait_for(ws.recv(), 5) == f"message {i}"
                await ws.send(b"\x00" * 100000)
                assert await asyncio.wait_for(ws.recv(), 5) == b"\x00" * 100000
        finally:
            server.close()
            await server.wait_closed()

    asyncio.run(asyncio.wait_for(scenario(), 30))


def test_request_header_timeout_answers_408(strata, origin):
    a = origin()
    s, port, _ = run_http(strata, one(a), http_extra="request_header_timeout: 500ms")
    c = socket.create_connection((LOOPBACK, port), timeout=5)
    c.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n")  # slowloris: never finishes the head
    t0 = time.monotonic()
    data = b""
    while time.monotonic() - t0 < 5:
        chunk = c.recv(4096)
        if not chunk:
            break
        data += chunk
    assert data.startswith(b"HTTP/1.1 408"), data
    assert time.monotonic() - t0 < 3
    assert a.requests == []


def test_idle_keepalive_closed_silently(strata, origin):
    a = origin()
    s, port, _ = run_http(strata, one(a), http_extra="keepalive_timeout: 500ms")
    c = socket.create_connection((LOOPBACK, port), timeout=5)
    c.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    data = b""
    for _ in range(20):  # the head and the body may come in separate reads
        data += c.recv(4096)
        if data.endswith(b"GET /\n"):
            break
    assert data.startswith(b"HTTP/1.1 200") and data.endswith(b"GET /\n")
    t0 = time.monotonic()
    assert c.recv(4096) == b""
    assert 0.3 < time.monotonic() - t0 < 3


def test_no_server_answers_503_and_dead_server_502(strata, origin):
    dead = f"{LOOPBACK}:{free_port()}"
    s, port, _ = run_http(strata, {"app": {"servers": [dead]}})
    out = parse_response(http_request(port, b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"))
    assert out[0][0] in (502, 503), out
    assert b"server" in out[0][2]


def test_response_timeout_answers_504(strata, origin):
    def slow(req):
        time.sleep(3)
        return 200, {}, b"late"

    a = origin(respond=slow)
    s, port, _ = run_http(strata, one(a), http_extra="response_timeout: 500ms")
    t0 = time.monotonic()
    out = parse_response(http_request(
        port, b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"))
    assert out[0][0] == 504, out
    assert time.monotonic() - t0 < 2.5


def test_invalid_response_answers_502(strata, origin):
    a = origin(respond=lambda req: b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n")
    s, port, _ = run_http(strata, one(a))
    out = parse_response(http_request(port, b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n"))
    assert out[0][0] == 502


def test_retry_on_other_server_when_one_is_dead(strata, origin):
    a = origin("a")
    dead = f"{LOOPBACK}:{free_port()}"
    s, port, _ = run_http(strata, {"app": {"servers": [dead, a.address]}})
    conn = http.client.HTTPConnection(LOOPBACK, port, timeout=5)
    for i in range(20):
        conn.request("GET", f"/{i}")
        r = conn.getresponse()
        assert r.status == 200, r.read()
        r.read()
    assert len(a.requests) == 20


def test_reset_before_response_retried_for_get(strata, origin):
    calls = {"n": 0}

    def flaky(req):
        calls["n"] += 1
        return CLOSE if calls["n"] == 1 else (200, {}, b"second try")

    a = origin("a", respond=flaky)
    b = origin("b", respond=lambda req: (200, {}, b"from b"))
    s, port, _ = run_http(strata, {"app": {"servers": [a.address, b.address]}}, workers=1,
                          routes="- backend: app\n  retry: { tries: 3, on: [reset] }")
    conn = http.client.HTTPConnection(LOOPBACK, port, timeout=5)
    conn.request("GET", "/r")
    r = conn.getresponse()
    assert r.status == 200
    assert r.read() in (b"second try", b"from b")


def test_metrics_count_requests_and_classes(strata, origin):
    a = origin(respond=lambda req: (404 if req.path == "/missing" else 200, {}, b"x"))
    s, port, admin = run_http(strata, one(a), admin=True)
    conn = http.client.HTTPConnection(LOOPBACK, port, timeout=5)
    for path in ("/a", "/b", "/missing"):
        conn.request("GET", path)
        conn.getresponse().read()
    m = s.metrics(admin)
    assert m.get("strata_listener_http_requests_total", listener="web") == 3
    assert m.get("strata_listener_http_responses_total", listener="web", code="2xx") == 2
    assert m.get("strata_listener_http_responses_total", listener="web", code="4xx") == 1
    assert m.get("strata_server_http_requests_total", backend="app", server=a.address) == 3


def test_connection_limits_apply_to_http_listeners(strata, origin):
    a = origin()
    s, port, admin = run_http(strata, one(a), admin=True,
                              listener_extra="max_connections: 2")
    held = [socket.create_connection((LOOPBACK, port), timeout=5) for _ in range(2)]
    for c in held:  # both served
        c.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        assert c.recv(4096).startswith(b"HTTP/1.1 200")
    wait_for(lambda: s.metrics(admin).get("strata_listener_connections_active",
                                          listener="web") == 2, 5)
    extra = connect(port)
    try:
        extra.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        got = extra.recv(4096)
    except (ConnectionResetError, BrokenPipeError):
        got = b""
    assert got == b"", got  # refused: reset or closed, never answered
    assert s.metrics(admin).get("strata_listener_connections_rejected_total", listener="web") == 1
    for c in held:
        c.close()


def test_http_health_check_takes_a_server_out_and_back(strata, origin):
    state = {"healthy": True}

    def respond_a(req):
        if req.path == "/healthz":
            return (200 if state["healthy"] else 503), {}, b"health"
        return 200, {}, b"from a"

    a = origin("a", respond=respond_a)
    b = origin("b", respond=lambda req: (200, {}, b"from b"))
    hc = "health_check: { type: http, path: /healthz, interval: 200ms, timeout: 500ms, rise: 1, fall: 1 }"
    s, port, admin = run_http(strata, {"app": {"servers": [("a", a.address), ("b", b.address)],
                                               "extra": hc}}, admin=True)
    wait_for(lambda: any(r.path == "/healthz" for r in a.requests), 5, what="a check")
    state["healthy"] = False
    s.wait_log(r"server app/a is DOWN: .*status 503", timeout=5)
    conn = http.client.HTTPConnection(LOOPBACK, port, timeout=5)
    for i in range(10):
        conn.request("GET", f"/{i}")
        assert conn.getresponse().read() == b"from b"
    state["healthy"] = True
    s.wait_log(r"server app/a is UP", timeout=5)
    got = set()
    for i in range(10):
        conn.request("GET", f"/{i}")
        got.add(conn.getresponse().read())
    assert got == {b"from a", b"from b"}
    check = next(r for r in a.requests if r.path == "/healthz")
    assert check.method == "GET" and check.header("host") == a.address


def test_passive_check_on_5xx(strata, origin):
    a = origin("a", respond=lambda req: (500, {}, b"broken"))
    b = origin("b", respond=lambda req: (200, {}, b"fine"))
    s, port, _ = run_http(strata, {"app": {"servers": [("a", a.address), ("b", b.address)],
                                           "extra": "passive: { fall: 3, cooldown: 30s, http_5xx: true }"}},
                          workers=1)
    conn = http.client.HTTPConnection(LOOPBACK, port, timeout=5)
    bodies = []
    for i in range(20):
        conn.request("GET", f"/{i}")
        bodies.append(conn.getresponse().read())
    s.wait_log(r"server app/a is DOWN", timeout=5)
    assert bodies.count(b"broken") == 3, bodies  # the 3 answers that took it out
    assert all(x == b"fine" for x in bodies[6:])


def test_max_request_body_answers_413(strata, origin):
    a = origin()
    s, port, _ = run_http(strata, one(a), http_extra="max_request_body: 1k")
    out = parse_response(http_request(
        port, b"POST /big HTTP/1.1\r\nHost: x\r\nContent-Length: 2000\r\n\r\n" + b"x" * 2000))
    assert [r[0] for r in out] == [413]
    chunk = b"%x\r\n%s\r\n" % (600, b"y" * 600)
    out = parse_response(http_request(
        port, b"POST /chunked HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" +
        chunk * 2 + b"0\r\n\r\n"))
    assert [r[0] for r in out] == [413]
    ok = parse_response(http_request(
        port, b"POST /small HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello"))
    assert [r[0] for r in ok] == [200]
    assert [r.path for r in a.requests if r.path != "/chunked"] == ["/small"]


def test_request_timeout_bounds_the_whole_exchange(strata, origin):
    def trickle(req):
        return (b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n" + b"x" * 10)  # never ends

    a = origin(respond=trickle)
    s, port, _ = run_http(strata, one(a), http_extra="request_timeout: 700ms")
    t0 = time.monotonic()
    got = http_request(port, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", timeout=5)
    took = time.monotonic() - t0
    assert got.startswith(b"HTTP/1.1 200") and len(got.split(b"\r\n\r\n", 1)[1]) == 10
    assert took < 3, took  # cut: the client sees a short body and the close


def test_retry_on_503_goes_to_another_server(strata, origin):
    a = origin("a", respond=lambda req: (503, {}, b"busy"))
    b = origin("b", respond=lambda req: (200, {}, b"from b"))
    s, port, admin = run_http(strata, {"app": {"servers": [a.address, b.address]}}, admin=True,
                              routes="- backend: app\n  retry: { tries: 2, on: [503] }")
    conn = http.client.HTTPConnection(LOOPBACK, port, timeout=5)
    for i in range(10):
        conn.request("GET", f"/{i}")
        r = conn.getresponse()
        assert (r.status, r.read()) == (200, b"from b")
    conn.request("POST", "/not-idempotent", body=b"x")
    r = conn.getresponse()
    assert r.status in (200, 503)  # a POST is never retried: whichever server it met
    r.read()
    assert s.metrics(admin).get("strata_listener_http_retries_total", listener="web") >= 1


def test_failover_while_a_server_is_killed(strata, origin):
    """Idempotent requests keep succeeding while one of two servers dies mid-run."""
    a = origin("a")
    b = origin("b")
    s, port, _ = run_http(strata, {"app": {"servers": [a.address, b.address]}})
    results, errors = [], []

    def client(n):
        conn = http.client.HTTPConnection(LOOPBACK, port, timeout=5)
        for i in range(n):
            try:
                conn.request("GET", f"/{i}")
                r = conn.getresponse()
                results.append(r.status)
                r.read()
            except Exception as e:  # any client-visible failure is the test failing
                errors.append(repr(e))
                conn = http.client.HTTPConnection(LOOPBACK, port, timeout=5)
            time.sleep(0.002)

    threads = [threading.Thread(target=client, args=(300,)) for _ in range(4)]
    for t in threads:
        t.start()
    time.sleep(0.3)
    a.stop()  # closes its listener and every connection, in the middle of the run
    for t in threads:
        t.join(30)
    assert not errors, errors[:5]
    assert len(results) == 1200 and set(results) == {200}, set(results)
    assert b.requests and len(a.requests) < 1200


def test_drain_finishes_the_exchange_in_flight_and_closes_idle_ones(strata, origin):
    import signal

    def slow(req):
        time.sleep(1.0)
        return 200, {}, b"finished"

    a = origin(respond=slow)
    s, port, _ = run_http(strata, one(a), drain="5s")
    idle = http.client.HTTPConnection(LOOPBACK, port, timeout=5)
    idle.request("GET", "/warm")
    idle.getresponse().read()  # now an idle keep-alive connection
    busy = socket.create_connection((LOOPBACK, port), timeout=5)
    busy.sendall(b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
    wait_for(lambda: len(a.requests) >= 2, 5, what="the slow request at the origin")
    t0 = time.monotonic()
    s.send_signal(signal.SIGTERM)
    data = b""
    for _ in range(50):
        chunk = busy.recv(4096)
        if not chunk:
            break
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200") and body == b"finished", data
    assert b"connection: close" in head.lower()  # told not to send more
    assert idle.sock.recv(10) == b""  # the idle one was closed at once
    rc, clean = s.stop(signal.SIGTERM, timeout=10)
    assert rc == 0 and clean and time.monotonic() - t0 < 4


def test_connect_method_refused(strata, origin):
    a = origin()
    s, port, _ = run_http(strata, one(a))
    out = parse_response(http_request(
        port, b"CONNECT db.internal:5432 HTTP/1.1\r\nHost: db.internal:5432\r\n\r\n"))
    assert [r[0] for r in out] == [501]
    assert a.requests == []


def test_early_answer_does_not_reuse_the_server_connection(strata, backends):
    """A server that answers before reading the whole request body still expects body
    bytes on that connection: it must never carry another request."""
    seen = []  # (connection number, bytes received after the head)

    def handler(sock):
        n = len(seen)
        seen.append([n, b""])
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(4096)
            if not chunk:
                return
            data += chunk
        head, _, rest = data.partition(b"\r\n\r\n")
        if head.startswith(b"POST"):
            sock.sendall(b"HTTP/1.1 413 Too Big\r\nContent-Length: 3\r\n\r\nbig")
        else:
            sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        seen[n][1] += rest
        sock.settimeout(2)
        try:
            while True:
                chunk = sock.recv(4096)
                if not chunk:
                    return
                seen[n][1] += chunk
        except OSError:
            return

    srv = backends.threaded(handler)
    port = free_port()
    strata(http_config(port, {"app": {"servers": [srv.address]}}, workers=1),
           listen_ports=[port])
    c = socket.create_connection((LOOPBACK, port), timeout=5)
    c.sendall(b"POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n" + b"x" * 10)
    got = c.recv(4096)
    assert got.startswith(b"HTTP/1.1 413") and b"connection: close" in got.lower(), got
    c.close()
    conn = http.client.HTTPConnection(LOOPBACK, port, timeout=5)
    conn.request("GET", "/next")
    r = conn.getresponse()
    assert (r.status, r.read()) == (200, b"ok")
    assert len(seen) == 2, seen  # the GET went on a new server connection
    assert b"GET" not in seen[0][1], seen[0][1]


def test_direct_answer_larger_than_a_buffer(strata, origin):
    a = origin()
    body = "0123456789abcdef" * 4000  # 64,000 bytes: four times the output buffer
    s, port, _ = run_http(strata, one(a),
                          routes=f'- match: {{ path: /big }}\n  respond: {{ status: 200, body: "{body}" }}\n'
                                 "- backend: app")
    conn = http.client.HTTPConnection(LOOPBACK, port, timeout=5)
    for _ in range(2):  # and the connection goes on after it
        conn.request("GET", "/big")
        r = conn.getresponse()
        assert r.status == 200 and r.read().decode() == body
    conn.request("HEAD", "/big")
    r = conn.getresponse()
    assert r.getheader("content-length") == str(len(body)) and r.read() == b""



def test_5xx_does_not_take_a_server_out_by_default(strata, origin):
    a = origin("a", respond=lambda req: (500, {}, b"broken page"))
    s, port, admin = run_http(strata, {"app": {"servers": [("a", a.address)],
                                               "extra": "passive: { fall: 2 }"}}, admin=True)
    conn = http.client.HTTPConnection(LOOPBACK, port, timeout=5)
    for i in range(10):
        conn.request("GET", f"/{i}")
        r = conn.getresponse()
        assert (r.status, r.read()) == (500, b"broken page")  # never a 503 from Strata
    assert "is DOWN" not in s.log()
    assert s.metrics(admin).get("strata_server_http_5xx_total", backend="app", server="a") == 10


def test_stale_pooled_connection_is_retried_even_without_retries(strata, backends):
    """A server that drops kept-alive connections after one request: the pooled
    connection fails before any response byte, and the GET goes on a new connection,
    although the route allows no retry."""
    conns = []

    def one_per_connection(sock):
        conns.append(1)
        for i in range(2):
            data = b""
            while b"\r\n\r\n" not in data:
                chunk = sock.recv(4096)
                if not chunk:
                    return
                data += chunk
            if i == 1:
                return  # the second request on this connection: closed unanswered
            sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")

    srv = backends.threaded(one_per_connection)
    port = free_port()
    strata(http_config(port, {"app": {"servers": [srv.address]}},
                       routes="- backend: app\n  retry: { tries: 1 }", workers=1),
           listen_ports=[port])
    conn = http.client.HTTPConnection(LOOPBACK, port, timeout=5)
    for i in range(5):
        conn.request("GET", f"/{i}")
        r = conn.getresponse()
        assert (r.status, r.read()) == (200, b"ok"), i
    assert len(conns) >= 5


def test_response_head_too_large_answers_502_at_once(strata, origin):
    big = "v" * 20000
    a = origin(respond=lambda req: (200, {"x-big": big}, b"body"))
    s, port, _ = run_http(strata, one(a))
    t0 = time.monotonic()
    out = parse_response(http_request(
        port, b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"))
    assert [r[0] for r in out] == [502], out
    assert b"head" in out[0][2], out[0][2]  # the body names the reason
    assert time.monotonic() - t0 < 2


def test_request_head_larger_than_a_buffer_when_allowed(strata, origin):
    a = origin()
    s, port, _ = run_http(strata, one(a), http_extra="max_header_size: 48k")
    big = "c" * 30000
    conn = http.client.HTTPConnection(LOOPBACK, port, timeout=5)
    conn.request("GET", "/big-head", headers={"X-Big": big})
    r = conn.getresponse()
    assert (r.status, r.read()) == (200, b"GET /big-head\n")
    assert a.requests[0].header("x-big") == big
    conn.request("GET", "/next")  # and the connection goes on
    assert conn.getresponse().read() == b"GET /next\n"


# ---- WebSocket tunnels: large frames, both ways, from the first byte after the 101

WS_SIZES = (64 << 10, 1 << 20, 16 << 20)
WS_MIX = (5, 70000, 1, 1 << 20, 300, 16 << 10, 2, 200000, 17)


def ws_payload(n, seed):
    import random
    return random.Random(seed * 1000003 + n).randbytes(n)


def run_ws(strata, handler, client):
    """client(ws) against a websockets origin running handler(ws), through Strata; both ends
    without compression (frames cross at their size) and without a size limit."""
    import asyncio
    websockets = pytest.importorskip("websockets")

    async def scenario():
        server = await websockets.serve(handler, LOOPBACK, 0, max_size=None, compression=None)
        try:
            wport = server.sockets[0].getsockname()[1]
            port = free_port()
            strata(http_config(port, {"ws": {"servers": [f"{LOOPBACK}:{wport}"]}}),
                   listen_ports=[port])
            async with websockets.connect(f"ws://{LOOPBACK}:{port}/chat", open_timeout=5,
                                          max_size=None, compression=None) as ws:
                await client(ws)
        finally:
            server.close()
            await server.wait_closed()

    asyncio.run(asyncio.wait_for(scenario(), 90))


async def ws_expect(ws, want, what):
    import asyncio
    got = await asyncio.wait_for(ws.recv(), 30)
    assert len(got) == len(want) and got == want, f"{what}: {len(got)} bytes, not the {len(want)} sent"


async def ws_echo(ws, path=None):
    async for msg in ws:
        await ws.send(msg)


@pytest.mark.timeout(120)
@pytest.mark.parametrize("first", WS_SIZES)
def test_websocket_large_first_burst_from_client(strata, first):
    """The client's first frame after the 101 is larger than a relay buffer: it and every
    frame after it come back intact (the tunnel moves bytes partially, with back-pressure)."""
    async def client(ws):
        sizes = (first,) + tuple(n for n in WS_SIZES if n != first)
        for i, n in enumerate(sizes):
            data = ws_payload(n, i)
            await ws.send(data)
            await ws_expect(ws, data, f"frame {i} of {n} bytes")
        mix = [ws_payload(n, 100 + i) for i, n in enumerate(WS_MIX)]
        for data in mix:  # sent back to back: bursts of small and large frames
            await ws.send(data)
        for i, data in enumerate(mix):
            await ws_expect(ws, data, f"mixed frame {i} of {len(data)} bytes")
        await ws.send("text after all that")
        await ws_expect(ws, "text after all that", "last text frame")

    run_ws(strata, ws_echo, client)


@pytest.mark.timeout(120)
@pytest.mark.parametrize("first", WS_SIZES)
def test_websocket_large_first_burst_from_server(strata, first):
    """The server speaks first, with a frame larger than a relay buffer, then echoes."""
    sizes = (first,) + tuple(n for n in WS_SIZES if n != first)

    async def push_then_echo(ws, path=None):
        for i, n in enumerate(sizes):
            await ws.send(ws_payload(n, i))
        await ws_echo(ws)

    async def client(ws):
        for i, n in enumerate(sizes):
            await ws_expect(ws, ws_payload(n, i), f"pushed frame {i} of {n} bytes")
        mix = [ws_payload(n, 100 + i) for i, n in enumerate(WS_MIX)]
        for data in mix:
            await ws.send(data)
        for i, data in enumerate(mix):
            await ws_expect(ws, data, f"mixed frame {i} of {len(data)} bytes")

    run_ws(strata, push_then_echo, client)


# ---- h2c upgrades are never forwarded; a 101 nobody asked for is refused

H2C_SETTINGS = "AAMAAABkAARAAAAAAAIAAAAA"


def read_for(sock, seconds, until=None):
    """Reads for up to `seconds` or until the bytes end with `until`; returns (bytes, whether
    the peer closed)."""
    got = b""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and not (until and got.endswith(until)):
        sock.settimeout(max(0.05, deadline - time.monotonic()))
        try:
            chunk = sock.recv(65536)
        except socket.timeout:
            break
        if not chunk:
            return got, True
        got += chunk
    return got, False


def upgrade_happy_origin(backends, seen):
    """An origin that answers 101 to any Upgrade (naming its first protocol, then echoing
    bytes), and 200 "plain <path>" to anything else; records every request head."""
    def handler(sock):
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(4096)
            if not chunk:
                return
            data += chunk
        head = data.split(b"\r\n\r\n", 1)[0].decode("latin-1")
        seen.append(head)
        lines = head.split("\r\n")
        fields = {}
        for ln in lines[1:]:
            k, _, v = ln.partition(":")
            fields.setdefault(k.strip().lower(), v.strip())
        if "upgrade" in fields:
            proto = fields["upgrade"].split(",")[0].strip()
            sock.sendall(f"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\n"
                         f"Upgrade: {proto}\r\n\r\n".encode())
            while True:
                chunk = sock.recv(4096)
                if not chunk:
                    return
                sock.sendall(chunk)
        body = f"plain {lines[0].split(' ')[1]}".encode()
        sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s"
                     % (len(body), body))

    return backends.threaded(handler)


@pytest.mark.parametrize("fields", [
    ["Connection: Upgrade, HTTP2-Settings", "Upgrade: h2c", f"HTTP2-Settings: {H2C_SETTINGS}"],
    ["Connection: Upgrade", "Upgrade: h2c"],
    ["Connection: Upgrade", "Upgrade: h2c", f"HTTP2-Settings: {H2C_SETTINGS}"],
    ["Connection: keep-alive, Upgrade", "Upgrade: H2C"],
], ids=["with-settings", "without-settings", "settings-not-in-connection", "upper-case"])
def test_h2c_upgrade_is_never_forwarded(strata, backends, fields):
    """Past a 101 for h2c the client would speak HTTP/2 to the server directly, past every
    route and filter: the upgrade is stripped and the server answers a plain request."""
    seen = []
    srv = upgrade_happy_origin(backends, seen)
    port = free_port()
    strata(http_config(port, {"app": {"servers": [srv.address]}}), listen_ports=[port])
    raw = ("GET /plain HTTP/1.1\r\nHost: x\r\n" + "".join(f + "\r\n" for f in fields) +
           "\r\n").encode()
    c = socket.create_connection((LOOPBACK, port), timeout=5)
    c.sendall(raw)
    got, _ = read_for(c, 3, until=b"plain /plain")
    c.close()
    out = parse_response(got)
    assert [(r[0], r[2]) for r in out] == [(200, b"plain /plain")], got
    assert len(seen) == 1, seen
    head = seen[0].lower()
    assert "h2c" not in head and "http2-settings" not in head, seen[0]
    assert "upgrade" not in head, seen[0]  # neither the field nor a Connection token


def test_h2c_dropped_from_a_list_of_protocols(strata, backends):
    seen = []
    srv = upgrade_happy_origin(backends, seen)
    port = free_port()
    strata(http_config(port, {"app": {"servers": [srv.address]}}), listen_ports=[port])
    c = socket.create_connection((LOOPBACK, port), timeout=5)
    c.sendall(b"GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade, HTTP2-Settings\r\n"
              b"Upgrade: h2c, websocket\r\nHTTP2-Settings: " + H2C_SETTINGS.encode() +
              b"\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
              b"Sec-WebSocket-Version: 13\r\n\r\n")
    got = b""
    while b"\r\n\r\n" not in got:
        chunk = c.recv(4096)
        assert chunk, got
        got += chunk
    assert got.startswith(b"HTTP/1.1 101"), got
    assert b"upgrade: websocket" in got.lower(), got
    c.sendall(b"tunnel bytes")
    assert c.recv(4096) == b"tunnel bytes"
    c.close()
    head = seen[0].lower()
    assert "\r\nupgrade: websocket\r\n" in head + "\r\n", seen[0]
    assert "h2c" not in head and "http2-settings" not in head, seen[0]


@pytest.mark.parametrize("request_fields", [
    ["Connection: Upgrade, HTTP2-Settings", "Upgrade: h2c", f"HTTP2-Settings: {H2C_SETTINGS}"],
    [],
    ["Connection: Upgrade", "Upgrade: websocket", "Sec-WebSocket-Version: 13",
     "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ=="],
], ids=["h2c", "no-upgrade", "other-protocol"])
def test_unasked_101_answers_502_and_closes(strata, backends, request_fields):
    """A server that switches protocols anyway (to h2c, which was not forwarded, or was never
    asked) gets no tunnel: the client gets 502 and its connection closes."""
    seen = []

    def switcher(sock):
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(4096)
            if not chunk:
                return
            data += chunk
        seen.append(data)
        # 101 to h2c, then the server's HTTP/2 preface (a SETTINGS frame)
        sock.sendall(b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\n"
                     b"Upgrade: h2c\r\n\r\n" + b"\x00\x00\x00\x04\x00\x00\x00\x00\x00")
        sock.settimeout(2)
        try:
            while sock.recv(4096):
                pass
        except OSError:
            pass

    srv = backends.threaded(switcher)
    port = free_port()
    strata(http_config(port, {"app": {"servers": [srv.address]}}), listen_ports=[port])
    c = socket.create_connection((LOOPBACK, port), timeout=5)
    c.sendall(("GET / HTTP/1.1\r\nHost: x\r\n" + "".join(f + "\r\n" for f in request_fields) +
               "\r\n").encode())
    got, closed = read_for(c, 3)
    c.close()
    out = parse_response(got)
    assert [r[0] for r in out] == [502], got
    assert b"\x00\x00\x00\x04" not in got  # nothing of the server's HTTP/2 reached the client
    assert closed, "the client connection stayed open after the refused 101"
    assert b"h2c" not in seen[0].lower()


# ---- the access log of a retried request

def test_access_log_of_a_retried_request(strata, origin, tmp_path):
    """`end` says how the exchange ended (ok after a successful retry); `retries` counts
    the failed attempts; a 502 after the last try still says connect_failed."""
    a = origin("a")
    dead, dead2, dead3 = (f"{LOOPBACK}:{free_port()}" for _ in range(3))
    log = tmp_path / "access.json"
    routes = ("- match: { path_prefix: /gone }\n  backend: gone\n  retry: { tries: 2 }\n"
              "- backend: app\n  retry: { tries: 2 }")
    s, port, _ = run_http(strata, {"app": {"servers": [dead, a.address]},
                                   "gone": {"servers": [dead2, dead3]}},
                          routes=routes, workers=1,
                          http_extra=f'access_log: {{ format: json, path: "{log}" }}')

    def entries():
        try:
            return [json.loads(ln) for ln in log.read_text().splitlines() if ln.strip()]
        except FileNotFoundError:
            return []

    conn = http.client.HTTPConnection(LOOPBACK, port, timeout=5)
    for i in range(6):  # round robin: every other request meets the dead server first
        conn.request("GET", f"/{i}")
        r = conn.getresponse()
        assert (r.status, r.read()) == (200, f"GET /{i}\n".encode())
    lines = wait_for(lambda: (lambda e: e if len(e) >= 6 else None)(entries()), 5,
                     what="6 access log lines")
    retried = [e for e in lines if e["retries"] >= 1]
    assert retried, lines
    for e in lines:
        assert e["status"] == 200 and e["end"] == "ok", e
        assert e["server"] == a.address, e
    conn.request("GET", "/gone")
    r = conn.getresponse()
    assert r.status == 502, r.read()
    r.read()
    last = wait_for(lambda: (lambda e: e[-1] if len(e) >= 7 else None)(entries()), 5,
                    what="the 502's access log line")
    assert last["status"] == 502 and last["retries"] == 1, last
    assert last["end"] == "connect_failed", last


def test_access_log_of_a_request_retried_after_a_reset(strata, origin, tmp_path):
    calls = {"n": 0}

    def flaky(req):
        calls["n"] += 1
        return CLOSE if calls["n"] == 1 else (200, {}, b"second try")

    a = origin("a", respond=flaky)
    b = origin("b", respond=flaky)  # the first request, wherever it goes, is reset
    log = tmp_path / "access.json"
    s, port, _ = run_http(strata, {"app": {"servers": [a.address, b.address]}}, workers=1,
                          routes="- backend: app\n  retry: { tries: 3, on: [reset] }",
                          http_extra=f'access_log: {{ format: json, path: "{log}" }}')
    conn = http.client.HTTPConnection(LOOPBACK, port, timeout=5)
    conn.request("GET", "/r")
    r = conn.getresponse()
    assert (r.status, r.read()) == (200, b"second try")
    e = wait_for(lambda: log.exists() and log.read_text().strip() and
                 json.loads(log.read_text().splitlines()[0]), 5, what="the access log line")
    assert (e["status"], e["retries"], e["end"]) == (200, 1, "ok"), e
    assert "detail" not in e, e


@pytest.mark.timeout(120)
@pytest.mark.parametrize("io_uring", [True, False])
def test_server_sends_batched_by_io_uring(strata, origin, io_uring):
    """Requests to the servers leave by the loop's send queue: with tuning.io_uring (the
    default) in io_uring_enter calls, with it off one sendto each. Either way concurrent
    keep-alive clients get every answer right, bodies large and small, length and chunked."""
    from test_relay import syscall_counts

    def respond(req):
        return 200, {}, req.method.encode() + b" " + req.path.encode() + b" " + req.body

    a = origin(respond=respond)
    top = "" if io_uring else "tuning: { io_uring: false }"
    s, port, _ = run_http(strata, one(a), workers=1, top_extra=top,
                          http_extra="access_log: { format: off }")
    errors = []

    def client(k):
        try:
            conn = http.client.HTTPConnection(LOOPBACK, port, timeout=20)
            for i in range(15):
                body = bytes([65 + (k + i) % 26]) * ((k * 7919 + i * 104729) % (200 << 10))
                if i % 3 == 0:
                    conn.request("POST", f"/c{k}/{i}", body=iter([body[:10], body[10:]]),
                                 encode_chunked=True)
                else:
                    conn.request("POST", f"/c{k}/{i}", body=body)
                r = conn.getresponse()
                got = r.read()
                if r.status != 200 or got != f"POST /c{k}/{i} ".encode() + body:
                    errors.append((k, i, r.status, len(got)))
            conn.close()
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append((k, repr(e)))

    def run_clients():
        ts = [threading.Thread(target=client, args=(k,)) for k in range(8)]
        for t in ts:
            t.start()
        for t in ts:
            t.join(timeout=60)

    counts = syscall_counts(s.proc.pid, ["sendto", "io_uring_enter"], run_clients)
    assert errors == []
    assert len(a.requests) == 8 * 15
    if io_uring:
        assert counts["io_uring_enter"] > 0, counts
    else:
        assert counts["io_uring_enter"] == 0, counts
