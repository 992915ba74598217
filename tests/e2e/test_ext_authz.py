"""mode: http — the `ext_authz` filter: each request is first checked by a sub-request to an
auth service (a backend of the config). Its 2xx lets the request on with chosen fields
copied in; any other answer goes to the client (status, chosen fields, body); an auth
service down or too slow gets the failure mode within the timeout; results are cached per
worker; a client that leaves while its check is in flight leaves nothing behind (run
under the sanitizer build too: STRATA_BIN=build-san/strata)."""
import socket
import time

import h2.config
import h2.connection
import pytest

from conftest import LOOPBACK, free_port, sanitizer_reports, wait_for
from http_backend import http_config
from test_h2 import h2_request
from test_http_filters import get as http_get


def auth_respond(req):
    token = req.header("authorization") or ""
    if token == "Bearer good":
        return 200, {"x-user-id": "42", "x-other": "not copied"}, b""
    return 401, {"www-authenticate": 'Bearer realm="strata"', "content-type": "text/plain",
                 "x-secret": "not passed"}, b"token refused\n"


def slow_respond(req):
    time.sleep(1.5)
    return auth_respond(req)


ROUTES = """\
- match: { path_prefix: /down/ }
  backend: app
  ext_authz: { backend: nothing, path: /check, timeout: 500ms }
- match: { path_prefix: /open/ }
  backend: app
  ext_authz: { backend: nothing, failure_mode: allow }
- match: { path_prefix: /slow/ }
  backend: app
  ext_authz: { backend: slow, path: /check, timeout: 300ms, failure_mode: "403" }
- match: { path_prefix: /wait/ }
  backend: app
  ext_authz: { backend: slow, path: /check, timeout: 5s }
- match: { path_prefix: /cached/ }
  backend: app
  ext_authz: { backend: auth, path: /check, cache: 30s }
- backend: app
  ext_authz:
    backend: auth
    path: /check
    request_headers: [authorization]
    upstream_headers: [x-user-id]
    client_headers: [www-authenticate, content-type]
"""


@pytest.fixture
def authz(strata, origin):
    app, auth, slow = origin("app"), origin("auth", auth_respond), origin("slow", slow_respond)
    port, admin = free_port(), free_port()
    backends = {"app": {"servers": [app.address]}, "auth": {"servers": [auth.address]},
                "slow": {"servers": [slow.address]},
                "nothing": {"servers": [f"{LOOPBACK}:{free_port()}"]}}
    s = strata(http_config(port, backends, routes=ROUTES, admin_port=admin, workers=1,
                           http_extra="h2: { cleartext: true }"), listen_ports=[port])
    return s, port, admin, app, auth, slow


def get(port, path, token=None, method="GET"):
    headers = {"Cookie": "sid=abc", **({"Authorization": token} if token else {})}
    return http_get(port, path, headers, method=method)


def test_allow_copies_chosen_fields(authz):
    s, port, admin, app, auth, slow = authz
    status, _, body = get(port, "/items?x=1", "Bearer good", method="DELETE")
    assert status == 200, body
    assert auth.wait_requests(1) and app.wait_requests(1)
    check = auth.requests[0]
    assert (check.method, check.path) == ("GET", "/check")
    assert check.header("authorization") == "Bearer good"
    assert check.header("cookie") is None  # not among request_headers on this route
    assert check.header("x-original-method") == "DELETE"
    assert check.header("x-original-uri") == "/items?x=1"
    req = app.requests[0]
    assert req.header("x-user-id") == "42" and req.header("x-other") is None
    assert req.header("authorization") == "Bearer good"


def test_deny_passes_status_fields_and_body(authz):
    s, port, admin, app, auth, slow = authz
    status, msg, body = get(port, "/items", "Bearer bad")
    assert (status, body) == (401, b"token refused\n")
    assert msg["www-authenticate"] == 'Bearer realm="strata"'
    assert msg["x-secret"] is None
    assert app.requests == []
    m = s.metrics(admin)
    assert m.get("strata_listener_ext_authz_checks_total", listener="web", result="denied") == 1


def test_http2_client(authz):
    s, port, admin, app, auth, slow = authz
    status, _, body = h2_request(port, "/h2", headers=[("authorization", "Bearer good")])
    assert status == 200, body
    status, hdrs, body = h2_request(port, "/h2", headers=[("authorization", "Bearer bad")])
    assert (status, body) == (401, b"token refused\n")
    assert app.wait_requests(1) and app.requests[0].header("x-user-id") == "42"


