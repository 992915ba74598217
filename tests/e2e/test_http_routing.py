"""mode: http — routing: every match kind (host exact, wildcard and with a port; path
exact, prefix and regex; method; header, cookie and query items; several ANDed), route
order and the 404 when nothing matches; the actions (backend, a 90/10 split over 10,000
requests, weight 0, redirects, fixed answers); request hashing; a wrk burst against the
access log; `strata check` on bad HTTP configs. Filters (header and path rewrites,
forwarded headers, request ids, traceparent, sticky sessions) are in test_http_filters.py.

Every scenario checks what the client got and what the origins (HttpBackend) received."""
import collections
import http.client
import json
import re
import subprocess
import threading
import time

import pytest
import requests

from conftest import LOOPBACK, free_port, run_strata, wait_for
from http_backend import http_config, http_request, parse_response


# --------------------------------------------------------------------------- helpers

@pytest.fixture
def origin(origin):
    """origin(name) answers 200 with its name as body (and `x-backend: NAME`)."""
    def start(name="a", respond=None):
        return origin(name, respond or (
            lambda req, n=name: (200, {"content-type": "text/plain"}, n.encode())))

    return start


def run_http(strata, backends, routes=None, http_extra="", **kw):
    port = free_port()
    s = strata(http_config(port, backends, routes=routes, http_extra=http_extra, **kw),
               listen_ports=[port])
    return s, port


def send(port, method="GET", target="/", host="example.com", headers=(), body=b""):
    """One raw request on its own connection (Connection: close); headers is a list of
    (name, value) sent as is, so names, case and repeats are the test's. Returns
    (status, headers dict (lowercase names), body)."""
    head = f"{method} {target} HTTP/1.1\r\n"
    if host is not None:
        head += f"Host: {host}\r\n"
    for k, v in headers:
        head += f"{k}: {v}\r\n"
    if body:
        head += f"Content-Length: {len(body)}\r\n"
    head += "Connection: close\r\n\r\n"
    out = parse_response(http_request(port, head.encode("latin-1") + body))
    assert len(out) == 1, f"{method} {target}: expected one response, got {out!r}"
    return out[0]


def get(port, path, headers=None, conn=None):
    """GET through http.client (a new connection unless `conn`); (status, msg, body)."""
    c = conn or http.client.HTTPConnection(LOOPBACK, port, timeout=5)
    try:
        c.request("GET", path, headers=headers or {})
        r = c.getresponse()
        return r.status, r.msg, r.read()
    finally:
        if conn is None:
            c.close()


def two(hit, miss):
    return {"hit": {"servers": [hit.address]}, "miss": {"servers": [miss.address]}}


# --------------------------------------------------------------------------- matches

