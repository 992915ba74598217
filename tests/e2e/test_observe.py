"""Observability: latency histograms (Prometheus) and percentiles (/api/v1/stats) per
listener, route, backend and server; route status codes, errors by reason and the recent
errors; TCP_INFO of relayed sessions; the OpenMetrics response; the embedded dashboard
served compressed."""
import gzip
import http.client
import json
import time

from conftest import LOOPBACK, EchoServer, connect, free_port, recv_exact, wait_for
from http_backend import http_config
from test_tls import https, https_get, pki  # noqa: F401 - fixtures used by name


def get(port, path, headers=None):
    conn = http.client.HTTPConnection(LOOPBACK, port, timeout=5)
    try:
        conn.request("GET", path, headers=headers or {})
        r = conn.getresponse()
        return r.status, dict((k.lower(), v) for k, v in r.getheaders()), r.read()
    finally:
        conn.close()


def stats(admin_port):
    status, _, body = get(admin_port, "/api/v1/stats")
    assert status == 200
    return json.loads(body)


def find(items, **kv):
    return next(i for i in items if all(i.get(k) == v for k, v in kv.items()))


def slow_respond(req):
    time.sleep(0.06)
    # not kept alive: Strata closes each connection, and reads its TCP_INFO then
    return 200, {"content-type": "text/plain", "connection": "close"}, b"slow\n"


ROUTES = """
- name: slow
  match: { path_prefix: /slow }
  backend: slowb
- name: broken
  match: { path_prefix: /broken }
  backend: dead
  retry: { tries: 1 }
- name: fast
  backend: fastb
"""


def test_route_latency_histograms_percentiles_and_errors(strata, origin):
    fast, slow = origin("fast"), origin("slow", respond=slow_respond)
    port, admin = free_port(), free_port()
    dead = f"{LOOPBACK}:{free_port()}"
    cfg = http_config(port, {"fastb": {"servers": [fast.address]},
                             "slowb": {"servers": [("s1", slow.address)]},
                             "dead": {"servers": [dead]}},
                      routes=ROUTES, admin_port=admin)
    s = strata(cfg, listen_ports=[port], admin_port=admin)
    conn = http.client.HTTPConnection(LOOPBACK, port, timeout=5)
    for i in range(50):
        conn.request("GET", f"/f/{i}")
        assert conn.getresponse().read()
    for i in range(12):
        conn.request("GET", f"/slow/{i}")
        assert conn.getresponse().read() == b"slow\n"
    conn.close()
    for i in range(3):
        status, _, _ = get(port, "/broken/x?secret=1")
        assert status == 502

    # A stream is counted when it ends, just after its last bytes are sent: the client can
    # read the third 502 a moment before it is counted.
    m = wait_for(lambda: (lambda x: x if x.get(
        "strata_listener_request_duration_seconds_count", listener="web") == 65 else None)(
        s.metrics(admin)), 5, what="65 requests counted")
    lab = {"listener": "web", "route": "slow"}
    h = "strata_route_request_duration_seconds"
    assert m.get(h + "_count", **lab) == 12
    assert m.get(h + "_bucket", le="0.05", **lab) == 0  # every one took 60 ms or more
    assert m.get(h + "_bucket", le="+Inf", **lab) == 12
    assert m.get(h + "_sum", **lab) >= 12 * 0.06
    buckets = [v for (name, labels), v in m.items()
               if name == h + "_bucket" and dict(labels).get("route") == "fast"]
    assert len(buckets) == 17 and max(buckets) == 50
    assert m.get("strata_route_requests_total", **lab) == 12
    assert m.get("strata_route_responses_total", code="2xx", **lab) == 12
    assert m.get("strata_route_responses_by_code_total", listener="web", route="broken",
                 code="502") == 3
    assert m.get("strata_route_errors_total", listener="web", route="broken",
                 reason="connect_failed") == 3
    assert m.get("strata_server_time_to_first_byte_seconds_count", backend="slowb",
                 server="s1") == 12
    assert m.get("strata_backend_request_duration_seconds_count", backend="fastb") == 50
    assert m.get("strata_listener_request_duration_seconds_count", listener="web") == 65
    assert m.get("strata_server_http_responses_total", backend="slowb", server="s1",
                 code="2xx") == 12

    lab = {"backend": "slowb", "server": "s1"}
    m = wait_for(lambda: (lambda x: x if x.get(
        "strata_server_tcp_info_samples_total", **lab) == 12 else None)(s.metrics(admin)),
        5, what="12 HTTP server connections sampled at close")
    assert m.get("strata_server_tcp_rtt_seconds_count", **lab) == 12
    assert m.get("strata_server_tcp_segments_in_total", **lab) >= 24

    st = stats(admin)
    r_slow = find(st["routes"], name="slow")
    r_fast = find(st["routes"], name="fast")
    assert r_slow["requests"] == 12 and r_slow["codes"] == {"200": 12}
    total = r_slow["latency_ms"]["total"]
    assert 60 <= total["p50"] <= total["p99"] <= total["p999"] < 2000
    assert r_slow["latency_ms"]["ttfb"]["p50"] >= 60
    assert r_fast["latency_ms"]["total"]["p99"] < total["p50"]
    assert find(st["routes"], name="broken")["errors"] == {"connect_failed": 3}
    assert find(st["servers"], name="s1")["latency_ms"]["total"]["p50"] >= 60
    assert find(st["backends"], name="fastb")["requests"] == 50
    errs = [e for e in st["recent_errors"] if e["where"] == "broken"]
    assert len(errs) == 3
    assert errs[0]["status"] == 502 and errs[0]["reason"] == "connect_failed"
    assert errs[0]["path"] == "/broken/x" and errs[0]["listener"] == "web"


