"""The runtime API on the admin listener (/api/v1/): reads (configuration in force and its
generation, listeners, routes, backends, servers with state, weight, active connections and
health history) and writes (drain, enable, disable, weight, add and remove a server) with
real traffic through an HTTP listener: each write takes effect on the next requests and
shows in /metrics. Bad writes get a 4xx with a clear error and the proxy keeps serving.
Security: a bearer token when configured (401/403), `strata check` refuses a non-loopback
admin listener without one, and every write is logged with who made it."""
import collections
import json
import re

import pytest
import requests

from conftest import LOOPBACK, free_port, free_ports, run_strata
from http_backend import http_config


@pytest.fixture
def origin(origin):
    """origin(name) answers 200 with its name as body."""
    def start(name="a"):
        return origin(name, lambda req, n=name: (200, {"content-type": "text/plain"}, n.encode()))

    return start


def start_proxy(strata, origins, balance="round_robin", extra="", admin_extra="", workers=2):
    port, admin = free_port(), free_port()
    servers = [(o.name, o.address) for o in origins]
    text = http_config(port, {"app": {"servers": servers,
                                      "extra": f"balance: {balance}\n{extra}"}},
                       workers=workers)
    text = f"admin: {{ listen: {LOOPBACK}:{admin}{admin_extra} }}\n" + text
    s = strata(text, listen_ports=[port], admin_port=admin)
    return s, port, admin


def api(admin, method, path, body=None, token=None, raw=None, headers=None):
    h = dict(headers or {})
    if token:
        h["Authorization"] = f"Bearer {token}"
    data = raw if raw is not None else (json.dumps(body) if body is not None else None)
    r = requests.request(method, f"http://{LOOPBACK}:{admin}/api/v1/{path}", data=data,
                         headers=h, timeout=5)
    return r.status_code, (r.json() if r.headers.get("content-type") == "application/json"
                           else r.text)


def split(port, n, session=None):
    """Sends n GETs (new connections each) and counts the answering origins by name."""
    got = collections.Counter()
    for _ in range(n):
        r = requests.get(f"http://{LOOPBACK}:{port}/", timeout=5,
                         headers={"Connection": "close"})
        assert r.status_code == 200, (r.status_code, r.text)
        got[r.text] += 1
    return got


def gauge(s, admin, name, server):
    return s.metrics(admin).get(name, backend="app", server=server)


# --------------------------------------------------------------------------- reads

def test_reads_show_the_configuration_in_force(strata, origin):
    a, b = origin("a"), origin("b")
    s, port, admin = start_proxy(strata, [a, b], balance="weighted")
    status, cfg = api(admin, "GET", "config")
    assert status == 200 and cfg["generation"] == 1
    assert cfg["file"].endswith(".yaml") and cfg["admin"]["token"] is False
    status, ls = api(admin, "GET", "listeners")
    assert status == 200 and ls["listeners"][0]["name"] == "web"
    assert ls["listeners"][0]["mode"] == "http"
    status, rs = api(admin, "GET", "routes")
    assert status == 200 and len(rs["routes"]) == 1  # `backend:` is one catch-all route
    assert rs["routes"][0]["match"] == "every request" and rs["routes"][0]["backend"] == "app"
    status, bs = api(admin, "GET", "backends")
    assert status == 200 and bs["backends"][0]["balance"] == "weighted"
    assert bs["backends"][0]["runtime_servers"] == {"capacity": 4, "used": 0}
    status, sv = api(admin, "GET", "servers")
    assert status == 200
    assert [(x["name"], x["state"], x["health"], x["weight"]) for x in sv["servers"]] == \
        [("a", "ready", "up", 1), ("b", "ready", "up", 1)]
    status, one = api(admin, "GET", "backends/app/servers/a")
    assert status == 200 and one["address"] == a.address and one["history"] == []
    assert one["active"] == 0 and one["runtime"] is False
    # HEAD answers the head only; the other admin paths are unchanged
    r = requests.head(f"http://{LOOPBACK}:{admin}/api/v1/config", timeout=5)
    assert r.status_code == 200 and r.text == ""
    assert requests.get(f"http://{LOOPBACK}:{admin}/healthz", timeout=5).text == "ok\n"


