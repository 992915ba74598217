"""systemd's notify protocol, played by the test: a Python AF_UNIX datagram socket as
NOTIFY_SOCKET (a path, then an abstract name), and the messages a Type=notify unit needs:
READY=1 once listening, RELOADING=1 (with MONOTONIC_USEC) and READY=1 around every reload,
good or bad, STOPPING=1 on SIGTERM, a STATUS= line each time. Also: contrib/strata.service
is a Type=notify unit with ExecReload."""

import os
import signal
import socket
import time

from conftest import (REPO, LOOPBACK, Strata, free_port, http_get, port_listening,
                      sanitizer_reports)


class Notify:
    """The receiving end of NOTIFY_SOCKET."""

    def __init__(self, address):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(address)
        self.sock.settimeout(0.1)
        self.messages = []

    def next(self, timeout=10.0):
        """The next datagram as {key: value}, in order."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                data = self.sock.recv(4096).decode()
            except socket.timeout:
                continue
            msg = dict(ln.split("=", 1) for ln in data.splitlines() if "=" in ln)
            self.messages.append(msg)
            return msg
        raise AssertionError(f"no notify message within {timeout}s; got {self.messages}")

    def close(self):
        self.sock.close()


def config(port):
    return ("workers: 1\nlisteners:\n"
            f'  - {{ name: web, listen: "{LOOPBACK}:{port}", mode: http, '
            "routes: [ { respond: { status: 200, body: \"one\\n\" } } ] }\n"
            'backends:\n  b: { servers: [ "127.0.0.1:1" ] }\n')


def run_notify_scenario(strata_bin, tmp_path, notify_address, env_value):
    port = free_port()
    n = Notify(notify_address)
    s = Strata(strata_bin, tmp_path, config(port),
               env=dict(os.environ, NOTIFY_SOCKET=env_value))
    try:
        ready = n.next()
        assert ready.get("READY") == "1", ready
        assert "generation 1" in ready.get("STATUS", ""), ready
        assert port_listening(port), "READY=1 before listening"

        s.config_path.write_text(config(port).replace("one", "two"))
        t0 = time.clock_gettime(time.CLOCK_MONOTONIC) * 1e6
        s.send_signal(signal.SIGHUP)
        reloading = n.next()
        assert reloading.get("RELOADING") == "1", reloading
        usec = int(reloading["MONOTONIC_USEC"])
        assert t0 - 1e6 <= usec <= time.clock_gettime(time.CLOCK_MONOTONIC) * 1e6, (t0, usec)
        again = n.next()
        assert again.get("READY") == "1" and "generation 2" in again.get("STATUS", ""), again
        assert http_get(port, "/")[1] == "two\n"

        s.config_path.write_text("listeners: [\n")  # broken: READY=1 again, still 2
        s.send_signal(signal.SIGHUP)
        assert n.next().get("RELOADING") == "1"
        kept = n.next()
        assert kept.get("READY") == "1" and "generation 2" in kept.get("STATUS", ""), kept

        s.send_signal(signal.SIGTERM)
        stopping = n.next()
        assert stopping.get("STOPPING") == "1" and "STATUS" in stopping, stopping
        assert s.proc.wait(timeout=10) == 0
    finally:
        s.stop()
        n.close()
    assert not sanitizer_reports(s)


def test_notify_socket_path(strata_bin, tmp_path):
    path = str(tmp_path / "notify.sock")
    run_notify_scenario(strata_bin, tmp_path, path, path)


def test_notify_socket_abstract(strata_bin, tmp_path):
    name = f"strata-e2e-notify-{os.getpid()}-{time.monotonic_ns()}"
    run_notify_scenario(strata_bin, tmp_path, "\0" + name, "@" + name)


def test_without_notify_socket_nothing_is_sent(strata_bin, tmp_path):
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "NOTIFY_SOCKET"}
    s = Strata(strata_bin, tmp_path, config(port), env=env)
    try:
        s.wait_listening([port])
        s.send_signal(signal.SIGHUP)
        s.wait_log(r"generation 2 in force")
    finally:
        rc, _ = s.stop()
    assert rc == 0 and not sanitizer_reports(s)


def test_unit_file_is_type_notify_with_reload():
    unit = (REPO / "contrib" / "strata.service").read_text()
    lines = {ln.split("=", 1)[0]: ln.split("=", 1)[1] for ln in unit.splitlines()
             if "=" in ln and not ln.startswith("#")}
    assert lines["Type"] == "notify"
    assert "ExecReload" in lines and "ExecStart" in lines
    assert "strata run" in lines["ExecStart"]


def test_binary_upgrade_hands_the_main_pid_over(strata_bin, tmp_path):
    """A binary upgrade: the new process says MAINPID=<its pid> (before the old one is
    told to stop, and again with READY=1); the old one, draining, sends nothing more (no
    STOPPING=1 that would stop the unit); the new one's SIGTERM sends STOPPING=1."""
    port = free_port()
    path = str(tmp_path / "notify.sock")
    sock = tmp_path / "upgrade.sock"
    text = f"upgrade_socket: {sock}\n" + config(port)
    env = dict(os.environ, NOTIFY_SOCKET=path)
    n = Notify(path)
    procs = []
    try:
        old = Strata(strata_bin, tmp_path, text, name="old.yaml", env=env)
        procs.append(old)
        first = n.next()
        assert first.get("READY") == "1" and "MAINPID" not in first, first
        new = Strata(strata_bin, tmp_path, text, name="new.yaml", env=env)
        procs.append(new)
        took = n.next()
        assert took.get("MAINPID") == str(new.pid) and "READY" not in took, took
        ready = n.next()
        assert ready.get("READY") == "1" and ready.get("MAINPID") == str(new.pid), ready
        assert old.proc.wait(timeout=15) == 0
        assert "binary upgrade: the new process serves" in old.log()
        time.sleep(0.2)
        new.send_signal(signal.SIGTERM)
        stopping = n.next()
        assert stopping.get("STOPPING") == "1", stopping
        assert new.proc.wait(timeout=10) == 0
        # nothing from the old process in between: exactly these four messages
        assert len(n.messages) == 4, n.messages
    finally:
        for p in procs:
            p.stop()
        n.close()
    assert not sum((sanitizer_reports(p) for p in procs), [])


def test_unit_file_lets_an_upgraded_process_become_main():
    unit = (REPO / "contrib" / "strata.service").read_text()
    lines = {ln.split("=", 1)[0]: ln.split("=", 1)[1] for ln in unit.splitlines()
             if "=" in ln and not ln.startswith("#")}
    assert lines["NotifyAccess"] == "all"
