"""gRPC in the protocol-neutral stream: Strata's own answers to a gRPC call are gRPC
errors (HTTP 200, grpc-status and grpc-message in the head, no body) and never a text
page; grpc-timeout bounds the whole call (DEADLINE_EXCEEDED when it passes); routes match
a gRPC service or method. The stream does not depend on the client's codec, so these run
with HTTP/1.1 clients; HTTP/2 and real gRPC clients are in the h2 and gRPC test files."""
import time

from conftest import free_port
from http_backend import http_config, http_request, parse_response

GRPC = [("content-type", "application/grpc"), ("te", "trailers")]


def call(port, path="/pkg.Svc/Method", headers=(), body=b"\0\0\0\0\0"):
    head = f"POST {path} HTTP/1.1\r\nHost: example.com\r\n"
    for k, v in list(GRPC) + list(headers):
        head += f"{k}: {v}\r\n"
    head += f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    out = parse_response(http_request(port, head.encode() + body, timeout=10))
    assert len(out) == 1, out
    return out[0]


def start(strata, backends, routes):
    port = free_port()
    s = strata(http_config(port, backends, routes=routes), listen_ports=[port])
    return s, port


def test_no_route_is_unimplemented(strata, origin):
    a = origin("a")
    _, port = start(strata, {"app": {"servers": [a.address]}},
                    "- match: { path_prefix: /only/ }\n  backend: app\n")
    status, headers, body = call(port)
    assert status == 200 and body == b""
    assert headers["content-type"] == "application/grpc"
    assert headers["grpc-status"] == "12"
    assert "no route" in headers["grpc-message"]
    assert not a.requests


def test_no_server_is_unavailable_and_plain_http_still_gets_text(strata):
    dead = f"127.0.0.1:{free_port()}"
    _, port = start(strata, {"app": {"servers": [dead]}}, "- backend: app\n")
    status, headers, body = call(port)
    assert (status, headers["grpc-status"], body) == (200, "14", b"")
    # the same failure to a plain HTTP request is a 502 page
    raw = b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    (status, headers, body), = parse_response(http_request(port, raw, timeout=10))
    assert status == 502 and "grpc-status" not in headers and body.startswith(b"502")


def test_filter_answer_becomes_a_grpc_status(strata, origin):
    a = origin("a")
    routes = ("- match: { grpc: { service: pkg.Svc, method: Gone } }\n"
              "  respond: { status: 403, body: nope }\n"
              "- backend: app\n")
    _, port = start(strata, {"app": {"servers": [a.address]}}, routes)
    status, headers, body = call(port, "/pkg.Svc/Gone")
    assert (status, headers["grpc-status"], body) == (200, "7", b"")
    assert not a.requests


def test_grpc_timeout_is_deadline_exceeded(strata, origin):
    def slow(req):
        time.sleep(3)
        return 200, {"content-type": "application/grpc"}, b""

    a = origin("slow", slow)
    _, port = start(strata, {"app": {"servers": [a.address]}}, "- backend: app\n")
    t0 = time.monotonic()
    status, headers, body = call(port, headers=[("grpc-timeout", "300m")])
    took = time.monotonic() - t0
    assert (status, headers["grpc-status"]) == (200, "4"), headers
    assert 0.25 <= took < 2.0, took
    # a malformed grpc-timeout sets no deadline: the slow answer arrives
    status, headers, _ = call(port, headers=[("grpc-timeout", "soon")])
    assert status == 200 and "grpc-status" not in headers


def test_routes_by_service_and_method(strata, origin):
    a, b, c = origin("method"), origin("service"), origin("other")
    routes = ("- match: { grpc: { service: pkg.Svc, method: Hello } }\n  backend: a\n"
              "- match: { grpc: { service: pkg.Svc } }\n  backend: b\n"
              "- backend: c\n")
    _, port = start(strata, {"a": {"servers": [a.address]}, "b": {"servers": [b.address]},
                             "c": {"servers": [c.address]}}, routes)
    for path, want in [("/pkg.Svc/Hello", a), ("/pkg.Svc/Other", b), ("/pkg.Svc2/Hello", c)]:
        status, _, _ = call(port, path)
        assert status == 200
        assert want.requests and want.requests[-1].path == path
    # the gRPC routes want a gRPC call: the same path as plain JSON goes elsewhere
    raw = (b"POST /pkg.Svc/Hello HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
           b"Content-Length: 2\r\nConnection: close\r\n\r\n{}")
    (status, _, _), = parse_response(http_request(port, raw))
    assert status == 200 and c.requests[-1].path == "/pkg.Svc/Hello"
