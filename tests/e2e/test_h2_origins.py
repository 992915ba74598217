"""The HTTP/2, gRPC and gRPC-Web test peers, checked on their own (no Strata): each behaviour
of h2_backend.H2Backend and grpc_backend.GrpcBackend talked to directly with curl
(--http2-prior-knowledge, --http2 over TLS), nghttp, the python3-h2 client and the grpcio
client, and grpcweb_client checked against frames built by hand from grpc/grpc's
doc/PROTOCOL-WEB.md and the vectors of Envoy's grpc_web filter tests. So later Strata
tests can trust them. The whole file runs in a few seconds."""
import base64
import hashlib
import shutil
import subprocess
import threading
import time

import pytest

h2 = pytest.importorskip("h2", reason="python3-h2 not installed (scripts/install-deps.sh test)")
grpc = pytest.importorskip("grpc", reason="python3-grpcio not installed")

from grpc_backend import (GrpcClient, health_request, health_response,  # noqa: E402
                          parse_health_request)
from h2_backend import (H2Client, pattern_bytes, pattern_sha256, ws_frame,  # noqa: E402
                        ws_parse_frame)
import grpcweb_client as gw  # noqa: E402

pytestmark = pytest.mark.timeout(30)

CURL = shutil.which("curl")
NGHTTP = shutil.which("nghttp")


def curl(*args, timeout=15):
    r = subprocess.run([CURL, "-sS", "--max-time", "10", *args], capture_output=True,
                       timeout=timeout)
    assert r.returncode == 0, f"curl {args}: rc={r.returncode} {r.stderr.decode()}"
    return r.stdout


def head_lines(raw):
    """Status line and headers (lower-case names) of curl -i output (its last response)."""
    head = raw.split(b"\r\n\r\n")
    blocks = [b for b in head if b.startswith(b"HTTP/")]
    lines = blocks[-1].decode().split("\r\n")
    hdrs = {}
    for ln in lines[1:]:
        k, _, v = ln.partition(":")
        hdrs[k.strip().lower()] = v.strip()
    return lines[0], hdrs


# --------------------------------------------------------------------------- HTTP/2 origin

@pytest.mark.skipif(not CURL, reason="curl missing")
def test_curl_h2c_prior_knowledge_echo(h2_origin):
    srv = h2_origin("alpha")
    raw = curl("-i", "--http2-prior-knowledge", "--data-binary", "hello h2",
               f"http://127.0.0.1:{srv.port}/echo?x=1")
    status, hdrs = head_lines(raw)
    assert status.startswith("HTTP/2 200")
    assert hdrs["x-backend"] == "alpha"
    assert hdrs["x-req-method"] == "POST" and hdrs["x-req-path"] == "/echo?x=1"
    assert hdrs["x-req-body-length"] == "8"
    assert raw.endswith(b"\r\n\r\nhello h2")
    req = srv.requests[-1]
    assert (req.method, req.path, req.body, req.scheme) == ("POST", "/echo?x=1", b"hello h2",
                                                            "http")
    assert srv.connections == 1 and srv.streams == 1


@pytest.mark.skipif(not CURL, reason="curl missing")
def test_curl_h2_over_tls_alpn_and_large_body(h2_origin, tmp_path):
    srv = h2_origin("tls", tls=True)
    out = tmp_path / "body"
    info = curl("-k", "--http2", "-o", str(out), "-w", "%{http_version} %{http_code}",
                f"https://127.0.0.1:{srv.port}/bytes?mib=3").decode()
    assert info == "2 200"
    data = out.read_bytes()
    assert len(data) == 3 << 20
    assert hashlib.sha256(data).hexdigest() == pattern_sha256(3 << 20)
    assert srv.alpn == ["h2"]
    assert srv.requests[-1].tls and srv.requests[-1].scheme == "https"


