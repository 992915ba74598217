"""mode: http — what Strata changes in a request and its response: request_headers and
response_headers (set, add, remove, templates), path_rewrite (prefix, regex with
captures), the forwarded headers (X-Forwarded-*, RFC 7239 Forwarded, trusted proxies,
none), request ids and W3C traceparent. Each scenario checks both what the origin
(HttpBackend) received and what the client got back. Sticky sessions (the sticky
filter) are here too."""
import collections
import http.client
import json
import re
import socket
import subprocess

import pytest
import requests

from conftest import LOOPBACK, free_port, have_ipv6_loopback, wait_for
from http_backend import http_config, http_request, parse_response

HEX32 = re.compile(r"[0-9a-f]{32}")
TRACEPARENT = re.compile(r"00-([0-9a-f]{32})-([0-9a-f]{16})-01")


def run_http(strata, a, routes=None, http_extra="", **kw):
    port = free_port()
    s = strata(http_config(port, {"app": {"servers": [a.address]}}, routes=routes,
                           http_extra=http_extra, **kw), listen_ports=[port])
    return s, port


def get(port, path="/", headers=None, method="GET", host=LOOPBACK):
    """One request on a new connection; headers: a dict, or a list of (name, value) when
    a name repeats. Returns (status, response header list, body)."""
    c = http.client.HTTPConnection(host, port, timeout=5)
    try:
        c.putrequest(method, path, skip_accept_encoding=True,
                     skip_host=any(k.lower() == "host" for k, _ in items(headers)))
        for k, v in items(headers):
            c.putheader(k, v)
        c.endheaders()
        r = c.getresponse()
        return r.status, r.msg, r.read()
    finally:
        c.close()


def items(headers):
    if not headers:
        return []
    return list(headers.items()) if isinstance(headers, dict) else list(headers)


def json_log(s, n):
    return wait_for(lambda: (lambda ls: ls if len(ls) >= n else None)(
        [json.loads(x) for x in s.stdout().splitlines() if x.startswith("{")]), 5,
        what=f"{n} access log lines")


# --------------------------------------------------------------------------- header rewrites

def test_request_headers_set_add_remove_and_templates(strata, origin):
    a = origin()
    routes = """\
- match: { path_prefix: /r/ }
  backend: app
  request_headers:
    set:
      x-env: prod
      x-client: "{client_ip}"
      x-rid: "{request_id}"
      x-orig: "{method} {scheme}://{host} {authority} {path} {query} {request_uri}"
      x-lit: "{{literal}"
    add: { x-tag: strata, x-new: "n-{path}" }
    remove: [x-debug, x-secret]
"""
    s, port = run_http(strata, a, routes=routes)
    status, msg, body = get(port, "/r/p?k=v&z=1", [
        ("Host", "shop.test:8080"), ("X-Env", "dev"), ("X-Env", "stage"), ("X-Tag", "client"),
        ("X-Debug", "1"), ("x-secret", "s"), ("X-Keep", "kept")])
    assert status == 200, body
    req = a.requests[0]
    assert req.header_all("x-env") == ["prod"]
    assert req.header("x-client") == "127.0.0.1"
    assert HEX32.fullmatch(req.header("x-rid")), req.header("x-rid")
    assert req.header("x-rid") == req.header("x-request-id") == msg["x-request-id"]
    assert req.header("x-orig") == ("GET http://shop.test shop.test:8080 /r/p k=v&z=1 "
                                    "/r/p?k=v&z=1")
    assert req.header("x-lit") == "{literal}"
    assert req.header_all("x-tag") == ["client", "strata"]
    assert req.header("x-new") == "n-/r/p"
    assert req.header("x-debug") is None and req.header("x-secret") is None
    assert req.header("x-keep") == "kept" and req.header("host") == "shop.test:8080"
    # a second request gets its own request id in the template
    get(port, "/r/q")
    assert a.requests[1].header("x-rid") not in (None, req.header("x-rid"))
    assert a.requests[1].header("x-orig").endswith(" /r/q  /r/q")  # empty {query}


