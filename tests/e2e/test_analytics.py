"""Analytics on the admin listener, with real traffic through the real binary: trends
(GET /api/v1/trends: per-second and per-minute series of requests, status classes, HTTP
and L4 bytes, L4 connections) and the top-N tables (GET /api/v1/top: normalised paths,
clients, user agents, hosts, API keys, status/route pairs); bad parameters answer 400
with a JSON error. Geo (countries, routing, ACLs, log fields) is in test_geo.py."""
import json
import socket
import time

from conftest import LOOPBACK, EchoServer, free_port, http_get, wait_for
from http_backend import http_config, http_request, parse_response


def api(admin, path):
    status, body = http_get(admin, path)
    return status, json.loads(body)


def send(port, target, host="example.com", headers=()):
    head = f"GET {target} HTTP/1.1\r\nHost: {host}\r\n"
    for k, v in headers:
        head += f"{k}: {v}\r\n"
    head += "Connection: close\r\n\r\n"
    out = parse_response(http_request(port, head.encode()))
    assert len(out) == 1
    return out[0][0]


def by_path(req):
    if req.path.startswith("/missing"):
        return 404, {"content-type": "text/plain"}, b"no"
    if req.path.startswith("/boom"):
        return 503, {"content-type": "text/plain"}, b"down"
    return 200, {"content-type": "text/plain"}, b"hello"


def start(strata, origin, top_extra=""):
    o = origin("a", by_path)
    port, admin = free_port(), free_port()
    s = strata(http_config(port, {"app": {"servers": [o.address]}}, admin_port=admin,
                           top_extra=top_extra),
               listen_ports=[port], admin_port=admin)
    return s, port, admin


def series_sum(admin, rng, name, want, timeout=6.0):
    """Waits until the sum of series `name` reaches want (folds run once a second)."""
    deadline = time.monotonic() + timeout
    while True:
        status, j = api(admin, f"/api/v1/trends?range={rng}")
        assert status == 200, j
        sums = {k: sum(v) for k, v in j["series"].items()}
        if sums[name] >= want:
            return j
        assert time.monotonic() < deadline, f"trends {rng}: {name} < {want}: {sums}"
        time.sleep(0.2)


def test_trends_follow_real_traffic(strata, origin):
    s, port, admin = start(strata, origin)
    for i in range(12):
        assert send(port, f"/v1/users/{i}") == 200
    for _ in range(5):
        assert send(port, "/missing") == 404
    for _ in range(3):
        assert send(port, "/boom") == 503
    j = series_sum(admin, "hour", "requests", 20)
    series = j["series"]
    assert j["range"] == "hour" and j["step_s"] == 1
    assert set(series) == {"requests", "status_2xx", "status_3xx", "status_4xx", "status_5xx",
                           "bytes_in", "bytes_out", "l4_connections", "l4_bytes_in",
                           "l4_bytes_out"}
    assert all(len(v) == 3600 for v in series.values())
    assert sum(series["requests"]) == 20
    assert (sum(series["status_2xx"]), sum(series["status_4xx"]),
            sum(series["status_5xx"]), sum(series["status_3xx"])) == (12, 5, 3, 0)
    assert sum(series["bytes_in"]) > 20 * 30 and sum(series["bytes_out"]) > 20 * 40
    assert sum(series["l4_connections"]) == 0
    # the newest point is the last complete second
    assert abs(j["end_ms"] - time.time() * 1000) < 3000, j["end_ms"]
    assert j["end_ms"] % 1000 == 0
    day = series_sum(admin, "day", "requests", 20)
    assert day["step_s"] == 60 and len(day["series"]["requests"]) == 1440
    assert sum(day["series"]["status_4xx"]) == 5
    assert day["end_ms"] % 60000 == 0
    # more traffic shows up in a later second, not in the past
    before = sum(series["requests"])
    for _ in range(4):
        send(port, "/later")
    j2 = series_sum(admin, "hour", "requests", before + 4)
    assert sum(j2["series"]["requests"]) == 24 and j2["end_ms"] >= j["end_ms"]


def test_trends_count_l4_connections_and_bytes(strata):
    echo = EchoServer().start()
    try:
        port, admin = free_port(), free_port()
        cfg = (f"workers: 2\nadmin: {{ listen: {LOOPBACK}:{admin} }}\n"
               f"listeners:\n  - {{ name: tcp, listen: \"{LOOPBACK}:{port}\", backend: echo }}\n"
               f"backends:\n  echo:\n    servers: [\"{echo.address}\"]\n")
        strata(cfg, listen_ports=[port], admin_port=admin)
        for _ in range(3):
            with socket.create_connection((LOOPBACK, port), timeout=5) as c:
                c.sendall(b"x" * 1000)
                got = b""
                while len(got) < 1000:
                    chunk = c.recv(4096)
                    assert chunk
                    got += chunk
        j = series_sum(admin, "hour", "l4_bytes_out", 3000)
        assert sum(j["series"]["l4_connections"]) == 3
        assert sum(j["series"]["l4_bytes_in"]) == 3000
        assert sum(j["series"]["requests"]) == 0
    finally:
        echo.stop()


