"""Active TCP health checks: a server killed mid-test is taken out (log line and
strata_server_up 0), traffic goes to the others, and it comes back when restarted."""

import collections
import time

import pytest

from conftest import connect, free_port, recv_exact, recv_line, simple_config, wait_for

HC = "health_check: { type: tcp, interval: 200ms, timeout: 200ms, rise: 2, fall: 2 }"


def greetings(port, count):
    seen = []
    for _ in range(count):
        c = connect(port, timeout=5)
        try:
            seen.append(recv_line(c).decode().strip())
            c.sendall(b"hc")
            assert recv_exact(c, 2) == b"hc"
        finally:
            c.close()
    return seen


@pytest.mark.timeout(90)
def test_server_down_and_up_again(strata, backends):
    srvs = [backends.echo(greeting=b"hello %d\n" % (i + 1)) for i in range(3)]
    port, admin = free_port(), free_port()
    cfg = simple_config(port, [(f"s{i + 1}", s.address) for i, s in enumerate(srvs)],
                        admin_port=admin, workers=1, backend_extra=HC)
    s = strata(cfg, listen_ports=[port], admin_port=admin)

    def up(name):
        return s.metrics(admin).get("strata_server_up", backend="app", server=name)

    wait_for(lambda: all(up(n) == 1 for n in ("s1", "s2", "s3")), 5, what="all servers up")
    assert set(greetings(port, 6)) == {"hello 1", "hello 2", "hello 3"}

    # Kill s2: within fall(2) x interval(200ms) + timeouts it is DOWN.
    t_kill = time.monotonic()
    srvs[1].stop()
    s.wait_log(r"server app/s2 is DOWN", timeout=5)
    took = time.monotonic() - t_kill
    assert took < 3.0, f"DOWN after {took:.1f}s with interval 200ms, fall 2"
    assert wait_for(lambda: up("s2") == 0, 3, what="strata_server_up{server=s2} == 0")
    assert up("s1") == 1 and up("s3") == 1

    seen = greetings(port, 30)
    counts = collections.Counter(seen)
    assert set(counts) == {"hello 1", "hello 3"}, counts
    assert counts["hello 1"] == counts["hello 3"] == 15, counts

    # Restart s2 on the same port: rise(2) checks later it is UP and gets traffic again.
    srvs[1].start()
    s.wait_log(r"server app/s2 is UP", timeout=5)
    assert wait_for(lambda: up("s2") == 1, 3, what="strata_server_up{server=s2} == 1")
    counts = collections.Counter(greetings(port, 30))
    assert counts == {"hello 1": 10, "hello 2": 10, "hello 3": 10}, counts
    # Exactly one DOWN and one UP transition for s2, none for the others.
    log = s.log()
    assert log.count("server app/s2 is DOWN") == 1 and log.count("server app/s2 is UP") == 1
    assert "app/s1 is DOWN" not in log and "app/s3 is DOWN" not in log


def test_health_check_flapping_needs_rise(strata, backends):
    """A server that is down at start is not used until `rise` checks have succeeded."""
    live = backends.echo(greeting=b"live\n")
    late_port = free_port()
    port = free_port()
    cfg = simple_config(port, [("live", live.address), ("late", f"127.0.0.1:{late_port}")],
                        workers=1, backend_extra=HC)
    s = strata(cfg, listen_ports=[port])
    s.wait_log(r"server app/late is DOWN", timeout=5)
    assert set(greetings(port, 6)) == {"live"}
    backends.echo(greeting=b"late\n", port=late_port)
    s.wait_log(r"server app/late is UP", timeout=5)
    assert set(greetings(port, 6)) == {"live", "late"}


def test_passive_check_takes_out_refusing_server(strata, backends):
    """Without an active check, consecutive connect failures (passive fall 2) mark the
    server down, and clients never notice thanks to retries."""
    live = backends.echo(greeting=b"live\n")
    dead = free_port()
    port, admin = free_port(), free_port()
    cfg = simple_config(port, [("live", live.address), ("dead", f"127.0.0.1:{dead}")],
                        admin_port=admin, workers=1,
                        backend_extra="retries: 1\npassive: { fall: 2, cooldown: 30s }")
    s = strata(cfg, listen_ports=[port], admin_port=admin)
    assert set(greetings(port, 20)) == {"live"}
    m = s.metrics(admin)
    errs = m.get("strata_server_connect_errors_total", backend="app", server="dead")
    assert errs == 2, f"expected 2 connect errors then no more tries (cooldown)\n{m.text}"
