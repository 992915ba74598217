"""Shared fixtures for Strata's end-to-end tests.

Every test starts the real binary ($STRATA_BIN) with an inline YAML config written to a
temporary directory, in front of backends the test starts itself, and talks to it over
loopback on ports picked at run time. Everything a test starts is stopped by PID in the
fixture teardown, also when the test fails.

Fixtures and helpers:
  strata         factory: strata(config_text, ...) -> a running Strata (see class Strata)
  strata_bin     absolute path of the binary; tools_dir: $STRATA_TOOLS (bench/*.c builds)
  backends       factory for in-process servers: backends.echo(greeting=...),
                 backends.threaded(handler), all stopped at teardown
  free_port()    a free TCP port on loopback
"""

import errno
import http.client
import os
import re
import resource
import selectors
import signal
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
LOOPBACK = "127.0.0.1"


# --------------------------------------------------------------------------- helpers

def free_port(host=LOOPBACK, family=socket.AF_INET):
    """A port that was free a moment ago on `host` (bound with port 0, then released)."""
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def free_ports(n, host=LOOPBACK):
    """n distinct ports that were free a moment ago (two free_port() calls in a row can
    return the same one), in ascending order."""
    ports = set()
    for _ in range(100 * n):
        ports.add(free_port(host))
        if len(ports) == n:
            return sorted(ports)
    raise AssertionError(f"no {n} distinct free ports")


def port_accepts(port, host=LOOPBACK, timeout=0.5):
    """True if a TCP connect to host:port succeeds now."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        with socket.socket(family, socket.SOCK_STREAM) as s:
            s.settimeout(timeout)
            s.connect((host, port))
            return True
    except OSError:
        return False


def port_listening(port):
    """True if some socket on this machine is in LISTEN state on TCP `port` (read from
    /proc/net/tcp{,6}: no connection is made, so proxies count no probe connection)."""
    for path in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(path) as f:
                next(f)
                for line in f:
                    parts = line.split()
                    if parts[3] == "0A" and int(parts[1].rsplit(":", 1)[1], 16) == port:
                        return True
        except FileNotFoundError:
            continue
    return False


def wait_count(items, n, timeout=5.0):
    """Waits until len(items) >= n (a list another thread appends to), `timeout` seconds
    at most; returns whether it got there."""
    deadline = time.monotonic() + timeout
    while len(items) < n and time.monotonic() < deadline:
        time.sleep(0.02)
    return len(items) >= n


def wait_for(predicate, timeout, interval=0.05, what="condition"):
    """Polls predicate() until it returns a truthy value or `timeout` seconds pass.
    Returns the value; raises AssertionError naming `what` on timeout."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


class ResetConnection:
    """Stands for a connection that Strata reset as soon as it was accepted (how it refuses
    connections: SO_LINGER 0, no TIME_WAIT). A client connecting with a timeout can see the
    reset already in connect(); every later use raises ConnectionResetError, as a real
    reset socket would, so tests that expect a working connection still fail."""

    def __init__(self, sockname):
        self.sockname = sockname

    def _reset(self, *args, **kwargs):
        raise ConnectionResetError(104, "Connection reset by peer (at connect)")

    sendall = send = recv = shutdown = _reset

    def settimeout(self, timeout):
        pass

    def getsockname(self):
        return self.sockname

    def close(self):
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def _connect(port, host, source, timeout):
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    s = socket.socket(family, socket.SOCK_STREAM)
    s.settimeout(timeout)
    try:
        if source is not None:
            s.bind((source, 0))
        s.connect((host, port))
    except ConnectionResetError:
        name = s.getsockname()
        s.close()
        return ResetConnection(name)
    except BaseException:
        s.close()
        raise
    return s


def connect(port, host=LOOPBACK, timeout=5.0):
    return _connect(port, host, None, timeout)


def recv_exact(sock, n):
    """Reads exactly n bytes or raises (EOF -> ConnectionError, stall -> socket.timeout)."""
    chunks, got = [], 0
    while got < n:
        b = sock.recv(min(n - got, 1 << 20))
        if not b:
            raise ConnectionError(f"EOF after {got} of {n} bytes")
        chunks.append(b)
        got += len(b)
    return b"".join(chunks)


