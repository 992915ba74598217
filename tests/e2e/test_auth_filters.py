"""mode: http — the access filters other than jwt, with real clients: basic_auth against an
htpasswd file made by apache2-utils' htpasswd (bcrypt, SHA-256/512-crypt), CORS preflights
and simple requests (python requests), ip_access allow/deny lists (inline and from files),
and the bot filter's user-agent rules and cookie challenge (a requests.Session, which keeps
cookies and follows redirects, passes; a client that keeps no cookies does not)."""
import subprocess
import time
import urllib.error
import urllib.request

import pytest
import requests

from conftest import LOOPBACK, free_port
from http_backend import http_config
from test_http_filters import get, json_log

EV = "strata_listener_http_filter_events_total"


def run(strata, origin, routes, http_extra="", admin=False):
    a = origin()
    port, admin_port = free_port(), free_port() if admin else None
    text = http_config(port, {"app": {"servers": [a.address]}}, routes=routes,
                       admin_port=admin_port, http_extra=http_extra)
    s = strata(text, listen_ports=[port], admin_port=admin_port)
    return s, port, a, admin_port


# --------------------------------------------------------------------------- basic_auth

@pytest.fixture
def htpasswd(tmp_path):
    path = tmp_path / "users"
    for i, (flag, user, pw) in enumerate([("-B", "alice", "wonderland"),
                                          ("-2", "bob", "builder"),
                                          ("-5", "carol", "s3cret:with:colons")]):
        args = ["htpasswd", "-b"] + (["-c"] if i == 0 else []) + [flag, str(path), user, pw]
        subprocess.run(args, check=True, capture_output=True, timeout=30)
    return path


BASIC = """\
- backend: app
  basic_auth: {{ htpasswd: {path}, realm: staff, user_header: x-user, forward_credentials: false }}
"""


def test_basic_auth_right_wrong_and_missing(strata, origin, htpasswd):
    s, port, a, admin = run(strata, origin, BASIC.format(path=htpasswd), admin=True)
    url = f"http://{LOOPBACK}:{port}/p"
    for user, pw in [("alice", "wonderland"), ("bob", "builder"), ("carol", "s3cret:with:colons")]:
        r = requests.get(url, auth=(user, pw), headers={"X-User": "mallory"}, timeout=5)
        assert r.status_code == 200, (user, r.text)
        assert a.requests[-1].header_all("x-user") == [user]
        assert a.requests[-1].header("authorization") is None
    for user, pw in [("alice", "wrong"), ("nobody", "wonderland"), ("bob", "")]:
        r = requests.get(url, auth=(user, pw), timeout=5)
        assert r.status_code == 401, (user, r.text)
        assert r.headers["WWW-Authenticate"] == 'Basic realm="staff", charset="UTF-8"'
    r = requests.get(url, timeout=5)
    assert r.status_code == 401 and "no basic credentials" in r.text
    r = requests.get(url, headers={"Authorization": "Basic !!!"}, timeout=5)
    assert r.status_code == 401 and "malformed" in r.text
    assert len(a.requests) == 3
    m = s.metrics(admin)
    assert m.get(EV, listener="web", event="basic_accepted") == 3
    assert m.get(EV, listener="web", event="basic_refused") == 4
    assert m.get(EV, listener="web", event="basic_missing") == 1


def test_basic_auth_keep_alive_client_pays_the_hash_once(strata, origin, tmp_path):
    """bcrypt at cost 12 takes a few hundred ms; the worker's cache makes the next
    requests of the same credentials cheap. Checked loosely (shared machine): 20 cached
    requests take less time than 4 uncached hashes would."""
    path = tmp_path / "users"
    subprocess.run(["htpasswd", "-b", "-c", "-B", "-C", "12", str(path), "alice", "pw"],
                   check=True, capture_output=True, timeout=60)
    s, port, a, _ = run(strata, origin, BASIC.format(path=path))
    with requests.Session() as sess:
        t0 = time.monotonic()
        assert sess.get(f"http://{LOOPBACK}:{port}/", auth=("alice", "pw"), timeout=10).ok
        first = time.monotonic() - t0
        t0 = time.monotonic()
        for _ in range(20):
            assert sess.get(f"http://{LOOPBACK}:{port}/", auth=("alice", "pw"), timeout=10).ok
        rest = time.monotonic() - t0
    assert rest < 4 * first, (first, rest)


