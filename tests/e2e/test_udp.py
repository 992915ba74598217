"""UDP listeners (`mode: udp`): real DNS servers (dnsmasq) behind Strata queried with dig
and a Python resolver loop, flow eviction under udp.max_flows, the idle timeout, a server
refusing (ICMP port unreachable) taken down by the passive check, the active UDP check,
60 KiB datagrams both ways, replies from the right address on a wildcard listener, IPv6,
TCP and UDP on one port, maglev stickiness, the ACL, drain and stop.

Every server is started by a fixture and stopped by PID; every wait and every socket has a
timeout; ports are picked at run time (free for both TCP and UDP: dnsmasq binds both).
"""

import collections
import hashlib
import os
import random
import re
import selectors
import shutil
import signal
import socket
import struct
import subprocess
import threading
import time

import pytest

from conftest import (LOOPBACK, die_with_parent, free_port, have_ipv6_loopback, parse_kv,
                      stop_process, wait_for)

DNSMASQ = shutil.which("dnsmasq") or "/usr/sbin/dnsmasq"
DIG = shutil.which("dig") or "/usr/bin/dig"
FLOW_RE = r"\bflow (listener=\S+.*)$"


# --------------------------------------------------------------------------- helpers

def free_udp_port(host=LOOPBACK):
    """A port free for both UDP and TCP on host a moment ago."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    for _ in range(50):
        port = free_port(host, family)
        try:
            with socket.socket(family, socket.SOCK_DGRAM) as u:
                u.bind((host, port))
            return port
        except OSError:
            continue
    raise AssertionError("no port free for both TCP and UDP")


def udp_bound(port):
    """True if some UDP socket on this machine is bound to `port` (/proc/net/udp{,6})."""
    for path in ("/proc/net/udp", "/proc/net/udp6"):
        try:
            with open(path) as f:
                next(f)
                for line in f:
                    if int(line.split()[1].rsplit(":", 1)[1], 16) == port:
                        return True
        except FileNotFoundError:
            continue
    return False


def start_udp(strata, cfg, ports, admin_port):
    """Starts Strata (waiting for the admin TCP port), then waits for its UDP ports."""
    s = strata(cfg, admin_port=admin_port)
    for p in ports:
        wait_for(lambda: udp_bound(p) or not s.alive(), 10, what=f"UDP port {p} bound")
        assert s.alive(), f"strata exited:\n{s.log()}"
    return s


def flow_logs(s, end=None):
    """Parsed `flow ...` log lines (dicts of key=value), in order, optionally of one end."""
    rx = re.compile(FLOW_RE)
    out = []
    for line in s.log().splitlines():
        m = rx.search(line)
        if m:
            kv = parse_kv(m.group(1))
            if end is None or kv.get("end") == end:
                out.append(kv)
    return out


def udp_socket(host=LOOPBACK, timeout=2.0):
    s = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(timeout)
    return s


def exchange(port, payload, host=LOOPBACK, timeout=2.0, sock=None):
    """Sends one datagram to host:port and returns the reply (None on timeout)."""
    own = sock is None
    s = sock or udp_socket(host, timeout)
    try:
        s.sendto(payload, (host, port))
        try:
            return s.recvfrom(1 << 17)[0]
        except socket.timeout:
            return None
    finally:
        if own:
            s.close()


def udp_config(port, servers, admin_port, balance="round_robin", workers=2, udp="",
               backend_extra="", drain="2s", listen=None, top_extra=""):
    """YAML for one udp listener `dns` in front of backend `dns`."""
    listen = listen or f"{LOOPBACK}:{port}"
    text = f"workers: {workers}\n"
    text += f"timeouts: {{ connect: 1s, idle: 1m, drain: {drain} }}\n"
    text += f"admin: {{ listen: {LOOPBACK}:{admin_port} }}\n" + top_extra
    text += "listeners:\n"
    text += f'  - name: dns\n    listen: "{listen}"\n    mode: udp\n    backend: dns\n'
    if udp:
        text += f"    udp: {{ {udp} }}\n"
    text += f"backends:\n  dns:\n    balance: {balance}\n"
    text += "".join(f"    {ln}\n" for ln in backend_extra.strip("\n").splitlines())
    text += "    servers:\n"
    for name, addr in servers:
        text += f'      - {{ name: {name}, address: "{addr}" }}\n'
    return text


# ---- DNS messages (just what the tests need: A queries and answers)

def dns_query(qid, name, qtype=1):
    hdr = struct.pack("!HHHHHH", qid, 0x0100, 1, 0, 0, 0)
    qname = b"".join(bytes([len(p)]) + p.encode() for p in name.split(".")) + b"\0"
    return hdr + qname + struct.pack("!HH", qtype, 1)


def _skip_name(b, off):
    while True:
        n = b[off]
        if n == 0:
            return off + 1
        if n & 0xC0 == 0xC0:
            return off + 2
        off += 1 + n


def dns_answer(resp):
    """(id, rcode, [A addresses]) of a DNS response."""
    qid, flags, qd, an, _, _ = struct.unpack("!HHHHHH", resp[:12])
    off = 12
    for _ in range(qd):
        off = _skip_name(resp, off) + 4
    ips = []
    for _ in range(an):
        off = _skip_name(resp, off)
        typ, _, _, rdlen = struct.unpack("!HHIH", resp[off:off + 10])
        off += 10
        if typ == 1:
            ips.append(socket.inet_ntoa(resp[off:off + 4]))
        off += rdlen
    return qid, flags & 0xF, ips


def resolve(port, name, timeout=2.0, sock=None):
    """The A addresses of `name` through 127.0.0.1:port, or None on timeout."""
    qid = random.randrange(65536)
    resp = exchange(port, dns_query(qid, name), timeout=timeout, sock=sock)
    if resp is None:
        return None
    rid, rcode, ips = dns_answer(resp)
    assert rid == qid and rcode == 0, (rid, qid, rcode)
    return ips


def resolve_each_new(port, name, n, new_socket, timeout=2.0):
    """n queries, each from its own client socket (a new flow each), made by the
    `new_socket` fixture."""
    return [resolve(port, name, timeout=timeout, sock=new_socket(timeout)) for _ in range(n)]


def dig(port, *args, timeout=10):
    r = subprocess.run([DIG, f"@{LOOPBACK}", "-p", str(port), "+time=2", "+tries=2"] + list(args),
                       capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)
    assert r.returncode == 0, f"dig failed ({r.returncode}): {r.stdout}{r.stderr}"
    return r.stdout.strip()


def metric(s, admin, name, **labels):
    return s.metrics(admin).get(name, **labels)


def settled(s, admin, dgrams_out, listener="dns", bytes_out=None):
    """/metrics once the listener has sent `dgrams_out` datagrams (and, if given, `bytes_out`
    bytes) to clients. A client may read its reply before the worker has added it up
    (counters are updated after the send), and /metrics reads each counter on its own, so
    one snapshot can hold a datagram's count without its bytes: wait for both."""
    def ready():
        m = s.metrics(admin)
        done = m.get("strata_listener_datagrams_out_total", listener=listener) == dgrams_out
        if bytes_out is not None:
            done = done and m.get("strata_listener_bytes_out_total", listener=listener) == bytes_out
        return m if done else None
    return wait_for(ready, 5, what=f"strata_listener_datagrams_out_total == {dgrams_out}"
                    + (f", bytes_out_total == {bytes_out}" if bytes_out is not None else ""))