@pytest.mark.skipif(not NGHTTP, reason="nghttp (nghttp2-client) missing")
def test_nghttp_sees_settings_and_concurrent_streams(h2_origin):
    srv = h2_origin("n", max_concurrent_streams=7)
    url = f"http://127.0.0.1:{srv.port}/echo?delay=200"
    t0 = time.monotonic()
    r = subprocess.run([NGHTTP, "-nv", "-t", "10", url, url + "&b", url + "&c", url + "&d"],
                       capture_output=True, text=True, timeout=20)
    elapsed = time.monotonic() - t0
    assert r.returncode == 0, r.stderr + r.stdout
    assert "SETTINGS_MAX_CONCURRENT_STREAMS(0x03):7" in r.stdout
    assert "(0x08):1" in r.stdout  # SETTINGS_ENABLE_CONNECT_PROTOCOL
    assert r.stdout.count("recv HEADERS frame") == 4
    assert elapsed < 2.0, "4 streams of 200 ms on one connection were not concurrent"
    assert srv.connections == 1 and srv.streams == 4 and srv.max_concurrent == 4


def test_echo_with_trailers_both_ways(h2_origin):
    srv = h2_origin("t")
    with H2Client(srv.port) as c:
        r = c.request("POST", "/echo", headers=[("te", "trailers"), ("x-custom", "v")],
                      body=b"x" * 100_000, trailers=[("x-req-t", "42")])
        assert r.status == 200 and r.body == b"x" * 100_000
        assert r.trailer("x-trailer-backend") == "t"
        assert r.trailer("x-req-trailer-x-req-t") == "42"
        assert r.trailer("x-trailer-body-length") == "100000"
        # without te: trailers, no trailers
        r = c.request("POST", "/echo", body=b"y")
        assert r.trailers == [] and r.body == b"y"
    req = srv.requests[0]
    assert req.trailers == [("x-req-t", "42")] and req.header("x-custom") == "v"


def test_inspect_reports_the_request(h2_origin):
    import json
    srv = h2_origin("i")
    with H2Client(srv.port) as c:
        r = c.request("PUT", "/inspect?q=1", headers=[("x-a", "1"), ("x-a", "2")], body=b"abc",
                      authority="example.test")
    j = json.loads(r.body)
    assert j["method"] == "PUT" and j["path"] == "/inspect?q=1"
    assert j["authority"] == "example.test" and j["body_length"] == 3
    assert [h for h in j["headers"] if h[0] == "x-a"] == [["x-a", "1"], ["x-a", "2"]]


def test_head_204_304(h2_origin):
    srv = h2_origin()
    with H2Client(srv.port) as c:
        r = c.request("HEAD", "/bytes?n=5000")
        assert r.status == 200 and r.body == b"" and r.header("content-length") == "5000"
        r = c.request("GET", "/status/204")
        assert r.status == 204 and r.body == b"" and r.header("content-length") is None
        r = c.request("GET", "/echo?status=304")
        assert r.status == 304 and r.body == b""
        r = c.request("GET", "/status/404")
        assert r.status == 404 and r.header("x-backend") == "a"
        assert all(x.ended for x in c.responses.values())


def test_large_bodies_both_ways(h2_origin):
    srv = h2_origin()
    n = 4 << 20
    with H2Client(srv.port) as c:
        r = c.request("GET", "/bytes?mib=4", timeout=20)
        assert len(r.body) == n and hashlib.sha256(r.body).digest() == \
            hashlib.sha256(pattern_bytes(0, n)).digest()
        r = c.request("POST", "/sink", body=pattern_bytes(7, n), timeout=20)
        assert r.header("x-req-body-length") == str(n)
        assert r.header("x-req-body-sha256") == hashlib.sha256(pattern_bytes(7, n)).hexdigest()


def test_delay_and_concurrency_counter(h2_origin):
    srv = h2_origin()
    with H2Client(srv.port) as c:
        t0 = time.monotonic()
        sids = [c.start("GET", "/echo", headers=[("x-h2-delay", "300")]) for _ in range(6)]
        rs = c.wait(sids)
        elapsed = time.monotonic() - t0
    assert all(r.status == 200 for r in rs.values())
    assert 0.29 < elapsed < 1.5
    assert srv.max_concurrent == 6 and srv.streams == 6