def test_routes_listed_with_their_match(strata, origin):
    a = origin("a")
    port, admin = free_port(), free_port()
    routes = ("- name: api\n  match: { host: api.example.com, path_prefix: /v1/ }\n"
              "  backend: app\n"
              "- match: { header: { x-canary: \"1\" } }\n  backend: app\n")
    text = f"admin: {{ listen: {LOOPBACK}:{admin} }}\n" + \
        http_config(port, {"app": {"servers": [("a", a.address)]}}, routes=routes)
    strata(text, listen_ports=[port], admin_port=admin)
    status, rs = api(admin, "GET", "routes")
    assert status == 200
    assert [(r["name"], r["match"], r["backend"]) for r in rs["routes"]] == [
        ("api", "host api.example.com, path prefix /v1/", "app"),
        ("route#2", "header x-canary = 1", "app")]


# --------------------------------------------------------------------------- writes

def test_drain_then_enable(strata, origin):
    a, b = origin("a"), origin("b")
    s, port, admin = start_proxy(strata, [a, b])
    assert set(split(port, 10)) == {"a", "b"}
    status, out = api(admin, "POST", "backends/app/servers/a/drain")
    assert status == 200 and out["state"] == "drain"
    assert split(port, 20) == {"b": 20}
    assert gauge(s, admin, "strata_server_draining", "a") == 1
    assert gauge(s, admin, "strata_server_draining", "b") == 0
    status, out = api(admin, "POST", "backends/app/servers/a/enable")
    assert status == 200 and out["state"] == "ready"
    assert split(port, 10) == {"a": 5, "b": 5}
    assert gauge(s, admin, "strata_server_draining", "a") == 0
    events = [e["event"] for e in out["history"]]
    assert events[0].startswith("drain (was ready) by 127.0.0.1:")
    assert events[1].startswith("ready (was drain) by 127.0.0.1:")
    assert all(e["at_ms"] > 1.7e12 for e in out["history"])
    s.wait_log(r"admin: POST /api/v1/backends/app/servers/a/drain by 127\.0\.0\.1:\d+: "
               r"server app/a drain")


def test_disable_is_maintenance(strata, origin):
    a, b = origin("a"), origin("b")
    s, port, admin = start_proxy(strata, [a, b])
    status, out = api(admin, "PUT", "backends/app/servers/b/disable")
    assert status == 200 and out["state"] == "maint"
    assert split(port, 10) == {"a": 10}
    assert gauge(s, admin, "strata_server_maintenance", "b") == 1
    # both down for the balancer: the proxy answers 503 rather than failing
    api(admin, "POST", "backends/app/servers/a/disable")
    r = requests.get(f"http://{LOOPBACK}:{port}/", timeout=5)
    assert r.status_code == 503
    api(admin, "POST", "backends/app/servers/a/enable")
    assert split(port, 4) == {"a": 4}


def test_weight_changes_the_split(strata, origin):
    a, b = origin("a"), origin("b")
    s, port, admin = start_proxy(strata, [a, b], balance="weighted", workers=1)
    assert split(port, 40) == {"a": 20, "b": 20}
    status, out = api(admin, "PUT", "backends/app/servers/a/weight", {"weight": 3})
    assert status == 200 and out["weight"] == 3 and out["configured_weight"] == 1
    got = split(port, 200)
    # smooth weighted round robin on one worker: exactly 3:1 per cycle of 4
    assert abs(got["a"] - 150) <= 3 and abs(got["b"] - 50) <= 3, got
    assert gauge(s, admin, "strata_server_weight", "a") == 3
    assert gauge(s, admin, "strata_server_weight", "b") == 1


