"""mode: http — error_pages: Strata's own answers (no route, refusals of the access
filters, an unreachable server, a bad request) dressed from files or as built-in HTML/JSON
pages, per listener and per route, with the request id in them and variables escaped."""
import json
import socket

import requests

from conftest import LOOPBACK, free_port
from http_backend import http_config
from test_http_filters import get


def test_error_pages_per_listener_and_route(strata, origin, tmp_path):
    a = origin()
    (tmp_path / "404.html").write_text("<h1>Lost: {path}</h1><p>id={request_id}</p>"
                                       "<p>{unknown}</p>")
    (tmp_path / "5xx.json").write_text('{"oops": {status}, "id": "{request_id}", '
                                       '"why": "{detail}"}')
    dead = free_port()
    port = free_port()
    routes = f"""\
- match: {{ path_prefix: /api/ }}
  backend: app
  ip_access: {{ deny: 127.0.0.0/8 }}
  error_pages: {{ format: json }}
- match: {{ path_prefix: /down/ }}
  backend: dead
- match: {{ path_prefix: /ok/ }}
  backend: app
"""
    http_extra = f"""\
error_pages:
  format: html
  files: {{ 404: 404.html, 5xx: 5xx.json }}
"""
    conf = http_config(port, {"app": {"servers": [a.address]},
                              "dead": {"servers": [f"{LOOPBACK}:{dead}"]}},
                       routes=routes, http_extra=http_extra)
    s = strata(conf, listen_ports=[port])
    base = f"http://{LOOPBACK}:{port}"

    r = requests.get(base + "/nowhere", headers={"X-Request-Id": "<b>id-1</b>"}, timeout=5)
    assert r.status_code == 404
    assert r.headers["Content-Type"] == "text/html; charset=utf-8"
    assert r.text == ("<h1>Lost: /nowhere</h1><p>id=&#60;b&#62;id-1&#60;/b&#62;</p>"
                      "<p>{unknown}</p>")

    r = requests.get(base + "/down/x", timeout=5)
    assert r.status_code == 502 and r.headers["Content-Type"] == "application/json"
    body = r.json()
    assert body["oops"] == 502 and body["id"] == r.headers["X-Request-Id"]
    assert body["why"]

    r = requests.get(base + "/api/x", timeout=5)  # the route's own: built-in JSON
    assert r.status_code == 403 and r.headers["Content-Type"] == "application/json"
    assert r.json() == {"status": 403, "error": "Forbidden", "detail": "client address not allowed",
                        "request_id": r.headers["X-Request-Id"]}

    r = requests.get(base + "/ok/x", timeout=5)  # the server's answers are untouched
    assert r.status_code == 200 and a.requests

    # a request the parser refuses gets the listener's page (built-in HTML for 400)
    with socket.create_connection((LOOPBACK, port), timeout=5) as c:
        c.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nBad Header: y\r\n\r\n")
        data = c.recv(65536)
    assert data.startswith(b"HTTP/1.1 400")
    assert b"<h1>400 Bad Request</h1>" in data and b"text/html" in data


def test_json_errors_keep_the_auth_challenge(strata, origin, tmp_path):
    a = origin()
    jwks = tmp_path / "jwks.json"
    jwks.write_text(json.dumps({"keys": [{"kty": "oct", "kid": "k", "k": "c" * 43}]}))
    port = free_port()
    routes = f"""\
- backend: app
  jwt: {{ jwks_file: {jwks} }}
  error_pages: {{ format: json }}
"""
    s = strata(http_config(port, {"app": {"servers": [a.address]}}, routes=routes),
               listen_ports=[port])
    status, msg, body = get(port, "/")
    assert status == 401
    assert msg["WWW-Authenticate"] == 'Bearer realm="strata"'
    assert msg["Content-Type"] == "application/json"
    assert json.loads(body)["detail"] == "no bearer token"