def recv_line(sock, limit=4096):
    """Reads up to and including the first b'\\n' (one byte at a time; for short greetings)."""
    buf = bytearray()
    while len(buf) < limit:
        b = sock.recv(1)
        if not b:
            raise ConnectionError(f"EOF before newline, got {bytes(buf)!r}")
        buf += b
        if b == b"\n":
            return bytes(buf)
    raise AssertionError(f"no newline within {limit} bytes: {bytes(buf[:80])!r}")


def recv_until_eof(sock, limit=1 << 30):
    chunks, got = [], 0
    while True:
        b = sock.recv(1 << 20)
        if not b:
            return b"".join(chunks)
        chunks.append(b)
        got += len(b)
        if got > limit:
            raise AssertionError(f"more than {limit} bytes before EOF")


def closed_by_peer(sock, timeout):
    """True if the peer closes (EOF or reset) within `timeout` seconds without sending data."""
    sock.settimeout(timeout)
    try:
        data = sock.recv(1)
    except (ConnectionResetError, BrokenPipeError):
        return True
    except socket.timeout:
        return False
    return data == b""


def raise_nofile(want):
    """Raises this process's RLIMIT_NOFILE soft limit towards `want`; returns the new value."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = want if hard == resource.RLIM_INFINITY else min(want, hard)
    if soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def have_ipv6_loopback():
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


CONN_RE = re.compile(r"\bconn (listener=\S+.*)$")


def parse_kv(text):
    return dict(kv.split("=", 1) for kv in text.split() if "=" in kv)


def parse_prometheus(text):
    """Prometheus text format -> {(name, ((label, value), ...sorted)): float}."""
    out = {}
    line_re = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)')
    label_re = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = line_re.match(line)
        if not m:
            continue
        labels = tuple(sorted(label_re.findall(m.group(2) or "")))
        out[(m.group(1), labels)] = float(m.group(3))
    return out


class Metrics(dict):
    """Parsed /metrics; get(name, **labels) returns the value or None."""

    def get(self, name, **labels):  # noqa: A003 - dict.get shadowed on purpose
        key = (name, tuple(sorted((k, str(v)) for k, v in labels.items())))
        return dict.get(self, key)

    def names(self):
        return {k[0] for k in self}


def http_get(port, path, host=LOOPBACK, timeout=5.0):
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        return resp.status, resp.read().decode("utf-8", "replace")
    finally:
        conn.close()


# --------------------------------------------------------------------------- Strata

def _binary():
    path = os.environ.get("STRATA_BIN") or str(REPO / "build" / "strata")
    return os.path.abspath(path)


@pytest.fixture(scope="session")
def strata_bin():
    path = _binary()
    if not os.access(path, os.X_OK):
        pytest.fail(f"Strata binary not found or not executable: {path} "
                    "(set STRATA_BIN or run `make` first)", pytrace=False)
    return path


@pytest.fixture(scope="session")
def tools_dir():
    return os.path.abspath(os.environ.get("STRATA_TOOLS") or str(REPO / "build" / "bench"))


_libc = None


def die_with_parent():
    """preexec_fn: the child gets SIGKILL if the test process dies (PR_SET_PDEATHSIG), so
    nothing outlives a killed test run."""
    global _libc
    if _libc is None:
        return
    _libc.prctl(1, signal.SIGKILL, 0, 0, 0)  # 1 = PR_SET_PDEATHSIG


try:
    import ctypes
    _libc = ctypes.CDLL(None, use_errno=True)
except OSError:
    _libc = None


def stop_process(proc, sig=signal.SIGTERM, timeout=10.0):
    """Sends `sig` to proc (by PID), waits up to `timeout`, SIGKILLs if still alive.
    Returns (exit code, whether it exited by itself in time)."""
    if proc.poll() is not None:
        return proc.returncode, True
    try:
        proc.send_signal(sig)
    except ProcessLookupError:
        pass
    try:
        return proc.wait(timeout=timeout), True
    except subprocess.TimeoutExpired:
        proc.kill()
        return proc.wait(timeout=10), False


class Strata:
    """One running `strata run FILE`. Logs (stderr) go to a file; read them with .log()."""

    def __init__(self, binary, workdir, config_text, name="strata.yaml", args=None, env=None):
        self.binary = binary
        self.workdir = Path(workdir)
        self.config_path = self.workdir / name
        self.config_path.write_text(config_text)
        self.stderr_path = self.workdir / (name + ".stderr")
        self.stdout_path = self.workdir / (name + ".stdout")
        self.args = args if args is not None else ["run", str(self.config_path)]
        self._err = open(self.stderr_path, "wb")
        self._out = open(self.stdout_path, "wb")
        self.proc = subprocess.Popen([binary] + self.args, stdout=self._out, stderr=self._err,
                                     stdin=subprocess.DEVNULL, cwd=str(self.workdir),
                                     env=env, preexec_fn=die_with_parent)
        self.pid = self.proc.pid
        self.exit_code = None

    # -- lifecycle
    def wait_listening(self, ports, host=LOOPBACK, timeout=10.0):
        """Waits until every port in `ports` accepts a connection; fails with the log if the
        process exits first or the time runs out."""
        deadline = time.monotonic() + timeout
        pending = list(ports)
        while pending:
            if self.proc.poll() is not None:
                raise AssertionError(f"strata exited with {self.proc.returncode} before "
                                     f"listening on {pending}; log:\n{self.log()}")
            if port_listening(pending[0]):
                pending.pop(0)
                continue
            if time.monotonic() > deadline:
                raise AssertionError(f"strata not listening on {pending} after {timeout}s; "
                                     f"log:\n{self.log()}")
            time.sleep(0.05)
        return self

    def alive(self):
        return self.proc.poll() is None

    def send_signal(self, sig):
        self.proc.send_signal(sig)

    def stop(self, sig=signal.SIGTERM, timeout=15.0):
        """Stops it (signal, wait, SIGKILL); returns (exit code, exited in time)."""
        rc, clean = stop_process(self.proc, sig, timeout)
        self.exit_code = rc
        self._err.close()
        self._out.close()
        return rc, clean

    # -- observation
    def log(self):
        try:
            return self.stderr_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def stdout(self):
        try:
            return self.stdout_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def conn_logs(self, listener=None):
        """Parsed `conn ...` log lines (dicts of key=value), in order."""
        out = []
        for line in self.log().splitlines():
            m = CONN_RE.search(line)
            if m:
                kv = parse_kv(m.group(1))
                if listener is None or kv.get("listener") == listener:
                    out.append(kv)
        return out

    def wait_log(self, pattern, timeout=10.0, count=1):
        """Waits until `pattern` (regex) matches at least `count` log lines; returns them."""
        rx = re.compile(pattern)

        def found():
            hits = [ln for ln in self.log().splitlines() if rx.search(ln)]
            return hits if len(hits) >= count else None

        try:
            return wait_for(found, timeout, what=f"log line /{pattern}/ x{count}")
        except AssertionError as e:
            raise AssertionError(f"{e}; log:\n{self.log()[-6000:]}") from None

    def wait_conn_logs(self, n, timeout=10.0, listener=None):
        try:
            return wait_for(lambda: (lambda c: c if len(c) >= n else None)(
                self.conn_logs(listener)), timeout, what=f"{n} conn log lines")
        except AssertionError as e:
            raise AssertionError(f"{e}; log:\n{self.log()[-6000:]}") from None

    def metrics(self, admin_port, timeout=5.0):
        status, body = http_get(admin_port, "/metrics", timeout=timeout)
        assert status == 200, f"/metrics answered {status}: {body[:500]}"
        m = Metrics(parse_prometheus(body))
        m.text = body
        return m


@pytest.fixture
def strata(strata_bin, tmp_path):
    """Factory: strata(config_text, listen_ports=[...], admin_port=None) starts
    `strata run` and waits until the ports accept. All instances are stopped at teardown."""
    started = []

    def start(config_text, listen_ports=(), admin_port=None, host=LOOPBACK, timeout=10.0,
              name=None, wrapper=None):
        """wrapper: a command that execs strata in place (e.g. ["prlimit", "--nofile=64"])."""
        name = name or f"strata{len(started)}.yaml"
        if wrapper:
            s = Strata(wrapper[0], tmp_path, config_text, name=name,
                       args=list(wrapper[1:]) + [strata_bin, "run", str(tmp_path / name)])
        else:
            s = Strata(strata_bin, tmp_path, config_text, name=name)
        started.append(s)
        ports = list(listen_ports) + ([admin_port] if admin_port else [])
        s.wait_listening(ports, host=host, timeout=timeout)
        return s

    yield start
    problems = []
    for s in started:
        if s.alive():
            rc, clean = s.stop(signal.SIGTERM, timeout=10)
            if rc != 0 or not clean:
                problems.append(f"{s.config_path.name}: SIGTERM gave exit code {rc}"
                                f"{'' if clean else ' (killed: did not exit in time)'}")
        else:
            s.stop()
        problems += sanitizer_reports(s)
    if problems:
        pytest.fail("strata did not stop cleanly:\n" + "\n".join(problems), pytrace=False)


SANITIZER_MARKERS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:",
                     "WARNING: ThreadSanitizer")


def sanitizer_reports(s):
    """Sanitizer reports in a Strata's log (the SAN= builds print them to stderr)."""
    log = s.log()
    return [f"{s.config_path.name}: {m} in log:\n{log[-4000:]}"
            for m in SANITIZER_MARKERS if m in log]