# --------------------------------------------------------------------------- backends

class DnsServer:
    """One dnsmasq on 127.0.0.1:port answering from a small local zone:
    example.test (and every name under it) -> 10.1.2.3, who.test -> 10.0.0.<n>."""

    def __init__(self, workdir, n, port):
        self.n, self.port = n, port
        self.address = f"{LOOPBACK}:{port}"
        self.logpath = workdir / f"dnsmasq{n}-{port}.log"
        self.proc = None

    def start(self):
        """Starts dnsmasq and waits until it answers. A restart on the same port can find the
        port taken for a moment (another test's connection got it as its ephemeral port):
        then it tries again, up to 20 times within the same 10 s."""
        args = [DNSMASQ, "--no-daemon", "--conf-file=/dev/null", "--no-resolv", "--no-hosts",
                f"--port={self.port}", f"--listen-address={LOOPBACK}", "--bind-interfaces",
                "--address=/example.test/10.1.2.3", f"--host-record=who.test,10.0.0.{self.n}",
                "--cache-size=1000", "--log-facility=-"]
        deadline = time.monotonic() + 10
        for attempt in range(20):
            seen = self.logpath.stat().st_size if self.logpath.exists() else 0
            self._log = open(self.logpath, "ab")
            self.proc = subprocess.Popen(args, stdout=self._log, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, preexec_fn=die_with_parent)
            while resolve(self.port, "who.test", timeout=0.2) != [f"10.0.0.{self.n}"]:
                assert time.monotonic() < deadline, "dnsmasq not answering after 10s"
                if self.proc.poll() is not None:
                    break
            else:
                return self
            self.proc = None
            self._log.close()
            text = self.logpath.read_text()
            assert "Address already in use" in text[seen:] and attempt < 19, \
                f"dnsmasq exited:\n{text}"
            time.sleep(0.25)

    def stop(self):
        if self.proc:
            stop_process(self.proc, signal.SIGTERM, timeout=5)
            self.proc = None
            self._log.close()