# Each case: the `match:` of a route to backend `hit` (a second route takes everything
# else to `miss`), and requests (method, target, host, headers) with where each must go.
H = "example.com"
MATCH_CASES = {
    "host-exact": ("host: api.example.com", [
        (("GET", "/", "api.example.com", []), True),
        (("GET", "/", "API.Example.COM", []), True),
        (("GET", "/", "api.example.com.", []), True),
        (("GET", "/", "www.example.com", []), False),
        (("GET", "/", "api.example.com.evil", []), False),
        (("GET", "http://api.example.com/abs", "api.example.com", []), True),
    ]),
    "host-with-port": ("host: api.example.com", [
        (("GET", "/", "api.example.com:8080", []), True),
        (("GET", "/", "api.example.com:80", []), True),
        (("GET", "/", "www.example.com:8080", []), False),
    ]),
    "host-wildcard": ('host: "*.example.com"', [
        (("GET", "/", "a.example.com", []), True),
        (("GET", "/", "a.b.example.com", []), True),
        (("GET", "/", "A.EXAMPLE.com:81", []), True),
        (("GET", "/", "example.com", []), False),       # the apex is not under itself
        (("GET", "/", "badexample.com", []), False),
        (("GET", "/", "example.com.org", []), False),
        (("GET", "/", "a.example.com.", []), True),
    ]),
    "host-ipv6": ('host: "[::1]"', [
        (("GET", "/", "[::1]:8080", []), True),
        (("GET", "/", "[::1]", []), True),
        (("GET", "/", "[::2]:8080", []), False),
    ]),
    "host-list": ('host: [a.test, "*.b.test", 127.0.0.1]', [
        (("GET", "/", "a.test", []), True),
        (("GET", "/", "x.b.test", []), True),
        (("GET", "/", "127.0.0.1:9", []), True),
        (("GET", "/", "b.test", []), False),
        (("GET", "/", "x.a.test", []), False),
    ]),
    "path-exact": ("path: /exact", [
        (("GET", "/exact", H, []), True),
        (("GET", "/exact?x=1", H, []), True),
        (("GET", "/exact/", H, []), False),
        (("GET", "/exactly", H, []), False),
        (("GET", "/EXACT", H, []), False),
    ]),
    "path-prefix": ("path_prefix: /v1/", [
        (("GET", "/v1/users", H, []), True),
        (("GET", "/v1/", H, []), True),
        (("GET", "/v1/?q=1", H, []), True),
        (("GET", "/v1", H, []), False),
        (("GET", "/v2/v1/", H, []), False),
    ]),
    "path-regex-anchored": ("path_regex: '^/u/[0-9]+$'", [
        (("GET", "/u/42", H, []), True),
        (("GET", "/u/42?tab=posts", H, []), True),  # the query is not part of the path
        (("GET", "/u/abc", H, []), False),
        (("GET", "/x/u/42", H, []), False),
        (("GET", "/u/42/", H, []), False),
    ]),
    "path-regex-unanchored": ("path_regex: '[0-9]{3}'", [
        (("GET", "/a/123/b", H, []), True),
        (("GET", "/a/12/b", H, []), False),
        (("GET", "/a?x=123", H, []), False),
    ]),
    "method-single": ("method: POST", [
        (("POST", "/", H, []), True),
        (("GET", "/", H, []), False),
        (("PUT", "/", H, []), False),
        (("post", "/", H, []), False),  # methods are case-sensitive
    ]),
    "method-list": ("method: [PUT, DELETE, PURGE]", [
        (("PUT", "/", H, []), True),
        (("DELETE", "/", H, []), True),
        (("PURGE", "/", H, []), True),  # outside the well-known methods
        (("GET", "/", H, []), False),
        (("PURGEX", "/", H, []), False),
    ]),
    "header-present": ("header: { x-canary: { present: true } }", [
        (("GET", "/", H, [("X-Canary", "1")]), True),
        (("GET", "/", H, [("x-CANARY", "anything")]), True),
        (("GET", "/", H, [("X-Canary", "")]), True),
        (("GET", "/", H, [("X-Canary-Not", "1")]), False),
        (("GET", "/", H, []), False),
    ]),
    "header-exact": ('header: { x-env: "prod" }', [
        (("GET", "/", H, [("X-Env", "prod")]), True),
        (("GET", "/", H, [("X-Env", "dev"), ("X-Env", "prod")]), True),  # any of its values
        (("GET", "/", H, [("X-Env", "Prod")]), False),
        (("GET", "/", H, [("X-Env", "prod2")]), False),
        (("GET", "/", H, []), False),
    ]),
    "header-prefix": ('header: { user-agent: { prefix: "curl/" } }', [
        (("GET", "/", H, [("User-Agent", "curl/7.88.1")]), True),
        (("GET", "/", H, [("User-Agent", "Mozilla/5.0 curl/7")]), False),
        (("GET", "/", H, [("User-Agent", "curl")]), False),
    ]),
    "header-regex": ("header: { x-version: { regex: '^v[0-9]+$' } }", [
        (("GET", "/", H, [("X-Version", "v2")]), True),
        (("GET", "/", H, [("X-Version", "v10")]), True),
        (("GET", "/", H, [("X-Version", "v2beta")]), False),
        (("GET", "/", H, []), False),
    ]),
    "cookie": ('cookie: { beta: "1", sid: { present: true } }', [
        (("GET", "/", H, [("Cookie", "sid=abc; beta=1")]), True),
        (("GET", "/", H, [("Cookie", "beta=1;sid=")]), True),
        (("GET", "/", H, [("Cookie", "sid=abc"), ("Cookie", "beta=1")]), True),
        (("GET", "/", H, [("Cookie", "sid=abc; beta=10")]), False),
        (("GET", "/", H, [("Cookie", "sid=abc; Beta=1")]), False),  # names case-sensitive
        (("GET", "/", H, [("Cookie", "beta=1")]), False),
        (("GET", "/", H, []), False),
    ]),
    "cookie-regex-prefix": ("cookie: { uid: { regex: '^[0-9]+$' }, lang: { prefix: en } }", [
        (("GET", "/", H, [("Cookie", "uid=123; lang=en-GB")]), True),
        (("GET", "/", H, [("Cookie", "uid=12a; lang=en")]), False),
        (("GET", "/", H, [("Cookie", "uid=12; lang=fr")]), False),
    ]),
    "query": ('query: { debug: "1", trace: { present: true } }', [
        (("GET", "/?debug=1&trace", H, []), True),
        (("GET", "/x?trace=0&debug=1", H, []), True),
        (("GET", "/?debug=10&trace", H, []), False),
        (("GET", "/?Debug=1&trace", H, []), False),
        (("GET", "/?debug=1", H, []), False),
        (("GET", "/debug=1&trace", H, []), False),  # in the path, not the query
    ]),
    "query-regex": ("query: { page: { regex: '^[0-9]{1,3}$' } }", [
        (("GET", "/list?page=7", H, []), True),
        (("GET", "/list?page=1000", H, []), False),
        (("GET", "/list", H, []), False),
    ]),
    "and": ("host: api.example.com, path_prefix: /v1/, method: GET, "
            "header: { x-key: k1 }, query: { v: \"2\" }", [
        (("GET", "/v1/a?v=2", "api.example.com", [("X-Key", "k1")]), True),
        (("POST", "/v1/a?v=2", "api.example.com", [("X-Key", "k1")]), False),
        (("GET", "/v2/a?v=2", "api.example.com", [("X-Key", "k1")]), False),
        (("GET", "/v1/a?v=2", "www.example.com", [("X-Key", "k1")]), False),
        (("GET", "/v1/a?v=2", "api.example.com", [("X-Key", "k2")]), False),
        (("GET", "/v1/a?v=3", "api.example.com", [("X-Key", "k1")]), False),
    ]),
}


