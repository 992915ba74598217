"""Configuration reload (SIGHUP, POST /reload, `strata reload`): nothing lost under load,
each change in force within a second, a bad file changes nothing, counters stay monotonic,
listeners added and removed, long-lived connections on unchanged paths untouched and those
on changed paths drained within `timeouts.reload_drain`.

The origins are another Strata answering by itself (`respond`), one listener per letter,
so the load is not limited by a Python server.
"""

import http.client
import re
import shutil
import signal
import socket
import subprocess
import time

import pytest

from conftest import (LOOPBACK, closed_by_peer, connect, free_port, free_ports, http_get,
                      recv_exact, run_strata, wait_for)
from test_http_proxy import upgrade_happy_origin

LETTERS = "abc"


@pytest.fixture
def letters(strata):
    """A Strata answering "A\\n", "B\\n", "C\\n" on three ports: {letter: port}."""
    ports = dict(zip(LETTERS, free_ports(3)))
    text = "workers: 1\nlisteners:\n"
    for letter, port in ports.items():
        text += (f'  - {{ name: {letter}, listen: "{LOOPBACK}:{port}", mode: http, routes: '
                 f'[ {{ respond: {{ status: 200, body: "{letter.upper()}\\n" }} }} ] }}\n')
    text += 'backends:\n  unused: { servers: [ "127.0.0.1:1" ] }\n'
    strata(text, listen_ports=list(ports.values()), name="letters.yaml")
    return ports


def proxy_config(ports, letters, route="a", pool="abc", cert=None, extra_listeners="",
                 reload_drain="30s", tcp_backend="a", extra_routes="", extra_backends=""):
    """Listener `web` (and `web_tls` with cert): /probe goes to backend `route`, the rest
    to backend `pool` (servers: the letters of `pool`); `tcp`: an L4 listener to
    tcp_backend."""
    text = "workers: 2\n"
    text += f"timeouts: {{ connect: 1s, drain: 2s, reload_drain: {reload_drain} }}\n"
    text += f"admin: {{ listen: {LOOPBACK}:{ports['admin']} }}\n"
    routes = (f"    routes:\n      - {{ match: {{ path_prefix: /probe }}, backend: {route} }}\n"
              + extra_routes + f"      - {{ backend: pool }}\n")
    text += "listeners:\n"
    text += f'  - name: web\n    listen: "{LOOPBACK}:{ports["web"]}"\n    mode: http\n' + routes
    if cert:
        text += (f'  - name: web_tls\n    listen: "{LOOPBACK}:{ports["tls"]}"\n    mode: http\n'
                 f'    tls: {{ certificates: [ {{ cert: "{cert[0]}", key: "{cert[1]}" }} ] }}\n'
                 + routes)
    if "tcp" in ports:
        text += (f'  - {{ name: tcp, listen: "{LOOPBACK}:{ports["tcp"]}", mode: tcp, '
                 f'backend: {tcp_backend} }}\n')
    text += extra_listeners
    text += "backends:\n"
    for letter in LETTERS:
        text += (f'  {letter}: {{ servers: [ {{ name: s_{letter}, '
                 f'address: "{LOOPBACK}:{letters[letter]}" }} ] }}\n')
    text += extra_backends
    text += "  pool:\n    servers:\n"
    for letter in pool:
        text += f'      - {{ name: s_{letter}, address: "{LOOPBACK}:{letters[letter]}" }}\n'
    return text


def post_reload(admin_port):
    c = http.client.HTTPConnection(LOOPBACK, admin_port, timeout=30)
    try:
        c.request("POST", "/reload", body=b"")
        r = c.getresponse()
        return r.status, r.read().decode()
    finally:
        c.close()


def trigger(s, how, strata_bin, admin_port):
    """Reloads s by `how`; returns (ok, text) where the trigger gives an answer."""
    if how == "sighup":
        s.send_signal(signal.SIGHUP)
        return None, ""
    if how == "post":
        status, body = post_reload(admin_port)
        return status == 200, body
    r = run_strata(strata_bin, "reload", "-c", str(s.config_path))
    return r.returncode == 0, r.stdout + r.stderr


def body_of(port, path):
    status, body = http_get(port, path, timeout=5)
    assert status == 200, (status, body)
    return body


def wait_body(port, path, want, within=1.0):
    """Polls (new connections) until `path` answers `want`; returns the time it took."""
    t0 = time.monotonic()
    while True:
        got = body_of(port, path)
        if got == want:
            return time.monotonic() - t0
        if time.monotonic() - t0 > within:
            raise AssertionError(f"{path} still answers {got!r}, not {want!r}, "
                                 f"{within}s after the reload")
        time.sleep(0.02)