@pytest.fixture
def new_socket():
    """Factory: new_socket(timeout) -> a client socket on a fresh port, a new flow. Every
    socket stays open until the test ends, so that no later socket reuses the port of a flow
    that is still alive (a reused port would ride the old flow to its old server)."""
    socks = []

    def make(timeout=2.0):
        socks.append(udp_socket(LOOPBACK, timeout))
        return socks[-1]

    yield make
    for sock in socks:
        sock.close()


@pytest.fixture
def dns_servers(tmp_path):
    """Factory: dns_servers(count) -> [DnsServer] started on free ports; all stopped at
    teardown."""
    if not os.access(DNSMASQ, os.X_OK) or not os.access(DIG, os.X_OK):
        pytest.skip("dnsmasq or dig missing (scripts/install-deps.sh test installs them)")
    started = []

    def start(count):
        out = []
        for _ in range(count):
            srv = DnsServer(tmp_path, len(started) + 1, free_udp_port())
            started.append(srv)
            out.append(srv.start())
        return out

    try:
        yield start
    finally:
        for srv in started:
            srv.stop()


class UdpEcho:
    """A UDP echo server in a thread: every datagram is sent back unchanged. Records the
    sha256 and size of each datagram it got (.received)."""

    def __init__(self, host=LOOPBACK):
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.sock = socket.socket(family, socket.SOCK_DGRAM)
        self.sock.bind((host, 0))
        self.sock.settimeout(0.1)
        self.port = self.sock.getsockname()[1]
        self.address = f"[{host}]:{self.port}" if ":" in host else f"{host}:{self.port}"
        self.received = []
        self.peers = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self):
        while not self._stop.is_set():
            try:
                data, peer = self.sock.recvfrom(1 << 17)
            except socket.timeout:
                continue
            except OSError:
                return
            self.received.append((len(data), hashlib.sha256(data).hexdigest()))
            self.peers.add(peer)
            try:
                self.sock.sendto(data, peer)
            except OSError:
                pass

    def stop(self):
        self._stop.set()
        self._thread.join(timeout=5)
        self.sock.close()


@pytest.fixture
def udp_echo():
    started = []

    def start(host=LOOPBACK):
        e = UdpEcho(host)
        started.append(e)
        return e

    try:
        yield start
    finally:
        for e in started:
            e.stop()


# --------------------------------------------------------------------------- DNS

@pytest.mark.timeout(90)
def test_dig_through_strata_round_robin(strata, dns_servers, new_socket):
    """dig answers through Strata; new source ports are new flows, spread over 3 servers."""
    servers = dns_servers(3)
    port, admin = free_udp_port(), free_port()
    cfg = udp_config(port, [(f"s{d.n}", d.address) for d in servers], admin)
    s = start_udp(strata, cfg, [port], admin)

    counts = collections.Counter()
    for ips in resolve_each_new(port, "who.test", 30, new_socket):
        assert ips is not None, "a query was lost"
        counts.update(ips)
    assert counts == {"10.0.0.1": 10, "10.0.0.2": 10, "10.0.0.3": 10}, counts
    assert dig(port, "example.test", "+short") == "10.1.2.3"  # after: dig's ports are not kept
    assert dig(port, "www.example.test", "+short") == "10.1.2.3"
    m = settled(s, admin, 32)
    assert m.get("strata_listener_flows_created_total", listener="dns") == 32
    assert m.get("strata_listener_datagrams_in_total", listener="dns") == 32
    assert m.get("strata_listener_datagrams_out_total", listener="dns") == 32
    assert m.get("strata_listener_datagrams_dropped_total", listener="dns") == 0
    for d in servers:
        assert m.get("strata_server_flows_created_total", backend="dns", server=f"s{d.n}") >= 10
        assert m.get("strata_server_bytes_out_total", backend="dns", server=f"s{d.n}") > 0


