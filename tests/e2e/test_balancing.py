"""Server selection and connection limits: round robin, retries over a dead server,
all servers dead, listener max_connections, idle timeout."""

import collections
import time

import pytest

from conftest import (closed_by_peer, connect, free_port, recv_exact, recv_line,
                      simple_config)


def hello_servers(backends, n):
    """n echo servers that greet with b"hello I\\n" (I = 1..n)."""
    return [backends.echo(greeting=b"hello %d\n" % (i + 1)) for i in range(n)]


def who_answers(port, count):
    """Opens `count` connections one after another; returns the greetings seen, in order."""
    seen = []
    for _ in range(count):
        c = connect(port, timeout=5)
        try:
            seen.append(recv_line(c).decode().strip())
            c.sendall(b"ping")
            assert recv_exact(c, 4) == b"ping"
        finally:
            c.close()
    return seen


def test_round_robin_spreads_evenly(strata, backends):
    srvs = hello_servers(backends, 3)
    port = free_port()
    cfg = simple_config(port, [(f"s{i + 1}", s.address) for i, s in enumerate(srvs)],
                        workers=1)
    strata(cfg, listen_ports=[port])
    seen = who_answers(port, 30)
    counts = collections.Counter(seen)
    assert counts == {"hello 1": 10, "hello 2": 10, "hello 3": 10}, seen
    # Strict rotation: no server twice in a row.
    assert all(a != b for a, b in zip(seen, seen[1:])), seen


def test_round_robin_with_several_workers_uses_every_server(strata, backends):
    srvs = hello_servers(backends, 3)
    port = free_port()
    cfg = simple_config(port, [(f"s{i + 1}", s.address) for i, s in enumerate(srvs)],
                        workers=2)
    strata(cfg, listen_ports=[port])
    counts = collections.Counter(who_answers(port, 60))
    assert set(counts) == {"hello 1", "hello 2", "hello 3"}, counts
    assert all(8 <= v <= 32 for v in counts.values()), counts


@pytest.mark.parametrize("balance", ["weighted", "least_conn", "p2c", "source_hash", "maglev"])
def test_every_balancer_relays(strata, backends, balance):
    srvs = hello_servers(backends, 3)
    port = free_port()
    cfg = simple_config(port, [(f"s{i + 1}", s.address) for i, s in enumerate(srvs)],
                        balance=balance)
    strata(cfg, listen_ports=[port])
    seen = who_answers(port, 12)
    assert all(g in ("hello 1", "hello 2", "hello 3") for g in seen), seen
    if balance == "source_hash":
        # Every connection comes from 127.0.0.1: one server gets them all.
        assert len(set(seen)) == 1, seen


def test_weighted_respects_weights(strata, backends):
    srvs = hello_servers(backends, 2)
    port = free_port()
    cfg = f"""
workers: 1
timeouts: {{ drain: 1s }}
listeners:
  - {{ name: web, listen: "127.0.0.1:{port}", mode: tcp, backend: app }}
backends:
  app:
    balance: weighted
    servers:
      - {{ name: heavy, address: "{srvs[0].address}", weight: 3 }}
      - {{ name: light, address: "{srvs[1].address}", weight: 1 }}
"""
    strata(cfg, listen_ports=[port])
    counts = collections.Counter(who_answers(port, 40))
    assert counts == {"hello 1": 30, "hello 2": 10}, counts


def test_retries_skip_a_dead_server(strata, backends):
    """One server is a closed port; with retries: 2 every client connection succeeds."""
    srvs = hello_servers(backends, 2)
    dead = free_port()
    port, admin = free_port(), free_port()
    cfg = simple_config(port, [("dead", f"127.0.0.1:{dead}"), ("s1", srvs[0].address),
                               ("s2", srvs[1].address)],
                        admin_port=admin, workers=1, backend_extra="retries: 2")
    s = strata(cfg, listen_ports=[port], admin_port=admin)
    seen = who_answers(port, 30)
    assert set(seen) == {"hello 1", "hello 2"}, seen
    m = s.metrics(admin)
    errs = m.get("strata_server_connect_errors_total", backend="app", server="dead")
    assert errs is not None and errs >= 1, f"dead server never tried?\n{m.text}"
    ends = collections.Counter(e["end"] for e in s.wait_conn_logs(30))
    assert "connect_failed" not in ends, ends