def test_trends_bad_range(strata, origin):
    s, port, admin = start(strata, origin)
    status, j = api(admin, "/api/v1/trends?range=week")
    assert status == 400 and "range" in j["error"]


def top_table(admin, rng, table, key, want, n=10, timeout=6.0):
    last = {}

    def reached():
        status, j = api(admin, f"/api/v1/top?range={rng}&n={n}")
        assert status == 200, j
        last["j"] = j
        return any(r["key"] == key and r["count"] >= want for r in j["tables"][table])
    wait_for(reached, timeout, interval=0.2, what=f"top {rng} {table} {key} >= {want}")
    return last["j"]


def test_top_tables_from_real_traffic(strata, origin):
    s, port, admin = start(strata, origin, top_extra="analytics: { api_key_header: X-Api-Key }")
    uuid = "550e8400-e29b-41d4-a716-446655440000"
    for i in range(30):  # the heavy hitters
        send(port, f"/v1/users/{1000 + i}/orders", host="api.example.com:8080",
             headers=[("User-Agent", "curl/8.0"), ("X-Api-Key", "key-gold")])
    for i in range(5):
        send(port, f"/v1/items/{uuid}", headers=[("User-Agent", "bot/1"),
                                                   ("X-Api-Key", "key-free")])
        send(port, "/v1/blobs/0123456789abcdef0123", host="cdn.example.com")
    for _ in range(4):
        send(port, "/missing/page")
    j = top_table(admin, "minute", "paths", "/v1/users/{id}/orders", 30)
    assert j["range"] == "minute" and j["geo"].startswith("off")
    t = j["tables"]
    assert set(t) == {"paths", "clients", "user_agents", "hosts", "api_keys", "status_routes",
                      "countries"}
    paths = {r["key"]: r["count"] for r in t["paths"]}
    assert paths["/v1/users/{id}/orders"] == 30
    assert paths["/v1/items/{id}"] == 5 and paths["/v1/blobs/{id}"] == 5
    assert t["paths"][0]["key"] == "/v1/users/{id}/orders"
    assert t["paths"][0]["bytes"] > 30 * 50
    assert {r["key"]: r["count"] for r in t["clients"]} == {"127.0.0.1": 44}
    uas = {r["key"]: r["count"] for r in t["user_agents"]}
    assert uas["curl/8.0"] == 30 and uas["bot/1"] == 5
    hosts = {r["key"]: r["count"] for r in t["hosts"]}
    assert hosts["api.example.com"] == 30 and hosts["cdn.example.com"] == 5
    assert {r["key"]: r["count"] for r in t["api_keys"]} == {"key-gold": 30, "key-free": 5}
    sr = {r["key"]: r["count"] for r in t["status_routes"]}
    assert sr["200 default"] == 40 and sr["404 default"] == 4, sr
    assert t["countries"] == []
    one = api(admin, "/api/v1/top?range=minute&n=1")[1]
    assert [r["key"] for r in one["tables"]["paths"]] == ["/v1/users/{id}/orders"]
    hour = top_table(admin, "hour", "paths", "/v1/users/{id}/orders", 30)
    assert hour["range"] == "hour"
    assert {r["key"]: r["count"] for r in hour["tables"]["api_keys"]}["key-gold"] == 30


def test_top_bad_parameters(strata, origin):
    s, port, admin = start(strata, origin)
    for q in ("range=day", "n=0", "n=51", "n=ten", "n="):
        status, j = api(admin, f"/api/v1/top?{q}")
        assert status == 400 and j["error"], q
    status, j = api(admin, "/api/v1/top")
    assert status == 200 and j["range"] == "minute"


def test_http2_requests_are_counted_too(strata, origin):
    """HTTP/2 streams end in the same stream code as HTTP/1 exchanges: one hook feeds both."""
    import subprocess
    o = origin("a", by_path)
    port, admin = free_port(), free_port()
    s = strata(http_config(port, {"app": {"servers": [o.address]}}, admin_port=admin,
                           http_extra="h2: { cleartext: true }"),
               listen_ports=[port], admin_port=admin)
    for i in range(6):
        r = subprocess.run(["curl", "-s", "--http2-prior-knowledge", "-A", "curl-h2", "-o",
                            "/dev/null", "-w", "%{http_version} %{http_code}",
                            f"http://{LOOPBACK}:{port}/h2/orders/{i}"],
                           capture_output=True, text=True, timeout=30)
        assert r.stdout == "2 200", r.stdout + r.stderr
    j = top_table(admin, "minute", "paths", "/h2/orders/{id}", 6)
    assert {x["key"]: x["count"] for x in j["tables"]["user_agents"]} == {"curl-h2": 6}
    series_sum(admin, "hour", "status_2xx", 6)