def run_strata(strata_bin, *args, timeout=20.0, cwd=None):
    """Runs the binary to completion (check, --version, ...); returns CompletedProcess."""
    return subprocess.run([strata_bin] + list(args), stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, timeout=timeout, cwd=cwd)


# --------------------------------------------------------------------------- backends

class EchoServer:
    """Single-threaded selector echo server on loopback; handles thousands of connections.

    greeting: bytes sent to every new connection before echoing (e.g. b"hello 2\\n").
    .accepted counts connections; stop() closes the listener and every connection;
    start() (again) re-binds the same port."""

    def __init__(self, port=0, greeting=None, host=LOOPBACK):
        self.host = host
        self.port = port
        self.greeting = greeting
        self.accepted = 0
        self._thread = None
        self._stop = threading.Event()

    def start(self):
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        lsock = socket.socket(family, socket.SOCK_STREAM)
        lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        deadline = time.monotonic() + 5
        while True:  # re-binding the same port right after a close may need a moment
            try:
                lsock.bind((self.host, self.port))
                break
            except OSError as e:
                if e.errno != errno.EADDRINUSE or time.monotonic() > deadline:
                    lsock.close()
                    raise
                time.sleep(0.05)
        lsock.listen(4096)
        lsock.setblocking(False)
        self.port = lsock.getsockname()[1]
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, args=(lsock,), daemon=True)
        self._thread.start()
        return self

    def _run(self, lsock):
        sel = selectors.DefaultSelector()
        sel.register(lsock, selectors.EVENT_READ, None)
        pending = {}  # sock -> bytearray waiting to be written
        try:
            while not self._stop.is_set():
                for key, _ in sel.select(timeout=0.05):
                    if key.data is None:
                        self._accept(lsock, sel, pending)
                    else:
                        self._service(key.fileobj, sel, pending)
        finally:
            for key in list(sel.get_map().values()):
                key.fileobj.close()
            sel.close()

    def _accept(self, lsock, sel, pending):
        for _ in range(256):
            try:
                c, _ = lsock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                return
            self.accepted += 1
            c.setblocking(False)
            pending[c] = bytearray(self.greeting or b"")
            sel.register(c, selectors.EVENT_READ | selectors.EVENT_WRITE, "c")

    def _service(self, c, sel, pending):
        buf = pending[c]
        try:
            if buf:
                n = c.send(buf)
                del buf[:n]
            if len(buf) < (1 << 20):
                data = c.recv(65536)
                if not data:
                    raise ConnectionError
                buf += data
        except (BlockingIOError, InterruptedError):
            pass
        except OSError:
            sel.unregister(c)
            c.close()
            del pending[c]
            return
        sel.modify(c, selectors.EVENT_READ | (selectors.EVENT_WRITE if buf else 0), "c")

    def stop(self):
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=5)
            self._thread = None

    @property
    def address(self):
        return f"{self.host}:{self.port}" if ":" not in self.host else f"[{self.host}]:{self.port}"