def test_max_concurrent_streams_setting(h2_origin):
    srv = h2_origin(max_concurrent_streams=2, initial_window=32768, max_frame_size=20000)
    with H2Client(srv.port) as c:
        s = c.remote_settings
        assert s.max_concurrent_streams == 2 and s.initial_window_size == 32768
        assert s.max_frame_size == 20000
        rs = c.wait([c.start("GET", "/echo?delay=100") for _ in range(2)])
        assert [r.status for r in rs.values()] == [200, 200]
        # h2's client keeps to the limit itself
        c.start("GET", "/echo?delay=300")
        c.start("GET", "/echo?delay=300")
        with pytest.raises(h2.exceptions.TooManyStreamsError):
            c.start("GET", "/echo")
    assert srv.max_concurrent == 2 and srv.protocol_errors == [] and srv.over_limit == 0


def test_stream_over_the_limit_is_refused(h2_origin):
    """A peer that ignores SETTINGS_MAX_CONCURRENT_STREAMS (raw frames: h2's client would not)
    gets REFUSED_STREAM on the extra stream, counted in over_limit; the others are served."""
    import socket
    import h2.connection
    import h2.config
    import h2.events
    srv = h2_origin(max_concurrent_streams=2)
    conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True,
                                                                 header_encoding="utf-8"))
    conn.initiate_connection()
    with socket.create_connection(("127.0.0.1", srv.port), timeout=5) as s:
        for sid in (1, 3, 5):  # sent before reading the server's SETTINGS
            conn.send_headers(sid, [(":method", "GET"), (":scheme", "http"),
                                    (":authority", "x"), (":path", "/echo?delay=300")],
                              end_stream=True)
        s.sendall(conn.data_to_send())
        ended, resets = set(), {}
        deadline = time.monotonic() + 5
        while len(ended) + len(resets) < 3 and time.monotonic() < deadline:
            data = s.recv(65536)
            if not data:
                break
            for ev in conn.receive_data(data):
                if isinstance(ev, h2.events.StreamEnded):
                    ended.add(ev.stream_id)
                elif isinstance(ev, h2.events.StreamReset):
                    resets[ev.stream_id] = ev.error_code
            s.sendall(conn.data_to_send())
    assert ended == {1, 3} and resets == {5: h2.errors.ErrorCodes.REFUSED_STREAM}
    assert srv.over_limit == 1 and srv.protocol_errors == []


def test_100_continue_and_417(h2_origin):
    srv = h2_origin()
    with H2Client(srv.port) as c:
        r = c.request("POST", "/echo", headers=[("expect", "100-continue")], body=b"body")
        assert [dict(h)[":status"] for h in r.informational] == ["100"]
        assert r.status == 200 and r.body == b"body"
        r = c.request("POST", "/echo?expect=417", headers=[("expect", "100-continue")],
                      body=b"z" * 300_000)
        assert r.status == 417 and r.informational == [] and r.ended
        # the connection still works
        assert c.request("GET", "/echo").status == 200
    assert srv.requests[1].body == b""


def test_refused_stream_and_reset(h2_origin):
    srv = h2_origin(refuse_streams=1)
    with H2Client(srv.port) as c:
        r = c.request("GET", "/echo")
        assert r.reset == h2.errors.ErrorCodes.REFUSED_STREAM and r.status is None
        assert c.request("GET", "/echo").status == 200
        assert c.request("GET", "/refuse").reset == h2.errors.ErrorCodes.REFUSED_STREAM
        assert c.request("GET", "/reset?code=8").reset == 8
        r = c.request("GET", "/reset?after=response&code=2")
        assert r.status == 200 and r.reset == 2
    assert srv.refused == 2