@pytest.mark.timeout(120)
def test_ten_thousand_queries_none_lost(strata, dns_servers):
    """200 client sockets x 50 queries each, 200 in flight at a time: every query answered,
    each answer matching its query; every server got some."""
    servers = dns_servers(3)
    port, admin = free_udp_port(), free_port()
    cfg = udp_config(port, [(f"s{d.n}", d.address) for d in servers], admin)
    s = start_udp(strata, cfg, [port], admin)

    socks = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(200)]
    sel = selectors.DefaultSelector()
    lost = answered = 0
    try:
        for k in socks:
            k.setblocking(False)
            k.connect((LOOPBACK, port))
            sel.register(k, selectors.EVENT_READ)
        for rnd in range(50):
            pending = {}
            for i, k in enumerate(socks):
                qid = (rnd * 200 + i) & 0xFFFF
                name = f"q{rnd}-{i}.example.test"
                k.send(dns_query(qid, name))
                pending[k] = qid
            deadline = time.monotonic() + 5
            while pending and time.monotonic() < deadline:
                for key, _ in sel.select(timeout=0.2):
                    try:
                        resp = key.fileobj.recv(4096)
                    except BlockingIOError:
                        continue
                    rid, rcode, ips = dns_answer(resp)
                    if pending.get(key.fileobj) == rid and rcode == 0 and ips == ["10.1.2.3"]:
                        del pending[key.fileobj]
                        answered += 1
            lost += len(pending)
    finally:
        sel.close()
        for k in socks:
            k.close()
    assert (answered, lost) == (10000, 0)
    m = settled(s, admin, 10000)
    assert m.get("strata_listener_flows_created_total", listener="dns") == 200
    assert m.get("strata_listener_datagrams_in_total", listener="dns") == 10000
    assert m.get("strata_listener_datagrams_out_total", listener="dns") == 10000
    assert m.get("strata_listener_datagrams_dropped_total", listener="dns") == 0
    per_server = [m.get("strata_server_datagrams_out_total", backend="dns", server=f"s{d.n}")
                  for d in servers]
    assert all(n > 0 for n in per_server) and sum(per_server) == 10000, per_server


@pytest.mark.timeout(60)
def test_dns_over_tcp_and_udp_on_one_port(strata, dns_servers):
    """A tcp and a udp listener share 127.0.0.1:P, as DNS does."""
    (srv,) = dns_servers(1)
    port, admin = free_udp_port(), free_port()
    cfg = udp_config(port, [("s1", srv.address)], admin)
    cfg = cfg.replace("backends:\n", f'  - {{ name: dns-tcp, listen: "{LOOPBACK}:{port}", '
                                     "mode: tcp, backend: dns }\nbackends:\n", 1)
    s = start_udp(strata, cfg, [port], admin)  # the admin port opens after every listener
    assert dig(port, "example.test", "+short") == "10.1.2.3"
    assert dig(port, "example.test", "+short", "+tcp") == "10.1.2.3"
    m = settled(s, admin, 1)
    assert m.get("strata_listener_flows_created_total", listener="dns") == 1
    assert m.get("strata_listener_connections_total", listener="dns-tcp") == 1


@pytest.mark.timeout(60)
def test_active_udp_health_check(strata, dns_servers, new_socket):
    """health_check type udp: a DNS query as payload; a stopped server goes DOWN, comes
    back UP when restarted, and gets no traffic meanwhile."""
    servers = dns_servers(2)
    port, admin = free_udp_port(), free_port()
    # id 0x1234, RD, one question: the root zone, type NS, class IN
    hc = ('health_check: { type: udp, payload_hex: "1234 0100 0001 0000 0000 0000 00 0002 0001",'
          " interval: 200ms, timeout: 300ms, rise: 2, fall: 2 }")
    cfg = udp_config(port, [(f"s{d.n}", d.address) for d in servers], admin, backend_extra=hc)
    s = start_udp(strata, cfg, [port], admin)

    def up(name):
        return metric(s, admin, "strata_server_up", backend="dns", server=name)

    time.sleep(1.0)  # several checks: both answer, so both stay up
    assert up("s1") == 1 and up("s2") == 1
    assert "is DOWN" not in s.log()
    servers[1].stop()
    s.wait_log(r"server dns/s2 is DOWN: 2 consecutive failed UDP checks \(connection refused\)",
               timeout=5)
    assert set(tuple(ips) for ips in resolve_each_new(port, "who.test", 10, new_socket)) == {("10.0.0.1",)}
    servers[1].start()
    s.wait_log(r"server dns/s2 is UP: 2 consecutive successful UDP checks", timeout=5)
    seen = collections.Counter(ips[0] for ips in resolve_each_new(port, "who.test", 10, new_socket))
    assert seen == {"10.0.0.1": 5, "10.0.0.2": 5}, seen


