"""mode: http — the rate_limit filter with real clients: 429 with Retry-After and the
RateLimit-Policy / RateLimit fields, token bucket and sliding window, keys (client address
and prefix, header, cookie, route) kept apart, several limits on one route, shadow mode,
exactness across workers, /metrics and the access log; and cluster-wide limits through a
real redis-server shared by two Strata processes, with Redis down or stopped (slow) giving
the configured fail mode."""
import collections
import http.client
import os
import re
import shutil
import signal
import subprocess
import threading
import time

import pytest

from conftest import LOOPBACK, free_port, port_accepts, run_strata, stop_process, wait_for
from http_backend import http_config

REDIS = shutil.which("redis-server") or "/usr/bin/redis-server"


def start(strata, origin, limits, redis=None, workers=2, respond=False):
    """One Strata with route `api` to an origin (or answering itself: respond) and
    `rate_limit` with these limits (YAML flow mappings). Returns (strata, port, admin_port,
    origin)."""
    o = origin()
    port, aport = free_port(), free_port()
    action = 'respond: { status: 200, body: "ok" }' if respond else "backend: app"
    routes = f"- name: api\n  {action}\n  rate_limit:\n    limits:\n"
    routes += "".join(f"      - {lim}\n" for lim in limits)
    if redis:
        routes += f"    redis: {redis}\n"
    s = strata(http_config(port, {"app": {"servers": [o.address]}}, routes=routes,
                           admin_port=aport, workers=workers),
               listen_ports=[port], admin_port=aport)
    return s, port, aport, o


def get(port, headers=None, source=None, conn=None):
    """A GET / (on conn when given, else a new connection). Returns (status, headers)."""
    c = conn or http.client.HTTPConnection(LOOPBACK, port, timeout=5,
                                           source_address=(source, 0) if source else None)
    try:
        c.request("GET", "/", headers=headers or {})
        r = c.getresponse()
        r.read()
        return r.status, r.msg
    finally:
        if conn is None:
            c.close()


def statuses(port, n, **kw):
    return [get(port, **kw)[0] for _ in range(n)]


def metric(s, aport, name, limit):
    return s.metrics(aport).get(f"strata_rate_limit_{name}_total", route="api", limit=limit)


def access_limits(s, n):
    """The rate_limit fields of the access log's lines (None when absent) once n lines are
    in, counted (workers write their lines in their own order)."""
    def lines():
        ls = [ln for ln in s.stdout().splitlines() if ' status=' in ln]
        return ls if len(ls) >= n else None
    ls = wait_for(lines, 5, what=f"{n} access log lines")
    return collections.Counter(
        (m.group(1) if (m := re.search(r' rate_limit="([^"]*)"', ln)) else None) for ln in ls)


# --------------------------------------------------------------------------- local limits

def test_token_bucket_answers_429_with_fields(strata, origin):
    s, port, aport, o = start(strata, origin, [
        "{ name: per_ip, key: client_ip, algorithm: token_bucket, rate: 1, per: 10s, burst: 3 }"])
    seen = [get(port) for _ in range(4)]
    assert [st for st, _ in seen] == [200, 200, 200, 429]
    for i, (_, h) in enumerate(seen[:3]):
        assert h["RateLimit-Policy"] == '"per_ip";q=3;w=30'
        assert re.fullmatch(rf'"per_ip";r={2 - i};t=\d+', h["RateLimit"]), h["RateLimit"]
    h = seen[3][1]
    assert 1 <= int(h["Retry-After"]) <= 10          # a token every 10 s
    assert re.fullmatch(r'"per_ip";r=0;t=(\d+)', h["RateLimit"])
    assert h["RateLimit-Policy"] == '"per_ip";q=3;w=30'
    assert len(o.requests) == 3                       # the refused one never reached it
    assert access_limits(s, 4) == {None: 3, "per_ip": 1}
    assert metric(s, aport, "allowed", "per_ip") == 3
    assert metric(s, aport, "limited", "per_ip") == 1


def test_a_reload_keeps_the_budgets_and_counters_of_unchanged_limits(strata, origin):
    """A reload that keeps a limit as it was (same route, name, algorithm, rate, key) hands
    its table and counters to the new generation: a spent budget stays spent and the
    metrics go on; a limit whose rate changed starts afresh."""
    from test_reload import post_reload
    s, port, aport, o = start(strata, origin, [
        '{ name: per_key, key: "header:x-api-key", rate: 3, per: 1m }',
        '{ name: per_ip, key: client_ip, rate: 1000, per: 1m }'])
    a = {"x-api-key": "alice"}
    assert statuses(port, 4, headers=a) == [200, 200, 200, 429]

    def reload(text):
        s.config_path.write_text(text)
        return post_reload(aport)

    text = s.config_path.read_text()
    status, body = reload(text + "\n# reloaded\n")
    assert status == 200 and "generation 2 in force" in body, body
    assert statuses(port, 2, headers=a) == [429, 429]  # still spent
    assert metric(s, aport, "limited", "per_key") == 3
    # per_ip counts what per_key (checked first) let through, across both generations
    assert metric(s, aport, "allowed", "per_ip") == 3
    status, body = reload(text.replace("rate: 3,", "rate: 4,"))
    assert status == 200 and "generation 3 in force" in body, body
    assert statuses(port, 5, headers=a) == [200, 200, 200, 200, 429]  # a new limit
    assert metric(s, aport, "allowed", "per_ip") == 7


