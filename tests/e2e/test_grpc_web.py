"""The grpc_web filter: gRPC-Web requests as a browser sends them (grpcweb_client.py: binary
and text, unary and server-streaming, errors with details) translated to gRPC and back.

Two kinds of origin:
  - an HTTP/1.1 origin that answers as a gRPC server would (chunked body of frames, then
    trailers): runs everywhere, and shows exactly what the server receives;
  - python3-grpcio (grpc_backend.py) behind `protocol: h2c`: skipped until `strata check`
    accepts HTTP/2 backends (branch h2u).
"""
import base64

import pytest

import grpcweb_client as gw
from conftest import free_port, run_strata
from http_backend import http_config, http_request, parse_response

ROUTES = "- grpc_web: {}\n  backend: app\n"


def grpc_answer(messages, trailers, chunks=None, head_extra=""):
    """Raw HTTP/1.1 response as a gRPC server over HTTP/1.1 would send it: 200,
    application/grpc+proto, the frames chunked (one chunk per message unless `chunks`
    gives the raw pieces), then `trailers` in the last chunk."""
    body = [gw.frame(m) for m in messages] if chunks is None else chunks
    out = ("HTTP/1.1 200 OK\r\ncontent-type: application/grpc+proto\r\n"
           "transfer-encoding: chunked\r\n" + head_extra + "\r\n").encode()
    for piece in body:
        out += b"%x\r\n" % len(piece) + piece + b"\r\n"
    out += b"0\r\n" + "".join(f"{k}: {v}\r\n" for k, v in trailers.items()).encode() + b"\r\n"
    return out


def start(strata, origin, respond, routes=ROUTES):
    o = origin("grpc1", respond=respond)
    port = free_port()
    s = strata(http_config(port, {"app": {"servers": [o.address]}}, routes=routes),
               listen_ports=[port])
    return s, o, port


def unframe(body):
    return [m for _, m in gw.parse_frames(body)]


@pytest.mark.parametrize("text", [False, True], ids=["binary", "text"])
def test_unary_through_h1_origin(strata, origin, text):
    def respond(req):
        msgs = unframe(req.body)
        return grpc_answer([b"echo:" + m for m in msgs],
                           {"grpc-status": "0", "grpc-message": "", "x-trailer": "t1"})

    s, o, port = start(strata, origin, respond)
    r = gw.call(port, "/strata.test.Echo/Unary", [b"hello"], text=text)
    assert r.http_status == 200
    # the request's variant: grpcweb_client sends application/grpc-web-text or
    # application/grpc-web+proto
    assert r.headers["content-type"] == (
        "application/grpc-web-text" if text else "application/grpc-web+proto")
    assert r.messages == [b"echo:hello"], r
    assert r.grpc_status == 0 and r.trailers.get("x-trailer") == "t1", r
    assert r.trailer_frames == 1 and r.frames_after_trailer == 0
    # what the server received: gRPC, the body frames unchanged (decoded for text)
    req = o.requests[0]
    assert req.method == "POST" and req.path == "/strata.test.Echo/Unary"
    assert req.header("content-type") == ("application/grpc" if text else "application/grpc+proto")
    assert req.header("grpc-accept-encoding") == "identity"
    assert req.header("x-grpc-web") == "1"
    assert req.body == gw.frame(b"hello")
    if text:  # decoded: shorter than what the client sent, so chunked
        assert req.header("transfer-encoding") == "chunked" and req.header("content-length") is None
    else:
        assert req.header("content-length") == str(len(gw.frame(b"hello")))
    if text:  # padded only where frames end
        assert r.raw.count(b"=") <= 4, r.raw