def test_basic_auth_config_errors(strata_bin, tmp_path):
    path = tmp_path / "users"
    subprocess.run(["htpasswd", "-b", "-c", "-m", str(path), "md5user", "pw"], check=True,
                   capture_output=True, timeout=30)
    text = http_config(free_port(), {"app": {"servers": ["127.0.0.1:9"]}},
                       routes=f"- backend: app\n  basic_auth: {{ htpasswd: {path} }}\n")
    conf = tmp_path / "c.yaml"
    conf.write_text(text)
    r = subprocess.run([strata_bin, "check", str(conf)], capture_output=True, text=True, timeout=10)
    assert r.returncode != 0
    assert "basic_auth.htpasswd" in r.stderr and "unsupported hash" in r.stderr, r.stderr


# --------------------------------------------------------------------------- cors

CORS = """\
- match: { path_prefix: /api/ }
  backend: app
  cors:
    origins: [https://app.example.com]
    origin_patterns: ['^https://[a-z0-9-]+\\.preview\\.example\\.com$']
    methods: [GET, POST, PUT]
    headers: [content-type, x-api-key]
    expose_headers: [x-total]
    credentials: true
    max_age: 2m
- match: { path_prefix: /public/ }
  backend: app
  cors: { origins: "*" }
"""


def test_cors_preflight_answered_by_strata(strata, origin):
    s, port, a, admin = run(strata, origin, CORS, admin=True)
    url = f"http://{LOOPBACK}:{port}/api/items"
    r = requests.options(url, headers={"Origin": "https://app.example.com",
                                       "Access-Control-Request-Method": "PUT",
                                       "Access-Control-Request-Headers": "Content-Type, X-Api-Key"},
                         timeout=5)
    assert r.status_code == 204, r.text
    h = r.headers
    assert h["Access-Control-Allow-Origin"] == "https://app.example.com"
    assert h["Access-Control-Allow-Credentials"] == "true"
    assert h["Access-Control-Allow-Methods"] == "GET, POST, PUT"
    assert h["Access-Control-Allow-Headers"] == "content-type, x-api-key"
    assert h["Access-Control-Max-Age"] == "120"
    assert "Origin" in h["Vary"]
    r = requests.options(url, headers={"Origin": "https://pr-42.preview.example.com",
                                       "Access-Control-Request-Method": "GET"}, timeout=5)
    assert r.status_code == 204
    assert r.headers["Access-Control-Allow-Origin"] == "https://pr-42.preview.example.com"
    for hdrs in [{"Origin": "https://evil.example", "Access-Control-Request-Method": "GET"},
                 {"Origin": "https://app.example.com", "Access-Control-Request-Method": "DELETE"},
                 {"Origin": "https://app.example.com", "Access-Control-Request-Method": "GET",
                  "Access-Control-Request-Headers": "x-other"},
                 {"Origin": "https://x.preview.example.com.evil", "Access-Control-Request-Method": "GET"}]:
        r = requests.options(url, headers=hdrs, timeout=5)
        assert r.status_code == 403, hdrs
        assert "Access-Control-Allow-Origin" not in r.headers
    assert a.requests == []  # no preflight reached the server
    # an OPTIONS that is not a preflight goes to the server
    assert requests.options(url, timeout=5).status_code == 200
    m = s.metrics(admin)
    assert m.get(EV, listener="web", event="cors_preflight") == 2
    assert m.get(EV, listener="web", event="cors_refused") == 4


def test_cors_simple_requests_get_the_origin_back(strata, origin):
    s, port, a, _ = run(strata, origin, CORS)
    base = f"http://{LOOPBACK}:{port}"
    r = requests.get(base + "/api/items", headers={"Origin": "https://app.example.com"}, timeout=5)
    assert r.status_code == 200
    assert r.headers["Access-Control-Allow-Origin"] == "https://app.example.com"
    assert r.headers["Access-Control-Allow-Credentials"] == "true"
    assert r.headers["Access-Control-Expose-Headers"] == "x-total"
    assert "Origin" in r.headers["Vary"]
    r = requests.get(base + "/api/items", headers={"Origin": "https://evil.example"}, timeout=5)
    assert r.status_code == 200 and "Access-Control-Allow-Origin" not in r.headers
    assert "Origin" in r.headers["Vary"]
    r = requests.get(base + "/api/items", timeout=5)
    assert "Access-Control-Allow-Origin" not in r.headers
    r = requests.get(base + "/public/x", headers={"Origin": "https://any.example"}, timeout=5)
    assert r.headers["Access-Control-Allow-Origin"] == "*"
    assert "Access-Control-Allow-Credentials" not in r.headers