def test_response_headers_set_add_remove(strata, origin):
    def respond(req):
        return (b"HTTP/1.1 200 OK\r\nServer: origin/1.0\r\nX-Powered-By: php\r\n"
                b"Cache-Control: public\r\nSet-Cookie: a=1\r\nContent-Length: 2\r\n\r\nok")

    a = origin(respond=respond)
    routes = """\
- match: { path_prefix: /fixed }
  respond: { status: 200, body: fixed }
  response_headers: { set: { x-frame-options: DENY }, add: { x-answered: "{path}" } }
- backend: app
  response_headers:
    set: { cache-control: no-store, x-served-for: "{client_ip} {method} {request_uri}" }
    add: { set-cookie: "b=2", x-via: strata }
    remove: [server, x-powered-by]
"""
    s, port = run_http(strata, a, routes=routes)
    status, msg, body = get(port, "/page?x=1")
    assert (status, body) == (200, b"ok")
    assert msg.get_all("cache-control") == ["no-store"]
    assert msg["x-served-for"] == "127.0.0.1 GET /page?x=1"
    assert msg.get_all("set-cookie") == ["a=1", "b=2"]
    assert msg["x-via"] == "strata"
    assert msg["server"] is None and msg["x-powered-by"] is None
    # the origin saw none of it: response rewrites touch the response only
    assert a.requests[0].header("cache-control") is None
    # Strata's own answers go through them too
    status, msg, body = get(port, "/fixed/1")
    assert (status, body) == (200, b"fixed")
    assert msg["x-frame-options"] == "DENY" and msg["x-answered"] == "/fixed/1"
    assert len(a.requests) == 1


def test_path_rewrite_prefix(strata, origin):
    a = origin()
    routes = """\
- name: v1
  match: { path_prefix: /v1/ }
  backend: app
  path_rewrite: { prefix: /v1/, replace: / }
- name: api
  match: { path_prefix: /api }
  backend: app
  path_rewrite: { prefix: /api, replace: /backend/api }
- name: gone
  match: { path_prefix: /gone }
  backend: app
  path_rewrite: { prefix: /gone, replace: "" }
- { name: rest, backend: app }
"""
    s, port = run_http(strata, a, routes=routes, http_extra="access_log: { format: json }")
    want = {"/v1/users?x=1&y": "/users?x=1&y", "/v1/": "/", "/v1/a/v1/b": "/a/v1/b",
            "/api/x": "/backend/api/x", "/apix?q": "/backend/apix?q",
            "/gone?z=1": "/?z=1", "/gone/x": "/x", "/v2/users": "/v2/users"}
    for sent, received in want.items():
        status, _, body = get(port, sent)
        assert status == 200 and body == f"GET {received}\n".encode(), (sent, body)
    assert [r.target for r in a.requests] == list(want.values())
    # the access log shows the path as received
    logged = {e["path"] + ("?" + e["query"] if "query" in e else "")
              for e in json_log(s, len(want))}
    assert logged == set(want), logged


def test_path_rewrite_regex_with_captures(strata, origin):
    a = origin()
    routes = """\
- match: { path_prefix: /u/ }
  backend: app
  path_rewrite: { regex: '^/u/([0-9]+)(/.*)?$', replace: '/users/$1$2' }
- match: { path_prefix: /old/ }
  backend: app
  path_rewrite: { regex: '^/old/([a-z]+)/([a-z]+)', replace: 'new/$2/$1/$$/$0' }
- match: { path_prefix: /strip }
  backend: app
  path_rewrite: { regex: '^/strip', replace: '' }
"""
    s, port = run_http(strata, a, routes=routes)
    want = {
        "/u/42": "/users/42",
        "/u/42?tab=posts&n=2": "/users/42?tab=posts&n=2",  # the query is kept
        "/u/42/posts/7": "/users/42/posts/7",
        "/u/abc": "/u/abc",  # no match: unchanged
        "/old/ab/cd/tail?q": "/new/cd/ab/$//old/ab/cd/tail?q",  # no leading '/' gets one
        "/strip": "/",
        "/strip/me": "/me",
    }
    for sent, received in want.items():
        assert get(port, sent)[2] == f"GET {received}\n".encode(), sent
    assert [r.target for r in a.requests] == list(want.values())


# --------------------------------------------------------------------------- forwarded