def test_text_body_padded_mid_stream_and_split(strata, origin):
    """A text request body that is several padded base64 pieces, sent in small writes that
    cut the groups anywhere, decodes to the frames the client meant."""
    s, o, port = start(strata, origin,
                       lambda req: grpc_answer(unframe(req.body), {"grpc-status": "0"}))
    frames = gw.frame(b"a") + gw.frame(b"bcdefgh")
    body = base64.b64encode(frames[:4]) + base64.b64encode(frames[4:])  # padding inside
    assert b"=" in body[:-2]
    head = ("POST /strata.test.Echo/ClientStream HTTP/1.1\r\nhost: x\r\n"
            "content-type: application/grpc-web-text\r\naccept: application/grpc-web-text\r\n"
            "x-grpc-web: 1\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n").encode()
    chunks = b"".join(b"%x\r\n%s\r\n" % (len(body[i:i + 3]), body[i:i + 3])
                      for i in range(0, len(body), 3))
    raw = http_request(port, head + chunks + b"0\r\n\r\n")
    status, headers, rbody = parse_response(raw)[0]
    assert status == 200 and headers["content-type"] == "application/grpc-web-text"
    res = gw.parse_response(rbody, text=True)
    assert res.messages == [b"a", b"bcdefgh"] and res.grpc_status == 0
    assert o.requests[0].body == frames


def streaming(strata, origin, text, count):
    """`count` messages in pieces cut inside frames (as a server flushes), then the
    trailers: every message arrives, the trailer frame last."""
    msgs = [b"%d:" % i + b"x" * (i * 37) for i in range(count)]
    data = b"".join(gw.frame(m) for m in msgs)
    pieces = [data[i:i + 701] for i in range(0, len(data), 701)]
    s, o, port = start(strata, origin,
                       lambda req: grpc_answer(None, {"grpc-status": "0"}, chunks=pieces))
    r = gw.call(port, "/strata.test.Echo/ServerStream", [b"go"], text=text)
    assert r.messages == msgs
    assert r.grpc_status == 0 and r.trailer_frames == 1 and r.frames_after_trailer == 0


@pytest.mark.parametrize("text", [False, True], ids=["binary", "text"])
def test_server_streaming_through_h1_origin(strata, origin, text):
    streaming(strata, origin, text, 12)  # about 2.5 KiB


def test_server_streaming_large_binary(strata, origin):
    streaming(strata, origin, False, 40)  # about 29 KiB: more than one client buffer


def test_server_streaming_large_text(strata, origin):
    streaming(strata, origin, True, 40)


@pytest.mark.parametrize("text", [False, True], ids=["binary", "text"])
def test_error_status_with_details(strata, origin, text):
    details = base64.b64encode(b"\x08\x03\x12\x04oops").decode().rstrip("=")
    trailers = {"grpc-status": "3", "grpc-message": "bad%20argument",
                "grpc-status-details-bin": details, "x-fail-reason": "test"}
    s, o, port = start(strata, origin, lambda req: grpc_answer([], trailers))
    r = gw.call(port, "/strata.test.Echo/Fail", [b"x"], text=text)
    assert r.http_status == 200 and r.messages == []
    assert r.grpc_status == 3 and r.grpc_message == "bad%20argument"
    assert r.trailers["grpc-status-details-bin"] == details
    assert r.trailers["x-fail-reason"] == "test"


def test_trailers_only_response(strata, origin):
    """grpc-status in the head and no body: passed as it is (the spec's trailers-only form),
    with the grpc-web content type."""
    answer = (b"HTTP/1.1 200 OK\r\ncontent-type: application/grpc\r\ngrpc-status: 12\r\n"
              b"grpc-message: no%20such%20method\r\ncontent-length: 0\r\n\r\n")
    s, o, port = start(strata, origin, lambda req: answer)
    r = gw.call(port, "/strata.test.Echo/Nope", [b"x"])
    assert r.http_status == 200 and r.headers["content-type"] == "application/grpc-web+proto"
    assert r.grpc_status == 12 and r.grpc_message == "no%20such%20method"


@pytest.mark.parametrize("text", [False, True], ids=["binary", "text"])
def test_h1_origin_with_content_length(strata, origin, text):
    """An HTTP/1 server's gRPC answer with a Content-Length cannot change length (its
    codec reads it by that length): it passes as it is, labelled binary."""
    body = gw.frame(b"one") + gw.frame(b"two")
    answer = (b"HTTP/1.1 200 OK\r\ncontent-type: application/grpc\r\ngrpc-status: 0\r\n"
              b"content-length: %d\r\n\r\n" % len(body)) + body
    s, o, port = start(strata, origin, lambda req: answer)
    headers, req = gw.build_request("/strata.test.Echo/Unary", [b"x"], text=text)
    raw = b"".join(b"POST /strata.test.Echo/Unary HTTP/1.1\r\n" +
                   "".join(f"{k}: {v}\r\n" for k, v in headers).encode() +
                   b"content-length: %d\r\n%s\r\n" % (len(req), close) + req
                   for close in (b"", b"connection: close\r\n"))
    answers = parse_response(http_request(port, raw))
    assert len(answers) == 2  # the connections stay usable
    for status, hdrs, rbody in answers:
        assert status == 200 and rbody == body
        assert hdrs["content-type"] == "application/grpc-web" + ("" if text else "+proto")
        assert hdrs["grpc-status"] == "0"