@pytest.mark.parametrize("retries", [0, 1])
def test_all_servers_dead_closes_client_promptly(strata, retries):
    d1, d2 = free_port(), free_port()
    port, admin = free_port(), free_port()
    cfg = simple_config(port, [("d1", f"127.0.0.1:{d1}"), ("d2", f"127.0.0.1:{d2}")],
                        admin_port=admin, backend_extra=f"retries: {retries}")
    s = strata(cfg, listen_ports=[port], admin_port=admin)
    for _ in range(3):
        c = connect(port)
        try:
            t0 = time.monotonic()
            assert closed_by_peer(c, 5), "client connection left open with no server"
            assert time.monotonic() - t0 < 3, "closing took longer than the connect timeout"
        finally:
            c.close()
    logs = s.wait_conn_logs(3)
    assert {e["end"] for e in logs} <= {"connect_failed", "no_server"}, logs
    assert all(e["bytes_out"] == "0" for e in logs), logs
    m = s.metrics(admin)
    assert m.get("strata_listener_connect_failures_total", listener="web") >= 1, m.text


def test_no_server_when_health_marks_all_down(strata):
    d1 = free_port()
    port = free_port()
    cfg = simple_config(port, [("d1", f"127.0.0.1:{d1}")],
                        backend_extra="health_check: { type: tcp, interval: 100ms, "
                                      "timeout: 100ms, rise: 1, fall: 1 }")
    s = strata(cfg, listen_ports=[port])
    s.wait_log(r"server app/d1 is DOWN", timeout=5)
    c = connect(port)
    try:
        assert closed_by_peer(c, 3)
    finally:
        c.close()
    assert s.wait_conn_logs(1)[0]["end"] == "no_server"


def test_listener_max_connections(strata, backends):
    srv = backends.echo()
    port, admin = free_port(), free_port()
    cfg = simple_config(port, [("e1", srv.address)], admin_port=admin,
                        listener_extra="max_connections: 2")
    s = strata(cfg, listen_ports=[port], admin_port=admin)
    held = [connect(port), connect(port)]
    try:
        for i, c in enumerate(held):
            c.sendall(b"k%d" % i)
            assert recv_exact(c, 2) == b"k%d" % i
        extra = connect(port)
        try:
            t0 = time.monotonic()
            assert closed_by_peer(extra, 3), "connection over max_connections not closed"
            assert time.monotonic() - t0 < 1.0, "rejection was not immediate"
        finally:
            extra.close()
        m = s.metrics(admin)
        assert m.get("strata_listener_connections_rejected_total", listener="web") == 1, m.text
        assert m.get("strata_listener_connections_active", listener="web") == 2, m.text
        # The held connections still work.
        held[0].sendall(b"again")
        assert recv_exact(held[0], 5) == b"again"
    finally:
        held[0].close()
    # A slot is free again.
    time.sleep(0.3)
    c = connect(port)
    try:
        c.sendall(b"ok")
        assert recv_exact(c, 2) == b"ok"
    finally:
        c.close()
        held[1].close()
    assert any(e["end"] == "limit" for e in s.wait_conn_logs(3)), s.conn_logs()