def test_add_and_remove_a_server(strata, origin):
    a, b, c = origin("a"), origin("b"), origin("c")
    s, port, admin = start_proxy(strata, [a, b])
    status, out = api(admin, "POST", "backends/app/servers",
                      {"name": "c", "address": c.address, "weight": 1})
    assert status == 201 and out["runtime"] is True and out["state"] == "ready"
    assert split(port, 30) == {"a": 10, "b": 10, "c": 10}
    assert s.metrics(admin).get("strata_server_http_requests_total", backend="app",
                                server="c") == 10
    status, bs = api(admin, "GET", "backends/app")
    assert bs["runtime_servers"]["used"] == 1
    status, out = api(admin, "DELETE", "backends/app/servers/c")
    assert status == 200 and out["state"] == "removed"
    assert split(port, 10) == {"a": 5, "b": 5}
    assert s.metrics(admin).get("strata_server_weight", backend="app", server="c") is None
    # the name is free again; the removed server is still listed while it may hold connections
    status, sv = api(admin, "GET", "backends/app/servers")
    assert [x["state"] for x in sv["servers"] if x["name"] == "c"] == ["removed"]
    status, out = api(admin, "POST", "backends/app/servers", {"name": "c", "address": c.address})
    assert status == 201
    assert split(port, 30) == {"a": 10, "b": 10, "c": 10}
    s.wait_log(r"admin: DELETE /api/v1/backends/app/servers/c by 127\.0\.0\.1:\d+: "
               r"server app/c removed")


def test_bad_writes_get_a_clear_4xx_and_the_proxy_keeps_serving(strata, origin):
    a, b = origin("a"), origin("b")
    s, port, admin = start_proxy(strata, [a, b], extra="runtime_servers: 1")
    cases = [
        ("POST", "backends/app/servers", None, "{bad", 400, "invalid JSON at line 1"),
        ("POST", "backends/app/servers", None, "[1]", 400, "expected a JSON object"),
        ("POST", "backends/app/servers", None, "", 400, "expected a JSON object"),
        ("POST", "backends/app/servers", {"address": "nowhere"}, None, 400, "address"),
        ("POST", "backends/app/servers", {"address": a.address, "name": "x/y"}, None, 400,
         "name"),
        ("POST", "backends/app/servers", {"address": a.address, "color": 1}, None, 400,
         "unknown field"),
        ("POST", "backends/app/servers", {"address": a.address, "name": "a"}, None, 409,
         "already has a server"),
        ("POST", "backends/app/servers/zz/drain", None, None, 404, "no server zz"),
        ("POST", "backends/nope/servers/a/drain", None, None, 404, "no backend nope"),
        ("POST", "backends/app/servers/a/explode", None, None, 404, "unknown action"),
        ("GET", "backends/app/servers/a/drain", None, None, 405, "method not allowed"),
        ("PUT", "backends/app/servers/a/weight", {"weight": 0}, None, 400, "1 to 1000"),
        ("PUT", "backends/app/servers/a/weight", {"weight": 5000}, None, 400, "1 to 1000"),
        ("PUT", "backends/app/servers/a/weight", {"weight": "3"}, None, 400, "1 to 1000"),
        ("PUT", "backends/app/servers/a/weight", {"weight": 2}, None, 409,
         "round_robin ignores weights"),
        ("DELETE", "config", None, None, 405, "method not allowed"),
        ("GET", "backends/app/nothing", None, None, 404, "not found"),
    ]
    for method, path, body, raw, want, text in cases:
        status, out = api(admin, method, path, body, raw=raw)
        assert status == want, (method, path, status, out)
        assert text in out["error"], (method, path, out)
    status, out = api(admin, "POST", "backends/app/servers", {"name": "c", "address": a.address})
    assert status == 201
    status, out = api(admin, "POST", "backends/app/servers", {"name": "d", "address": a.address})
    assert status == 409 and "no free runtime slot" in out["error"]
    # bodies are bounded and need a length
    status, out = api(admin, "POST", "backends/app/servers", raw="x" * 5000)
    assert status == 413
    r = requests.post(f"http://{LOOPBACK}:{admin}/api/v1/backends/app/servers",
                      data=iter([b'{"address"', b': "1.2.3.4:5"}']), timeout=5)
    assert r.status_code == 411
    # nothing changed but the one good add; the proxy still serves
    assert set(split(port, 6)) == {"a", "b"} or set(split(port, 6)) <= {"a", "b"}
    assert s.alive()
    s.wait_log(r"admin: PUT /api/v1/backends/app/servers/a/weight by 127\.0\.0\.1:\d+ "
               r"refused \(400\)")