@pytest.mark.timeout(60)
def test_refusing_server_is_taken_down_passively(strata, dns_servers, new_socket):
    """A server with nothing on its port answers with ICMP port unreachable: the flow ends
    with end=server_refused, the passive check (fall 3) takes it DOWN, and the other
    servers answer everything after that."""
    servers = dns_servers(2)
    dead = free_udp_port()
    port, admin = free_udp_port(), free_port()
    srvs = [("s1", servers[0].address), ("dead", f"{LOOPBACK}:{dead}"), ("s2", servers[1].address)]
    cfg = udp_config(port, srvs, admin, workers=1, backend_extra="passive: { fall: 3, cooldown: 1m }")
    s = start_udp(strata, cfg, [port], admin)

    lost = 0
    for _ in range(30):  # every third new flow goes to `dead` until it is down
        if resolve(port, "who.test", timeout=0.5, sock=new_socket(0.5)) is None:
            lost += 1
        if "server dns/dead is DOWN" in s.log():
            break
    s.wait_log(r"server dns/dead is DOWN: 3 consecutive connect failures \(passive\)", timeout=5)
    assert lost == 3, lost
    refused = flow_logs(s, end="server_refused")
    assert len(refused) == 3 and all(f["server"] == "dead" for f in refused), refused
    assert refused[0]["dgrams_in"] == "1" and refused[0]["dgrams_out"] == "0"
    m = s.metrics(admin)
    assert m.get("strata_server_up", backend="dns", server="dead") == 0
    assert m.get("strata_server_connect_errors_total", backend="dns", server="dead") == 3
    answers = collections.Counter(tuple(ips) for ips in resolve_each_new(port, "who.test", 20, new_socket))
    assert answers == {("10.0.0.1",): 10, ("10.0.0.2",): 10}, answers


# --------------------------------------------------------------------------- flows

@pytest.mark.timeout(60)
def test_flow_eviction_under_the_bound(strata, udp_echo):
    """max_flows 4 on one worker, 10 clients: the 6 oldest flows are evicted (counted and
    logged), the 4 newest keep working on their flows, and an evicted client gets a new one."""
    echo = udp_echo()
    port, admin = free_udp_port(), free_port()
    cfg = udp_config(port, [("e", echo.address)], admin, workers=1, udp="max_flows: 4")
    s = start_udp(strata, cfg, [port], admin)

    clients = [udp_socket() for _ in range(10)]
    try:
        for i, c in enumerate(clients):
            assert exchange(port, b"hello %d" % i, sock=c) == b"hello %d" % i
        m = settled(s, admin, 10)
        assert m.get("strata_listener_flows_created_total", listener="dns") == 10
        assert m.get("strata_listener_flows_evicted_total", listener="dns") == 6
        assert m.get("strata_server_flows_evicted_total", backend="dns", server="e") == 6
        assert m.get("strata_listener_flows_active", listener="dns") == 4
        evicted = flow_logs(s, end="evicted")
        assert len(evicted) == 6
        ports = [str(c.getsockname()[1]) for c in clients]
        assert [f["client"].rsplit(":", 1)[1] for f in evicted] == ports[:6]
        for i, c in enumerate(clients[6:], 6):  # the newest flows still work, no new flow
            assert exchange(port, b"again %d" % i, sock=c) == b"again %d" % i
        assert metric(s, admin, "strata_listener_flows_created_total", listener="dns") == 10
        # an evicted client comes back: a new flow, evicting the least recently used (#6)
        assert exchange(port, b"back", sock=clients[0]) == b"back"
        m = s.metrics(admin)
        assert m.get("strata_listener_flows_created_total", listener="dns") == 11
        assert m.get("strata_listener_flows_evicted_total", listener="dns") == 7
        assert flow_logs(s, end="evicted")[-1]["client"].endswith(":" + ports[6])
    finally:
        for c in clients:
            c.close()