def test_goaway_after_n_streams(h2_origin):
    srv = h2_origin(goaway_after=3)
    with H2Client(srv.port) as c:
        sids = [c.start("GET", "/echo?delay=100") for _ in range(5)]
        try:
            c.wait(sids)
        except ConnectionError:
            pass  # closed once its streams were done: the refused ones are reset before
        assert c.goaway == (0, 5)
        assert [c.responses[s].status for s in sids[:3]] == [200, 200, 200]
        assert [c.responses[s].reset for s in sids[3:]] == [7, 7]
    assert srv.goaways_sent == 1
    with H2Client(srv.port) as c:  # a new connection is served again
        assert c.request("GET", "/echo").status == 200
    assert srv.connections == 2


def test_goaway_all_lets_open_streams_finish(h2_origin):
    srv = h2_origin()
    with H2Client(srv.port) as c:
        a = c.start("GET", "/echo?delay=400")
        b = c.start("GET", "/echo?delay=400")
        c.pump_until(lambda: srv.streams == 2, what="both streams at the server")
        srv.goaway_all()
        c.pump_until(lambda: c.goaway is not None, what="the GOAWAY")
        assert c.goaway == (0, b)
        rs = c.wait([a, b])
        assert [r.status for r in rs.values()] == [200, 200]
        c.pump_until(lambda: c.closed, what="the server's close")
    assert srv.goaways_sent == 1
    with H2Client(srv.port) as c:
        assert c.request("GET", "/echo").status == 200


def test_client_slow_reader_stalls_the_response(h2_origin):
    """H2Client(auto_ack=False) is a client that reads slowly: the origin stops at the
    window (64 KiB) until the client gives credit back."""
    srv = h2_origin()
    with H2Client(srv.port, auto_ack=False) as c:
        sid = c.start("GET", "/bytes?n=200000", headers=[("te", "trailers")])
        r = c.responses[sid]
        c.pump_until(lambda: len(r.body) >= 65535, what="the first window")
        time.sleep(0.3)
        c._pump_once(0.1)
        assert len(r.body) == 65535 and not r.ended
        deadline = time.monotonic() + 10
        acked = 0
        while not r.ended and time.monotonic() < deadline:
            if len(r.body) > acked:
                c.ack(sid, len(r.body) - acked)
                acked = len(r.body)
            c._pump_once(0.05)
        assert r.body == pattern_bytes(0, 200000)
        assert r.trailer("x-trailer-backend") == "a"


def test_slow_reader_back_pressure(h2_origin):
    srv = h2_origin()
    body = b"s" * (65535 + 48 * 1024)
    with H2Client(srv.port) as c:
        t0 = time.monotonic()
        r = c.request("POST", "/slowread?rate=65536", body=body, timeout=15)
        elapsed = time.monotonic() - t0
        assert r.status == 200 and r.header("x-req-body-length") == str(len(body))
        assert c.blocked > 0, "the client never ran out of window"
    # the 48 KiB beyond the first window are read at 64 KiB/s
    assert 0.5 < elapsed < 10


def test_extended_connect_websocket_echo(h2_origin):
    srv = h2_origin("ws")
    with H2Client(srv.port) as c:
        assert c.remote_settings.enable_connect_protocol == 1
        sid = c.connect_ws("/ws")
        assert c.responses[sid].header("x-backend") == "ws"
        for i in range(5):
            msg = bytes([i]) * (1000 * (i + 1))
            c.send(sid, msg)
            assert c.read(sid, len(msg)) == msg
        c.end(sid)
        c.pump_until(lambda: c.responses[sid].ended, what="the echo's END_STREAM")
        sid = c.connect_ws("/ws-frames")
        c.send(sid, ws_frame(1, b"hello frames", mask=b"\x01\x02\x03\x04"))
        fr = ws_parse_frame(c.read(sid, 14))
        assert fr == (True, 1, b"hello frames", 14)
        big = bytes(range(256)) * 300
        c.send(sid, ws_frame(2, big, mask=b"abcd"))
        got = c.read(sid, 10 + len(big))  # 127 + 8-byte length
        assert ws_parse_frame(got)[2] == big
        c.send(sid, ws_frame(8, b"\x03\xe8", mask=b"abcd"))
        assert ws_parse_frame(c.read(sid, 4))[1] == 8
    req = srv.requests[0]
    assert req.method == "CONNECT" and req.protocol == "websocket" and req.path == "/ws"