class ThreadedServer:
    """Loopback server that runs handler(sock) in a thread per connection.
    Exceptions in handlers are collected in .errors (checked by tests that care)."""

    def __init__(self, handler, port=0, host=LOOPBACK):
        self.handler = handler
        self.host = host
        self.port = port
        self.errors = []
        self.accepted = 0
        self._stop = threading.Event()
        self._threads = []
        self._conns = []
        self._lock = threading.Lock()

    def start(self):
        self.lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.lsock.bind((self.host, self.port))
        self.lsock.listen(512)
        self.lsock.settimeout(0.1)
        self.port = self.lsock.getsockname()[1]
        self._acceptor = threading.Thread(target=self._accept_loop, daemon=True)
        self._acceptor.start()
        return self

    def _accept_loop(self):
        while not self._stop.is_set():
            try:
                c, _ = self.lsock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            c.settimeout(60)
            with self._lock:
                self.accepted += 1
                self._conns.append(c)
            t = threading.Thread(target=self._serve, args=(c,), daemon=True)
            t.start()
            self._threads.append(t)

    def _serve(self, c):
        try:
            self.handler(c)
        except Exception as e:  # reported through .errors
            self.errors.append(repr(e))
        finally:
            try:
                c.close()
            except OSError:
                pass

    def stop(self):
        self._stop.set()
        try:
            self.lsock.close()
        except OSError:
            pass
        self._acceptor.join(timeout=5)
        with self._lock:
            for c in self._conns:
                try:
                    c.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
        for t in self._threads:
            t.join(timeout=5)

    @property
    def address(self):
        return f"{self.host}:{self.port}"