def test_sliding_window_keys_by_header_apart(strata, origin):
    s, port, aport, o = start(strata, origin, [
        '{ name: per_key, key: "header:x-api-key", rate: 3, per: 1m }'])
    a, b = {"x-api-key": "alice"}, {"x-api-key": "bob"}
    assert statuses(port, 4, headers=a) == [200, 200, 200, 429]
    assert statuses(port, 4, headers=b) == [200, 200, 200, 429]   # bob has his own budget
    assert statuses(port, 5) == [200] * 5            # no key: the limit does not apply
    st, h = get(port, headers=a)
    # the previous window's count is taken as spread evenly over it: the wait may pass
    # `per`, never twice it
    assert st == 429 and 1 <= int(h["Retry-After"]) <= 120
    assert h["RateLimit-Policy"] == '"per_key";q=3;w=60'
    assert metric(s, aport, "limited", "per_key") == 3


def test_cookie_key(strata, origin):
    s, port, aport, o = start(strata, origin, [
        '{ name: per_session, key: "cookie:sid", rate: 2, per: 1m }'])
    assert statuses(port, 3, headers={"Cookie": "x=1; sid=one"}) == [200, 200, 429]
    assert statuses(port, 2, headers={"Cookie": "sid=two"}) == [200, 200]


def test_client_prefix_shares_a_budget(strata, origin):
    s, port, aport, o = start(strata, origin, [
        "{ name: host, key: client_ip, rate: 2, per: 1m }",
        "{ name: net24, key: client_ip/24, rate: 3, per: 1m }"])
    # 127.0.0.1 and 127.0.0.2: one /24 (3 together), two addresses (2 each); a request
    # refused by `host` is not counted by `net24`, which comes after it
    assert statuses(port, 2, source="127.0.0.1") == [200, 200]
    assert get(port, source="127.0.0.1")[0] == 429                 # host: its own 2 are spent
    assert get(port, source="127.0.0.2")[0] == 200                 # the /24's third
    st, h = get(port, source="127.0.0.3")
    assert st == 429                                                 # the /24 is spent
    assert h["RateLimit-Policy"] == '"host";q=2;w=60, "net24";q=3;w=60'
    assert access_limits(s, 5) == {None: 3, "host": 1, "net24": 1}


def test_several_limits_on_one_route(strata, origin):
    s, port, aport, o = start(strata, origin, [
        '{ name: burst, key: "header:x-api-key", algorithm: token_bucket, rate: 10, per: 1s, '
        'burst: 100 }',
        "{ name: whole_route, key: route, rate: 4, per: 1m }"])
    got = [get(port, headers={"x-api-key": k}) for k in ("a", "b", "c", "d", "e")]
    assert [st for st, _ in got] == [200, 200, 200, 200, 429]
    assert got[0][1]["RateLimit-Policy"] == '"burst";q=100;w=10, "whole_route";q=4;w=60'
    assert re.fullmatch(r'"burst";r=99;t=\d+, "whole_route";r=3;t=\d+', got[0][1]["RateLimit"])
    assert access_limits(s, 5) == {None: 4, "whole_route": 1}
    assert metric(s, aport, "limited", "whole_route") == 1
    assert metric(s, aport, "allowed", "burst") == 5


def test_shadow_mode_passes_and_counts(strata, origin):
    s, port, aport, o = start(strata, origin, [
        "{ name: trial, key: client_ip, rate: 2, per: 1m, shadow: true }"])
    seen = [get(port) for _ in range(5)]
    assert [st for st, _ in seen] == [200] * 5
    assert "RateLimit" not in seen[0][1]              # a shadow limit is not announced
    assert len(o.requests) == 5
    assert metric(s, aport, "allowed", "trial") == 2
    assert metric(s, aport, "shadow", "trial") == 3
    assert metric(s, aport, "limited", "trial") == 0
    assert access_limits(s, 5) == {None: 2, "shadow:trial": 3}