# --------------------------------------------------------------------------- ip_access

def test_ip_access_allow_and_deny_lists(strata, origin, tmp_path):
    allow = tmp_path / "allow.txt"
    allow.write_text("# office\n10.0.0.0/8\n\n127.0.0.0/8  # loopback\n")
    deny = tmp_path / "deny.txt"
    deny.write_text("127.0.0.3\n")
    routes = f"""\
- match: {{ path_prefix: /files/ }}
  backend: app
  ip_access: {{ allow_file: {allow}, deny_file: {deny} }}
- match: {{ path_prefix: /inline/ }}
  backend: app
  ip_access: {{ allow: [192.0.2.0/24], status: 404 }}
- match: {{ path_prefix: /deny/ }}
  backend: app
  ip_access: {{ deny: 127.0.0.2 }}
"""
    s, port, a, admin = run(strata, origin, routes, admin=True)

    def status(path, source):
        import http.client
        c = http.client.HTTPConnection(LOOPBACK, port, timeout=5, source_address=(source, 0))
        try:
            c.request("GET", path)
            return c.getresponse().status
        finally:
            c.close()

    assert status("/files/a", "127.0.0.1") == 200
    assert status("/files/a", "127.0.0.3") == 403
    assert status("/inline/a", "127.0.0.1") == 404
    assert status("/deny/a", "127.0.0.1") == 200
    assert status("/deny/a", "127.0.0.2") == 403
    assert len(a.requests) == 2
    assert s.metrics(admin).get(EV, listener="web", event="ip_denied") == 3


def test_ip_access_on_the_listener(strata, origin):
    s, port, a, _ = run(strata, origin, "- backend: app\n",
                        http_extra="ip_access: { deny: 127.0.0.0/8 }")
    status, _, body = get(port, "/")
    assert status == 403 and b"client address not allowed" in body


# --------------------------------------------------------------------------- bot

BOT = """\
- backend: app
  bot:
    allow: ['Googlebot/']
    deny: ['(?i)badbot']
    challenge: ['(?i)suspicious']
    known_bots: challenge
    cookie_ttl: 10m
"""


def test_bot_user_agent_rules(strata, origin):
    s, port, a, admin = run(strata, origin, BOT, admin=True)
    url = f"http://{LOOPBACK}:{port}/"
    browser = "Mozilla/5.0 (X11; Linux x86_64) Firefox/120.0"
    assert requests.get(url, headers={"User-Agent": browser}, timeout=5).status_code == 200
    assert requests.get(url, headers={"User-Agent": "Mozilla/5.0 (compatible; Googlebot/2.1)"},
                        timeout=5).status_code == 200
    r = requests.get(url, headers={"User-Agent": "BadBot/1.0"}, timeout=5)
    assert r.status_code == 403 and "user agent denied" in r.text
    # a POST from a suspicious client without the cookie cannot be redirected: 403
    r = requests.post(url, data=b"x", headers={"User-Agent": "curl/8.0"}, timeout=5)
    assert r.status_code == 403
    assert len(a.requests) == 2


def test_bot_challenge_cookie_flow(strata, origin):
    s, port, a, admin = run(strata, origin, BOT, admin=True)
    url = f"http://{LOOPBACK}:{port}/page?q=1"
    # a plain script that keeps no cookies is sent round until its redirect limit
    r = requests.get(url, headers={"User-Agent": "python-requests/2.28"}, allow_redirects=False,
                     timeout=5)
    assert r.status_code == 307 and r.headers["Location"] == "/page?q=1"
    assert r.headers["Set-Cookie"].startswith("strata_bc=")
    assert r.headers["Cache-Control"] == "no-store"
    c = subprocess.run(["curl", "-sS", "-L", "--max-redirs", "5", "-o", "/dev/null", "-w",
                        "%{http_code}", url], capture_output=True, text=True, timeout=30)
    assert c.returncode == 47, (c.returncode, c.stdout, c.stderr)  # too many redirects
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(urllib.request.Request(url, headers={"User-Agent": ""}), timeout=5)
    assert e.value.code == 307
    assert a.requests == []
    # a client that keeps cookies and follows redirects (as a browser) passes
    with requests.Session() as sess:
        sess.headers["User-Agent"] = "suspicious-browser/1.0"
        r = sess.get(url, timeout=5)
        assert r.status_code == 200 and len(r.history) == 1
        r = sess.get(url, timeout=5)
        assert r.status_code == 200 and not r.history
        cookie = sess.cookies.get("strata_bc")
    assert len(a.requests) == 2 and a.requests[0].target == "/page?q=1"
    # the cookie is bound to the User-Agent and signed: changed, it is worthless
    r = requests.get(url, headers={"User-Agent": "suspicious-other", "Cookie": f"strata_bc={cookie}"},
                     allow_redirects=False, timeout=5)
    assert r.status_code == 307
    forged = cookie[:-1] + ("0" if cookie[-1] != "0" else "1")
    r = requests.get(url, headers={"User-Agent": "suspicious-browser/1.0",
                                   "Cookie": f"strata_bc={forged}"}, allow_redirects=False, timeout=5)
    assert r.status_code == 307
    r = requests.get(url, headers={"User-Agent": "suspicious-browser/1.0",
                                   "Cookie": f"strata_bc={cookie}"}, allow_redirects=False, timeout=5)
    assert r.status_code == 200
    m = s.metrics(admin)
    assert m.get(EV, listener="web", event="bot_passed") == 3
    assert len(a.requests) == 3
    assert m.get(EV, listener="web", event="bot_challenged") >= 10