def test_other_requests_and_responses_pass_untouched(strata, origin):
    def respond(req):
        if req.path == "/page":
            return 503, {"content-type": "text/html"}, b"<h1>down</h1>"
        return 200, {"content-type": "application/json"}, b'{"ok":true}'

    s, o, port = start(strata, origin, respond)
    raw = http_request(port, b"POST /api HTTP/1.1\r\nhost: x\r\ncontent-type: application/json"
                             b"\r\ncontent-length: 2\r\nconnection: close\r\n\r\n{}")
    status, headers, body = parse_response(raw)[0]
    assert status == 200 and body == b'{"ok":true}'
    assert o.requests[0].header("content-type") == "application/json"
    assert o.requests[0].header("grpc-accept-encoding") is None and o.requests[0].body == b"{}"
    # a gRPC-Web request answered by a non-gRPC error page: the browser sees the error
    headers, body = gw.build_request("/page", [b"x"])
    raw = http_request(port, b"POST /page HTTP/1.1\r\n" +
                       "".join(f"{k}: {v}\r\n" for k, v in headers).encode() +
                       b"content-length: %d\r\nconnection: close\r\n\r\n" % len(body) + body)
    status, headers, body = parse_response(raw)[0]
    assert status == 503 and headers["content-type"] == "text/html"
    assert body == b"<h1>down</h1>"


def test_bad_base64_fails_the_call_only(strata, origin):
    s, o, port = start(strata, origin, lambda req: grpc_answer([], {"grpc-status": "0"}))
    raw = http_request(port, b"POST /strata.test.Echo/Unary HTTP/1.1\r\nhost: x\r\n"
                             b"content-type: application/grpc-web-text\r\ncontent-length: 8\r\n"
                             b"connection: close\r\n\r\nAAA*AAAA")
    # Strata's answer to a gRPC call is a gRPC status: INTERNAL, in the head
    status, headers, body = parse_response(raw)[0]
    assert status == 200 and headers["grpc-status"] == "13", raw[:200]
    assert headers["content-type"] == "application/grpc-web-text"
    r = gw.call(port, "/strata.test.Echo/Unary", [b"ok"], text=True)
    assert r.grpc_status == 0 and s.alive()


def test_config_grpc_web_takes_no_settings(strata_bin, tmp_path):
    cfg = http_config(free_port(), {"app": {"servers": ["127.0.0.1:1"]}},
                      routes="- grpc_web: { text: true }\n  backend: app\n")
    p = tmp_path / "bad.yaml"
    p.write_text(cfg)
    r = run_strata(strata_bin, "check", str(p))
    assert r.returncode != 0 and "grpc_web.text" in r.stderr, r.stderr


# ---------------------------------------------------------------- through grpcio (h2c)

def h2c_backends_supported(strata_bin, tmp_path):
    cfg = http_config(free_port(), {"app": {"servers": ["127.0.0.1:1"],
                                            "extra": "protocol: h2c\n"}}, routes=ROUTES)
    p = tmp_path / "h2c.yaml"
    p.write_text(cfg)
    return run_strata(strata_bin, "check", str(p)).returncode == 0


@pytest.fixture
def grpc_web_strata(strata, strata_bin, tmp_path, grpc_origin):
    if not h2c_backends_supported(strata_bin, tmp_path):
        pytest.skip("HTTP/2 backends (`protocol: h2c`) not in this build yet")
    g = grpc_origin(name="g1")
    port = free_port()
    cfg = http_config(port, {"app": {"servers": [g.address], "extra": "protocol: h2c\n"}},
                      routes=ROUTES)
    return strata(cfg, listen_ports=[port]), g, port