def counter(s, admin_port, name, **labels):
    return s.metrics(admin_port).get(name, **labels) or 0


WRK_ERRORS = re.compile(r"Socket errors|Non-2xx")


def start_wrk(url, seconds, conns, extra=()):
    return subprocess.Popen(["wrk", "-t1", f"-c{conns}", f"-d{seconds}s", "--timeout", "5s",
                             *extra, url], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)


def wrk_result(p):
    try:
        out, _ = p.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        p.kill()
        out, _ = p.communicate()
        raise AssertionError(f"wrk did not finish: {out}")
    m = re.search(r"(\d+) requests in", out)
    return int(m.group(1)) if m else 0, out


@pytest.mark.skipif(not shutil.which("wrk"), reason="wrk not installed")
def test_twenty_reloads_under_load_lose_nothing(strata, strata_bin, letters, h2_cert):
    ports = dict(zip(["web", "tls", "admin"], free_ports(3)))
    s = strata(proxy_config(ports, letters, cert=h2_cert), listen_ports=[ports["web"],
               ports["tls"]], admin_port=ports["admin"])
    web, tls = f"http://{LOOPBACK}:{ports['web']}/x", f"https://{LOOPBACK}:{ports['tls']}/x"
    seconds = 14
    loads = [start_wrk(web, seconds, 8),                                   # keep-alive
             start_wrk(web, seconds, 4, ["-H", "Connection: close"]),     # new connections
             start_wrk(tls, seconds, 4)]                                  # TLS keep-alive
    try:
        time.sleep(0.5)
        pools = ["ab", "bc", "c", "abc", "a"]
        hows = ["sighup", "post", "cli"]
        seen_total, took = [], []
        for i in range(20):
            route, pool = LETTERS[(i + 1) % 3], pools[i % len(pools)]
            s.config_path.write_text(proxy_config(ports, letters, route=route, pool=pool,
                                                  cert=h2_cert))
            ok, text = trigger(s, hows[i % 3], strata_bin, ports["admin"])
            assert ok in (None, True), f"reload {i} by {hows[i % 3]} failed: {text}"
            took.append(wait_body(ports["web"], "/probe", route.upper() + "\n"))
            # the pool's servers changed too: within the second, only its letters answer
            wait_for(lambda: all(body_of(ports["web"], "/x").strip().lower() in pool
                                 for _ in range(6)), 1.0, what=f"pool {pool} in force")
            seen_total.append(counter(s, ports["admin"], "strata_listener_http_requests_total",
                                      listener="web"))
        assert all(b >= a for a, b in zip(seen_total, seen_total[1:])), seen_total
        assert re.search(r"generation 21 in force", s.log()), s.log()[-3000:]
        # the old generations go once their last connection has (keep-alive ones moved on)
        s.wait_log(r"generation 20 released", timeout=5)
    finally:
        results = [wrk_result(p) for p in loads]
    for n, out in results:
        assert n > 0 and not WRK_ERRORS.search(out), out
    total = sum(n for n, _ in results)
    print(f"{total} requests under 20 reloads, slowest change in force after "
          f"{max(took) * 1000:.0f} ms")
    assert counter(s, ports["admin"], "strata_listener_http_requests_total",
                   listener="web") >= seen_total[-1]


def test_broken_file_changes_nothing_and_each_trigger_reports_it(strata, strata_bin, letters):
    ports = dict(zip(["web", "admin"], free_ports(2)))
    good = proxy_config(ports, letters, route="b")
    s = strata(good, listen_ports=[ports["web"]], admin_port=ports["admin"])
    assert body_of(ports["web"], "/probe") == "B\n"
    broken = good.replace("backend: b }", "backend: nosuch }")
    s.config_path.write_text(broken)
    where = re.compile(re.escape(str(s.config_path)) + r":\d+:\d+: error: .*nosuch")

    s.send_signal(signal.SIGHUP)
    s.wait_log(where.pattern)
    s.wait_log(r"reload refused: generation 1 ")

    status, body = post_reload(ports["admin"])
    assert status == 422 and where.search(body), (status, body)
    assert "generation 1" in body

    r = run_strata(strata_bin, "reload", "-c", str(s.config_path))
    assert r.returncode == 1 and where.search(r.stderr), (r.returncode, r.stdout, r.stderr)

    # a file the running process rejects (the CLI checks only its own copy): workers change
    s.config_path.write_text(good.replace("workers: 2", "workers: 3"))
    status, body = post_reload(ports["admin"])
    assert status == 422 and "workers" in body, body
    assert body_of(ports["web"], "/probe") == "B\n"
    assert "generation 2" not in s.log()

    s.config_path.write_text(good.replace("route: b", "").replace("backend: b }", "backend: c }"))
    status, body = post_reload(ports["admin"])
    assert status == 200 and "generation 2 in force" in body, body
    wait_body(ports["web"], "/probe", "C\n")