def test_extended_connect_setting_off(h2_origin):
    srv = h2_origin(enable_connect_protocol=False)
    with H2Client(srv.port) as c:
        assert c.remote_settings.enable_connect_protocol == 0


def test_respond_hook(h2_origin):
    srv = h2_origin(respond=lambda req: (201, {"x-hook": req.path}, b"made", [("x-t", "1")]))
    with H2Client(srv.port) as c:
        r = c.request("GET", "/anything")
    assert (r.status, r.header("x-hook"), r.body, r.trailer("x-t")) == (201, "/anything",
                                                                       b"made", "1")


def test_goaway_from_client_lets_streams_finish(h2_origin):
    """A peer's GOAWAY (a proxy draining its server connection) does not cut the streams
    already open: h2 would stop at it, the backend keeps it from h2."""
    from hyperframe.frame import GoAwayFrame
    srv = h2_origin()
    with H2Client(srv.port) as c:
        sid = c.start("GET", "/echo?delay=200")
        c.sock.sendall(GoAwayFrame(0, last_stream_id=0, error_code=0).serialize())
        assert c.wait([sid])[sid].status == 200
    assert srv.goaways_received == 1


# --------------------------------------------------------------------------- gRPC

def test_grpc_all_shapes(grpc_origin):
    srv = grpc_origin("g1")
    with GrpcClient(srv.address) as c:
        r = c.unary(b"ping", metadata=[("x-k", "v")])
        assert r.ok and r.response == b"ping"
        assert r.initial["x-backend"] == "g1" and r.trailing["x-backend-trailer"] == "g1"
        r = c.client_stream([b"a", b"bb", b"ccc"])
        assert r.ok and r.response == b"abbccc"
        r = c.server_stream(b"s", count=4)
        assert r.ok and r.responses == [b"0:s", b"1:s", b"2:s", b"3:s"]
        r = c.bidi([b"1", b"2", b"3"])
        assert r.ok and r.responses == [b"echo:1", b"echo:2", b"echo:3"]
    assert srv.calls == {"Unary": 1, "ClientStream": 1, "ServerStream": 1, "Bidi": 1}
    assert srv.metadata[0][1]["x-k"] == "v"


def test_grpc_deadline_cancel_errors_health(grpc_origin):
    srv = grpc_origin()
    with GrpcClient(srv.address) as c:
        r = c.sleep(3000, timeout=0.3)
        assert r.code == grpc.StatusCode.DEADLINE_EXCEEDED and r.elapsed < 2
        assert c.sleep(50, timeout=5).response == b"slept"
        r = c.cancel_server_stream(after=2)
        assert r.code == grpc.StatusCode.CANCELLED and len(r.responses) == 2
        r = c.fail(code=5, details="no such thing")
        assert r.code == grpc.StatusCode.NOT_FOUND and r.details == "no such thing"
        assert r.trailing["x-fail-reason"] == "test"
        assert r.trailing["x-fail-bin"] == b"\x00\x01\x02"
        r = c.health()
        assert r.ok and r.serving == 1 and r.response == b"\x08\x01"
        srv.health["strata.test.Echo"] = 2
        assert c.health("strata.test.Echo").serving == 2
        assert c.health("nope").code == grpc.StatusCode.NOT_FOUND
    # the server saw the deadline and stopped sleeping when it passed (grpcio's
    # time_remaining() may exceed the 0.3 s by the clock's rounding: 0.3005 was seen)
    assert 0 < srv.deadlines[0] <= 0.31
    deadline = time.monotonic() + 3
    while srv.cancelled < 1 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert srv.cancelled >= 1