def relay_config(port, admin, srv, listeners="", backends=""):
    """A tcp listener `relay` in front of backend `app` (server e1 = srv), and more."""
    return f"""
admin: {{ listen: {LOOPBACK}:{admin} }}
listeners:
  - name: relay
    listen: "{LOOPBACK}:{port}"
    mode: tcp
    backend: app{listeners}
backends:
  app:
    servers: [ {{ name: e1, address: "{srv.address}" }} ]{backends}
"""


def test_tcp_sessions_connect_time_and_tcp_info(strata):
    srv = EchoServer(greeting=b"g\n").start()
    try:
        port, admin = free_port(), free_port()
        s = strata(relay_config(port, admin, srv), listen_ports=[port], admin_port=admin)
        for _ in range(5):
            c = connect(port)
            assert recv_exact(c, 2) == b"g\n"
            c.sendall(b"ping\n")
            assert recv_exact(c, 5) == b"ping\n"
            c.close()
        lab = {"backend": "app", "server": "e1"}
        m = wait_for(lambda: (lambda x: x if x.get(
            "strata_server_tcp_info_samples_total", **lab) == 5 else None)(s.metrics(admin)),
            5, what="5 closed sessions sampled")
        assert m.get("strata_listener_session_duration_seconds_count", listener="relay") == 5
        assert m.get("strata_listener_connect_duration_seconds_count", listener="relay") == 5
        assert m.get("strata_server_tcp_rtt_seconds_count", **lab) == 5
        assert m.get("strata_server_tcp_segments_out_total", **lab) >= 5
        assert m.get("strata_listener_tcp_segments_in_total", listener="relay") >= 5
        st = stats(admin)
        sv = find(st["servers"], name="e1")
        assert sv["tcp"]["samples"] == 5 and sv["tcp"]["rtt_ms"]["count"] == 5
        assert sv["latency_ms"]["connect"]["count"] == 5
        assert find(st["listeners"], name="relay")["latency_ms"]["session"]["count"] == 5
    finally:
        srv.stop()