# --------------------------------------------------------------------------- security

TOKEN = "s3cret-token-0123456789"


def test_token_required_and_checked(strata, origin):
    a = origin("a")
    s, port, admin = start_proxy(strata, [a],
                                 admin_extra=f", token: {TOKEN}, token_name: ops")
    status, out = api(admin, "GET", "servers")
    assert status == 401 and "Bearer" in out["error"]
    status, out = api(admin, "GET", "servers", token="wrong-token-wrong-token")
    assert status == 403 and out["error"] == "wrong token"
    status, out = api(admin, "POST", "backends/app/servers/a/drain", token="nope")
    assert status == 403
    status, out = api(admin, "GET", "servers", token=TOKEN)
    assert status == 200 and out["servers"][0]["state"] == "ready"
    status, out = api(admin, "POST", "backends/app/servers/a/drain", token=TOKEN)
    assert status == 200 and out["state"] == "drain"
    assert "by 127.0.0.1:" in out["history"][0]["event"]
    assert "(token ops)" in out["history"][0]["event"]
    s.wait_log(r"admin: POST /api/v1/backends/app/servers/a/drain by 127\.0\.0\.1:\d+ "
               r"\(token ops\): server app/a drain")
    # /metrics and /healthz stay open
    assert requests.get(f"http://{LOOPBACK}:{admin}/healthz", timeout=5).status_code == 200


def test_token_from_file_on_a_wildcard_address(strata, origin, tmp_path):
    a = origin("a")
    tok = tmp_path / "admin.token"
    tok.write_text(TOKEN + "\n")
    # free on the wildcard address the admin binds (a port free on 127.0.0.1 may be taken
    # on another address), and distinct (two free_port() calls can give the same one)
    port, admin = free_ports(2, host="0.0.0.0")
    text = f"admin: {{ listen: 0.0.0.0:{admin}, token_file: {tok} }}\n" + \
        http_config(port, {"app": {"servers": [("a", a.address)]}})
    strata(text, listen_ports=[port], admin_port=admin)
    assert api(admin, "GET", "config")[0] == 401
    status, cfg = api(admin, "GET", "config", token=TOKEN)
    assert status == 200 and cfg["admin"]["token"] is True


def test_check_refuses_non_loopback_admin_without_token(strata_bin, tmp_path, origin):
    a = origin("a")
    port = free_port()
    body = http_config(port, {"app": {"servers": [("a", a.address)]}})
    bad = tmp_path / "bad.yaml"
    bad.write_text("admin: { listen: 0.0.0.0:9999 }\n" + body)
    r = run_strata(strata_bin, "check", str(bad))
    assert r.returncode == 1
    assert re.search(r"bad\.yaml:1:18: error: admin\.listen: 0\.0\.0\.0:9999 is not a loopback "
                     r"address: .* needs `token` or `token_file`", r.stderr), r.stderr
    short = tmp_path / "short.yaml"
    short.write_text("admin: { listen: 127.0.0.1:9999, token: abc }\n" + body)
    r = run_strata(strata_bin, "check", str(short))
    assert r.returncode == 1 and "admin.token: expected at least 16 characters" in r.stderr
    missing = tmp_path / "missing.yaml"
    missing.write_text(f"admin: {{ listen: 0.0.0.0:9999, token_file: {tmp_path}/none }}\n" + body)
    r = run_strata(strata_bin, "check", str(missing))
    assert r.returncode == 1 and "admin.token_file: cannot open" in r.stderr
    good = tmp_path / "good.yaml"
    good.write_text(f"admin: {{ listen: 0.0.0.0:9999, token: {TOKEN} }}\n" + body)
    r = run_strata(strata_bin, "check", str(good))
    assert r.returncode == 0, r.stderr