def test_auth_service_down_applies_failure_mode(authz):
    s, port, admin, app, auth, slow = authz
    status, _, body = get(port, "/down/x", "Bearer good")
    assert status == 503 and b"authorization check" in body, body
    status, _, body = get(port, "/open/x", "Bearer good")  # fail open
    assert status == 200, body
    assert app.wait_requests(1) and app.requests[0].path == "/open/x"
    m = s.metrics(admin)
    assert m.get("strata_listener_ext_authz_checks_total", listener="web", result="failed") == 2


def test_slow_auth_service_times_out(authz):
    s, port, admin, app, auth, slow = authz
    t0 = time.monotonic()
    status, _, body = get(port, "/slow/x", "Bearer good")
    took = time.monotonic() - t0
    assert status == 403 and b"timed out" in body, body
    assert took < 1.2, took  # the 300ms timeout, not the service's 1.5s
    assert app.requests == []


def test_cache_hits_skip_the_service(authz):
    s, port, admin, app, auth, slow = authz
    for _ in range(5):
        assert get(port, "/cached/a", "Bearer good")[0] == 200
    for _ in range(3):
        assert get(port, "/cached/b", "Bearer bad")[0] == 401
    assert get(port, "/cached/c", "Bearer other")[0] == 401
    assert len(auth.requests) == 3  # one per distinct credential
    assert app.wait_requests(5) and all(r.header("x-user-id") is None for r in app.requests)
    m = s.metrics(admin)
    assert m.get("strata_listener_ext_authz_checks_total", listener="web", result="cache_hit") == 6


def test_client_leaves_while_waiting(authz):
    s, port, admin, app, auth, slow = authz
    # HTTP/1: the client closes while the check (1.5s) is in flight
    c = socket.create_connection((LOOPBACK, port), timeout=5)
    c.sendall(b"GET /wait/x HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer good\r\n\r\n")
    assert slow.wait_requests(1)
    c.close()
    wait_for(lambda: "/wait/x" in s.stdout(), 5, what="the access log line")
    assert "client_abort" in [ln for ln in s.stdout().splitlines() if "/wait/x" in ln][0]
    # HTTP/2: the client resets its stream, then a second one goes away with its connection
    sock = socket.create_connection((LOOPBACK, port), timeout=5)
    conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
    conn.initiate_connection()
    hdrs = [(":method", "GET"), (":scheme", "http"), (":authority", "a"), (":path", "/wait/y"),
            ("authorization", "Bearer good")]
    conn.send_headers(1, hdrs, end_stream=True)
    conn.send_headers(3, hdrs, end_stream=True)
    sock.sendall(conn.data_to_send())
    assert slow.wait_requests(3)
    conn.reset_stream(1)
    sock.sendall(conn.data_to_send())
    time.sleep(0.2)
    sock.close()
    time.sleep(2)  # the service answers the abandoned checks: nothing may use them
    assert app.requests == []
    assert get(port, "/items", "Bearer good")[0] == 200  # the worker is fine
    assert s.alive()
    s.stop()
    assert not sanitizer_reports(s)


def test_auth_service_over_h2c(strata, origin, h2_origin):
    """The auth backend speaks HTTP/2 (`protocol: h2c`): the sub-request goes through the
    HTTP/2 server codec and its pooled, multiplexed connection like any request."""
    app = origin("app")
    auth = h2_origin("auth", respond=auth_respond)
    port = free_port()
    routes = "- backend: app\n  ext_authz: { backend: auth, path: /check }\n"
    s = strata(http_config(port, {"app": {"servers": [app.address]},
                                  "auth": {"servers": [auth.address], "extra": "protocol: h2c"}},
                           routes=routes, workers=1), listen_ports=[port])
    for _ in range(3):
        assert get(port, "/x", "Bearer good")[0] == 200
    status, msg, body = get(port, "/x", "Bearer bad")
    assert (status, body) == (401, b"token refused\n")
    assert msg["www-authenticate"] == 'Bearer realm="strata"'
    assert auth.wait_requests(4) and auth.connections == 1  # one pooled h2 connection
    assert [r.header("authorization") for r in auth.requests][-1] == "Bearer bad"
    assert app.wait_requests(3)
