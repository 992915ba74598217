"""What a reload carries of a server that kept its backend, name and address, beyond its
health: the old generation's live connections keep counting against it (least_conn,
max_connections) and give their unit back once, and what they report to the passive
check reaches the server the new generation balances over. And a busy HTTP/2 connection
routes each new stream by the generation in force.
"""

import threading

import pytest

from conftest import LOOPBACK, connect, recv_exact, wait_for
from test_reload import free_ports, post_reload


def tcp_config(ports, servers, balance="round_robin", note=""):
    """An L4 listener `tcp` to backend `be` (servers: YAML flow mappings); `note` changes
    nothing but the file (an extra route on `web`), so a reload swaps a generation."""
    text = ("workers: 2\ntimeouts: { connect: 1s, drain: 2s }\n"
            f"admin: {{ listen: {LOOPBACK}:{ports['admin']} }}\n"
            "listeners:\n"
            f'  - {{ name: tcp, listen: "{LOOPBACK}:{ports["tcp"]}", mode: tcp, backend: be }}\n'
            f'  - name: web\n    listen: "{LOOPBACK}:{ports["web"]}"\n    mode: http\n'
            f'    routes:\n      - {{ match: {{ path_prefix: /{note or "x"} }}, '
            f'respond: {{ status: 200, body: "{note}" }} }}\n'
            f"backends:\n  be:\n    balance: {balance}\n    servers:\n")
    for s in servers:
        text += f"      - {s}\n"
    return text


def greeting_of(port, held):
    """A new L4 session (its socket added to held): the greeting of the server it reached."""
    c = connect(port)
    held.append(c)
    return recv_exact(c, 2)


def active(s, admin_port, server):
    return s.metrics(admin_port).get("strata_server_connections_active",
                                     backend="be", server=server)


def reload_with(s, admin_port, text):
    s.config_path.write_text(text)
    status, body = post_reload(admin_port)
    assert status == 200, body


def test_max_connections_counts_the_old_generations_connections(strata, backends):
    """Two sessions fill server p (max_connections: 2) before a reload; after it a third
    goes to the backup, not to p; once the old two close, p takes connections again and
    its count ends at 0 (given back once, no underflow)."""
    p, b = backends.echo(greeting=b"P\n"), backends.echo(greeting=b"B\n")
    ports = dict(zip(["tcp", "web", "admin"], free_ports(3)))
    servers = [f'{{ name: p, address: "{LOOPBACK}:{p.port}", max_connections: 2 }}',
               f'{{ name: b, address: "{LOOPBACK}:{b.port}", backup: true }}']
    s = strata(tcp_config(ports, servers), listen_ports=[ports["tcp"], ports["web"]],
               admin_port=ports["admin"])
    held = []
    try:
        assert [greeting_of(ports["tcp"], held) for _ in range(2)] == [b"P\n"] * 2
        assert active(s, ports["admin"], "p") == 2
        for i in range(3):  # each reload carries the count on
            reload_with(s, ports["admin"], tcp_config(ports, servers, note=f"n{i}"))
            assert active(s, ports["admin"], "p") == 2, i
        assert greeting_of(ports["tcp"], held) == b"B\n"  # p is full with the old two
        for c in held[:2]:
            c.close()
        wait_for(lambda: active(s, ports["admin"], "p") == 0, 5, what="p's count back to 0")
        assert greeting_of(ports["tcp"], held) == b"P\n"
        assert active(s, ports["admin"], "p") == 1
    finally:
        for c in held:
            c.close()
    wait_for(lambda: active(s, ports["admin"], "p") == 0 and active(s, ports["admin"], "b") == 0,
             5, what="every count back to 0")
    assert "is DOWN" not in s.log()


def test_least_conn_sees_the_old_generations_connections(strata, backends):
    """x holds two sessions when a reload adds y: least_conn sends the next two to y."""
    x, y = backends.echo(greeting=b"X\n"), backends.echo(greeting=b"Y\n")
    ports = dict(zip(["tcp", "web", "admin"], free_ports(3)))
    sx = f'{{ name: x, address: "{LOOPBACK}:{x.port}" }}'
    sy = f'{{ name: y, address: "{LOOPBACK}:{y.port}" }}'
    s = strata(tcp_config(ports, [sx], balance="least_conn"),
               listen_ports=[ports["tcp"], ports["web"]], admin_port=ports["admin"])
    held = []
    try:
        assert [greeting_of(ports["tcp"], held) for _ in range(2)] == [b"X\n"] * 2
        reload_with(s, ports["admin"], tcp_config(ports, [sx, sy], balance="least_conn"))
        got = [greeting_of(ports["tcp"], held) for _ in range(2)]
        assert got == [b"Y\n", b"Y\n"], got
        assert active(s, ports["admin"], "x") == 2 and active(s, ports["admin"], "y") == 2
    finally:
        for c in held:
            c.close()
    wait_for(lambda: active(s, ports["admin"], "x") == 0 and active(s, ports["admin"], "y") == 0,
             5, what="every count back to 0")