def test_x_forwarded_added_and_client_values_replaced(strata, origin):
    a = origin()
    s, port = run_http(strata, a)
    get(port, "/", {"Host": "site.test:81"})
    r = a.requests[0]
    assert r.header_all("x-forwarded-for") == ["127.0.0.1"]
    assert r.header("x-forwarded-proto") == "http"
    assert r.header("x-forwarded-host") == "site.test:81"
    assert r.header("forwarded") is None
    # an untrusted client cannot forge them
    get(port, "/", [("Host", "site.test"), ("X-Forwarded-For", "6.6.6.6"),
                    ("X-Forwarded-For", "7.7.7.7"), ("X-Forwarded-Proto", "https"),
                    ("X-Forwarded-Host", "evil.test"), ("Forwarded", "for=6.6.6.6")])
    r = a.requests[1]
    assert r.header_all("x-forwarded-for") == ["127.0.0.1"]
    assert r.header_all("x-forwarded-proto") == ["http"]
    assert r.header_all("x-forwarded-host") == ["site.test"]
    # Forwarded is not managed in x-forwarded mode: it is passed on as sent
    assert r.header_all("forwarded") == ["for=6.6.6.6"]


def test_x_forwarded_appended_for_trusted_proxy(strata, origin):
    a = origin()
    s, port = run_http(strata, a, http_extra="trusted_proxies: [10.0.0.0/8, 127.0.0.1]")
    get(port, "/", [("Host", "site.test"), ("X-Forwarded-For", "203.0.113.7"),
                    ("X-Forwarded-For", "10.1.1.1"), ("X-Forwarded-Proto", "https"),
                    ("X-Forwarded-Host", "public.test")])
    r = a.requests[0]
    assert r.header_all("x-forwarded-for") == ["203.0.113.7, 10.1.1.1, 127.0.0.1"]
    assert r.header_all("x-forwarded-proto") == ["https"]
    assert r.header_all("x-forwarded-host") == ["public.test"]
    get(port, "/", {"Host": "site.test"})  # a trusted client that sent none
    r = a.requests[1]
    assert r.header_all("x-forwarded-for") == ["127.0.0.1"]
    assert r.header("x-forwarded-proto") == "http" and r.header("x-forwarded-host") == "site.test"


def test_x_forwarded_replaced_when_trust_does_not_cover_client(strata, origin):
    a = origin()
    s, port = run_http(strata, a, http_extra="trusted_proxies: [10.0.0.0/8, 127.0.0.2]")
    get(port, "/", [("Host", "site.test"), ("X-Forwarded-For", "203.0.113.7")])
    assert a.requests[0].header_all("x-forwarded-for") == ["127.0.0.1"]


def test_forwarded_rfc7239(strata, origin):
    a = origin()
    s, port = run_http(strata, a, http_extra="forwarded: rfc7239")
    get(port, "/", [("Host", "site.test"), ("Forwarded", "for=6.6.6.6;proto=https"),
                    ("X-Forwarded-For", "1.2.3.4")])
    r = a.requests[0]
    assert r.header_all("forwarded") == ["for=127.0.0.1;proto=http;host=site.test"]
    assert r.header_all("x-forwarded-for") == ["1.2.3.4"]  # not managed in this mode
    assert r.header("x-forwarded-proto") is None
    get(port, "/", {"Host": "site.test:8080"})  # ':' is not a token character: quoted
    assert a.requests[1].header("forwarded") == 'for=127.0.0.1;proto=http;host="site.test:8080"'


def test_forwarded_rfc7239_trusted_appends(strata, origin):
    a = origin()
    s, port = run_http(strata, a, http_extra="forwarded: both\ntrusted_proxies: 127.0.0.1")
    get(port, "/", [("Host", "h.test"), ("Forwarded", 'for="[2001:db8::1]";proto=https')])
    r = a.requests[0]
    assert r.header_all("forwarded") == [
        'for="[2001:db8::1]";proto=https, for=127.0.0.1;proto=http;host=h.test']
    assert r.header("x-forwarded-for") == "127.0.0.1"