@pytest.mark.parametrize("text", [False, True], ids=["binary", "text"])
def test_grpcio_unary(grpc_web_strata, text):
    s, g, port = grpc_web_strata
    r = gw.call(port, "/strata.test.Echo/Unary", [b"hello"], text=text)
    assert r.http_status == 200 and r.messages == [b"hello"], r
    assert r.grpc_status == 0 and r.trailers.get("x-backend-trailer") == "g1"
    assert r.headers.get("x-backend") == "g1"
    assert g.calls.get("Unary") == 1


@pytest.mark.parametrize("text", [False, True], ids=["binary", "text"])
def test_grpcio_server_streaming(grpc_web_strata, text):
    s, g, port = grpc_web_strata
    r = gw.call(port, "/strata.test.Echo/ServerStream", [b"hi"], text=text,
                metadata=[("x-count", "5"), ("x-interval-ms", "20")])
    assert r.messages == [b"%d:hi" % i for i in range(5)], r
    assert r.grpc_status == 0 and r.trailer_frames == 1


@pytest.mark.parametrize("text", [False, True], ids=["binary", "text"])
def test_grpcio_error_with_details(grpc_web_strata, text):
    s, g, port = grpc_web_strata
    r = gw.call(port, "/strata.test.Echo/Fail", [b"x"], text=text,
                metadata=[("x-status", "5"), ("x-details", "not here")])
    assert r.grpc_status == 5 and r.grpc_message == "not here", r
    assert r.trailers.get("x-fail-reason") == "test"
    assert base64.b64decode(r.trailers["x-fail-bin"] + "==") == b"\x00\x01\x02"


@pytest.mark.parametrize("text", [False, True], ids=["binary", "text"])
def test_grpcio_trailers_only_gets_its_trailer_frame(grpc_web_strata, text):
    """An unknown method: grpcio answers trailers-only (HEADERS with END_STREAM, status
    12); the browser gets the status in a trailer frame, not in the head."""
    s, g, port = grpc_web_strata
    r = gw.call(port, "/strata.test.Nope/Method", [b"x"], text=text)
    assert r.http_status == 200 and r.messages == []
    assert r.trailer_frames == 1 and r.grpc_status == 12, r
    assert "grpc-status" not in r.headers, r.headers


def test_grpcio_concurrent_calls(grpc_web_strata):
    """Calls at once, binary and text mixed, over the multiplexed h2c connections."""
    import concurrent.futures
    s, g, port = grpc_web_strata

    def one(i):
        r = gw.call(port, "/strata.test.Echo/Unary", [b"m%d" % i], text=bool(i % 2))
        return r.messages == [b"m%d" % i] and r.grpc_status == 0

    with concurrent.futures.ThreadPoolExecutor(8) as ex:
        assert all(ex.map(one, range(40)))


def test_grpcio_large_binary_message(grpc_web_strata):
    s, g, port = grpc_web_strata
    for size in (100_000, 300_000):
        msg = bytes(range(256)) * (size // 256)
        r = gw.call(port, "/strata.test.Echo/Unary", [msg])
        assert r.messages == [msg] and r.grpc_status == 0 and r.trailer_frames == 1


def test_grpcio_large_text_message(grpc_web_strata):
    s, g, port = grpc_web_strata
    msg = b"t" * 30_000
    r = gw.call(port, "/strata.test.Echo/Unary", [msg], text=True)
    assert r.messages == [msg] and r.grpc_status == 0


@pytest.mark.parametrize("text", [False, True], ids=["binary", "text"])
def test_strata_own_answer_is_a_grpc_web_status(strata, text):
    """No server up: Strata answers the call itself with a gRPC status (UNAVAILABLE,
    trailers-only in the head), in the client's grpc-web content type."""
    port = free_port()
    cfg = http_config(port, {"app": {"servers": [f"127.0.0.1:{free_port()}"]}}, routes=ROUTES)
    strata(cfg, listen_ports=[port])
    r = gw.call(port, "/strata.test.Echo/Unary", [b"x"], text=text)
    assert r.http_status == 200 and r.grpc_status == 14, r
    assert r.headers["content-type"].startswith("application/grpc-web"), r.headers