class SlowFailingOrigin:
    """HTTP/1.1 origin: /slow answers 500 after `release` is set; anything else 200."""

    def __init__(self, backends):
        self.release = threading.Event()
        self.srv = backends.threaded(self._handle)

    def _handle(self, c):
        buf = b""
        while b"\r\n\r\n" not in buf:
            chunk = c.recv(4096)
            if not chunk:
                return
            buf += chunk
        if buf.startswith(b"GET /slow"):
            self.release.wait(10)
            c.sendall(b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 4\r\n"
                      b"Connection: close\r\n\r\nfail")
        else:
            c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nConnection: close\r\n\r\nok\n")


def passive_config(ports, origin_port, note):
    return ("workers: 1\n"
            f"admin: {{ listen: {LOOPBACK}:{ports['admin']} }}\n"
            "listeners:\n"
            f'  - name: web\n    listen: "{LOOPBACK}:{ports["web"]}"\n    mode: http\n'
            f'    routes:\n      - {{ match: {{ path_prefix: /{note} }}, '
            f'respond: {{ status: 200, body: "{note}" }} }}\n'
            "      - { backend: be }\n"
            "backends:\n  be:\n    passive: { fall: 1, http_5xx: true, cooldown: 60s }\n"
            f'    servers: [ {{ name: o, address: "{LOOPBACK}:{origin_port}" }} ]\n')


def test_passive_report_of_an_old_generation_request_reaches_the_new_server(strata, backends):
    """A request begun before a reload gets a 500 after it: the passive check (fall 1)
    takes the server down in the generation in force, which then answers 503/502 without
    trying it."""
    origin = SlowFailingOrigin(backends)
    ports = dict(zip(["web", "admin"], free_ports(2)))
    s = strata(passive_config(ports, origin.srv.port, "a"), listen_ports=[ports["web"]],
               admin_port=ports["admin"])
    c = connect(ports["web"])
    try:
        c.sendall(b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
        wait_for(lambda: origin.srv.accepted >= 1, 5, what="the request at the origin")
        reload_with(s, ports["admin"], passive_config(ports, origin.srv.port, "b"))
        assert s.metrics(ports["admin"]).get("strata_server_up", backend="be", server="o") == 1
        origin.release.set()
        c.settimeout(5)
        assert c.recv(4096).startswith(b"HTTP/1.1 500")
    finally:
        c.close()
    wait_for(lambda: s.metrics(ports["admin"]).get("strata_server_up", backend="be",
                                                   server="o") == 0,
             3, what="the server down in the new generation")
    before = origin.srv.accepted
    c = connect(ports["web"])
    try:
        c.sendall(b"GET /other HTTP/1.1\r\nHost: x\r\n\r\n")
        c.settimeout(5)
        status = c.recv(4096).split(b" ")[1]
        assert status in (b"502", b"503"), status
    finally:
        c.close()
    assert origin.srv.accepted == before  # the new generation did not try it
    s.wait_log(r"server be/o is DOWN: 1 consecutive")


def test_h2_new_stream_takes_the_new_generation_while_an_old_one_is_open(strata):
    """A busy HTTP/2 connection: stream 1 is held open (window 0) across a reload that
    changes a route; stream 3, opened after it, is routed by the new generation, and
    stream 1 still finishes on its own."""
    hf = pytest.importorskip("hyperframe.frame")
    from test_h2 import Raw, h2_config
    port, admin = free_ports(2)

    def config(body):
        routes = f'- {{ match: {{ path: /hello }}, respond: {{ status: 200, body: "{body}" }} }}\n'
        return h2_config(port, admin, routes=routes)

    def body_of_stream(raw, sid):
        data = b""
        for f in raw.read(lambda f: f.stream_id == sid and "END_STREAM" in f.flags, timeout=5):
            if isinstance(f, hf.DataFrame) and f.stream_id == sid:
                data += f.data
        return data

    s = strata(config("one"), listen_ports=[port], admin_port=admin)
    raw = Raw(port, settings={hf.SettingsFrame.INITIAL_WINDOW_SIZE: 0})
    try:
        raw.send(raw.headers(1))
        raw.read(lambda f: isinstance(f, hf.HeadersFrame) and f.stream_id == 1, timeout=5)
        for i, body in enumerate(("two", "three")):
            s.config_path.write_text(config(body))
            assert post_reload(admin)[0] == 200
            sid = 3 + 2 * i
            raw.send(raw.headers(sid), hf.WindowUpdateFrame(sid, window_increment=100))
            assert body_of_stream(raw, sid) == body.encode()
        raw.send(hf.WindowUpdateFrame(1, window_increment=100))
        assert body_of_stream(raw, 1) == b"one"
        assert not any(isinstance(f, hf.GoAwayFrame) for f in raw.frames_in)
        raw.send(raw.headers(7), hf.WindowUpdateFrame(7, window_increment=100))
        assert body_of_stream(raw, 7) == b"three"
    finally:
        raw.close()