# --------------------------------------------------------------------------- request_limits

def test_request_limits_per_route(strata, origin):
    from http_backend import http_request, parse_response
    routes = """\
- match: { path_prefix: /login }
  backend: app
  request_limits: { max_body: 1k, max_headers: 5 }
- backend: app
"""
    s, port, a, admin = run(strata, origin, routes, http_extra="max_request_body: 1m",
                            admin=True)
    out = parse_response(http_request(
        port, b"POST /login HTTP/1.1\r\nHost: x\r\nContent-Length: 2000\r\n\r\n" + b"x" * 2000))
    assert [r[0] for r in out] == [413]
    chunk = b"%x\r\n%s\r\n" % (600, b"y" * 600)
    out = parse_response(http_request(
        port, b"POST /login HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" +
        chunk * 2 + b"0\r\n\r\n"))
    assert [r[0] for r in out] == [413]
    many = b"".join(b"X-F%d: v\r\n" % i for i in range(6))
    out = parse_response(http_request(port, b"GET /login HTTP/1.1\r\nHost: x\r\n" + many +
                                      b"Connection: close\r\n\r\n"))
    assert [r[0] for r in out] == [431]
    # other routes keep the listener's limits
    out = parse_response(http_request(
        port, b"POST /other HTTP/1.1\r\nHost: x\r\nContent-Length: 2000\r\nConnection: close\r\n\r\n"
        + b"x" * 2000))
    assert [r[0] for r in out] == [200]
    assert [r.path for r in a.requests if r.path != "/login"] == ["/other"]
    assert s.metrics(admin).get(EV, listener="web", event="limits_refused") == 2


def test_request_limits_body_timeout(strata, origin):
    import socket
    from http_backend import http_request, parse_response

    def respond(req):
        if req.path == "/slowserver":
            time.sleep(1.5)
        return b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"

    a = origin(respond=respond)
    port = free_port()
    routes = """\
- backend: app
  request_limits: { body_timeout: 1s }
"""
    s = strata(http_config(port, {"app": {"servers": [a.address]}}, routes=routes,
                           http_extra="access_log: { format: json }"), listen_ports=[port])
    # a body that stops coming: 408 within about the timeout, though bytes trickle in
    with socket.create_connection((LOOPBACK, port), timeout=10) as c:
        t0 = time.monotonic()
        c.sendall(b"POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n" + b"x" * 10)
        c.settimeout(0.3)
        data = b""
        for _ in range(20):  # one byte every 0.3s keeps the connection busy, not the body in time
            try:
                data = c.recv(65536)
                if data:
                    break
            except socket.timeout:
                c.sendall(b"y")
        elapsed = time.monotonic() - t0
    assert data.startswith(b"HTTP/1.1 408"), data
    assert 0.8 < elapsed < 4, elapsed
    # whole bodies in time pass, chunked too; a GET waits for a slow server past the timeout
    ok = parse_response(http_request(
        port, b"POST /fast HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello" +
        b"POST /chunked HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"
        b"GET /slowserver HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"))
    assert [r[0] for r in ok] == [200, 200, 200]
    lines = json_log(s, 4)
    assert any(ln["status"] == 408 and ln["end"] == "client_timeout" for ln in lines)