@pytest.mark.skipif(not have_ipv6_loopback(), reason="no IPv6 loopback")
def test_forwarded_ipv6_client(strata, origin):
    a = origin()
    port = free_port("::1", socket.AF_INET6)
    cfg = http_config(port, {"app": {"servers": [a.address]}}, http_extra="forwarded: both")
    cfg = cfg.replace(f'"{LOOPBACK}:{port}"', f'"[::1]:{port}"')
    strata(cfg, listen_ports=[port], host="::1")
    get(port, "/", {"Host": "h.test"}, host="::1")
    r = a.requests[0]
    assert r.header("forwarded") == 'for="[::1]";proto=http;host=h.test'
    assert r.header("x-forwarded-for") == "::1"


def test_http10_request_without_host_reaches_origin_with_host(strata, origin):
    """RFC 9112 §3.2: a client MUST send Host in every HTTP/1.1 request (empty when the
    target has no authority); servers answer 400 without it."""
    a = origin()
    s, port = run_http(strata, a)
    out = parse_response(http_request(port, b"GET /old HTTP/1.0\r\n\r\n"))
    assert out and out[0][0] == 200
    r = a.requests[0]
    assert r.version == "HTTP/1.1" and r.header("host") is not None, r.headers


def test_forwarded_none_adds_nothing(strata, origin):
    a = origin()
    s, port = run_http(strata, a, http_extra="forwarded: none")
    get(port, "/", {"Host": "site.test"})
    names = {k.lower() for k, _ in a.requests[0].headers}
    assert not names & {"x-forwarded-for", "x-forwarded-proto", "x-forwarded-host",
                        "forwarded"}, names


# --------------------------------------------------------------------------- request id

def test_request_id_made_kept_and_echoed(strata, origin):
    a = origin()
    s, port = run_http(strata, a, http_extra="access_log: { format: json }")
    ids = []
    for i in range(5):
        status, msg, _ = get(port, f"/{i}")
        rid = msg["x-request-id"]
        assert HEX32.fullmatch(rid), rid
        assert a.requests[i].header_all("x-request-id") == [rid]
        ids.append(rid)
    assert len(set(ids)) == 5
    # a usable id is kept, passed on and echoed
    _, msg, _ = get(port, "/kept", {"X-Request-Id": "req-abc.123"})
    assert msg.get_all("x-request-id") == ["req-abc.123"]
    assert a.requests[5].header_all("x-request-id") == ["req-abc.123"]
    # unusable ones (space, too long, two of them) are replaced
    for bad in ([("X-Request-Id", "has space")], [("X-Request-Id", "x" * 201)],
                [("X-Request-Id", "one"), ("X-Request-Id", "two")]):
        _, msg, _ = get(port, "/bad", bad)
        assert HEX32.fullmatch(msg["x-request-id"]), (bad, msg["x-request-id"])
        assert a.requests[-1].header_all("x-request-id") == [msg["x-request-id"]]
    logged = [e["request_id"] for e in json_log(s, 9)]
    assert set(ids) | {"req-abc.123"} <= set(logged)


def test_request_id_custom_header_and_origin_value(strata, origin):
    a = origin(respond=lambda req: (200, {"X-Trace-Id": "from-origin"}, b"x"))
    s, port = run_http(strata, a, http_extra="request_id: x-trace-id")
    _, msg, _ = get(port, "/")
    rid = msg["x-trace-id"]
    assert HEX32.fullmatch(rid) and msg.get_all("x-trace-id") == [rid]
    assert a.requests[0].header("x-trace-id") == rid
    assert a.requests[0].header("x-request-id") is None and msg["x-request-id"] is None


def test_request_id_none(strata, origin):
    a = origin()
    s, port = run_http(strata, a, http_extra="request_id: none\naccess_log: { format: json }")
    _, msg, _ = get(port, "/")
    assert msg["x-request-id"] is None
    assert a.requests[0].header("x-request-id") is None
    assert json_log(s, 1)[0]["request_id"] == "-"


def test_request_id_on_strata_answers_with_curl(strata, origin):
    a = origin()
    s, port = run_http(strata, a, routes="- { match: { path: /x }, backend: app }")
    out = subprocess.run(["curl", "-s", "-D", "-", "-o", "/dev/null",
                          f"http://{LOOPBACK}:{port}/nope"],
                         capture_output=True, text=True, timeout=10)
    assert out.stdout.startswith("HTTP/1.1 404"), out
    assert re.search(r"(?im)^x-request-id: [0-9a-f]{32}\r?$", out.stdout), out.stdout
    assert a.requests == []