def test_writes_under_load_lose_no_request(strata, origin):
    """Clients keep sending (keep-alive and new connections) while servers are added,
    drained, reweighted, disabled and removed: every request is answered 200, and each
    server got traffic while it was eligible."""
    import threading
    import time
    a, b, c = origin("a"), origin("b"), origin("c")
    s, port, admin = start_proxy(strata, [a, b], balance="weighted")
    stop = threading.Event()
    results = collections.Counter()
    errors = []

    def client(keepalive):
        sess = requests.Session() if keepalive else None
        deadline = time.monotonic() + 20
        while not stop.is_set() and time.monotonic() < deadline:
            try:
                if sess:
                    r = sess.get(f"http://{LOOPBACK}:{port}/", timeout=5)
                else:
                    r = requests.get(f"http://{LOOPBACK}:{port}/", timeout=5,
                                     headers={"Connection": "close"})
                results[(r.status_code, r.text)] += 1
            except requests.RequestException as e:
                errors.append(repr(e))

    threads = [threading.Thread(target=client, args=(ka,)) for ka in (True, False, True)]
    for t in threads:
        t.start()
    try:
        steps = [
            ("POST", "backends/app/servers", {"name": "c", "address": c.address}),
            ("POST", "backends/app/servers/a/drain", None),
            ("PUT", "backends/app/servers/b/weight", {"weight": 5}),
            ("POST", "backends/app/servers/a/enable", None),
            ("POST", "backends/app/servers/b/disable", None),
            ("DELETE", "backends/app/servers/c", None),
            ("POST", "backends/app/servers/b/enable", None),
        ]
        for method, path, body in steps:
            time.sleep(0.3)
            status, out = api(admin, method, path, body)
            assert status in (200, 201), (path, out)
        time.sleep(0.3)
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=30)
    assert not errors, errors[:5]
    assert set(k[0] for k in results) == {200}, results
    names = collections.Counter({k[1]: v for k, v in results.items()})
    assert names["a"] > 0 and names["b"] > 0 and names["c"] > 0, names
    assert s.alive()


def test_expect_100_continue_body(strata, origin):
    """A client that waits for 100 Continue before its body (curl does above 1 KiB) gets it
    at once."""
    import socket
    import time
    a = origin("a")
    s, port, admin = start_proxy(strata, [a], balance="weighted")
    body = b'{"weight": 7}'
    with socket.create_connection((LOOPBACK, admin), timeout=5) as sock:
        sock.sendall(b"PUT /api/v1/backends/app/servers/a/weight HTTP/1.1\r\nHost: x\r\n"
                     b"Expect: 100-continue\r\nContent-Length: %d\r\n\r\n" % len(body))
        t0 = time.monotonic()
        got = sock.recv(100)
        assert got.startswith(b"HTTP/1.1 100 Continue\r\n\r\n"), got
        assert time.monotonic() - t0 < 1
        sock.sendall(body)
        rest = b""
        while b'"weight": 7' not in rest:
            chunk = sock.recv(4096)
            if not chunk:
                break
            rest += chunk
    assert rest.startswith(b"HTTP/1.1 200 OK") or b"200 OK" in got + rest, rest
    assert b'"weight": 7' in rest


def test_server_names_are_percent_decoded(strata, origin):
    a, b = origin("a"), origin("b")
    port, admin = free_port(), free_port()
    text = f"admin: {{ listen: {LOOPBACK}:{admin} }}\n" + http_config(
        port, {"app": {"servers": [("my server", a.address), b.address]}})
    strata(text, listen_ports=[port], admin_port=admin)
    status, out = api(admin, "POST", "backends/app/servers/my%20server/drain")
    assert status == 200 and out["name"] == "my server" and out["state"] == "drain"
    status, out = api(admin, "GET", f"backends/app/servers/{b.address}")
    assert status == 200 and out["name"] == b.address  # a server named by its address
    assert split(port, 4) == {"b": 4}
    r = requests.get(f"http://{LOOPBACK}:{admin}/api/v1/backends/app/servers/%zz", timeout=5)
    assert r.status_code == 404