def test_exact_across_workers(strata, origin):
    """Eight clients on new connections, spread by the kernel over four workers: exactly
    the budget passes."""
    s, port, aport, o = start(strata, origin, ["{ name: all, key: route, rate: 60, per: 1h }"],
                              workers=4)
    results = []
    lock = threading.Lock()

    def client():
        mine = statuses(port, 25)
        with lock:
            results.extend(mine)

    ts = [threading.Thread(target=client) for _ in range(8)]
    [t.start() for t in ts]
    [t.join(30) for t in ts]
    assert len(results) == 200
    assert results.count(200) == 60
    assert len(o.requests) == 60


def test_config_errors(strata_bin, tmp_path):
    cases = [
        ("{ name: a, rate: 5, cluster: true }", "a cluster limit needs `redis`"),
        ("{ name: a, rate: 5, algorithm: token_bucket, cluster: true }\n    redis: "
         "{ address: \"127.0.0.1:6379\" }", "cluster limits use algorithm sliding_window"),
        ("{ name: a, rate: 7, per: 1h, algorithm: token_bucket, burst: 10000 }",
         "burst 10000 is too large"),
        ("{ name: a, rate: 5, key: \"header:\" }", "expected client_ip"),
        ("{ name: a, rate: 5, key: client_ip/40 }", "expected client_ip"),
        ("{ name: a, rate: 0 }", "rate"),
    ]
    for lim, want in cases:
        cfg = http_config(8080, {"app": {"servers": ["127.0.0.1:9"]}},
                          routes=f"- backend: app\n  rate_limit:\n    limits:\n      - {lim}\n")
        p = tmp_path / "bad.yaml"
        p.write_text(cfg)
        r = run_strata(strata_bin, "check", str(p))
        assert r.returncode != 0, lim
        assert want in r.stderr, r.stderr
        assert re.search(r"bad\.yaml:\d+:\d+", r.stderr), r.stderr


# --------------------------------------------------------------------------- cluster limits

