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

from conftest import (LOOPBACK, connect, free_port, http_get, recv_exact, run_strata,
                      wait_for)

LETTERS = "abc"


def free_ports(n):
    ports = set()
    while len(ports) < n:
        ports.add(free_port())
    return sorted(ports)


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
                 reload_drain="30s", tcp_backend="a"):
    """Listener `web` (and `web_tls` with cert): /probe goes to backend `route`, the rest
    to backend `pool` (servers: the letters of `pool`); `tcp`: an L4 listener to
    tcp_backend."""
    text = "workers: 2\n"
    text += f"timeouts: {{ connect: 1s, drain: 2s, reload_drain: {reload_drain} }}\n"
    text += f"admin: {{ listen: {LOOPBACK}:{ports['admin']} }}\n"
    routes = (f"    routes:\n      - {{ match: {{ path_prefix: /probe }}, backend: {route} }}\n"
              f"      - {{ backend: pool }}\n")
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
    keep.close()


def _accepts(port):
    try:
        with socket.create_connection((LOOPBACK, port), timeout=1):
            return True
    except OSError:
        return False
