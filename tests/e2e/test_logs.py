"""Logs: the access log sent to syslog (RFC 5424, one datagram per line, over UDP and a
Unix datagram socket), the connection log to syslog, access-log sampling (errors always
logged unless sample_errors) and `strata check` on bad log settings."""
import json
import os
import re
import socket
import time

from conftest import LOOPBACK, EchoServer, free_port, run_strata, simple_config, wait_for
from http_backend import http_config, http_request, parse_response

RFC5424 = re.compile(r"^<(\d+)>1 (\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z) (\S+) strata (\d+) - - "
                     r"(.*)$", re.S)


def send(port, target):
    head = f"GET {target} HTTP/1.1\r\nHost: example.com\r\nConnection: close\r\n\r\n"
    (status, _, _), = parse_response(http_request(port, head.encode()))
    return status


def by_path(req):
    if req.path.startswith("/missing"):
        return 404, {"content-type": "text/plain"}, b"no"
    return 200, {"content-type": "text/plain"}, b"ok"


def receive(sock, n, timeout=5.0):
    """Up to n datagrams, waiting at most `timeout` in all."""
    out, deadline = [], time.monotonic() + timeout
    while len(out) < n and time.monotonic() < deadline:
        sock.settimeout(max(0.05, deadline - time.monotonic()))
        try:
            out.append(sock.recv(65536).decode())
        except socket.timeout:
            break
    return out


def test_access_log_to_syslog_over_udp(strata, origin):
    rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    rx.bind((LOOPBACK, 0))
    try:
        o = origin("a", by_path)
        port = free_port()
        cfg = http_config(port, {"app": {"servers": [o.address]}},
                          http_extra=f'access_log: {{ format: json, syslog: '
                                     f'"udp:{LOOPBACK}:{rx.getsockname()[1]}" }}')
        s = strata(cfg, listen_ports=[port])
        for i in range(5):
            assert send(port, f"/item/{i}") == 200
        msgs = receive(rx, 5)
        assert len(msgs) == 5, msgs
        paths = set()
        for m in msgs:
            g = RFC5424.match(m)
            assert g, m
            assert g.group(1) == "134"  # local0 (16) * 8 + informational (6)
            assert int(g.group(4)) == s.proc.pid
            entry = json.loads(g.group(5))
            assert entry["status"] == 200 and entry["listener"] == "web"
            paths.add(entry["path"])
        assert paths == {f"/item/{i}" for i in range(5)}
        assert s.stdout().count('"path"') == 0  # not on stdout as well
    finally:
        rx.close()


def test_conn_log_to_syslog_over_unix_socket(strata, tmp_path):
    path = str(tmp_path / "log.sock")
    rx = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    rx.bind(path)
    echo = EchoServer().start()
    try:
        port = free_port()
        cfg = simple_config(port, [echo.address],
                            listener_extra=f'log: {{ format: text, syslog: "{path}", '
                                           f'facility: daemon }}')
        strata(cfg, listen_ports=[port])
        for _ in range(2):
            with socket.create_connection((LOOPBACK, port), timeout=5) as c:
                c.sendall(b"ping")
                assert c.recv(4) == b"ping"
        msgs = receive(rx, 2)
        assert len(msgs) == 2, msgs
        for m in msgs:
            g = RFC5424.match(m)
            assert g and g.group(1) == "30", m  # daemon (3) * 8 + 6
            assert " conn listener=web " in " " + g.group(5) and "end=client_close" in m, m
    finally:
        echo.stop()
        rx.close()


def log_lines(path):
    return [json.loads(ln) for ln in path.read_text().splitlines()] if path.exists() else []


def test_access_log_sampling_keeps_errors(strata, origin, tmp_path):
    o = origin("a", by_path)
    port, port2, port3 = free_port(), free_port(), free_port()
    logs = [tmp_path / "none.log", tmp_path / "tenth.log", tmp_path / "all_sampled.log"]
    extras = ["sample: 0", "sample: 10%", "sample: 0, sample_errors: true"]
    for p, log, extra in zip((port, port2, port3), logs, extras):
        strata(http_config(p, {"app": {"servers": [o.address]}},
                           http_extra=f'access_log: {{ format: json, path: "{log}", {extra} }}'),
               listen_ports=[p], name=f"{log.stem}.yaml")
    # sample 0: only the errors
    for i in range(20):
        assert send(port, f"/ok/{i}") == 200
    for i in range(5):
        assert send(port, f"/missing/{i}") == 404
    lines = wait_for(lambda: (lambda ls: ls if len(ls) >= 5 else None)(log_lines(logs[0])), 5)
    time.sleep(0.3)
    lines = log_lines(logs[0])
    assert sorted(e["path"] for e in lines) == [f"/missing/{i}" for i in range(5)], lines
    # 10%: about a tenth of 300 (binomial: far outside [5, 70] only once in ~10^9 runs)
    for i in range(300):
        assert send(port2, f"/ok/{i}") == 200
    time.sleep(0.5)
    n = len(log_lines(logs[1]))
    assert 5 <= n <= 70, n
    # errors sampled too: sample 0 logs nothing at all
    for i in range(10):
        assert send(port3, f"/missing/{i}") == 404
    assert send(port3, "/ok") == 200
    time.sleep(0.5)
    assert log_lines(logs[2]) == []


def test_check_reports_bad_log_settings(strata_bin, tmp_path):
    def check(access_log):
        p = tmp_path / "c.yaml"
        p.write_text("listeners:\n  - name: web\n    listen: 127.0.0.1:1\n    mode: http\n"
                     "    backend: b\n    http:\n"
                     f"      access_log: {access_log}\n"
                     "backends:\n  b:\n    servers: [127.0.0.1:2]\n")
        r = run_strata(strata_bin, "check", str(p))
        return r.returncode, r.stdout + r.stderr

    rc, out = check('{ syslog: "tcp:127.0.0.1:514" }')
    assert rc != 0 and "c.yaml:7:" in out and "udp:HOST:PORT" in out, out
    rc, out = check("{ sample: 1.5 }")
    assert rc != 0 and "share from 0 to 1" in out, out
    rc, out = check("{ sample: lots }")
    assert rc != 0 and "share from 0 to 1" in out, out
    rc, out = check('{ path: /tmp/x.log, syslog: /dev/log }')
    assert rc != 0 and "not both" in out, out
    rc, out = check('{ syslog: "udp:127.0.0.1:514", facility: local9 }')
    assert rc != 0 and "facility" in out, out
    rc, out = check('{ syslog: "udp:127.0.0.1:514", facility: local3, sample: 0.25 }')
    assert rc == 0, out