def test_listeners_added_kept_and_removed(strata, letters):
    ports = dict(zip(["web", "admin", "extra"], free_ports(3)))
    extra = (f'  - {{ name: extra, listen: "{LOOPBACK}:{ports["extra"]}", mode: http, '
             f'routes: [ {{ backend: c }} ] }}\n')
    s = strata(proxy_config(ports, letters), listen_ports=[ports["web"]],
               admin_port=ports["admin"])
    keep = http.client.HTTPConnection(LOOPBACK, ports["web"], timeout=5)
    keep.request("GET", "/probe")
    assert keep.getresponse().read() == b"A\n"

    s.config_path.write_text(proxy_config(ports, letters, route="b", extra_listeners=extra))
    status, body = post_reload(ports["admin"])
    assert status == 200 and "2 new" in body, body  # one socket per worker
    assert body_of(ports["extra"], "/") == "C\n"
    # the idle keep-alive connection serves its next request on the new generation
    keep.request("GET", "/probe")
    assert keep.getresponse().read() == b"B\n"

    s.config_path.write_text(proxy_config(ports, letters, route="b"))
    status, body = post_reload(ports["admin"])
    assert status == 200 and "2 closed" in body, body
    wait_for(lambda: not _accepts(ports["extra"]), 2, what="the removed listener closed")
    keep.request("GET", "/probe")
    assert keep.getresponse().read() == b"B\n"
    s.wait_log(r"generation 2 released", timeout=5)  # the idle connection moved on
    keep.close()


def _accepts(port):
    try:
        with socket.create_connection((LOOPBACK, port), timeout=1):
            return True
    except OSError:
        return False


# --------------------------------------------------------------------------- long-lived

