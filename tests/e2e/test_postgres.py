"""A real PostgreSQL 15 behind Strata's L4 path, driven by psql."""

import os
import pwd
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from conftest import die_with_parent, free_port, simple_config, stop_process

PG_BIN = Path("/usr/lib/postgresql/15/bin")
PSQL = shutil.which("psql") or "/usr/bin/psql"


def pg_user():
    """(uid, gid) to run postgres as: the `postgres` user when we are root (postgres
    refuses to run as root), else ourselves."""
    if os.geteuid() != 0:
        return None
    try:
        pw = pwd.getpwnam("postgres")
    except KeyError:
        pytest.skip("running as root and there is no `postgres` user to run the server as")
    return pw.pw_uid, pw.pw_gid


def as_user(ids):
    if ids is None:
        return {}
    return {"user": ids[0], "group": ids[1], "extra_groups": []}


@pytest.fixture
def postgres(workdir):
    """A throwaway PostgreSQL on 127.0.0.1:<free port>; yields the port."""
    for tool in ("initdb", "postgres"):
        if not (PG_BIN / tool).exists():
            pytest.skip(f"{PG_BIN / tool} missing (scripts/install-deps.sh test installs it)")
    if not os.access(PSQL, os.X_OK):
        pytest.skip("psql missing (scripts/install-deps.sh test installs it)")
    ids = pg_user()
    data, sock = workdir / "data", workdir / "sock"
    sock.mkdir()
    if ids:
        os.chown(workdir, *ids)
        os.chown(sock, *ids)
    r = subprocess.run([str(PG_BIN / "initdb"), "-D", str(data), "-U", "postgres", "-A", "trust",
                        "--no-sync", "-E", "UTF8"], capture_output=True, text=True, timeout=120,
                       cwd=str(workdir), **as_user(ids))
    assert r.returncode == 0, f"initdb failed:\n{r.stdout}\n{r.stderr}"
    port = free_port()
    log = open(workdir / "postgres.log", "wb")
    proc = subprocess.Popen([str(PG_BIN / "postgres"), "-D", str(data), "-p", str(port),
                             "-h", "127.0.0.1", "-k", str(sock), "-c", "fsync=off",
                             "-c", "max_connections=50"],
                            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                            cwd=str(workdir), preexec_fn=die_with_parent, **as_user(ids))
    try:
        deadline = time.monotonic() + 30
        while True:
            r = subprocess.run([str(PG_BIN / "pg_isready"), "-h", "127.0.0.1", "-p", str(port)],
                               capture_output=True, timeout=10)
            if r.returncode == 0:
                break
            assert proc.poll() is None, \
                f"postgres exited: {(workdir / 'postgres.log').read_text()}"
            assert time.monotonic() < deadline, "postgres not ready after 30s"
            time.sleep(0.2)
        yield port
    finally:
        stop_process(proc, signal.SIGINT, timeout=20)  # SIGINT = fast shutdown
        log.close()


def psql(port, sql, timeout=60):
    env = dict(os.environ, PGCONNECT_TIMEOUT="5", PGOPTIONS="-c statement_timeout=30000")
    return subprocess.run([PSQL, "-h", "127.0.0.1", "-p", str(port), "-U", "postgres",
                           "-d", "postgres", "-X", "-A", "-t", "-v", "ON_ERROR_STOP=1",
                           "-c", sql], capture_output=True, text=True, env=env,
                          timeout=timeout, stdin=subprocess.DEVNULL)


@pytest.mark.timeout(180)
def test_psql_through_strata(strata, postgres):
    port = free_port()
    s = strata(simple_config(port, [("pg1", f"127.0.0.1:{postgres}")]), listen_ports=[port])

    r = psql(port, "CREATE TABLE t (id int PRIMARY KEY, v text)")
    assert r.returncode == 0, r.stderr
    r = psql(port, "INSERT INTO t SELECT g, md5(g::text) FROM generate_series(1, 50000) g")
    assert r.returncode == 0 and "INSERT 0 50000" in r.stdout, (r.stdout, r.stderr)
    r = psql(port, "SELECT count(*), sum(id) FROM t")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "50000|1250025000", r.stdout

    # A large result set (about 2.5 MB) streamed back through the proxy.
    r = psql(port, "SELECT id, v FROM t ORDER BY id")
    assert r.returncode == 0, r.stderr
    rows = r.stdout.splitlines()
    assert len(rows) == 50000 and rows[0].startswith("1|") and rows[-1].startswith("50000|")

    # Several sessions at once.
    procs = [subprocess.Popen([PSQL, "-h", "127.0.0.1", "-p", str(port), "-U", "postgres",
                               "-X", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-c",
                               f"SELECT pg_sleep(0.3), {i} * 2"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              env=dict(os.environ, PGCONNECT_TIMEOUT="5"))
             for i in range(8)]
    try:
        outs = [p.communicate(timeout=60) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    for i, (p, (out, err)) in enumerate(zip(procs, outs)):
        assert p.returncode == 0, err
        assert out.strip() == f"|{i * 2}", out

    logs = s.wait_conn_logs(12)
    assert all(e["server"] == "pg1" for e in logs), logs
    assert all(e["end"] in ("client_close", "server_close") for e in logs), logs