@pytest.mark.parametrize("case", list(MATCH_CASES), ids=list(MATCH_CASES))
def test_match_kinds(strata, origin, case):
    match, reqs = MATCH_CASES[case]
    hit, miss = origin("hit"), origin("miss")
    routes = f"- name: r1\n  match: {{ {match} }}\n  backend: hit\n- name: rest\n  backend: miss"
    s, port = run_http(strata, two(hit, miss), routes=routes)
    wrong = []
    for (method, target, host, headers), want_hit in reqs:
        body = b"x" if method in ("POST", "PUT") else b""
        n_hit, n_miss = len(hit.requests), len(miss.requests)
        status, h, got = send(port, method, target, host, headers, body=body)
        assert status == 200, (method, target, host, headers, status, got)
        where = got.decode()
        if where != ("hit" if want_hit else "miss"):
            wrong.append(f"{method} {target} Host: {host} {headers} -> {where}")
            continue
        o = hit if want_hit else miss
        # exactly one request reached the origin the client was told about
        assert (len(hit.requests) - n_hit, len(miss.requests) - n_miss) == \
            ((1, 0) if want_hit else (0, 1))
        # absolute-form goes on in origin-form
        origin_form = re.sub(r"^http://[^/]+", "", target)
        assert (o.requests[-1].method, o.requests[-1].target) == (method, origin_form)
    assert not wrong, "misrouted:\n" + "\n".join(wrong)