# --------------------------------------------------------------------------- traceparent

VALID_TP = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


def test_traceparent_valid_passed_on(strata, origin):
    a = origin()
    s, port = run_http(strata, a)
    get(port, "/", {"traceparent": VALID_TP, "tracestate": "vendor=1"})
    get(port, "/", {"traceparent": VALID_TP.replace("-01", "-00")})
    assert a.requests[0].header_all("traceparent") == [VALID_TP]
    assert a.requests[0].header("tracestate") == "vendor=1"
    assert a.requests[1].header("traceparent") == VALID_TP.replace("-01", "-00")


@pytest.mark.parametrize("bad", [
    None,  # absent
    "00-4BF92F3577B34DA6A3CE929D0E0E4736-00F067AA0BA902B7-01",  # uppercase
    "00-00000000000000000000000000000000-00f067aa0ba902b7-01",  # zero trace id
    "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",  # zero parent id
    "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",  # short
    "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-x",  # long
    "garbage",
], ids=["absent", "upper", "zero-trace", "zero-parent", "short", "long", "garbage"])
def test_traceparent_created_when_absent_or_invalid(strata, origin, bad):
    a = origin()
    s, port = run_http(strata, a)
    hdrs = {"tracestate": "vendor=1"}
    if bad is not None:
        hdrs["traceparent"] = bad
    get(port, "/", hdrs)
    get(port, "/")
    tps = [r.header_all("traceparent") for r in a.requests]
    assert all(len(t) == 1 and TRACEPARENT.fullmatch(t[0]) for t in tps), tps
    assert tps[0] != tps[1]
    assert TRACEPARENT.fullmatch(tps[0][0])[1] != "0" * 32
    assert a.requests[0].header("tracestate") is None  # belongs to no trace passed on


def test_traceparent_two_fields_replaced_and_off(strata, origin):
    a = origin()
    s, port = run_http(strata, a)
    get(port, "/", [("traceparent", VALID_TP), ("traceparent", VALID_TP)])
    t = a.requests[0].header_all("traceparent")
    assert len(t) == 1 and t[0] != VALID_TP and TRACEPARENT.fullmatch(t[0]), t
    b = origin("b")
    s2, port2 = run_http(strata, b, http_extra="traceparent: false")
    get(port2, "/")
    get(port2, "/", {"traceparent": "garbage"})
    assert b.requests[0].header("traceparent") is None
    assert b.requests[1].header("traceparent") == "garbage"


def test_defaults_seen_by_requests_client(strata, origin):
    """A plain `requests` client: every default header arrives, none leaks back."""
    a = origin()
    s, port = run_http(strata, a)
    r = requests.get(f"http://{LOOPBACK}:{port}/d?x=1", timeout=5)
    assert r.status_code == 200 and r.text == "GET /d?x=1\n"
    req = a.requests[0]
    assert req.header("x-forwarded-for") == "127.0.0.1"
    assert req.header("x-request-id") == r.headers["x-request-id"]
    assert TRACEPARENT.fullmatch(req.header("traceparent"))
    assert "traceparent" not in r.headers and "x-forwarded-for" not in r.headers


# --------------------------------------------------------------------------- sticky

def three(origin, extra=""):
    """Three origins s1..s3 answering their name, as backend `app` (with `extra`)."""
    srvs = [origin(f"s{i}", respond=lambda req, n=f"s{i}": (200, {}, n.encode()))
            for i in (1, 2, 3)]
    return srvs, {"app": {"servers": [(o.name, o.address) for o in srvs], "extra": extra}}


def run_app(strata, backends, **kw):
    port = free_port()
    return strata(http_config(port, backends, **kw), listen_ports=[port]), port


def set_cookie(msg):
    return msg.get_all("set-cookie") or []