@pytest.fixture
def redis_server(tmp_path):
    """A redis-server on a free loopback port, without persistence; killed by PID."""
    procs = []

    def start_redis(port=None, extra=()):
        port = port or free_port()
        p = subprocess.Popen([REDIS, "--port", str(port), "--bind", LOOPBACK, "--save", "",
                              "--appendonly", "no", "--dir", str(tmp_path), *extra],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        procs.append(p)
        wait_for(lambda: port_accepts(port), 5, what="redis-server listening")
        return p, port

    yield start_redis
    for p in procs:
        if p.poll() is None:
            os.kill(p.pid, signal.SIGCONT)
            stop_process(p, signal.SIGKILL, 5)


def redis_up(s, aport, want):
    wait_for(lambda: s.metrics(aport).get("strata_rate_limit_redis_up") == want, 10,
             what=f"strata_rate_limit_redis_up == {want}")


def away_from_window_edge(window_s):
    """Cluster windows are numbered by the wall clock: start well inside one."""
    left = window_s - time.time() % window_s
    if left < 20:
        time.sleep(left + 0.5)


def test_two_instances_share_one_budget(strata, origin, redis_server):
    _, rport = redis_server()
    redis = f'{{ address: "{LOOPBACK}:{rport}", timeout: 500ms, sync_interval: 50ms }}'
    lim = '{ name: shared, key: "header:x-api-key", rate: 300, per: 1h, cluster: true }'
    one = start(strata, origin, [lim], redis=redis, respond=True)
    two = start(strata, origin, [lim], redis=redis, respond=True)
    for s, _, aport, _ in (one, two):
        redis_up(s, aport, 1)
    away_from_window_edge(3600)
    counts = {}
    lock = threading.Lock()

    def client(port):
        # for 3 s (at most 3000 requests): the processes take their shares round by round
        c = http.client.HTTPConnection(LOOPBACK, port, timeout=5)
        mine, end = [], time.monotonic() + 3
        while time.monotonic() < end and len(mine) < 3000:
            mine.append(get(port, headers={"x-api-key": "team"}, conn=c)[0])
        c.close()
        with lock:
            counts[port] = counts.get(port, 0) + mine.count(200)

    ts = [threading.Thread(target=client, args=(p,)) for p in (one[1], two[1]) for _ in range(2)]
    [t.start() for t in ts]
    [t.join(30) for t in ts]
    total = sum(counts.values())
    # 1200 asked for a budget of 300: both processes took part, and together they kept
    # to the budget within 3 %
    assert 291 <= total <= 309, counts
    assert all(n > 30 for n in counts.values()), counts
    # another key has a budget of its own; spent through one process, the other (which
    # never saw it) lets through no more than 1 % of it before Redis tells it
    c = http.client.HTTPConnection(LOOPBACK, one[1], timeout=5)
    spent, end = 0, time.monotonic() + 5
    while spent < 300 and time.monotonic() < end:
        spent += get(one[1], headers={"x-api-key": "other"}, conn=c)[0] == 200
    c.close()
    assert spent == 300
    late = statuses(two[1], 20, headers={"x-api-key": "other"})
    assert late.count(200) <= 3, late
    for s, _, aport, _ in (one, two):
        assert s.metrics(aport).get("strata_rate_limit_redis_exchanges_total") > 0
        assert metric(s, aport, "fallback", "shared") == 0


def test_redis_down_fail_open_uses_the_fallback(strata, origin, redis_server):
    proc, rport = redis_server()
    redis = f'{{ address: "{LOOPBACK}:{rport}", timeout: 200ms, fail: open }}'
    s, port, aport, o = start(strata, origin, [
        '{ name: shared, key: route, rate: 100, per: 1h, cluster: true, fallback: 3 }'],
        redis=redis)
    redis_up(s, aport, 1)
    assert get(port)[0] == 200
    time.sleep(0.3)              # a new key gets 1 % of the limit until Redis knows it
    assert get(port)[0] == 200
    stop_process(proc, signal.SIGKILL, 5)
    redis_up(s, aport, 0)
    assert statuses(port, 5) == [200, 200, 200, 429, 429]    # the local fallback: 3 an hour
    m = s.metrics(aport)
    assert m.get("strata_rate_limit_fallback_total", route="api", limit="shared") == 5
    assert m.get("strata_rate_limit_redis_failures_total") >= 1
    # Redis back on the same port: the client reconnects (backoff) and is up again
    redis_server(rport)
    redis_up(s, aport, 1)
    assert get(port)[0] == 200
    assert s.metrics(aport).get("strata_rate_limit_redis_reconnects_total") >= 1


def test_redis_slow_or_down_fail_closed(strata, origin, redis_server):
    proc, rport = redis_server()
    redis = f'{{ address: "{LOOPBACK}:{rport}", timeout: 300ms, fail: closed }}'
    s, port, aport, o = start(strata, origin, [
        '{ name: shared, key: route, rate: 100, per: 1h, cluster: true }'], redis=redis)
    redis_up(s, aport, 1)
    assert get(port)[0] == 200
    os.kill(proc.pid, signal.SIGSTOP)                 # slow: answers nothing
    try:
        redis_up(s, aport, 0)
        t0 = time.monotonic()
        st, h = get(port)
        assert time.monotonic() - t0 < 0.25               # decided at once, not waiting
        assert st == 429 and int(h["Retry-After"]) >= 1
    finally:
        os.kill(proc.pid, signal.SIGCONT)
    assert metric(s, aport, "redis_closed", "shared") >= 1
    redis_up(s, aport, 1)                              # it comes back by itself
    assert get(port)[0] == 200
    s.wait_log(r"Redis .*: no answer within the timeout")


def test_redis_answering_errors_counts_as_down(strata, origin, redis_server):
    """A read-only replica refuses the count updates: the fail mode applies until it is a
    primary again."""
    proc, rport = redis_server()
    redis = f'{{ address: "{LOOPBACK}:{rport}", timeout: 300ms, fail: closed }}'
    s, port, aport, o = start(strata, origin, [
        '{ name: shared, key: route, rate: 100, per: 1h, cluster: true }'], redis=redis)
    redis_up(s, aport, 1)
    cli = shutil.which("redis-cli") or "/usr/bin/redis-cli"
    subprocess.run([cli, "-p", str(rport), "REPLICAOF", LOOPBACK, str(free_port())],
                   check=True, capture_output=True, timeout=5)
    redis_up(s, aport, 0)
    assert get(port)[0] == 429
    s.wait_log(r"Redis .*: it answers errors")
    subprocess.run([cli, "-p", str(rport), "REPLICAOF", "NO", "ONE"], check=True,
                   capture_output=True, timeout=5)
    redis_up(s, aport, 1)
    assert get(port)[0] == 200


def test_redis_password(strata, origin, redis_server):
    _, rport = redis_server(extra=("--requirepass", "s3cret"))
    lim = '{ name: shared, key: route, rate: 100, per: 1h, cluster: true }'
    good = start(strata, origin, [lim], respond=True, redis=(
        f'{{ address: "{LOOPBACK}:{rport}", password: s3cret, fail: closed }}'))
    bad = start(strata, origin, [lim], respond=True, redis=(
        f'{{ address: "{LOOPBACK}:{rport}", password: wrong, fail: closed }}'))
    redis_up(good[0], good[2], 1)
    assert get(good[1])[0] == 200
    bad[0].wait_log(r"Redis .* refused the password")
    assert bad[0].metrics(bad[2]).get("strata_rate_limit_redis_up") == 0
    assert get(bad[1])[0] == 429