def ws_open(port):
    c = connect(port)
    c.sendall(b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
              b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = c.recv(1)
        assert chunk, f"closed during the handshake: {head!r}"
        head += chunk
    assert head.startswith(b"HTTP/1.1 101"), head
    return c


def echo_round(c, payload):
    c.sendall(payload)
    assert recv_exact(c, len(payload)) == payload


def test_long_lived_connections_kept_across_reloads_and_drained_when_changed(
        strata, strata_bin, letters, backends):
    echo, echo2 = backends.echo(), backends.echo()
    # an origin answering 101 to any upgrade, then echoing (test_http_proxy.py)
    ws, ws2 = upgrade_happy_origin(backends, []), upgrade_happy_origin(backends, [])
    ports = dict(zip(["web", "admin", "tcp"], free_ports(3)))
    ws_route = "      - { match: { path_prefix: /ws }, backend: wsb }\n"

    def config(route, pool, echo_addr=echo.address, ws_addr=ws.address, drain="1s"):
        return proxy_config(ports, letters, route=route, pool=pool, reload_drain=drain,
                            tcp_backend="echo", extra_routes=ws_route,
                            extra_backends=(f'  echo: {{ servers: [ {{ name: e, address: '
                                            f'"{echo_addr}" }} ] }}\n'
                                            f'  wsb: {{ servers: [ {{ name: w, address: '
                                            f'"{ws_addr}" }} ] }}\n'))

    s = strata(config("a", "abc"), listen_ports=[ports["web"], ports["tcp"]],
               admin_port=ports["admin"])
    wsc, tcp = ws_open(ports["web"]), connect(ports["tcp"])
    sent = 0
    try:
        pools = ["ab", "bc", "c", "abc"]
        for i in range(20):  # routes and servers change; not the paths of these two
            route = LETTERS[(i + 1) % 3]
            s.config_path.write_text(config(route, pools[i % 4]))
            status, body = post_reload(ports["admin"])
            assert status == 200, body
            for c in (wsc, tcp):
                payload = b"%d:" % i + b"x" * (1000 * i + 1)
                echo_round(c, payload)
                sent += len(payload)
        assert "reload_drain" not in s.log()
        # the generation both were accepted on is kept (not released) for them
        assert "generation 1 released" not in s.log()
        # now their servers change: both are closed after reload_drain (1s), not before
        s.config_path.write_text(config("a", "abc", echo_addr=echo2.address,
                                        ws_addr=ws2.address))
        t0 = time.monotonic()
        status, body = post_reload(ports["admin"])
        assert status == 200, body
        echo_round(wsc, b"still here")  # drained, not cut
        echo_round(tcp, b"still here")
        for c in (wsc, tcp):
            assert closed_by_peer(c, 3.0), "not closed within reload_drain"
        took = time.monotonic() - t0
        assert 0.8 <= took <= 3.0, took
        s.wait_log(r"end=\"?reload_drain")
        # a new connection takes the new servers
        tcp2 = connect(ports["tcp"])
        echo_round(tcp2, b"new")
        tcp2.close()
        assert echo2.accepted >= 1
    finally:
        wsc.close()
        tcp.close()
    print(f"{sent} bytes echoed on a WebSocket and a TCP session through 20 reloads")


# --------------------------------------------------------------------------- carried state

def test_health_and_source_limits_carried_no_flap(strata, letters):
    """A server the health check took down stays down through reloads (and a healthy one
    up): no flap to UP and back; a per-source connection limit keeps counting the
    connections opened before the reload."""
    ports = dict(zip(["web", "admin", "tcp"], free_ports(3)))
    dead = free_port()  # nobody listens: the check fails
    hc = ("  hb:\n    health_check: { type: tcp, interval: 100ms, timeout: 100ms, rise: 3, "
          "fall: 1 }\n    servers:\n"
          f'      - {{ name: live, address: "{LOOPBACK}:{letters["a"]}" }}\n'
          f'      - {{ name: dead, address: "{LOOPBACK}:{dead}" }}\n')

    def config(route):
        text = proxy_config(ports, letters, route=route, extra_backends=hc, tcp_backend="hb")
        return text.replace("mode: tcp, backend: hb }",
                            "mode: tcp, backend: hb, per_source: { max_connections: 1 } }")

    s = strata(config("hb"), listen_ports=[ports["web"], ports["tcp"]],
               admin_port=ports["admin"])
    s.wait_log(r"server hb/dead is DOWN")
    held = connect(ports["tcp"])  # the one connection its source may have
    held.sendall(b"GET /probe HTTP/1.1\r\nHost: x\r\n\r\n")
    assert b"A\n" in held.recv(4096)
    for i in range(10):
        s.config_path.write_text(config("hb" if i % 2 else "a"))
        status, body = post_reload(ports["admin"])
        assert status == 200, body
        m = s.metrics(ports["admin"])
        assert m.get("strata_server_up", backend="hb", server="dead") == 0, i
        assert m.get("strata_server_up", backend="hb", server="live") == 1, i
        for _ in range(3):  # never sent to the dead server: no 502
            assert body_of(ports["web"], "/probe") in ("A\n",)
    time.sleep(0.5)  # checks ran on the last generation too
    log = s.log()
    assert len(re.findall(r"hb/dead is DOWN", log)) == 1, log[-3000:]
    assert "hb/dead is UP" not in log and "hb/live is DOWN" not in log
    second = connect(ports["tcp"])
    try:  # refused: the carried table still counts `held`
        assert closed_by_peer(second, 2.0)
    finally:
        second.close()
        held.close()
    wait_for(lambda: counter(s, ports["admin"], "strata_listener_connections_total",
                             listener="tcp") >= 2, 3, what="connections counted")


def test_udp_flow_kept_across_reloads_and_moved_when_its_server_changes(strata, letters):
    from test_udp import UdpEcho, free_udp_port, udp_bound
    e1, e2 = UdpEcho(), UdpEcho()
    ports = dict(zip(["web", "admin"], free_ports(2)))
    uport = free_udp_port()
    try:
        def config(route, addr):
            return proxy_config(
                ports, letters, route=route,
                extra_listeners=(f'  - {{ name: dgram, listen: "{LOOPBACK}:{uport}", '
                                 f'mode: udp, backend: u }}\n'),
                extra_backends=f'  u: {{ servers: [ {{ name: e, address: "{addr}" }} ] }}\n')

        s = strata(config("a", e1.address), listen_ports=[ports["web"]],
                   admin_port=ports["admin"])
        wait_for(lambda: udp_bound(uport), 5, what="the UDP port bound")
        c = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        c.settimeout(2)
        for i in range(10):
            s.config_path.write_text(config(LETTERS[i % 3], e1.address))
            status, body = post_reload(ports["admin"])
            assert status == 200, body
            c.sendto(b"d%d" % i, (LOOPBACK, uport))
            assert c.recvfrom(100)[0] == b"d%d" % i
        assert len(e1.peers) == 1, e1.peers  # one flow, one server-side socket, throughout
        s.config_path.write_text(config("a", e2.address))
        status, body = post_reload(ports["admin"])
        assert status == 200, body
        c.sendto(b"moved", (LOOPBACK, uport))
        assert c.recvfrom(100)[0] == b"moved"
        assert len(e2.peers) == 1 and len(e1.received) == 10
        c.close()
    finally:
        e1.stop()
        e2.stop()


def test_certificates_reread_on_reload(strata, letters, tmp_path):
    """The same cert/key paths with new contents: after a reload new handshakes get the
    new certificate; a connection made before keeps working."""
    import ssl
    from h2_backend import make_cert
    cert, key = make_cert(str(tmp_path), cn="first.test")
    ports = dict(zip(["web", "tls", "admin"], free_ports(3)))
    s = strata(proxy_config(ports, letters, cert=(cert, key)),
               listen_ports=[ports["web"], ports["tls"]], admin_port=ports["admin"])

    def served_cn():
        ctx = ssl.create_default_context()
        ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
        with socket.create_connection((LOOPBACK, ports["tls"]), timeout=5) as raw:
            with ctx.wrap_socket(raw) as t:
                der = t.getpeercert(binary_form=True)
        pem = ssl.DER_cert_to_PEM_cert(der)
        out = subprocess.run(["openssl", "x509", "-noout", "-subject"], input=pem,
                             capture_output=True, text=True, timeout=10).stdout
        return out.strip()

    assert "first.test" in served_cn()
    make_cert(str(tmp_path), cn="second.test")  # rewrites the same two files
    status, body = post_reload(ports["admin"])
    assert status == 200, body
    assert "second.test" in served_cn()


def test_h2_connection_kept_then_goaway_and_closed_when_its_listener_changes(strata):
    """An HTTP/2 connection with a stream held open (window 0) stays through a reload
    that changes a route; a reload that changes its listener sends GOAWAY and closes it
    after timeouts.reload_drain, the stream still open."""
    hf = pytest.importorskip("hyperframe.frame")
    from test_h2 import Raw, h2_config
    port, admin = free_ports(2)

    def config(body, listener_extra=""):
        routes = f'- {{ match: {{ path: /hello }}, respond: {{ status: 200, body: "{body}" }} }}\n'
        return h2_config(port, admin, routes=routes, listener_extra=listener_extra).replace(
            "drain: 2s }", "drain: 2s, reload_drain: 1s }")

    s = strata(config("one"), listen_ports=[port], admin_port=admin)
    raw = Raw(port, settings={hf.SettingsFrame.INITIAL_WINDOW_SIZE: 0})
    try:
        raw.send(raw.headers(1))
        raw.read(lambda f: isinstance(f, hf.HeadersFrame) and f.stream_id == 1, timeout=5)
        s.config_path.write_text(config("two"))
        assert post_reload(admin)[0] == 200
        assert raw.goaway(0.5) is None  # a route changed: the connection is not touched
        s.config_path.write_text(config("two", listener_extra="max_connections: 1000"))
        t0 = time.monotonic()
        assert post_reload(admin)[0] == 200
        g = raw.goaway(3)
        assert g is not None and g.last_stream_id == 1
        raw.read(timeout=3)  # to EOF
        assert getattr(raw, "eof", False), "not closed after reload_drain"
        assert 0.8 <= time.monotonic() - t0 <= 3.0
        wait_for(lambda: 'end="reload_drain"' in s.stdout(), 3, what="the stream's log line")
    finally:
        raw.close()


def test_h2_websocket_kept_then_drained_when_its_server_changes(strata, ws_origin_factory):
    """A WebSocket over HTTP/2 (RFC 8441) stays through a reload that changes another
    backend; when its server changes, its stream is reset after timeouts.reload_drain."""
    pytest.importorskip("websockets")
    from test_h2_websocket import WsOverH2, echo, exchange, run
    o, o2 = ws_origin_factory(echo), ws_origin_factory(echo)
    s = run(strata, {"ws": {"servers": [o.address]}})
    ws = WsOverH2(s.port)
    text = s.config_path.read_text().replace("drain: 2s }", "drain: 2s, reload_drain: 1s }")
    try:
        exchange(ws, (10, 1000))
        s.config_path.write_text(text + "  other:\n    servers:\n      - \"127.0.0.1:1\"\n")
        assert post_reload(s.admin)[0] == 200
        exchange(ws, (20, 2000))  # untouched
        s.config_path.write_text(text.replace(o.address, o2.address))
        t0 = time.monotonic()
        assert post_reload(s.admin)[0] == 200
        exchange(ws, (30,))  # drained, not cut
        ws.c.pump_until(lambda: ws.r.done or ws.c.closed, 5, what="the drained tunnel's end")
        assert 0.8 <= time.monotonic() - t0 <= 3.0
    finally:
        ws.shutdown()
    wait_for(lambda: "reload_drain" in s.stdout(), 3, what="the stream's log line")


@pytest.fixture
def ws_origin_factory():
    pytest.importorskip("websockets")
    from test_h2_websocket import WsOrigin
    started = []

    def start(handler):
        o = WsOrigin(handler, None).start()
        started.append(o)
        return o
    yield start
    for o in started:
        o.stop()


def test_a_new_address_that_cannot_be_bound_refuses_the_reload(strata, strata_bin, letters):
    ports = dict(zip(["web", "admin", "busy"], free_ports(3)))
    s = strata(proxy_config(ports, letters, route="a"), listen_ports=[ports["web"]],
               admin_port=ports["admin"])
    squatter = socket.socket()
    squatter.bind((LOOPBACK, ports["busy"]))
    squatter.listen(1)
    try:
        extra = (f'  - {{ name: busy, listen: "{LOOPBACK}:{ports["busy"]}", mode: http, '
                 f'routes: [ {{ backend: c }} ] }}\n')
        s.config_path.write_text(proxy_config(ports, letters, route="b", extra_listeners=extra))
        status, body = post_reload(ports["admin"])
        assert status == 422 and "listener busy: cannot listen on" in body, body
        assert "generation 1 (" in body and body_of(ports["web"], "/probe") == "A\n"
        s.config_path.write_text(proxy_config(ports, letters, route="b"))
        r = run_strata(strata_bin, "reload", "-c", str(s.config_path))
        assert r.returncode == 0 and "generation 2 in force" in r.stdout, r
        assert body_of(ports["web"], "/probe") == "B\n"
    finally:
        squatter.close()


def test_reload_cli_without_admin_listener_says_so(strata_bin, tmp_path, letters):
    f = tmp_path / "noadmin.yaml"
    f.write_text(re.sub(r"admin: .*\n", "", proxy_config({"web": free_port(), "admin": 1},
                                                         letters)))
    r = run_strata(strata_bin, "reload", "-c", str(f))
    assert r.returncode == 3 and "no admin listener" in r.stderr and "SIGHUP" in r.stderr, r


def test_route_counters_and_latency_histograms_carried_across_a_reload(strata, letters):
    """Per-route counters and the latency histograms (listener, route, backend, server) are
    shared with the next generation: a reload that changes a route's target does not send
    them back to zero, and both generations add to the same figures."""
    ports = dict(zip(["web", "admin"], free_ports(2)))
    s = strata(proxy_config(ports, letters, route="b"), listen_ports=[ports["web"]],
               admin_port=ports["admin"])
    for _ in range(5):
        assert body_of(ports["web"], "/probe") == "B\n"
    names = [("strata_route_requests_total", {"listener": "web", "route": "route#1"}),
             ("strata_route_request_duration_seconds_count", {"listener": "web", "route": "route#1"}),
             ("strata_listener_request_duration_seconds_count", {"listener": "web"}),
             ("strata_backend_request_duration_seconds_count", {"backend": "pool"})]
    for _ in range(3):
        body_of(ports["web"], "/other")
    before = {n: counter(s, ports["admin"], n, **lb) for n, lb in names}
    assert before[names[0][0]] == 5 and before[names[1][0]] == 5, before
    s.config_path.write_text(proxy_config(ports, letters, route="c"))
    status, body = post_reload(ports["admin"])
    assert status == 200 and "generation 2 in force" in body, body
    wait_body(ports["web"], "/probe", "C\n")
    body_of(ports["web"], "/other")
    after = {n: counter(s, ports["admin"], n, **lb) for n, lb in names}
    for n, _ in names:
        assert after[n] > before[n], (n, before[n], after[n])