def test_routes_tried_in_order_first_match_wins(strata, origin):
    special, api, shadow = origin("special"), origin("api"), origin("shadow")
    routes = """\
- { name: special, match: { path_prefix: /api/special }, backend: special }
- { name: api, match: { path_prefix: /api/ }, backend: api }
- { name: shadowed, match: { path_prefix: /api/special/x }, backend: shadow }
"""
    backends = {n: {"servers": [o.address]} for n, o in
                (("special", special), ("api", api), ("shadow", shadow))}
    s, port = run_http(strata, backends, routes=routes,
                       http_extra="access_log: { format: json }")
    want = {"/api/special/x/1": "special", "/api/special": "special", "/api/other": "api",
            "/api/specia": "api"}
    for path, name in want.items():
        assert send(port, target=path)[2] == name.encode(), path
    assert [r.target for r in special.requests] == ["/api/special/x/1", "/api/special"]
    assert [r.target for r in api.requests] == ["/api/other", "/api/specia"]
    assert shadow.requests == []
    lines = wait_for(lambda: (lambda ls: ls if len(ls) >= 4 else None)(
        [json.loads(x) for x in s.stdout().splitlines() if x.startswith("{")]), 5,
        what="4 access log lines")
    assert [e["route"] for e in lines] == [want[e["path"]] for e in lines]


def test_no_route_answers_404_and_origin_gets_nothing(strata, origin):
    a = origin("a")
    s, port = run_http(strata, {"app": {"servers": [a.address]}},
                       routes="- { match: { host: only.example.com }, backend: app }")
    conn = http.client.HTTPConnection(LOOPBACK, port, timeout=5)
    status, msg, body = get(port, "/nowhere", headers={"Host": "other.example.com"}, conn=conn)
    assert status == 404
    assert b"no route" in body.lower(), body
    assert msg.get("content-type", "").startswith("text/plain")
    # the connection stays usable after a 404, and the next request routes normally
    status, _, body = get(port, "/there", headers={"Host": "only.example.com"}, conn=conn)
    conn.close()
    assert (status, body) == (200, b"a")
    assert [r.target for r in a.requests] == ["/there"]


def test_listener_backend_takes_what_no_route_matches(strata, origin):
    api, fallback = origin("api"), origin("fallback")
    s, port = run_http(strata, {"api": {"servers": [api.address]},
                                "fallback": {"servers": [fallback.address]}},
                       routes="- { name: api, match: { path_prefix: /api/ }, backend: api }",
                       listener_extra="backend: fallback",
                       http_extra="access_log: { format: json }")
    assert send(port, target="/api/x")[2] == b"api"
    assert send(port, target="/other")[2] == b"fallback"
    assert [r.target for r in fallback.requests] == ["/other"]
    lines = wait_for(lambda: (lambda ls: ls if len(ls) >= 2 else None)(
        [json.loads(x) for x in s.stdout().splitlines() if x.startswith("{")]), 5)
    assert {e["path"]: e["route"] for e in lines} == {"/api/x": "api", "/other": "default"}


# --------------------------------------------------------------------------- actions