@pytest.mark.timeout(60)
def test_idle_timeout_ends_a_flow(strata, udp_echo):
    echo = udp_echo()
    port, admin = free_udp_port(), free_port()
    cfg = udp_config(port, [("e", echo.address)], admin, udp="flow_idle: 300ms")
    s = start_udp(strata, cfg, [port], admin)

    c = udp_socket()
    cport = None
    try:
        for i in range(3):
            assert exchange(port, b"x" * (10 + i), sock=c) == b"x" * (10 + i)
        cport = c.getsockname()[1]
        assert metric(s, admin, "strata_listener_flows_active", listener="dns") == 1
        t0 = time.monotonic()
        line = s.wait_log(r"\bflow listener=dns .* end=idle_timeout", timeout=5)[0]
        took = time.monotonic() - t0
        assert took < 2.0, f"flow ended {took:.2f}s after its last datagram (flow_idle 300ms)"
    finally:
        c.close()
    f = flow_logs(s)[0]
    assert f["client"] == f"{LOOPBACK}:{cport}", line
    assert (f["server"], f["dgrams_in"], f["dgrams_out"]) == ("e", "3", "3"), line
    assert (f["bytes_in"], f["bytes_out"]) == ("33", "33"), line
    assert 250 <= int(f["duration_ms"]) < 2000, line
    m = s.metrics(admin)
    assert m.get("strata_listener_flows_active", listener="dns") == 0
    assert m.get("strata_server_flows_active", backend="dns", server="e") == 0
    assert m.get("strata_listener_flows_timed_out_total", listener="dns") == 1
    assert m.get("strata_server_flows_timed_out_total", backend="dns", server="e") == 1
    assert m.get("strata_server_connections_active", backend="dns", server="e") == 0


@pytest.mark.timeout(60)
def test_large_datagrams_intact_both_ways(strata, udp_echo):
    """60 KiB (and the IPv4 maximum, 65507 bytes) through Strata and back, byte for byte;
    an empty datagram too."""
    echo = udp_echo()
    port, admin = free_udp_port(), free_port()
    cfg = udp_config(port, [("e", echo.address)], admin)
    s = start_udp(strata, cfg, [port], admin)

    c = udp_socket()
    c.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
    try:
        for size in (60 * 1024, 65507, 0, 1):
            data = os.urandom(size)
            back = exchange(port, data, sock=c, timeout=5)
            assert back is not None, f"{size}-byte datagram lost"
            assert len(back) == size and back == data
            assert echo.received[-1] == (size, hashlib.sha256(data).hexdigest())
    finally:
        c.close()
    total = 60 * 1024 + 65507 + 1
    m = settled(s, admin, 4, bytes_out=total)
    assert m.get("strata_listener_bytes_in_total", listener="dns") == total
    assert m.get("strata_listener_bytes_out_total", listener="dns") == total
    assert m.get("strata_server_datagrams_in_total", backend="dns", server="e") == 4
    assert m.get("strata_server_datagrams_out_total", backend="dns", server="e") == 4


@pytest.mark.timeout(60)
def test_wildcard_listener_replies_from_the_address_used(strata, udp_echo):
    """Listening on *:P, a client that wrote to 127.0.0.2 gets its reply from 127.0.0.2:P
    (IP_PKTINFO); its socket is connected, so a reply from another address would not
    reach it."""
    echo = udp_echo()
    port, admin = free_udp_port(), free_port()
    cfg = udp_config(port, [("e", echo.address)], admin, listen=f"*:{port}")
    start_udp(strata, cfg, [port], admin)
    for dst in ("127.0.0.2", "127.0.0.1", "127.0.0.3"):
        c = udp_socket()
        try:
            c.connect((dst, port))
            c.send(b"from " + dst.encode())
            data, src = c.recvfrom(1024)
            assert data == b"from " + dst.encode() and src == (dst, port)
        finally:
            c.close()


