"""Strata short of file descriptors: it must neither spin nor blame the servers, and it
must serve again as soon as descriptors are free."""
import os
import socket
import time

import pytest

from conftest import connect, free_port, recv_exact, simple_config



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