def test_grpc_over_tls(grpc_origin, h2_cert):
    srv = grpc_origin("gt", tls=True)
    with GrpcClient(srv.address, tls_root=h2_cert[0], authority="localhost") as c:
        r = c.unary(b"secure")
    assert r.ok and r.response == b"secure" and r.initial["x-backend"] == "gt"


def test_grpc_on_the_wire_with_the_h2_client(grpc_origin):
    """The same server seen with raw h2: a length-prefixed message, grpc-status trailers;
    how the later Strata tests can look at the bytes."""
    srv = grpc_origin()
    with H2Client(srv.port) as c:
        r = c.request("POST", "/strata.test.Echo/Unary",
                      headers=[("content-type", "application/grpc"), ("te", "trailers")],
                      body=gw.frame(b"raw"))
        assert r.status == 200 and r.header("content-type") == "application/grpc"
        assert r.body == gw.frame(b"raw")
        assert r.trailer("grpc-status") == "0"
        r = c.request("POST", "/strata.test.Echo/Fail",
                      headers=[("content-type", "application/grpc"), ("te", "trailers"),
                               ("x-status", "7"), ("x-details", "denied")],
                      body=gw.frame(b""))
        st = r.trailer("grpc-status") or r.header("grpc-status")
        assert st == "7"
        r = c.request("POST", "/grpc.health.v1.Health/Check",
                      headers=[("content-type", "application/grpc"), ("te", "trailers")],
                      body=gw.frame(health_request("")))
        assert r.body == gw.frame(health_response(1))


def test_health_protobuf_by_hand():
    assert health_request("") == b""
    assert health_request("a.B") == b"\x0a\x03a.B"
    assert parse_health_request(b"\x0a\x03a.B") == "a.B"
    assert health_response(1) == b"\x08\x01" and health_response(2) == b"\x08\x02"


# --------------------------------------------------------------------------- gRPC-Web

# From Envoy's test/extensions/filters/http/grpc_web/grpc_web_filter_test.cc (an independent
# implementation's vectors): a text-mode message, its base64 with and without padding, and a
# trailer frame (no space after the colons).
ENVOY_TEXT_MESSAGE = b"\x00\x00\x00\x00\x12grpc-web-text-data"
ENVOY_B64 = b"AAAAABJncnBjLXdlYi10ZXh0LWRhdGE="
ENVOY_B64_NO_PADDING = b"AAAAABJncnBjLXdlYi10ZXh0LWRhdGE"
ENVOY_TRAILERS = b"\x80\x00\x00\x00\x20grpc-status:0\r\ngrpc-message:ok\r\n"


def test_grpcweb_frames_against_the_spec_and_envoy_vectors():
    assert gw.frame(b"grpc-web-text-data") == ENVOY_TEXT_MESSAGE
    assert gw.encode_messages([b"grpc-web-text-data"], text=True) == ENVOY_B64
    assert gw.decode_text(ENVOY_B64) == ENVOY_TEXT_MESSAGE
    assert gw.decode_text(ENVOY_B64_NO_PADDING) == ENVOY_TEXT_MESSAGE
    res = gw.parse_response(ENVOY_TEXT_MESSAGE + ENVOY_TRAILERS)
    assert res.messages == [b"grpc-web-text-data"]
    assert res.grpc_status == 0 and res.grpc_message == "ok" and res.trailer_frames == 1
    # PROTOCOL-WEB.md: trailers are an HTTP/1 header block without the final newline, in a
    # frame whose first byte is 0x80 (uncompressed)
    tf = gw.trailer_frame({"grpc-status": "3", "grpc-message": "bad"})
    assert tf == b"\x80\x00\x00\x00\x23grpc-status: 3\r\ngrpc-message: bad\r\n"
    # text responses: base64 pieces each padded at a flush, not only at the end
    body = base64.b64encode(gw.frame(b"a")) + base64.b64encode(gw.frame(b"bc")) + \
        base64.b64encode(tf)
    assert body.count(b"=") >= 2
    res = gw.parse_response(body, text=True)
    assert res.messages == [b"a", b"bc"] and res.grpc_status == 3
    with pytest.raises(ValueError):
        gw.parse_frames(gw.frame(b"abcdef")[:-1])
    # trailers-only: grpc-status in the headers, no body
    res = gw.parse_response(b"", headers={"grpc-status": "14", "grpc-message": "unavailable"})
    assert res.grpc_status == 14 and res.messages == []


