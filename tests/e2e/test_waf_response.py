"""mode: http — the `waf` filter's response body inspection (`inspect_response_body`): a
response of an inspectable type is held whole before the client sees any of it and
inspected by the CRS's RESPONSE-95x rules; one that leaks a SQL error, a Java stack trace
or PHP source is answered 403 (or the route's error page) instead, over HTTP/1 and HTTP/2;
ordinary responses pass unchanged (chunked ones too), other types stream uninspected; a
body over `response_body_limit` has its first part inspected and streams on
(`inspect_partial`: the client gets bytes before the server sent the rest) or is refused
500 (`reject`); detection_only only logs."""
import json
import re
import socket
import threading

from conftest import LOOPBACK, free_port, wait_for
from http_backend import http_config
from test_waf import HOST, request, curl_h2, waf_lines

API = {"Host": HOST, "User-Agent": "Mozilla/5.0 (X11; Linux x86_64) Firefox/120.0",
       "Accept": "text/html,application/json"}

SQL_LEAK = (b"<html><body><h1>Error</h1><p>You have an error in your SQL syntax; check the "
            b"manual that corresponds to your MySQL server version for the right syntax to use "
            b"near ''' at line 1</p></body></html>")
JAVA_LEAK = (b"<pre>java.lang.NullPointerException\n\tat com.example.shop.CartService.total"
             b"(CartService.java:42)\n\tat java.lang.Thread.run(Thread.java:833)</pre>")
PHP_LEAK = b"<?php\n$db = mysqli_connect('db', 'root', 's3cret');\n?>"
PAGE = (b"<!doctype html><html><head><title>Shop</title></head><body><h1>Welcome</h1>"
        b"<p>Running shoes, 20% off this week.</p></body></html>")
LIMIT = 64 * 1024
BIG = b"".join(b"<p>line %06d of an ordinary catalogue page</p>\n" % i for i in range(8000))
MID = BIG[:150000]  # over the 64k limit, under max_body_buffered (256k)


def respond(req):
    path = req.path
    for key, body in (("sql", SQL_LEAK), ("java", JAVA_LEAK), ("php", PHP_LEAK)):
        if path.endswith("/leak/" + key):
            return 500 if key == "sql" else 200, {"content-type": "text/html"}, body
    if path.endswith("/png"):  # not an inspected type: never held
        return 200, {"content-type": "image/png"}, SQL_LEAK
    if path.endswith("/big"):
        return 200, {"content-type": "text/html; charset=utf-8"}, BIG
    if path.endswith("/big-leak-early"):
        return 200, {"content-type": "text/html"}, SQL_LEAK + BIG
    if path.endswith("/mid-leak-late"):
        return 200, {"content-type": "text/html"}, MID + SQL_LEAK
    if path.endswith("/mid"):
        return 200, {"content-type": "text/html"}, MID
    if path.endswith("/big-leak-late"):
        return 200, {"content-type": "text/html"}, BIG + SQL_LEAK
    if path.endswith("/chunked"):
        chunks = b"".join(b"%x\r\n%s\r\n" % (len(c), c) for c in (PAGE[:40], PAGE[40:]))
        return (b"HTTP/1.1 200 OK\r\ncontent-type: text/html\r\ntransfer-encoding: chunked"
                b"\r\n\r\n" + chunks + b"0\r\n\r\n")
    if path.endswith("/json"):
        return 200, {"content-type": "application/json"}, json.dumps(
            {"items": [{"id": i, "name": f"item {i}"} for i in range(50)]}).encode()
    return 200, {"content-type": "text/html"}, PAGE


ROUTES = """\
- match: { path_prefix: /detect/ }
  backend: app
  waf: { mode: detection_only, inspect_response_body: true }
- match: { path_prefix: /plain/ }
  backend: app
  waf: {}
- match: { path_prefix: /reject/ }
  backend: app
  waf: { inspect_response_body: true, response_body_over_limit: reject }
- match: { path_prefix: /page/ }
  backend: app
  waf: { inspect_response_body: true }
  error_pages: { format: json }
- backend: app
  waf: { inspect_response_body: true, response_body_limit: 64k }
"""


def start(strata, origin, routes=ROUTES, backend=None):
    a = backend or origin("app", respond=respond)
    port, admin = free_port(), free_port()
    s = strata(http_config(port, {"app": {"servers": [a.address]}}, routes=routes,
                           admin_port=admin,
                           http_extra="access_log: { format: json }\nmax_body_buffered: 256k\n"
                                      "h2: { cleartext: true }"),
               listen_ports=[port])
    return s, port, admin