def test_tcp_info_of_live_connections(strata, origin):
    """TCP_INFO is read while connections live (each worker, once a second, round robin):
    a relay session and a pooled HTTP server connection that stay open show their RTT,
    segments and samples before they close, and closing adds only what is new."""
    srv = EchoServer(greeting=b"g\n").start()
    try:
        a = origin("a")
        port, hport, admin = free_port(), free_port(), free_port()
        cfg = "workers: 1\n" + relay_config(port, admin, srv, f"""
  - name: web
    listen: "{LOOPBACK}:{hport}"
    mode: http
    backend: origin""", f"""
  origin:
    servers: [ {{ name: o1, address: "{a.address}" }} ]""")
        s = strata(cfg, listen_ports=[port, hport], admin_port=admin)
        c = connect(port)
        assert recv_exact(c, 2) == b"g\n"
        for i in range(5):
            c.sendall(b"ping\n")
            assert recv_exact(c, 5) == b"ping\n"
        conn = http.client.HTTPConnection(LOOPBACK, hport, timeout=5)
        conn.request("GET", "/x")
        assert conn.getresponse().read()
        e1, o1 = {"backend": "app", "server": "e1"}, {"backend": "origin", "server": "o1"}

        def sampled(m):
            return all((m.get("strata_server_tcp_info_samples_total", **lab) or 0) >= 1
                       for lab in (e1, o1))
        m = wait_for(lambda: (lambda x: x if sampled(x) else None)(s.metrics(admin)), 6,
                     what="live connections sampled")
        # both still open: nothing closed yet, yet RTT and segments are there
        assert not m.get("strata_listener_session_duration_seconds_count", listener="relay")
        assert m.get("strata_server_tcp_rtt_seconds_count", **e1) >= 1
        assert m.get("strata_server_tcp_segments_out_total", **e1) >= 5
        assert m.get("strata_listener_tcp_segments_in_total", listener="relay") >= 5
        assert m.get("strata_server_tcp_rtt_seconds_count", **o1) >= 1
        sv = find(stats(admin)["servers"], name="e1")
        assert sv["tcp"]["samples"] >= 1 and sv["tcp"]["rtt_ms"]["count"] >= 1
        live_out = m.get("strata_server_tcp_segments_out_total", **e1)
        live_samples = m.get("strata_server_tcp_info_samples_total", **e1)
        for i in range(5):
            c.sendall(b"pong\n")
            assert recv_exact(c, 5) == b"pong\n"
        c.close()
        conn.close()
        # one scrape may read the segments just before the close and its count just after:
        # wait for both (a close that read nothing times out here)
        m = wait_for(lambda: (lambda x: x if x.get(
            "strata_listener_session_duration_seconds_count", listener="relay") == 1 and
            x.get("strata_server_tcp_segments_out_total", **e1) >= live_out + 5 else None)(
            s.metrics(admin)), 5, what="the session closed and its last TCP_INFO read")
        after = m.get("strata_server_tcp_segments_out_total", **e1)
        # the close read added the five new messages, not the whole connection again
        assert live_out + 5 <= after < 2 * live_out + 5, (live_out, after)
        assert m.get("strata_server_tcp_info_samples_total", **e1) > live_samples
    finally:
        srv.stop()


def test_openmetrics_and_dashboard_served_compressed(strata, origin):
    a = origin()
    port, admin = free_port(), free_port()
    s = strata(http_config(port, {"app": {"servers": [a.address]}}, admin_port=admin),
               listen_ports=[port], admin_port=admin)
    assert get(port, "/x")[0] == 200
    status, hdrs, body = get(admin, "/metrics",
                             {"Accept": "application/openmetrics-text; version=1.0.0"})
    text = body.decode()
    assert status == 200 and hdrs["content-type"].startswith("application/openmetrics-text")
    assert text.endswith("# EOF\n")
    assert "# TYPE strata_route_requests counter\n" in text
    assert "strata_route_requests_total{" in text
    assert "# TYPE strata_route_request_duration_seconds histogram\n" in text
    plain = s.metrics(admin).text
    assert "# EOF" not in plain and "# TYPE strata_route_requests_total counter\n" in plain
    status, hdrs, body = get(admin, "/metrics", {"Accept-Encoding": "gzip"})
    assert hdrs.get("content-encoding") == "gzip" and gzip.decompress(body).decode() == plain

    sent = 0
    for path in ("/", "/app.js", "/style.css"):
        status, hdrs, body = get(admin, path, {"Accept-Encoding": "gzip, deflate"})
        assert status == 200 and hdrs.get("content-encoding") == "gzip"
        sent += len(body)
        raw = gzip.decompress(body)
        status, hdrs, plain_body = get(admin, path)
        assert status == 200 and "content-encoding" not in hdrs and plain_body == raw
    assert b"Strata dashboard" in get(admin, "/")[2]
    assert sent < 300 * 1024
    assert get(admin, "/nope.js")[0] == 404
    # the JSON API too, when it is worth it
    status, hdrs, body = get(admin, "/api/v1/stats", {"Accept-Encoding": "gzip"})
    assert status == 200 and hdrs.get("content-encoding") == "gzip"
    assert json.loads(gzip.decompress(body))["listeners"][0]["name"] == "web"


