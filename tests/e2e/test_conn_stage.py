"""The connection stage on `mode: http` listeners: a PROXY v1/v2 header from a trusted
source is read before the first request and its address stands for the client (in
X-Forwarded-For, the access log and the ACL) for every request of the connection;
malformed, missing and untrusted headers are refused with a `conn ... end=` line and
counted; a header that never completes is cut by timeouts.inspect."""
import socket
import time

from conftest import closed_by_peer, connect, free_port, proxy_v1, proxy_v2
from http_backend import http_config, parse_response


def proxy_http(strata, origin, trusted="[ 127.0.0.0/8 ]", acl=""):
    a = origin("a")
    port = free_port()
    extra = (f"proxy_protocol: {{ accept: true, trusted: {trusted} }}\n"
             "timeouts: { inspect: 1s }\n" + acl)
    cfg = http_config(port, {"app": {"servers": [a.address]}}, listener_extra=extra,
                      http_extra="access_log: { format: json }", workers=1)
    return strata(cfg, listen_ports=[port]), port, a


def request_bytes(path="/", close=False):
    return (f"GET {path} HTTP/1.1\r\nHost: t\r\n"
            + ("Connection: close\r\n" if close else "") + "\r\n").encode()


def request(c, path="/", close=False):
    c.sendall(request_bytes(path, close))


def refused(c, data):
    """Sends data to a connection Strata refuses: it may reset before the send."""
    try:
        c.sendall(data)
    except (ConnectionResetError, BrokenPipeError):
        return True
    return closed_by_peer(c, 3.0)


def read_responses(c, n, timeout=5.0):
    c.settimeout(timeout)
    data = b""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        out = parse_response(data) if data else []
        if len(out) >= n:
            return out
        chunk = c.recv(65536)
        if not chunk:
            break
        data += chunk
    return parse_response(data)


def test_proxy_header_on_http_listener(strata, origin):
    s, port, a = proxy_http(strata, origin)
    for hdr, want in [(proxy_v1("203.0.113.9", 4000, "127.0.0.1", port), "203.0.113.9"),
                      (proxy_v2("198.51.100.7", 65535, "127.0.0.1", port), "198.51.100.7"),
                      (proxy_v1("2001:db8::5", 7, "2001:db8::1", 443), "2001:db8::5")]:
        c = connect(port)
        with c:
            # the header and the first request in one segment, then a keep-alive request
            c.sendall(hdr + b"GET /one HTTP/1.1\r\nHost: t\r\n\r\n")
            assert [r[0] for r in read_responses(c, 1)] == [200]
            request(c, "/two", close=True)
            assert [r[0] for r in read_responses(c, 1)] == [200]
        got = [r.header("x-forwarded-for") for r in a.requests[-2:]]
        assert got == [want, want], (hdr, got, s.log()[-1500:])
    assert [r.target for r in a.requests] == ["/one", "/two"] * 3


def test_proxy_header_split_across_segments(strata, origin):
    s, port, a = proxy_http(strata, origin)
    hdr = proxy_v2("192.0.2.1", 1234, "127.0.0.1", port)
    c = connect(port)
    with c:
        c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for i in range(0, len(hdr), 5):
            c.sendall(hdr[i:i + 5])
            time.sleep(0.02)
        request(c, close=True)
        assert [r[0] for r in read_responses(c, 1)] == [200]
    assert a.requests[0].header("x-forwarded-for") == "192.0.2.1"


def test_bad_missing_or_untrusted_header_is_refused(strata, origin):
    s, port, a = proxy_http(strata, origin)
    cases = [b"PROXY TCP4 1.2.3.4\r\n", b"GET / HTTP/1.1\r\nHost: t\r\n\r\n"]
    for raw in cases:
        c = connect(port)
        with c:
            c.sendall(raw)
            assert closed_by_peer(c, 3.0), raw
    logs = s.wait_conn_logs(2)
    assert [e["end"] for e in logs] == ["proxy_error", "proxy_error"], logs
    assert a.requests == []
    # a header that never completes: cut by timeouts.inspect (1s)
    c = connect(port)
    with c:
        c.sendall(b"PROXY TCP4 ")
        t0 = time.monotonic()
        assert closed_by_peer(c, 4.0)
        assert 0.5 < time.monotonic() - t0 < 3.5
    assert s.wait_conn_logs(3)[-1]["end"] == "inspect_timeout"


def test_untrusted_source_and_acl_on_carried_address(strata, origin):
    s, port, a = proxy_http(strata, origin, trusted="[ 10.0.0.0/8 ]")
    c = connect(port)
    with c:
        assert refused(c, proxy_v1("203.0.113.9", 4000, "127.0.0.1", port)
                       + request_bytes(close=True))
    assert s.wait_conn_logs(1)[0]["end"] == "denied"
    s.stop()
    s, port, a = proxy_http(strata, origin, acl="acl: { deny: [ 203.0.113.0/24 ] }\n")
    for src, ok in [("203.0.113.9", False), ("198.51.100.1", True)]:
        c = connect(port)
        with c:
            data = proxy_v1(src, 4000, "127.0.0.1", port) + request_bytes(close=True)
            if ok:
                c.sendall(data)
                assert [r[0] for r in read_responses(c, 1)] == [200]
            else:
                assert refused(c, data)
    assert [r.header("x-forwarded-for") for r in a.requests] == ["198.51.100.1"]
