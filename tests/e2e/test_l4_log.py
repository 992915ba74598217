"""The connection and flow logs of tcp and udp listeners (`log:`): text by default on
stderr, JSON, off, and a file shared by two listeners; written in batches by the worker."""

import json
import socket

import pytest

from conftest import LOOPBACK, connect, free_port, recv_exact, simple_config, wait_for
from test_udp import (exchange, free_udp_port, start_udp, udp_config,  # noqa: F401
                      udp_echo, udp_socket)


def one_tcp_exchange(port, payload=b"ping"):
    with connect(port) as c:
        c.sendall(payload)
        assert recv_exact(c, len(payload)) == payload


def json_lines(path, event):
    out = []
    try:
        text = path.read_text()
    except FileNotFoundError:
        return out
    for line in text.splitlines():
        obj = json.loads(line)  # every line is one JSON object
        if obj.get("event") == event:
            out.append(obj)
    return out


@pytest.mark.timeout(60)
def test_tcp_log_json_to_a_file(strata, backends, tmp_path):
    echo = backends.echo()
    port = free_port()
    log = tmp_path / "conn.log"
    s = strata(simple_config(port, [("e", echo.address)],
                             listener_extra=f'log: {{ format: json, path: "{log}" }}'),
               listen_ports=[port])
    for i in range(3):
        one_tcp_exchange(port, b"x" * (10 + i))
    lines = wait_for(lambda: (lambda ls: ls if len(ls) >= 3 else None)(json_lines(log, "conn")),
                     10, what="3 json conn lines")
    first = lines[0]
    assert first["listener"] == "web" and first["server"] == "e", first
    assert first["client"].startswith(f"{LOOPBACK}:"), first
    assert (first["bytes_in"], first["bytes_out"]) == (10, 10), first
    assert isinstance(first["duration_ms"], int) and first["end"] in ("client_close",
                                                                      "server_close"), first
    assert first["time"].endswith("Z") and len(first["time"]) == 24, first
    assert s.conn_logs() == [], "the lines went to the file, not to stderr"


@pytest.mark.timeout(60)
def test_tcp_log_off_and_default_text(strata, backends):
    echo = backends.echo()
    quiet, loud = free_port(), free_port()
    cfg = (f"listeners:\n"
           f"  - {{ name: quiet, listen: {LOOPBACK}:{quiet}, backend: app, log: {{ format: off }} }}\n"
           f"  - {{ name: loud, listen: {LOOPBACK}:{loud}, backend: app }}\n"
           f"backends:\n  app:\n    servers: [ {echo.address} ]\n")
    s = strata(cfg, listen_ports=[quiet, loud])
    for _ in range(3):
        one_tcp_exchange(quiet)
    one_tcp_exchange(loud)
    s.wait_conn_logs(1, listener="loud")
    # the quiet connections ended before the loud one: their lines would be there by now
    assert s.conn_logs(listener="quiet") == []
    kv = s.conn_logs(listener="loud")[0]
    assert kv["bytes_in"] == "4" and kv["bytes_out"] == "4", kv
    assert " info conn listener=loud " in s.log()


@pytest.mark.timeout(60)
def test_udp_flow_log_json_off_and_shared_path(strata, udp_echo, tmp_path):
    echo = udp_echo()
    a, b, c, admin = free_udp_port(), free_udp_port(), free_udp_port(), free_port()
    log = tmp_path / "flows.log"
    cfg = (f"workers: 1\n"
           f"admin: {{ listen: {LOOPBACK}:{admin} }}\n"
           f"listeners:\n"
           f"  - {{ name: ja, listen: {LOOPBACK}:{a}, mode: udp, backend: e,\n"
           f"      udp: {{ flow_idle: 200ms }}, log: {{ format: json, path: \"{log}\" }} }}\n"
           f"  - {{ name: jb, listen: {LOOPBACK}:{b}, mode: udp, backend: e,\n"
           f"      udp: {{ flow_idle: 200ms }}, log: {{ format: json, path: \"{log}\" }} }}\n"
           f"  - {{ name: off, listen: {LOOPBACK}:{c}, mode: udp, backend: e,\n"
           f"      udp: {{ flow_idle: 200ms }}, log: {{ format: off }} }}\n"
           f"backends:\n  e:\n    servers: [ {{ name: echo, address: \"{echo.address}\" }} ]\n")
    s = start_udp(strata, cfg, [a, b, c], admin)
    for port in (a, b, c):
        sock = udp_socket()
        try:
            assert exchange(port, b"hello", sock=sock) == b"hello"
            assert exchange(port, b"hi", sock=sock) == b"hi"
        finally:
            sock.close()
    flows = wait_for(lambda: (lambda ls: ls if len(ls) >= 2 else None)(json_lines(log, "flow")),
                     10, what="2 json flow lines")
    by = {f["listener"]: f for f in flows}
    assert set(by) == {"ja", "jb"}, flows
    f = by["ja"]
    assert (f["server"], f["dgrams_in"], f["dgrams_out"]) == ("echo", 2, 2), f
    assert (f["bytes_in"], f["bytes_out"], f["end"]) == (7, 7, "idle_timeout"), f
    # the flow of `off` has ended too (all three had the same idle time): no line anywhere
    wait_for(lambda: s.metrics(admin).get("strata_listener_flows_active", listener="off") == 0,
             10, what="the flow of `off` ended")
    assert "listener=off" not in s.log() and "listener=off" not in s.stdout()
    assert all(x["listener"] != "off" for x in json_lines(log, "flow"))
    assert "flow listener=" not in s.log()


@pytest.mark.timeout(60)
def test_udp_flow_log_text_to_a_file(strata, udp_echo, tmp_path):
    echo = udp_echo()
    port, admin = free_udp_port(), free_port()
    log = tmp_path / "text.log"
    cfg = udp_config(port, [("e", echo.address)], admin, udp="flow_idle: 200ms")
    cfg = cfg.replace("    mode: udp\n", f'    mode: udp\n    log: {{ path: "{log}" }}\n')
    s = start_udp(strata, cfg, [port], admin)
    assert exchange(port, b"abc") == b"abc"
    wait_for(lambda: log.exists() and " info flow listener=dns " in log.read_text(), 10,
             what="a text flow line in the file")
    line = log.read_text().splitlines()[0]
    assert "server=e dgrams_in=1 dgrams_out=1 bytes_in=3 bytes_out=3 " in line, line
    assert line.endswith("end=idle_timeout"), line
    assert "flow listener=" not in s.log()