@pytest.mark.timeout(60)
def test_ipv6(strata, udp_echo):
    if not have_ipv6_loopback():
        pytest.skip("no IPv6 loopback")
    echo = udp_echo("::1")
    port, admin = free_udp_port("::1"), free_port()
    cfg = udp_config(port, [("e", echo.address)], admin, listen=f"[::1]:{port}")
    s = start_udp(strata, cfg, [port], admin)
    assert exchange(port, b"over v6", host="::1") == b"over v6"
    assert metric(s, admin, "strata_listener_flows_created_total", listener="dns") == 1


@pytest.mark.timeout(60)
def test_maglev_keeps_a_client_on_one_server(strata, udp_echo):
    """The flow's server comes from the balancer with the client address: with maglev,
    every flow of one client IP (any port) goes to the same server."""
    echos = [udp_echo() for _ in range(3)]
    port, admin = free_udp_port(), free_port()
    cfg = udp_config(port, [(f"e{i}", e.address) for i, e in enumerate(echos)], admin,
                     balance="maglev")
    start_udp(strata, cfg, [port], admin)
    for i in range(12):
        assert exchange(port, b"m%d" % i) == b"m%d" % i
    assert sorted(len(e.received) for e in echos) == [0, 0, 12]


@pytest.mark.timeout(60)
def test_acl_applies_to_new_flows(strata, udp_echo):
    """The listener's `acl` is checked when a flow would open: a denied source gets no
    reply (counted as denied and dropped), others are relayed."""
    echo = udp_echo()
    port, admin = free_udp_port(), free_port()
    cfg = udp_config(port, [("e", echo.address)], admin)
    cfg = cfg.replace("    backend: dns\n", "    backend: dns\n    acl: { deny: 127.0.0.2 }\n", 1)
    s = start_udp(strata, cfg, [port], admin)
    denied = udp_socket(timeout=0.5)
    try:
        denied.bind(("127.0.0.2", 0))
        assert exchange(port, b"let me in", sock=denied) is None
    finally:
        denied.close()
    assert exchange(port, b"hello") == b"hello"
    m = s.metrics(admin)
    assert m.get("strata_listener_denied_total", listener="dns") == 1
    assert m.get("strata_listener_datagrams_dropped_total", listener="dns") == 1
    assert m.get("strata_listener_flows_created_total", listener="dns") == 1
    assert len(echo.received) == 1


# --------------------------------------------------------------------------- lifecycle

@pytest.mark.timeout(60)
def test_drain_keeps_open_flows_until_idle(strata, udp_echo):
    """SIGTERM: a new client gets nothing (no new flow while draining), an open flow keeps
    working, and Strata exits 0 once that flow is idle (well before timeouts.drain)."""
    echo = udp_echo()
    port, admin = free_udp_port(), free_port()
    cfg = udp_config(port, [("e", echo.address)], admin, udp="flow_idle: 1s", drain="20s")
    s = start_udp(strata, cfg, [port], admin)
    c = udp_socket()
    try:
        assert exchange(port, b"before", sock=c) == b"before"
        s.send_signal(signal.SIGTERM)
        s.wait_log(r"stopping; draining", timeout=5)
        assert exchange(port, b"new client", timeout=0.5) is None
        assert exchange(port, b"during", sock=c) == b"during"
        t0 = time.monotonic()
        rc = s.proc.wait(timeout=10)
        assert rc == 0
        assert time.monotonic() - t0 < 5
    finally:
        c.close()
    f = flow_logs(s)
    assert len(f) == 1 and f[0]["end"] == "idle_timeout" and f[0]["dgrams_in"] == "2", f


@pytest.mark.timeout(60)
def test_stop_closes_open_flows(strata, udp_echo):
    """When timeouts.drain runs out, open flows end with end=shutdown and Strata exits 0."""
    echo = udp_echo()
    port, admin = free_udp_port(), free_port()
    cfg = udp_config(port, [("e", echo.address)], admin, drain="300ms")
    s = start_udp(strata, cfg, [port], admin)
    clients = [udp_socket() for _ in range(5)]
    try:
        for c in clients:
            assert exchange(port, b"hi", sock=c) == b"hi"
        rc, clean = s.stop(signal.SIGTERM, timeout=10)
        assert rc == 0 and clean
    finally:
        for c in clients:
            c.close()
    ends = collections.Counter(f["end"] for f in flow_logs(s))
    assert ends == {"shutdown": 5}, ends