def test_sticky_cookie_set_then_followed(strata, origin):
    srvs, backends = three(origin, "sticky: true")
    s, port = run_app(strata, backends)
    status, msg, body = get(port, "/first")
    assert status == 200
    cookies = set_cookie(msg)
    assert len(cookies) == 1, cookies
    m = re.fullmatch(r"strata_server=([^;]+); Path=/; HttpOnly", cookies[0])
    assert m, cookies[0]
    first = body.decode()
    for i in range(50):  # each on a new connection, so only the cookie can keep it there
        cookie = f"strata_server={m[1]}" if i % 2 else f"a=1; strata_server={m[1]}; b=2"
        status, msg, body = get(port, f"/again/{i}", headers={"Cookie": cookie})
        assert (status, body.decode()) == (200, first), i
        assert set_cookie(msg) == [], "a request already on its server got a new cookie"
    by_name = {o.name: len(o.requests) for o in srvs}
    assert by_name[first] == 51 and sum(by_name.values()) == 51, by_name
    # without the cookie the balancer spreads, and each server gets its own cookie value
    ids = {}
    for i in range(9):
        _, msg, body = get(port, "/new")
        ids.setdefault(body.decode(), set()).add(set_cookie(msg)[0].split(";")[0])
    assert len(ids) == 3 and all(len(v) == 1 for v in ids.values()), ids


def test_sticky_settings_and_requests_session(strata, origin):
    srvs, backends = three(
        origin, "sticky: { cookie: srv, max_age: 1h, secure: false, http_only: false }")
    s, port = run_app(strata, backends)
    sess = requests.Session()  # a real cookie jar
    r = sess.get(f"http://{LOOPBACK}:{port}/", timeout=5)
    assert re.fullmatch(r"srv=[^;]+; Path=/; Max-Age=3600", r.headers["set-cookie"]), \
        r.headers["set-cookie"]
    first = r.text
    seen = collections.Counter(sess.get(f"http://{LOOPBACK}:{port}/{i}", timeout=5).text
                               for i in range(20))
    assert seen == {first: 20}, seen
    sess.close()


def test_sticky_unknown_server_rebalanced_with_new_cookie(strata, origin):
    srvs, backends = three(origin, "sticky: true")
    s, port = run_app(strata, backends)
    for bogus in ("0000000000000000", "not-a-server", ""):
        status, msg, body = get(port, "/", headers={"Cookie": f"strata_server={bogus}"})
        assert status == 200
        cookies = set_cookie(msg)
        assert len(cookies) == 1 and not cookies[0].startswith(f"strata_server={bogus};"), \
            cookies
        # the new cookie leads back to the server that answered
        cookie = cookies[0].split(";")[0]
        assert get(port, "/", headers={"Cookie": cookie})[2] == body


def test_sticky_cookie_of_down_server_rebalanced(strata, origin):
    srvs, backends = three(
        origin, "sticky: true\n"
                "health_check: { type: tcp, interval: 100ms, timeout: 200ms, rise: 1, fall: 1 }")
    s, port = run_app(strata, backends)
    cookie_of = {}
    for i in range(30):
        _, msg, body = get(port, "/")
        for c in set_cookie(msg):
            cookie_of[body.decode()] = c.split(";")[0]
        if len(cookie_of) == 3:
            break
    assert len(cookie_of) == 3, cookie_of
    victim = srvs[1]
    victim.stop()
    s.wait_log(r"server app/s2 is DOWN", timeout=5)
    before = len(victim.requests)
    for i in range(5):
        status, msg, body = get(port, f"/{i}", headers={"Cookie": cookie_of["s2"]})
        assert status == 200 and body.decode() in ("s1", "s3"), (status, body)
        new = set_cookie(msg)
        assert new and new[0].split(";")[0] == cookie_of[body.decode()], new
    assert len(victim.requests) == before


def test_sticky_cookie_of_dead_server_without_health_checks(strata, origin):
    """No active checks: the cookie's server refuses the connection; the request is
    retried on another server, which sets its cookie."""
    srvs, backends = three(origin, "sticky: true")
    s, port = run_app(strata, backends)
    cookie_of = {}
    for i in range(30):
        _, msg, body = get(port, "/")
        for c in set_cookie(msg):
            cookie_of[body.decode()] = c.split(";")[0]
        if len(cookie_of) == 3:
            break
    srvs[2].stop()
    for i in range(5):
        status, msg, body = get(port, f"/{i}", headers={"Cookie": cookie_of["s3"]})
        assert status == 200 and body.decode() in ("s1", "s2"), (i, status, body)
        assert set_cookie(msg)[0].split(";")[0] == cookie_of[body.decode()]