def test_leaks_blocked_ordinary_pass(strata, origin):
    s, port, admin = start(strata, origin)
    for path in ("/leak/sql", "/leak/java", "/leak/php"):
        status, out = request(port, "GET", path, API)
        assert status == 403, (path, status, out[:200])
        assert re.search(rb"request id [0-9a-f]{32}", out) and b"SQL" not in out, out
    # the route's error page (JSON) replaces the body
    status, out = request(port, "GET", "/page/leak/java", API)
    assert status == 403
    page = json.loads(out)
    assert page["status"] == 403 and page["detail"] == "blocked by the WAF"
    # ordinary responses pass unchanged, a chunked one too, and other types are not held
    assert request(port, "GET", "/index.html", API) == (200, PAGE)
    assert request(port, "GET", "/chunked", API) == (200, PAGE)
    status, out = request(port, "GET", "/json", API)
    assert status == 200 and len(json.loads(out)["items"]) == 50
    assert request(port, "GET", "/png", API) == (200, SQL_LEAK)
    assert request(port, "HEAD", "/leak/sql", API)[0] == 500  # no body to inspect
    # a route with the WAF but without inspect_response_body lets the leak through
    assert request(port, "GET", "/plain/leak/java", API) == (200, JAVA_LEAK)
    lines = waf_lines(s, 10)
    ids = {ln["path"]: ln.get("waf_rules", "") for ln in lines if ln["method"] == "GET"}
    assert "951" in ids["/leak/sql"] and "952" in ids["/leak/java"], ids
    assert "953" in ids["/leak/php"], ids
    assert all(not ids[p] for p in ("/index.html", "/chunked", "/json", "/png")), ids
    m = s.metrics(admin)
    assert m.get("strata_listener_waf_rule_matches_total", listener="web",
                 category="data_leakage") >= 4
    assert m.get("strata_listener_waf_requests_total", listener="web", outcome="blocked") == 4


def test_http2_client(strata, origin):
    s, port, admin = start(strata, origin)
    base = f"http://{LOOPBACK}:{port}"
    code, body = curl_h2(port, f"{base}/leak/sql")
    assert code == 403 and re.search(rb"request id [0-9a-f]{32}", body), body
    code, body = curl_h2(port, f"{base}/index.html")
    assert (code, body) == (200, PAGE)
    code, body = curl_h2(port, f"{base}/big")
    assert (code, body) == (200, BIG)
    code, body = curl_h2(port, f"{base}/big-leak-early")
    assert code == 403, body[:200]


def test_over_limit(strata, origin):
    s, port, admin = start(strata, origin)
    # longer than the 64k limit: the first part inspected, the rest streamed as it is
    assert request(port, "GET", "/big", API) == (200, BIG)
    assert request(port, "GET", "/big-leak-late", API) == (200, BIG + SQL_LEAK)
    assert request(port, "GET", "/big-leak-early", API)[0] == 403
    # within max_body_buffered (256k) when it is the limit: held whole, the late leak seen
    assert request(port, "GET", "/mid-leak-late", API) == (200, MID + SQL_LEAK)
    assert request(port, "GET", "/page/mid-leak-late", API)[0] == 403
    # reject: a body within its limit (max_body_buffered, 256k) is held whole and passes
    assert request(port, "GET", "/reject/mid", API) == (200, MID)
    assert s.wait_log(r"waf: response body of request [0-9a-f]{32} longer than 65536 bytes: "
                      r"only its first part inspected")


def test_reject_over_limit(strata, origin):
    huge = BIG * 2  # ~400k: over max_body_buffered (256k)
    a = origin("app", respond=lambda req: (200, {"content-type": "text/html"}, huge))
    s, port, admin = start(strata, origin, backend=a)
    status, out = request(port, "GET", "/reject/x", API)
    assert status == 500 and b"over the WAF's limit" in out, out[:200]
    assert request(port, "GET", "/x", API) == (200, huge)  # inspect_partial
    assert s.wait_log(r"longer than 262144 bytes: refused")


def test_detection_only_logs(strata, origin):
    s, port, admin = start(strata, origin)
    status, out = request(port, "GET", "/detect/leak/sql", API)
    assert (status, out) == (500, SQL_LEAK)
    lines = waf_lines(s, 1)
    assert "951" in lines[0].get("waf_rules", ""), lines
    assert s.wait_log(r"waf: ModSecurity: Warning.*95\d\d\d\d")