class Backends:
    def __init__(self):
        self.servers = []

    def echo(self, greeting=None, port=0, host=LOOPBACK):
        s = EchoServer(port=port, greeting=greeting, host=host).start()
        self.servers.append(s)
        return s

    def threaded(self, handler, port=0):
        s = ThreadedServer(handler, port=port).start()
        self.servers.append(s)
        return s

    def stop_all(self):
        for s in self.servers:
            s.stop()


@pytest.fixture
def backends():
    b = Backends()
    try:
        yield b
    finally:
        b.stop_all()


@pytest.fixture
def origin():
    """Factory: origin(name, respond=None) starts an HTTP origin (http_backend.HttpBackend)
    that records every request it receives; all are stopped at teardown."""
    from http_backend import HttpBackend  # it imports this module: import late
    started = []

    def start(name="a", respond=None):
        b = HttpBackend(name=name, respond=respond).start()
        started.append(b)
        return b

    yield start
    for b in started:
        b.stop()


@pytest.fixture
def workdir():
    """A temporary directory removed at teardown (for processes that must not use tmp_path,
    e.g. PostgreSQL, which needs a directory another user can own)."""
    d = tempfile.mkdtemp(prefix="strata-e2e-")
    try:
        yield Path(d)
    finally:
        subprocess.run(["rm", "-rf", "--one-file-system", d], check=False)




# --------------------------------------------------------------------------- configs

def simple_config(listen_port, servers, admin_port=None, balance="round_robin", workers=None,
                  listener_extra="", backend_extra="", top_extra="", drain="2s",
                  listen_host=LOOPBACK):
    """YAML for one tcp listener `web` in front of backend `app`.

    servers: list of (name, "host:port") or plain "host:port" strings.
    listener_extra / backend_extra / top_extra: YAML lines added at the right indentation
    (pass them unindented, one key per line)."""
    def indent(text, n):
        if not text:
            return ""
        return "".join(" " * n + ln + "\n" for ln in text.strip("\n").splitlines())

    if ":" in listen_host:
        listen = f"[{listen_host}]:{listen_port}"
    else:
        listen = f"{listen_host}:{listen_port}"
    text = ""
    if workers is not None:
        text += f"workers: {workers}\n"
    text += f"timeouts: {{ connect: 1s, idle: 1m, drain: {drain} }}\n"
    if admin_port:
        text += f"admin: {{ listen: {LOOPBACK}:{admin_port} }}\n"
    text += indent(top_extra, 0)
    text += "listeners:\n"
    text += "  - name: web\n"
    text += f'    listen: "{listen}"\n'
    text += "    mode: tcp\n"
    text += "    backend: app\n"
    text += indent(listener_extra, 4)
    text += "backends:\n"
    text += "  app:\n"
    text += f"    balance: {balance}\n"
    text += indent(backend_extra, 4)
    text += "    servers:\n"
    for s in servers:
        if isinstance(s, tuple):
            text += f'      - {{ name: {s[0]}, address: "{s[1]}" }}\n'
        else:
            text += f'      - "{s}"\n'
    return text