def hammer(port, paths_per_thread, threads=8, timeout=60.0):
    """GETs paths_per_thread(i) on keep-alive connection i, `threads` connections at once;
    returns a Counter of the response bodies. Fails on any non-200 or error."""
    counts = collections.Counter()
    errors = []
    lock = threading.Lock()
    deadline = time.monotonic() + timeout

    def worker(paths):
        local = collections.Counter()
        conn = http.client.HTTPConnection(LOOPBACK, port, timeout=10)
        try:
            for p in paths:
                if time.monotonic() > deadline:
                    raise TimeoutError("hammer ran out of time")
                conn.request("GET", p)
                r = conn.getresponse()
                body = r.read()
                if r.status != 200:
                    raise AssertionError(f"{p}: {r.status} {body[:200]!r}")
                local[body.decode()] += 1
        except Exception as e:  # reported below
            errors.append(repr(e))
        finally:
            conn.close()
            with lock:
                counts.update(local)

    ts = [threading.Thread(target=worker, args=(paths_per_thread(i),)) for i in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(timeout + 5)
    assert not errors, errors[:3]
    return counts


@pytest.mark.timeout(120)
def test_split_90_10_over_10000_requests(strata, origin):
    blue, green = origin("blue"), origin("green")
    routes = """\
- name: www
  split:
    - { backend: blue, weight: 90 }
    - { backend: green, weight: 10 }
"""
    s, port = run_http(strata, {"blue": {"servers": [blue.address]},
                                "green": {"servers": [green.address]}}, routes=routes)
    n, threads = 10000, 8
    counts = hammer(port, lambda i: [f"/s/{i}/{k}" for k in range(n // threads)], threads)
    assert sum(counts.values()) == n
    assert set(counts) == {"blue", "green"}, counts
    share = counts["green"] / n * 100
    assert 8.0 <= share <= 12.0, f"green got {share:.2f}% of {n} ({counts})"
    assert (len(blue.requests), len(green.requests)) == (counts["blue"], counts["green"])


def test_split_weight_zero_never_chosen(strata, origin):
    names = ("z1", "a", "z2", "c")  # a weight 0 first, and between two others
    origins = {n: origin(n) for n in names}
    routes = """\
- split:
    - { backend: z1, weight: 0 }
    - { backend: a, weight: 50 }
    - { backend: z2, weight: 0 }
    - { backend: c, weight: 50 }
"""
    s, port = run_http(strata, {n: {"servers": [o.address]} for n, o in origins.items()},
                       routes=routes)
    counts = hammer(port, lambda i: ["/w"] * 250, threads=4)
    assert counts["z1"] == counts["z2"] == 0, counts
    assert origins["z1"].requests == origins["z2"].requests == []
    assert counts["a"] > 400 and counts["c"] > 400, counts
    assert len(origins["a"].requests) + len(origins["c"].requests) == 1000


REDIRECT_ROUTES = """\
- name: r301
  match: { path_prefix: /301/ }
  redirect: { status: 301, location: "https://new.example.com{request_uri}" }
- name: r302
  match: { path_prefix: /302/ }
  redirect: { status: 302, location: "{scheme}://{host}/moved{path}" }
- name: r307
  match: { path_prefix: /307/ }
  redirect: { status: 307, location: "https://{host}:8443/q?{query}" }
- name: r308
  match: { path_prefix: /308/ }
  redirect: { status: 308, location: "/elsewhere{{x}?from={path}" }
- name: default302
  match: { path_prefix: /def/ }
  redirect: { location: "https://{host}{request_uri}" }
- backend: app
"""


@pytest.mark.parametrize("target,host,status,location", [
    ("/301/a/b?x=1&y=2", "old.example.com:8080", 301, "https://new.example.com/301/a/b?x=1&y=2"),
    ("/301/a/b", "old.example.com", 301, "https://new.example.com/301/a/b"),
    ("/302/p?q=1", "Old.Example.com:8080", 302, "http://Old.Example.com/moved/302/p"),
    ("/307/x?a=1&b=2", "h.test", 307, "https://h.test:8443/q?a=1&b=2"),
    ("/308/y?z", "h.test", 308, "/elsewhere{x}?from=/308/y"),
    ("/def/k?v=1", "h.test", 302, "https://h.test/def/k?v=1"),
])
def test_redirect_status_and_location(strata, origin, target, host, status, location):
    a = origin("a")
    s, port = run_http(strata, {"app": {"servers": [a.address]}}, routes=REDIRECT_ROUTES)
    got_status, h, body = send(port, "GET", target, host)
    assert got_status == status, (got_status, h, body)
    assert h["location"] == location
    assert location.encode() in body
    assert a.requests == []


def test_redirect_with_curl_and_post_body(strata, origin):
    a = origin("a")
    s, port = run_http(strata, {"app": {"servers": [a.address]}}, routes=REDIRECT_ROUTES)
    out = subprocess.run(
        ["curl", "-s", "-o", "/dev/null", "-H", "Host: shop.test", "-d", "payload=1",
         "-w", "%{http_code} %{redirect_url}", f"http://{LOOPBACK}:{port}/307/cart?id=9"],
        capture_output=True, text=True, timeout=10)
    assert out.stdout == "307 https://shop.test:8443/q?id=9", out
    # a POST whose body Strata never needs (it answers itself) is answered all the same
    r = requests.post(f"http://{LOOPBACK}:{port}/301/x", data=b"z" * 5000,
                      allow_redirects=False, timeout=5)
    assert r.status_code == 301
    assert r.headers["location"] == "https://new.example.com/301/x"
    assert a.requests == []


def test_respond_status_body_content_type(strata, origin):
    a = origin("a")
    routes = """\
- { match: { path: /healthz }, respond: { status: 200, body: "ok\\n" } }
- match: { path_prefix: /maint }
  respond: { status: 503, body: "<h1>down</h1>", content_type: "text/html; charset=utf-8" }
- { match: { path: /empty }, respond: { status: 204 } }
- { match: { method: [DELETE] }, respond: { status: 405, body: "no" } }
- backend: app
"""
    s, port = run_http(strata, {"app": {"servers": [a.address]}}, routes=routes)
    r = requests.get(f"http://{LOOPBACK}:{port}/healthz", timeout=5)
    assert (r.status_code, r.content) == (200, b"ok\n")
    assert r.headers["content-type"] == "text/plain; charset=utf-8"
    assert r.headers["content-length"] == "3"
    r = requests.get(f"http://{LOOPBACK}:{port}/maint/page?x", timeout=5)
    assert (r.status_code, r.text) == (503, "<h1>down</h1>")
    assert r.headers["content-type"] == "text/html; charset=utf-8"
    status, h, body = send(port, "GET", "/empty")
    assert (status, body) == (204, b"") and "content-length" not in h
    status, h, body = send(port, "DELETE", "/thing")
    assert (status, body) == (405, b"no")
    # HEAD: the same head, no body
    out = http_request(port, b"HEAD /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    head, _, rest = out.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200") and b"content-length: 3" in head.lower()
    assert rest == b""
    out = subprocess.run(["curl", "-s", "-i", f"http://{LOOPBACK}:{port}/maint"],
                         capture_output=True, text=True, timeout=10)
    assert out.stdout.startswith("HTTP/1.1 503"), out
    assert out.stdout.endswith("\n\n<h1>down</h1>"), out  # text mode: \r\n read as \n
    assert a.requests == []
    assert send(port, "GET", "/app")[2] == b"a"  # and the rest still reaches the origin
    assert [r.target for r in a.requests] == ["/app"]


# --------------------------------------------------------------------------- hashing

def three(origin, extra=""):
    srvs = [origin(f"s{i}") for i in (1, 2, 3)]
    return srvs, {"app": {"servers": [(o.name, o.address) for o in srvs], "extra": extra}}

HASH_CASES = {
    "maglev-header": ("balance: maglev\nhash: { header: x-user }",
                      lambda k: ("/h", {"X-User": k})),
    "source_hash-cookie": ("balance: source_hash\nhash: { cookie: uid }",
                           lambda k: ("/h", {"Cookie": f"a=b; uid={k}"})),
    "maglev-path": ("balance: maglev\nhash: path", lambda k: (f"/p/{k}", {})),
    "source_hash-path": ("balance: source_hash\nhash: path", lambda k: (f"/p/{k}?r=1", {})),
}


@pytest.mark.parametrize("case", list(HASH_CASES), ids=list(HASH_CASES))
def test_hash_same_key_same_server(strata, origin, case):
    extra, make = HASH_CASES[case]
    srvs, backends = three(origin, extra)
    s, port = run_http(strata, backends)
    conn = http.client.HTTPConnection(LOOPBACK, port, timeout=5)
    for key in ("alice", "bob"):
        path, headers = make(key)
        got = collections.Counter(get(port, path, headers, conn=conn)[2] for _ in range(30))
        assert len(got) == 1, f"key {key} went to {got}"
    spread = collections.Counter()
    for i in range(30):
        path, headers = make(f"user-{i}")
        first = get(port, path, headers, conn=conn)[2]
        # a fresh connection gives the same answer for the same key
        assert get(port, path, headers)[2] == first, f"user-{i}"
        spread[first] += 1
    conn.close()
    assert len(spread) > 1, f"30 keys all on {spread}"
    assert sum(len(o.requests) for o in srvs) == 120


def test_hash_without_key_falls_back_to_client_address(strata, origin):
    srvs, backends = three(origin, "balance: maglev\nhash: { header: x-user }")
    s, port = run_http(strata, backends)
    got = collections.Counter(get(port, f"/{i}")[2] for i in range(20))
    assert len(got) == 1, got  # every request comes from 127.0.0.1


def test_maglev_same_choice_on_two_instances(strata, origin):
    srvs, backends = three(origin, "balance: maglev\nhash: { header: x-user }")
    s1, p1 = run_http(strata, backends, workers=1)
    s2, p2 = run_http(strata, backends, workers=2)
    for i in range(20):
        h = {"X-User": f"u{i}"}
        assert get(p1, "/", h)[2] == get(p2, "/", h)[2], f"u{i}"


# --------------------------------------------------------------------------- wrk burst

def parse_wrk(out):
    m = re.search(r"(\d+) requests in", out)
    assert m, out
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)",
                       out)
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return (int(m[1]), tuple(map(int, errors.groups())) if errors else (0, 0, 0, 0),
            int(non2xx[1]) if non2xx else 0)


@pytest.mark.timeout(60)
def test_wrk_burst_no_errors_and_access_log(strata, origin, tmp_path):
    a = origin("a")
    log = tmp_path / "access.json"
    routes = "- { name: burst, match: { path_prefix: /burst/ }, backend: app }"
    s, port = run_http(strata, {"app": {"servers": [("s1", a.address)]}}, routes=routes,
                       http_extra=f"access_log: {{ format: json, path: {log} }}")
    out = subprocess.run(["wrk", "-t2", "-c50", "-d2s", "--timeout", "5s",
                          f"http://{LOOPBACK}:{port}/burst/x"],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    done, socket_errors, non2xx = parse_wrk(out.stdout)
    assert done > 500, out.stdout
    assert socket_errors == (0, 0, 0, 0) and non2xx == 0, out.stdout
    # wrk stops with up to one request in flight per connection: those may or may not
    # have reached the origin
    assert a.wait_requests(done, timeout=5)
    assert done <= len(a.requests) <= done + 50, (done, len(a.requests))

    def entries():
        try:
            return [json.loads(x) for x in log.read_text().splitlines()]
        except FileNotFoundError:
            return []

    # one line per request Strata read (it may have read some that wrk cut short)
    wait_for(lambda: len(entries()) >= len(a.requests), 10,
             what=f"{len(a.requests)} access log lines")
    time.sleep(0.3)
    lines = entries()
    assert len(a.requests) <= len(lines) <= done + 50, (done, len(a.requests), len(lines))
    ok = [e for e in lines if e["status"] == 200]
    assert len(ok) >= done
    assert all(e["route"] == "burst" and e["backend"] == "app" and e["server"] == "s1"
               and e["path"] == "/burst/x" for e in lines), lines[:3]
    assert len({e["request_id"] for e in lines}) == len(lines)


# --------------------------------------------------------------------------- strata check

CHECK_BASE = """\
listeners:
  - name: web
    listen: 127.0.0.1:8080
    mode: http
    routes:
      - name: api
        match: { path_regex: '^/api/[0-9]+$', header: { x-user: { regex: 'u[0-9]' } } }
        backend: blue
        request_headers: { set: { x-client: "{client_ip}" } }
        path_rewrite: { regex: '^/api/(.*)$', replace: '/$1' }
      - name: www
        match: { host: "*.example.com" }
        split:
          - { backend: blue, weight: 90 }
          - { backend: green, weight: 10 }
      - name: old
        match: { path: /old }
        redirect: { status: 301, location: "https://{host}/new" }
backends:
  blue: { servers: [127.0.0.1:9001] }
  green: { servers: [127.0.0.1:9002] }
"""

R = "listeners[0].routes"
# (id, edits [(old, new)], marker of the expected position, path, words: one must appear)
CHECK_CASES = [
    ("bad-path-regex", [("'^/api/[0-9]+$'", "'^/api/([0-9]+$'")], "'^/api/([0-9]+$'",
     f"{R}[0].match.path_regex", ["regex", "parenthes"]),
    ("bad-header-regex", [("'u[0-9]'", "'u[0-9'")], "'u[0-9'", f"{R}[0].match.header",
     ["regex", "bracket", "class"]),
    ("bad-rewrite-regex", [("'^/api/(.*)$'", "'^/api/(*)$'")], "'^/api/(*)$'",
     f"{R}[0].path_rewrite.regex", ["regex", "quantifier", "nothing"]),
    ("unknown-backend-in-split", [("{ backend: green, weight: 10 }",
                                   "{ backend: greem, weight: 10 }")], "greem",
     f"{R}[1].split[1].backend", ["greem"]),
    ("split-weight-over-100", [("{ backend: green, weight: 10 }",
                                "{ backend: green, weight: 101 }")], "101",
     f"{R}[1].split[1].weight", ["100"]),
    ("host-with-port", [('"*.example.com"', '"www.example.com:8080"')],
     '"www.example.com:8080"', f"{R}[1].match.host", ["port"]),
    ("redirect-status", [("status: 301", "status: 200")], "200", f"{R}[2].redirect.status",
     ["301"]),
    ("reserved-header", [("x-client:", "content-length:")], "content-length",
     f"{R}[0].request_headers.set", ["content-length"]),
    ("unknown-template-var", [("{client_ip}", "{client_addr}")], '"{client_addr}"',
     f"{R}[0].request_headers.set", ["client_addr"]),
    # a listener `backend` is the last route, named "default": no other may take the name
    ("route-named-default", [("    mode: http\n", "    mode: http\n    backend: green\n"),
                             ("- name: old", "- name: default")],
     "default", f"{R}[2].name", ["duplicate"]),
]


def check_at(text, marker):
    idx = text.index(marker)
    return text.count("\n", 0, idx) + 1, idx - (text.rfind("\n", 0, idx) + 1) + 1


def test_check_base_http_config_is_valid(strata_bin, tmp_path):
    (tmp_path / "good.yaml").write_text(CHECK_BASE)
    r = run_strata(strata_bin, "check", "good.yaml", cwd=str(tmp_path))
    assert r.returncode == 0, r.stderr


@pytest.mark.parametrize("case", CHECK_CASES, ids=[c[0] for c in CHECK_CASES])
def test_check_bad_http_config(strata_bin, tmp_path, case):
    name, edits, marker, path, words = case
    text = CHECK_BASE
    for old, new in edits:
        assert text.count(old) == 1, old
        text = text.replace(old, new)
    (tmp_path / "bad.yaml").write_text(text)
    r = run_strata(strata_bin, "check", "bad.yaml", cwd=str(tmp_path))
    assert r.returncode == 1, (r.returncode, r.stdout, r.stderr)
    line, col = check_at(text, marker)
    errs = re.findall(r"^bad\.yaml:(\d+):(\d+): error: (.*)$", r.stderr, re.M)
    hits = [m for l, c, m in errs if (int(l), int(c)) == (line, col) and m.startswith(path)]
    assert hits, f"want bad.yaml:{line}:{col}: error: {path}..., got:\n{r.stderr}"
    assert any(w.lower() in hits[0].lower() for w in words), hits[0]