def test_grpcweb_request_as_a_browser_sends_it():
    hdrs, body = gw.build_request("/strata.test.Echo/Unary", [b"hi"], text=True,
                                  metadata=[("X-Custom", "1")], timeout=1.5)
    h = dict(hdrs)
    assert h["content-type"] == "application/grpc-web-text"
    assert h["accept"] == "application/grpc-web-text"
    assert h["x-grpc-web"] == "1" and h["x-user-agent"].startswith("grpc-web-javascript")
    assert h["grpc-timeout"] == "1500m" and h["x-custom"] == "1"
    assert base64.b64decode(body) == b"\x00\x00\x00\x00\x02hi"
    hdrs, body = gw.build_request("/p.S/M", [b"x", b"yz"])
    assert dict(hdrs)["content-type"] == "application/grpc-web+proto"
    assert body == b"\x00\x00\x00\x00\x01x\x00\x00\x00\x00\x02yz"


def _grpcweb_answer(req_body_of, text):
    """A respond function answering like a gRPC-Web gateway: the request's messages back,
    then the trailer frame."""
    def respond(req):
        raw = req_body_of(req)
        data = gw.decode_text(raw) if text else raw
        msgs = [p for _, p in gw.parse_frames(data)]
        out = b"".join(gw.frame(b"re:" + m) for m in msgs) + \
            gw.trailer_frame({"grpc-status": "0", "grpc-message": ""})
        if text:
            out = base64.b64encode(out)
        return 200, {"content-type": gw.content_type(text)}, out
    return respond


@pytest.mark.parametrize("text", [False, True], ids=["binary", "text"])
def test_grpcweb_call_over_http1(origin, text):
    srv = origin("gw")
    srv.respond = _grpcweb_answer(lambda r: r.body, text)
    res = gw.call(srv.port, "/strata.test.Echo/Unary", [b"one", b"two"], text=text)
    assert res.http_status == 200 and res.messages == [b"re:one", b"re:two"]
    assert res.grpc_status == 0
    req = srv.requests[0]
    assert req.method == "POST" and req.version == "HTTP/1.1"
    assert req.header("content-type") == gw.content_type(text)
    assert req.header("x-grpc-web") == "1"


@pytest.mark.parametrize("text", [False, True], ids=["binary", "text"])
def test_grpcweb_call_over_h2(h2_origin, text):
    srv = h2_origin("gw2")
    inner = _grpcweb_answer(lambda r: r.body, text)
    srv.respond = lambda req: inner(req)
    res = gw.call(srv.port, "/strata.test.Echo/Unary", [b"m"], text=text, http2=True)
    assert res.http_status == 200 and res.messages == [b"re:m"] and res.grpc_status == 0
    assert srv.requests[0].header("x-grpc-web") == "1"


def test_many_connections_counted(h2_origin):
    srv = h2_origin()
    errors = []

    def one():
        try:
            with H2Client(srv.port) as c:
                for _ in range(3):
                    assert c.request("GET", "/echo").status == 200
        except Exception as e:  # reported below
            errors.append(repr(e))

    ts = [threading.Thread(target=one) for _ in range(8)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(timeout=10)
    assert not errors
    assert srv.connections == 8 and srv.streams == 24