# --------------------------------------------------------------------------- L4 admission helpers

def connect_from(port, source, host=LOOPBACK, timeout=5.0):
    """connect() with the client socket bound to `source` first (any 127.0.0.0/8 address
    is local on Linux, so 127.0.0.2 makes a second client address without setup)."""
    return _connect(port, host, source, timeout)


def echo_or_closed(sock, payload=b"ping", timeout=2.0):
    """Sends payload on a connection to an echo service: "ok" when it comes back, "closed"
    when the peer closes or resets instead (a refused connection), raises otherwise."""
    sock.settimeout(timeout)
    try:
        sock.sendall(payload)
        got = recv_exact(sock, len(payload))
    except (ConnectionError, BrokenPipeError):
        return "closed"
    assert got == payload, f"echo answered {got!r} to {payload!r}"
    return "ok"


def proxy_v1(src, sport, dst, dport):
    """A PROXY protocol v1 header (TCP4 or TCP6, from the address family of `src`)."""
    proto = "TCP6" if ":" in src else "TCP4"
    return f"PROXY {proto} {src} {dst} {sport} {dport}\r\n".encode()


PROXY_V2_SIG = b"\r\n\r\n\x00\r\nQUIT\n"


def proxy_v2(src, sport, dst, dport, command=1, tlvs=b""):
    """A PROXY protocol v2 header: command 1 = PROXY (TCP over IPv4/IPv6 from `src`),
    0 = LOCAL; tlvs: raw TLV bytes appended after the addresses."""
    import struct
    if command == 0:
        body, fam = tlvs, 0x00
    elif ":" in src:
        body = (socket.inet_pton(socket.AF_INET6, src) + socket.inet_pton(socket.AF_INET6, dst)
                + struct.pack("!HH", sport, dport) + tlvs)
        fam = 0x21
    else:
        body = (socket.inet_pton(socket.AF_INET, src) + socket.inet_pton(socket.AF_INET, dst)
                + struct.pack("!HH", sport, dport) + tlvs)
        fam = 0x11
    return PROXY_V2_SIG + bytes([0x20 | command, fam]) + struct.pack("!H", len(body)) + body


# --------------------------------------------------------------------------- HTTP/2 and gRPC origins

@pytest.fixture(scope="session")
def h2_cert(tmp_path_factory):
    """(cert path, key path): a self-signed ECDSA certificate for localhost, 127.0.0.1, ::1."""
    from h2_backend import make_cert  # it imports this module: import late
    return make_cert(str(tmp_path_factory.mktemp("h2cert")))


def _tls_origins(request, cls):
    """A factory start(name="a", tls=False, **options) of `cls` servers (h2c or plain
    gRPC, or over TLS with the h2_cert certificate when tls=True, or a given one), and the
    list of those started, for the fixture to stop."""
    started = []

    def start(name="a", tls=False, **options):
        cert = request.getfixturevalue("h2_cert") if tls is True else (tls or None)
        b = cls(name=name, tls=cert, **options).start()
        started.append(b)
        return b

    return start, started


@pytest.fixture
def h2_origin(request):
    """Factory: h2_origin(name="a", tls=False, **options) starts an HTTP/2 origin
    (h2_backend.H2Backend: h2c, or h2 over TLS with the h2_cert certificate when tls=True);
    all are stopped at teardown."""
    from h2_backend import H2Backend
    start, started = _tls_origins(request, H2Backend)
    yield start
    for b in started:
        b.stop()


@pytest.fixture
def grpc_origin(request):
    """Factory: grpc_origin(name="a", tls=False) starts a gRPC server
    (grpc_backend.GrpcBackend, python3-grpcio); all are stopped at teardown."""
    from grpc_backend import GrpcBackend
    start, started = _tls_origins(request, GrpcBackend)
    yield start
    for b in started:
        b.stop()