class SlowOrigin:
    """Sends a text/html response of `first` bytes, then waits for `go` (set by the test
    once the client read past the limit), then the rest: a proxy that held the whole body
    would never give the client the first part."""

    def __init__(self, first, rest):
        self.first, self.rest = first, rest
        self.go = threading.Event()
        self.sock = socket.socket()
        self.sock.bind((LOOPBACK, 0))
        self.sock.listen(4)
        self.address = f"{LOOPBACK}:{self.sock.getsockname()[1]}"
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self):
        try:
            c, _ = self.sock.accept()
        except OSError:
            return
        with c:
            c.settimeout(10)
            buf = b""
            while b"\r\n\r\n" not in buf and len(buf) < 65536:
                d = c.recv(4096)
                if not d:
                    return
                buf += d
            n = len(self.first) + len(self.rest)
            c.sendall(b"HTTP/1.1 200 OK\r\ncontent-type: text/html\r\n"
                      b"content-length: %d\r\n\r\n" % n + self.first)
            self.go.wait(10)
            c.sendall(self.rest)

    def stop(self):
        self.go.set()
        self.sock.close()
        self.thread.join(5)


def test_over_limit_streams(strata, origin):
    first, rest = BIG[:LIMIT + 20000], BIG[LIMIT + 20000:]
    o = SlowOrigin(first, rest)
    try:
        s, port, admin = start(strata, origin, backend=o)
        c = socket.create_connection((LOOPBACK, port), timeout=10)
        with c:
            c.sendall(f"GET /x HTTP/1.1\r\nHost: {HOST}\r\nUser-Agent: {API['User-Agent']}"
                      f"\r\nAccept: text/html\r\n\r\n".encode())
            got = b""
            while len(got) < LIMIT + 10000:  # bounded by the socket timeout
                d = c.recv(65536)
                assert d, got[:200]
                got += d
            head, _, body = got.partition(b"\r\n\r\n")
            assert head.startswith(b"HTTP/1.1 200")
            assert b"content-length: %d" % len(BIG) in head.lower()
            o.go.set()
            for _ in range(1000):
                if len(body) >= len(BIG):
                    break
                d = c.recv(65536)
                assert d
                body += d
            assert body == BIG
    finally:
        o.stop()


def test_config_errors(strata_bin, tmp_path):
    import subprocess
    for bad, want in (("response_body_types: \"text/html image\"", "media types"),
                      ("response_body_over_limit: drop", "inspect_partial"),
                      ("response_body_limit: 2g", "")):
        conf = http_config(free_port(), {"app": {"servers": [f"{LOOPBACK}:1"]}},
                           routes=f"- backend: app\n  waf: {{ {bad} }}\n")
        p = tmp_path / "bad.yaml"
        p.write_text(conf)
        r = subprocess.run([strata_bin, "check", str(p)], capture_output=True, text=True,
                           timeout=60)
        assert r.returncode != 0
        assert re.search(r"bad\.yaml:\d+:\d+", r.stderr), r.stderr
        assert want in r.stderr, r.stderr


def test_http2_origin(strata, h2_origin):
    """The same holding with an HTTP/2 server (its own server codec): a leak refused, a
    page (with trailers too) passed, a body over the limit streamed."""
    def h2_respond(req):
        path = req.path
        if path.endswith("/leak/java"):
            return 200, {"content-type": "text/html"}, JAVA_LEAK
        if path.endswith("/trailers"):
            return 200, {"content-type": "text/html"}, PAGE, [("x-checksum", "abc")]
        if path.endswith("/big"):
            return 200, {"content-type": "text/html"}, BIG
        return 200, {"content-type": "text/html"}, PAGE
    o = h2_origin("h2", respond=h2_respond)
    port = free_port()
    s = strata(http_config(port, {"app": {"servers": [o.address], "extra": "protocol: h2c"}},
                           routes=ROUTES, http_extra="max_body_buffered: 256k\n"
                                                     "h2: { cleartext: true }"),
               listen_ports=[port])
    status, out = request(port, "GET", "/leak/java", API)
    assert status == 403 and b"java.lang" not in out, out[:200]
    assert request(port, "GET", "/index.html", API) == (200, PAGE)
    assert request(port, "GET", "/big", API) == (200, BIG)
    # a response with trailers: held and let go as the same route without holding sends it
    assert request(port, "GET", "/trailers", API) == request(port, "GET", "/plain/trailers", API)
    assert request(port, "GET", "/trailers", API) == (200, PAGE)
    assert curl_h2(port, f"http://{LOOPBACK}:{port}/trailers") == (200, PAGE)
    code, body = curl_h2(port, f"http://{LOOPBACK}:{port}/leak/java")
    assert code == 403