def test_recent_window_holds_only_the_last_seconds(strata, origin):
    fast, slow = origin("fast"), origin("slow", respond=slow_respond)
    port, admin = free_port(), free_port()
    cfg = http_config(port, {"fastb": {"servers": [fast.address]},
                             "slowb": {"servers": [("s1", slow.address)]},
                             "dead": {"servers": [f"{LOOPBACK}:{free_port()}"]}},
                      routes=ROUTES, admin_port=admin)
    strata(cfg, listen_ports=[port], admin_port=admin)
    for i in range(4):  # before the window starts: since-start figures only
        assert get(port, f"/slow/{i}")[0] == 200
    first = stats(admin)
    slow_route = find(first["routes"], name="slow")
    assert first["recent_window_s"] == 0 and slow_route["recent_latency_ms"]["total"] is None
    for i in range(3):
        assert get(port, f"/slow/x{i}")[0] == 200
    time.sleep(5.2)  # the window rolls every 5 s
    st = stats(admin)
    assert 5 <= st["recent_window_s"] < 11, st["recent_window_s"]
    route = find(st["routes"], name="slow")
    assert route["latency_ms"]["total"]["count"] == 7
    recent = route["recent_latency_ms"]["total"]
    assert recent["count"] == 3 and recent["p50"] >= 60
    assert find(st["servers"], name="s1")["recent_latency_ms"]["ttfb"]["count"] == 3
    assert find(st["listeners"], name="web")["recent_latency_ms"]["total"]["count"] == 3
    assert find(st["routes"], name="fast")["recent_latency_ms"]["total"] is None


def test_tls_handshake_histogram(https, pki):  # noqa: F811 - fixtures
    s, port, admin, a, log = https()
    for i in range(3):
        status, _, body, _ = https_get(port, pki, f"/t{i}")
        assert (status, body) == (200, b"a")
    m = wait_for(lambda: (lambda x: x if x.get(
        "strata_listener_tls_handshake_duration_seconds_count", listener="web") == 3 else None)(
        s.metrics(admin)), 5, what="3 handshakes timed")
    assert m.get("strata_listener_tls_handshake_duration_seconds_bucket", listener="web",
                 le="+Inf") == 3
    assert 0 < m.get("strata_listener_tls_handshake_duration_seconds_sum", listener="web") < 3
    tls = find(stats(admin)["listeners"], name="web")["latency_ms"]["tls"]
    assert tls["count"] == 3 and 0 < tls["p50"] <= tls["p99"] < 3000


def test_histograms_off(strata, origin):
    a = origin()
    port, admin = free_port(), free_port()
    cfg = http_config(port, {"app": {"servers": [a.address]}}, admin_port=admin)
    cfg = cfg.replace(f"admin: {{ listen: {LOOPBACK}:{admin} }}",
                      f"admin: {{ listen: {LOOPBACK}:{admin}, histograms: false }}")
    assert "histograms: false" in cfg
    s = strata(cfg, listen_ports=[port], admin_port=admin)
    for i in range(5):
        assert get(port, f"/x{i}")[0] == 200
    m = s.metrics(admin)
    # the families are declared, without samples; the counters go on
    assert "# TYPE strata_route_request_duration_seconds histogram" in m.text
    assert not any(name.endswith("_bucket") for name, _ in m)
    assert m.get("strata_route_requests_total", listener="web", route="default") == 5
    route = stats(admin)["routes"][0]
    assert route["requests"] == 5 and route["latency_ms"]["total"] is None
    assert route["recent_latency_ms"]["total"] is None
