"""Admission: listener ACLs (allow / deny prefixes, IPv4 and IPv6), per-source connection
caps and rate limits, and the process-wide max_connections. Second client addresses come
from binding the client socket to 127.0.0.2, 127.0.0.3, ... (all of 127/8 is loopback)."""

import collections
import socket
import time

import pytest

from conftest import (closed_by_peer, connect_from, echo_or_closed, free_port,
                      have_ipv6_loopback, simple_config)


def attempt(port, source, host="127.0.0.1", keep=None):
    """One connection from `source`: "ok" (echoed) or "closed" (refused). With keep (a list)
    an accepted connection is kept open in it; otherwise it is closed."""
    c = connect_from(port, source, host=host)
    try:
        result = echo_or_closed(c, b"hi from " + source.encode())
    except BaseException:
        c.close()
        raise
    if keep is not None and result == "ok":
        keep.append(c)
    else:
        c.close()
    return result


def close_all(socks):
    for c in socks:
        c.close()
    socks.clear()


def test_deny_closes_at_once_and_counts(strata, backends):
    srv = backends.echo()
    port, admin = free_port(), free_port()
    cfg = simple_config(port, [("e1", srv.address)], admin_port=admin,
                        listener_extra="acl: { deny: [ 127.0.0.2 ] }")
    s = strata(cfg, listen_ports=[port], admin_port=admin)
    # Refused without sending anything: the close comes at accept, not on the first bytes.
    c = connect_from(port, "127.0.0.2")
    with c:
        t0 = time.monotonic()
        assert closed_by_peer(c, 3), "denied client left open"
        assert time.monotonic() - t0 < 1.0
    assert attempt(port, "127.0.0.2") == "closed"
    assert attempt(port, "127.0.0.1") == "ok"
    assert attempt(port, "127.0.0.3") == "ok"
    logs = s.wait_conn_logs(4)
    # Denied ones are logged before the client sees the close, so they come first.
    assert [e["end"] for e in logs] == ["denied", "denied", "client_close", "client_close"], logs
    assert all(e["client"].startswith("127.0.0.2:") for e in logs[:2]), logs
    assert all(e["server"] == "-" and e["bytes_in"] == "0" for e in logs[:2]), logs
    assert srv.accepted == 2, "a denied client reached the server"
    m = s.metrics(admin)
    assert m.get("strata_listener_denied_total", listener="web") == 2, m.text
    assert m.get("strata_listener_connections_rejected_total", listener="web") == 2, m.text
    assert m.get("strata_listener_connections_active", listener="web") == 0, m.text


def test_allow_admits_only_the_listed(strata, backends):
    srv = backends.echo()
    port, admin = free_port(), free_port()
    cfg = simple_config(port, [("e1", srv.address)], admin_port=admin,
                        listener_extra="acl: { allow: [ 127.0.0.3 ] }")
    s = strata(cfg, listen_ports=[port], admin_port=admin)
    assert attempt(port, "127.0.0.1") == "closed"
    assert attempt(port, "127.0.0.3") == "ok"
    assert attempt(port, "127.0.0.4") == "closed"
    ends = {e["client"].split(":")[0]: e["end"] for e in s.wait_conn_logs(3)}
    assert ends == {"127.0.0.1": "denied", "127.0.0.3": "client_close",
                    "127.0.0.4": "denied"}, ends
    assert s.metrics(admin).get("strata_listener_denied_total", listener="web") == 2


def test_deny_wins_over_allow_with_prefixes(strata, backends):
    srv = backends.echo()
    port = free_port()
    cfg = simple_config(port, [("e1", srv.address)],
                        listener_extra="acl: { allow: [ 127.0.0.0/8 ], "
                                       "deny: [ 127.0.0.2, 127.0.0.4/31, 127.1.0.0/16 ] }")
    strata(cfg, listen_ports=[port])
    want = {"127.0.0.1": "ok", "127.0.0.2": "closed", "127.0.0.3": "ok",
            "127.0.0.4": "closed", "127.0.0.5": "closed", "127.0.0.6": "ok",
            "127.1.2.3": "closed", "127.2.0.1": "ok"}
    seen = {src: attempt(port, src) for src in want}
    assert seen == want


def test_ipv6_acl(strata, backends):
    if not have_ipv6_loopback():
        pytest.skip("no IPv6 loopback")
    srv = backends.echo()
    p_ok = free_port(host="::1", family=socket.AF_INET6)
    p_no = free_port(host="::1", family=socket.AF_INET6)
    p_v4 = free_port()
    cfg = f"""
timeouts: {{ connect: 1s, idle: 1m, drain: 1s }}
listeners:
  - name: v6ok
    listen: "[::1]:{p_ok}"
    backend: app
    acl: {{ allow: [ "::1" ], deny: [ "2001:db8::/32" ] }}
  - name: v6no
    listen: "[::1]:{p_no}"
    backend: app
    acl: {{ allow: [ 127.0.0.0/8, "2001:db8::/32" ] }}
  - name: v4
    listen: "127.0.0.1:{p_v4}"
    backend: app
    acl: {{ allow: [ "::/0" ] }}
backends:
  app:
    servers: [ "{srv.address}" ]
"""
    s = strata(cfg, listen_ports=[p_ok, p_no, p_v4], host="::1")
    assert attempt(p_ok, "::1", host="::1") == "ok"
    assert attempt(p_no, "::1", host="::1") == "closed"
    assert attempt(p_v4, "127.0.0.1") == "closed"     # an IPv6 prefix matches no IPv4 client
    ends = {e["listener"]: e["end"] for e in s.wait_conn_logs(3)}
    assert ends == {"v6ok": "client_close", "v6no": "denied", "v4": "denied"}, ends
    assert [e["client"] for e in s.conn_logs("v6no")][0].startswith("[::1]:")