def test_added_servers_are_health_checked(strata, origin):
    """A server added at run time gets the backend's active check: one whose port is
    closed goes DOWN (history and API say why) and gets no request; a live one stays UP."""
    import time
    a, c = origin("a"), origin("c")
    dead = free_port()
    s, port, admin = start_proxy(
        strata, [a], extra="health_check: { type: tcp, interval: 200ms, timeout: 200ms, "
                           "rise: 1, fall: 1 }")
    for name, addr in (("dead", f"{LOOPBACK}:{dead}"), ("c", c.address)):
        status, out = api(admin, "POST", "backends/app/servers", {"name": name, "address": addr})
        assert status == 201, out
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        status, out = api(admin, "GET", "backends/app/servers/dead")
        if out["health"] == "down":
            break
        time.sleep(0.1)
    assert out["health"] == "down", out
    assert any(e["event"].startswith("DOWN: ") for e in out["history"]), out["history"]
    assert split(port, 20) == {"a": 10, "c": 10}
    assert api(admin, "GET", "backends/app/servers/c")[1]["health"] == "up"
    assert s.metrics(admin).get("strata_server_up", backend="app", server="dead") == 0
    s.wait_log(r"server app/dead is DOWN")


def test_runtime_state_across_a_reload_and_the_token_on_reload(strata, strata_bin, origin):
    """A reload keeps a drained server drained and a runtime weight (the file did not change
    that server), bumps the generation, drops a server added at run time (it is not in the
    file), brings back a removed one the file still lists; POST /reload and `strata reload`
    need the admin token too."""
    a, b, c = origin("a"), origin("b"), origin("c")
    s, port, admin = start_proxy(strata, [a, b], balance="weighted",
                                 admin_extra=f", token: {TOKEN}, token_name: ops")
    for method, path, body in (("POST", "backends/app/servers/a/drain", None),
                               ("PUT", "backends/app/servers/b/weight", {"weight": 7}),
                               ("POST", "backends/app/servers", {"name": "c",
                                                                 "address": c.address})):
        assert api(admin, method, path, body, token=TOKEN)[0] in (200, 201)
    r = requests.post(f"http://{LOOPBACK}:{admin}/reload", timeout=30)
    assert r.status_code == 401
    r = run_strata(strata_bin, "reload", "-c", str(s.config_path), timeout=60)
    assert r.returncode == 0, r.stderr
    # the report says what the reload changed (config_diff): the runtime-added server goes
    assert f"backends:\n  - app/c ({c.address}, added at run time)" in r.stdout and "connections to server app/c (removed)" \
        in r.stdout, r.stdout
    s.wait_log(r"reload: a reload would drain:")
    s.wait_log(r"admin: POST /reload by 127\.0\.0\.1:\d+ \(token ops\): reload asked")
    status, cfg = api(admin, "GET", "config", token=TOKEN)
    assert cfg["generation"] == 2
    status, sv = api(admin, "GET", "servers", token=TOKEN)
    state = {x["name"]: (x["state"], x["weight"]) for x in sv["servers"]}
    assert state == {"a": ("drain", 1), "b": ("ready", 7)}, state
    status, one = api(admin, "GET", "backends/app/servers/a", token=TOKEN)
    assert one["history"][0]["event"].startswith("drain (was ready)")
    assert split(port, 6) == {"b": 6}
    # removed at run time, still in the file: back after the next reload
    assert api(admin, "POST", "backends/app/servers/b/enable", token=TOKEN)[0] == 200
    assert api(admin, "PUT", "backends/app/servers/b/weight", {"weight": 1}, token=TOKEN)[0] == 200
    assert api(admin, "DELETE", "backends/app/servers/a", token=TOKEN)[0] == 200
    r = requests.post(f"http://{LOOPBACK}:{admin}/reload", timeout=30,
                      headers={"Authorization": f"Bearer {TOKEN}"})
    assert r.status_code == 200, r.text
    status, sv = api(admin, "GET", "servers", token=TOKEN)
    assert {x["name"]: x["state"] for x in sv["servers"]} == {"a": "ready", "b": "ready"}
    assert set(split(port, 6)) == {"a", "b"}
