"""Strata short of file descriptors: it must neither spin nor blame the servers, and it
must serve again as soon as descriptors are free."""
import os
import resource
import socket
import time

import pytest

from conftest import connect, free_port, recv_exact, recv_until_eof, simple_config



def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / float(os.sysconf("SC_CLK_TCK"))


# Strata's own baseline is about a dozen descriptors with one worker, and each session
# takes two: with one limit of each parity, one run finds no descriptor left for accept(2)
# (accepting pauses) and the other finds one for the client but none for the server side.
@pytest.mark.parametrize("FD_LIMIT", [40, 41])
def test_out_of_descriptors(strata, backends, FD_LIMIT):
    srv = backends.echo()
    port, admin = free_port(), free_port()
    cfg = simple_config(port, [("e1", srv.address)], admin_port=admin, workers=1,
                        backend_extra="passive: { fall: 1, cooldown: 1m }")
    s = strata(cfg, listen_ports=[port], admin_port=admin,
               wrapper=["/usr/bin/prlimit", f"--nofile={FD_LIMIT}:{FD_LIMIT}"])

    clients, served = [], 0
    try:
        for i in range(3 * FD_LIMIT):
            c = socket.create_connection(("127.0.0.1", port), timeout=5)
            clients.append(c)
            # the first few must be served; later ones may wait in the backlog: don't linger
            c.settimeout(2.0 if i < 4 else 0.05)
            try:
                c.sendall(b"x")
                if c.recv(1) == b"x":
                    served += 1
            except OSError:
                pass  # not accepted (accept paused) or closed: both are what we test
        assert 0 < served < FD_LIMIT, f"{served} connections served with {FD_LIMIT} fds"

        # While starved, strata must not spin on the listening socket.
        cpu0 = cpu_seconds(s.pid)
        time.sleep(1.0)
        spent = cpu_seconds(s.pid) - cpu0
        assert spent < 0.3, f"strata used {spent:.2f}s of CPU in 1s while out of descriptors"
    finally:
        for c in clients:
            c.close()

    # Descriptors come back: new connections are served again, within a bounded wait.
    deadline = time.monotonic() + 10
    while True:
        try:
            c = connect(port, timeout=2)
            try:
                c.sendall(b"again")
                assert recv_exact(c, 5) == b"again"
                break
            finally:
                c.close()
        except (OSError, ConnectionError, AssertionError):
            assert time.monotonic() < deadline, "not serving again 10s after fds were freed"
            time.sleep(0.2)

    log = s.log()
    assert "Too many open files" in log, log[-3000:]
    # Our shortage is not the server's fault: passive fall 1 would have marked it down.
    assert "is DOWN" not in log, log[-3000:]
    assert s.metrics(admin).get("strata_server_up", backend="app", server="e1") == 1


def free_fd_limit(pid):
    """The RLIMIT_NOFILE value that leaves `pid` exactly one free descriptor number (new
    descriptors take the lowest free number, which must stay below the limit)."""
    used = {int(fd) for fd in os.listdir(f"/proc/{pid}/fd")}
    limit = 0
    free = 0
    while free < 1:
        free += limit not in used
        limit += 1
    return limit


def steady_fds(pid, timeout=5.0):
    """Waits until the process's descriptor count stops changing (closes are done)."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        n = len(os.listdir(f"/proc/{pid}/fd"))
        if n == last:
            return n
        last = n
        time.sleep(0.3)
    return last


def test_local_shortage_same_on_tcp_and_http(strata, origin):
    """A connect that fails for want of a local resource (here EMFILE: the accept takes the
    last descriptor, socket(2) for the server finds none) is the same verdict on the L4
    relay and on the HTTP path (one upstream layer): no other server tried, nothing booked
    against the server (no connect error, no passive failure), a connect_failed end."""
    a, b = origin("a"), origin("b")
    tcp_port, http_port, admin = free_port(), free_port(), free_port()
    servers = f'      - {{ name: a, address: "{a.address}" }}\n' \
              f'      - {{ name: b, address: "{b.address}" }}\n'
    backend = ("    balance: round_robin\n    retries: 2\n"
               "    passive: { fall: 1, cooldown: 1m }\n"
               "    keepalive: { max_idle: 0 }\n    servers:\n" + servers)
    cfg = (f"workers: 1\ntimeouts: {{ connect: 1s, idle: 1m, drain: 2s }}\n"
           f"admin: {{ listen: 127.0.0.1:{admin} }}\n"
           "listeners:\n"
           f'  - {{ name: l4, listen: "127.0.0.1:{tcp_port}", mode: tcp, backend: raw }}\n'
           f'  - {{ name: web, listen: "127.0.0.1:{http_port}", mode: http, backend: app }}\n'
           "backends:\n  raw:\n" + backend + "  app:\n" + backend)
    s = strata(cfg, listen_ports=[tcp_port, http_port], admin_port=admin)
    request = b"GET /x HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"

    def through(port):
        c = connect(port)
        try:
            c.sendall(request)
            return recv_until_eof(c)
        except (ConnectionResetError, BrokenPipeError):
            return b""
        finally:
            c.close()

    for port in (tcp_port, http_port):  # warm up: both paths work
        assert b" 200 " in through(port).split(b"\r\n", 1)[0]
    seen = len(a.requests) + len(b.requests)
    assert seen == 2
    steady_fds(s.pid)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    try:
        for port in (tcp_port, http_port):
            steady_fds(s.pid)
            lim = free_fd_limit(s.pid)
            resource.prlimit(s.pid, resource.RLIMIT_NOFILE, (lim, hard))
            try:
                out = through(port)
            finally:
                resource.prlimit(s.pid, resource.RLIMIT_NOFILE, (soft, hard))
            if port == tcp_port:
                assert out == b"", out  # the relay closes: connect_failed
            else:
                assert out.startswith(b"HTTP/1.1 502 "), out
                assert b"out of local resources" in out, out
    finally:
        resource.prlimit(s.pid, resource.RLIMIT_NOFILE, (soft, hard))

    # neither path tried the other server
    assert len(a.requests) + len(b.requests) == seen
    s.wait_log(r"conn listener=l4 .*end=connect_failed error=\"Too many open files\"")
    m = s.metrics(admin)
    for backend_name in ("raw", "app"):
        for name in ("a", "b"):
            assert m.get("strata_server_connect_errors_total", backend=backend_name,
                         server=name) == 0, (backend_name, name)
            assert m.get("strata_server_up", backend=backend_name, server=name) == 1
    assert "is DOWN" not in s.log()
    # and both serve again
    for port in (tcp_port, http_port):
        assert b" 200 " in through(port).split(b"\r\n", 1)[0]