def test_idle_timeout(strata, backends):
    srv = backends.echo()
    port, admin = free_port(), free_port()
    cfg = simple_config(port, [("e1", srv.address)], admin_port=admin,
                        listener_extra="timeouts: { idle: 500ms }")
    s = strata(cfg, listen_ports=[port], admin_port=admin)

    # An active connection (a message every 200 ms) outlives the idle timeout.
    busy = connect(port)
    try:
        for i in range(8):
            busy.sendall(b"%d" % i)
            assert recv_exact(busy, 1) == b"%d" % i
            time.sleep(0.2)
    finally:
        busy.close()

    idle = connect(port)
    try:
        idle.sendall(b"once")
        assert recv_exact(idle, 4) == b"once"
        t0 = time.monotonic()
        assert closed_by_peer(idle, 5), "idle connection not closed within 5s"
        took = time.monotonic() - t0
    finally:
        idle.close()
    assert 0.4 <= took <= 2.0, f"closed after {took:.2f}s, idle timeout is 0.5s"
    ends = [e["end"] for e in s.wait_conn_logs(2)]
    assert ends[-1] == "idle_timeout" and ends.count("idle_timeout") == 1, ends
    m = s.metrics(admin)
    assert m.get("strata_listener_timeouts_total", listener="web") == 1, m.text


def held_greetings(port, count):
    """Opens `count` connections and keeps them; returns (sockets, greetings)."""
    socks, seen = [], []
    try:
        for _ in range(count):
            c = connect(port)
            socks.append(c)
            seen.append(recv_line(c).decode().strip())
    except BaseException:
        for c in socks:
            c.close()
        raise
    return socks, seen


def test_least_conn_picks_the_least_loaded(strata, backends):
    srvs = hello_servers(backends, 3)
    port = free_port()
    cfg = simple_config(port, [(f"s{i + 1}", s.address) for i, s in enumerate(srvs)],
                        balance="least_conn", workers=1)
    strata(cfg, listen_ports=[port])
    socks, seen = held_greetings(port, 3)
    try:
        assert sorted(seen) == ["hello 1", "hello 2", "hello 3"], seen
        # Close the connection on s2: s2 is now the least loaded and gets the next one.
        i = seen.index("hello 2")
        socks.pop(i).close()
        time.sleep(0.3)
        more, seen2 = held_greetings(port, 1)
        socks += more
        assert seen2 == ["hello 2"], seen2
    finally:
        for c in socks:
            c.close()


def test_server_max_connections_overflows(strata, backends):
    srvs = hello_servers(backends, 2)
    port = free_port()
    cfg = f"""
workers: 1
timeouts: {{ drain: 1s }}
listeners:
  - {{ name: web, listen: "127.0.0.1:{port}", mode: tcp, backend: app }}
backends:
  app:
    balance: round_robin
    servers:
      - {{ name: small, address: "{srvs[0].address}", max_connections: 1 }}
      - {{ name: big, address: "{srvs[1].address}" }}
"""
    strata(cfg, listen_ports=[port])
    socks, seen = held_greetings(port, 6)
    try:
        counts = collections.Counter(seen)
        assert counts == {"hello 1": 1, "hello 2": 5}, seen
    finally:
        for c in socks:
            c.close()


def test_backup_server_only_when_primaries_down(strata, backends):
    primary = backends.echo(greeting=b"primary\n")
    backup = backends.echo(greeting=b"backup\n")
    port = free_port()
    cfg = f"""
workers: 1
timeouts: {{ drain: 1s }}
listeners:
  - {{ name: web, listen: "127.0.0.1:{port}", mode: tcp, backend: app }}
backends:
  app:
    balance: round_robin
    health_check: {{ type: tcp, interval: 100ms, timeout: 100ms, rise: 1, fall: 1 }}
    servers:
      - {{ name: p, address: "{primary.address}" }}
      - {{ name: b, address: "{backup.address}", backup: true }}
"""
    s = strata(cfg, listen_ports=[port])
    assert set(who_answers(port, 6)) == {"primary"}
    primary.stop()
    s.wait_log(r"server app/p is DOWN", timeout=5)
    assert set(who_answers(port, 6)) == {"backup"}
    primary.start()
    s.wait_log(r"server app/p is UP", timeout=5)
    assert set(who_answers(port, 6)) == {"primary"}