def test_per_source_max_connections(strata, backends):
    srv = backends.echo()
    port, admin = free_port(), free_port()
    cfg = simple_config(port, [("e1", srv.address)], admin_port=admin,
                        listener_extra="per_source: { max_connections: 2 }")
    s = strata(cfg, listen_ports=[port], admin_port=admin)
    held = []
    try:
        assert attempt(port, "127.0.0.1", keep=held) == "ok"
        assert attempt(port, "127.0.0.1", keep=held) == "ok"
        c = connect_from(port, "127.0.0.1")
        with c:
            t0 = time.monotonic()
            assert closed_by_peer(c, 3), "third connection from one source left open"
            assert time.monotonic() - t0 < 1.0
        assert attempt(port, "127.0.0.2", keep=held) == "ok"
        # The held ones still work.
        assert all(echo_or_closed(c, b"still") == "ok" for c in held)
        assert s.wait_conn_logs(1)[0]["end"] == "limit"
        held.pop(0).close()                          # one from 127.0.0.1 leaves
        s.wait_conn_logs(2)
        assert attempt(port, "127.0.0.1", keep=held) == "ok"
        assert attempt(port, "127.0.0.1") == "closed"
    finally:
        close_all(held)
    ends = collections.Counter(e["end"] for e in s.wait_conn_logs(6))
    assert ends == {"limit": 2, "client_close": 4}, ends
    m = s.metrics(admin)
    assert m.get("strata_listener_connections_rejected_total", listener="web") == 2, m.text
    assert m.get("strata_listener_denied_total", listener="web") == 0, m.text


def test_per_source_rate(strata, backends):
    srv = backends.echo()
    port, admin = free_port(), free_port()
    cfg = simple_config(port, [("e1", srv.address)], admin_port=admin,
                        listener_extra="per_source: { rate: 5, burst: 5 }")
    s = strata(cfg, listen_ports=[port], admin_port=admin)

    def burst(n):
        socks = []
        try:
            for _ in range(n):                       # connect all first: one burst
                socks.append(connect_from(port, "127.0.0.1"))
            return [echo_or_closed(c) for c in socks]
        finally:
            close_all(socks)

    first = burst(8)
    assert first.count("ok") == 5 and first.count("closed") == 3, first
    assert attempt(port, "127.0.0.2") == "ok", "another source shares the bucket"
    time.sleep(1.2)                                  # 5/s: the bucket is full again
    again = burst(5)
    assert again == ["ok"] * 5, again
    ends = collections.Counter(e["end"] for e in s.wait_conn_logs(14))
    assert ends == {"rate_limited": 3, "client_close": 11}, ends
    m = s.metrics(admin)
    assert m.get("strata_listener_rate_limited_total", listener="web") == 3, m.text
    assert m.get("strata_listener_connections_rejected_total", listener="web") == 3, m.text


def test_global_max_connections(strata, backends):
    srv = backends.echo()
    pa, pb, admin = free_port(), free_port(), free_port()
    cfg = f"""
timeouts: {{ connect: 1s, idle: 1m, drain: 1s }}
admin: {{ listen: 127.0.0.1:{admin} }}
max_connections: 3
listeners:
  - {{ name: a, listen: "127.0.0.1:{pa}", backend: app, acl: {{ deny: [ 127.0.0.2 ] }} }}
  - {{ name: b, listen: "127.0.0.1:{pb}", backend: app }}
backends:
  app:
    servers: [ "{srv.address}" ]
"""
    s = strata(cfg, listen_ports=[pa, pb], admin_port=admin)
    # Refused connections give their unit back: 5 denied ones first change nothing.
    for _ in range(5):
        assert attempt(pa, "127.0.0.2") == "closed"
    held = []
    try:
        assert attempt(pa, "127.0.0.1", keep=held) == "ok"
        assert attempt(pa, "127.0.0.3", keep=held) == "ok"
        assert attempt(pb, "127.0.0.1", keep=held) == "ok"
        assert attempt(pa, "127.0.0.1") == "closed"   # 4th, whichever the listener
        assert attempt(pb, "127.0.0.4") == "closed"
        s.wait_conn_logs(7)
        held.pop(1).close()
        s.wait_conn_logs(8)
        assert attempt(pb, "127.0.0.1", keep=held) == "ok"
        assert attempt(pa, "127.0.0.1") == "closed"
    finally:
        close_all(held)
    ends = collections.Counter(e["end"] for e in s.wait_conn_logs(12))
    assert ends == {"denied": 5, "limit": 3, "client_close": 4}, ends
    m = s.metrics(admin)
    assert m.get("strata_listener_connections_rejected_total", listener="a") == 7, m.text
    assert m.get("strata_listener_connections_rejected_total", listener="b") == 1, m.text
    assert m.get("strata_listener_connections_active", listener="a") == 0, m.text
