"""The PROXY protocol both ways: Strata sending v1/v2 headers to NGINX (which reports the
address it was given), and a listener accepting v1/v2 headers from trusted sources (the
carried address then stands for the client in the log, the ACL, per-source limits and
source hashing); malformed, missing and untrusted headers."""

import collections
import os
import shutil
import socket
import struct
import subprocess
import time

import pytest

from conftest import (closed_by_peer, connect, connect_from, die_with_parent,
                      echo_or_closed, free_port, have_ipv6_loopback, port_listening,
                      proxy_v1, proxy_v2, recv_exact, recv_line, recv_until_eof,
                      stop_process)

NGINX_STREAM_MODULE = "/usr/lib/nginx/modules/ngx_stream_module.so"


# --------------------------------------------------------------------------- helpers

def crc32c(data):
    crc = 0xFFFFFFFF
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
    return crc ^ 0xFFFFFFFF


def tlv(kind, value):
    return bytes([kind]) + struct.pack("!H", len(value)) + value


def with_crc(header, good=True):
    """Appends a CRC32c TLV (type 0x03) to a v2 header, correct or off by one."""
    body_len = struct.unpack("!H", header[14:16])[0] + 7
    h = bytearray(header[:14] + struct.pack("!H", body_len) + header[16:] + tlv(0x03, b"\0" * 4))
    crc = crc32c(bytes(h))
    h[-4:] = struct.pack("!I", crc if good else crc ^ 1)
    return bytes(h)


def accept_config(port, servers, admin=None, trusted="[ 127.0.0.0/8 ]", extra="",
                  balance="round_robin", inspect="5s", listen_host="127.0.0.1"):
    listen = f"[{listen_host}]:{port}" if ":" in listen_host else f"{listen_host}:{port}"
    text = "timeouts: { connect: 1s, idle: 1m, drain: 1s }\n"
    if admin:
        text += f"admin: {{ listen: 127.0.0.1:{admin} }}\n"
    text += f"""listeners:
  - name: pp
    listen: "{listen}"
    mode: tcp
    backend: app
    timeouts: {{ inspect: {inspect} }}
    proxy_protocol: {{ accept: true, trusted: {trusted} }}
"""
    text += "".join(f"    {ln}\n" for ln in extra.strip("\n").splitlines())
    text += f"backends:\n  app:\n    balance: {balance}\n    servers:\n"
    for i, s in enumerate(servers):
        text += f'      - {{ name: s{i + 1}, address: "{s.address}" }}\n'
    return text


def nth_conn_line(s, i):
    return [ln for ln in s.log().splitlines() if " conn listener=" in ln][i]


# --------------------------------------------------------------------------- NGINX

class Nginx:
    """NGINX with the stream module, answering each connection that starts with a PROXY
    header with "<proxy_protocol_addr> <proxy_protocol_port>\\n"."""

    def __init__(self, workdir, port):
        self.port = port
        workdir.mkdir(exist_ok=True)
        conf = workdir / "nginx.conf"
        conf.write_text(f"""
load_module {NGINX_STREAM_MODULE};
worker_processes 1;
events {{ worker_connections 64; }}
stream {{
    server {{
        listen 127.0.0.1:{port} proxy_protocol;
        return "$proxy_protocol_addr $proxy_protocol_port\\n";
    }}
}}
""")
        self.log_path = workdir / "nginx.stderr"
        self._log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(
            ["nginx", "-e", "stderr", "-c", str(conf), "-p", str(workdir), "-g",
             f"daemon off; error_log stderr; pid {workdir}/nginx.pid;"],
            stdin=subprocess.DEVNULL, stdout=self._log, stderr=self._log,
            preexec_fn=die_with_parent)

    def wait(self, timeout=10.0):
        deadline = time.monotonic() + timeout
        while not port_listening(self.port):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"nginx not listening on {self.port}:\n"
                                     f"{self.log_path.read_text(errors='replace')[-3000:]}")
            time.sleep(0.05)
        return self

    def stop(self):
        stop_process(self.proc, timeout=10)
        self._log.close()


@pytest.fixture
def nginx(tmp_path):
    if not shutil.which("nginx") or not os.path.exists(NGINX_STREAM_MODULE):
        pytest.skip("nginx with the stream module not installed (scripts/install-deps.sh test)")
    started = []

    def start():
        n = Nginx(tmp_path / f"nginx{len(started)}", free_port())
        started.append(n)
        return n.wait()

    yield start
    for n in started:
        n.stop()


def sending_config(port, nginx_port, version, listen_host="127.0.0.1", accept=False):
    listen = f"[{listen_host}]:{port}" if ":" in listen_host else f"{listen_host}:{port}"
    pp = "    proxy_protocol: { accept: true, trusted: [ 127.0.0.0/8 ] }\n" if accept else ""
    return f"""
timeouts: {{ connect: 1s, idle: 1m, drain: 1s }}
listeners:
  - name: web
    listen: "{listen}"
    mode: tcp
    backend: ng
{pp}backends:
  ng:
    proxy_protocol: {version}
    servers: [ {{ name: nginx, address: "127.0.0.1:{nginx_port}" }} ]
"""


# --------------------------------------------------------------------------- sending

@pytest.mark.parametrize("version", ["v1", "v2"])
def test_sends_client_address_to_nginx(strata, nginx, version):
    ng = nginx()
    port = free_port()
    s = strata(sending_config(port, ng.port, version), listen_ports=[port])
    ports = []
    for _ in range(3):
        c = connect(port)
        with c:
            cport = c.getsockname()[1]
            ports.append(cport)
            assert recv_line(c).decode() == f"127.0.0.1 {cport}\n"
            assert recv_until_eof(c) == b""
    logs = {e["client"]: e for e in s.wait_conn_logs(3)}
    for cport in ports:
        e = logs[f"127.0.0.1:{cport}"]
        assert e["server"] == "nginx" and e["end"] == "server_close", e
        # bytes_in counts the header Strata wrote (the client sent nothing).
        want = len(proxy_v1("127.0.0.1", cport, "127.0.0.1", port)) if version == "v1" else 28
        assert int(e["bytes_in"]) == want, (e, want)
        assert int(e["bytes_out"]) == len(f"127.0.0.1 {cport}\n"), e


@pytest.mark.parametrize("version", ["v1", "v2"])
def test_sends_ipv6_client_address_to_nginx(strata, nginx, version):
    if not have_ipv6_loopback():
        pytest.skip("no IPv6 loopback")
    ng = nginx()
    port = free_port(host="::1", family=socket.AF_INET6)
    strata(sending_config(port, ng.port, version, listen_host="::1"), listen_ports=[port],
           host="::1")
    c = connect(port, host="::1")
    with c:
        cport = c.getsockname()[1]
        assert recv_line(c).decode() == f"::1 {cport}\n"


@pytest.mark.parametrize("version", ["v1", "v2"])
def test_forwards_accepted_address_to_nginx(strata, nginx, version):
    """Accepting and sending: the address carried in, not 127.0.0.1, goes out."""
    ng = nginx()
    port = free_port()
    s = strata(sending_config(port, ng.port, version, accept=True), listen_ports=[port])
    for hdr, want in [(proxy_v1("203.0.113.9", 4000, "127.0.0.1", port), "203.0.113.9 4000"),
                      (proxy_v2("198.51.100.7", 65535, "127.0.0.1", port), "198.51.100.7 65535"),
                      (proxy_v1("2001:db8::5", 7, "2001:db8::1", 443), "2001:db8::5 7")]:
        c = connect(port)
        with c:
            c.sendall(hdr)
            assert recv_line(c).decode().strip() == want, (hdr, s.log()[-1500:])
    logs = s.wait_conn_logs(3)
    assert sorted(e["client"] for e in logs) == ["198.51.100.7:65535", "203.0.113.9:4000",
                                                 "[2001:db8::5]:7"], logs


# --------------------------------------------------------------------------- accepting

def _real(sock):
    return "127.0.0.1:%d" % sock.getsockname()[1]


ACCEPTED = {
    "v1_tcp4": (lambda p: proxy_v1("192.0.2.7", 4242, "127.0.0.1", p), "192.0.2.7:4242"),
    "v1_tcp6": (lambda p: proxy_v1("2001:db8::7", 4243, "::1", p), "[2001:db8::7]:4243"),
    "v2_ipv4": (lambda p: proxy_v2("198.51.100.20", 5555, "127.0.0.1", p),
                "198.51.100.20:5555"),
    "v2_ipv6": (lambda p: proxy_v2("2001:db8:1::20", 5556, "::1", p), "[2001:db8:1::20]:5556"),
    "v2_tlvs_crc": (lambda p: with_crc(proxy_v2("198.51.100.21", 1, "127.0.0.1", p,
                                                tlvs=tlv(0x04, b"\0" * 9) +
                                                tlv(0x02, b"api.example.test"))),
                    "198.51.100.21:1"),
    "v1_unknown": (lambda p: b"PROXY UNKNOWN\r\n", None),
    "v1_unknown_fields": (lambda p: b"PROXY UNKNOWN ffff::1 ffff::2 1 2\r\n", None),
    "v2_local": (lambda p: proxy_v2(None, 0, None, 0, command=0), None),
}


@pytest.mark.parametrize("case", list(ACCEPTED))
def test_accepts_header(strata, backends, case):
    build, want = ACCEPTED[case]
    srv = backends.echo()
    port = free_port()
    s = strata(accept_config(port, [srv]), listen_ports=[port])
    c = connect(port)
    with c:
        real = _real(c)
        c.sendall(build(port) + b"hello")     # header and data in one segment
        assert recv_exact(c, 5) == b"hello"   # the header was taken off, the data relayed
        c.sendall(b"more data")
        assert recv_exact(c, 9) == b"more data"
    e = s.wait_conn_logs(1)[0]
    assert e["client"] == (want or real), e
    assert e["bytes_in"] == "14" and e["end"] == "client_close", e


@pytest.mark.parametrize("version", ["v1", "v2"])
def test_header_split_across_segments(strata, backends, version):
    srv = backends.echo()
    port = free_port()
    s = strata(accept_config(port, [srv]), listen_ports=[port])
    hdr = (proxy_v1("192.0.2.99", 1234, "127.0.0.1", port) if version == "v1"
           else proxy_v2("192.0.2.99", 1234, "127.0.0.1", port))
    c = connect(port)
    with c:
        c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for piece in (hdr[:4], hdr[4:15], hdr[15:]):
            c.sendall(piece)
            time.sleep(0.1)
        c.sendall(b"payload")
        assert recv_exact(c, 7) == b"payload"
    assert s.wait_conn_logs(1)[0]["client"] == "192.0.2.99:1234"


def test_header_data_and_half_close_at_once(strata, backends):
    """A client that writes the header and its request and shuts its side at once
    (`printf 'PROXY ...\\r\\nQUIT\\r\\n' | nc -N`) still gets the reply."""
    srv = backends.echo()
    port = free_port()
    s = strata(accept_config(port, [srv]), listen_ports=[port])
    results = []
    for _ in range(20):   # the race (FIN read with the header) is lost most of the time
        c = connect(port)
        with c:
            c.sendall(proxy_v1("192.0.2.1", 1, "127.0.0.1", port) + b"request")
            c.shutdown(socket.SHUT_WR)
            c.settimeout(5)
            try:
                results.append(recv_until_eof(c))
            except ConnectionResetError:
                results.append("reset")
    logs = s.wait_conn_logs(20)
    bad = [(r, nth_conn_line(s, i)) for i, r in enumerate(results) if r != b"request"]
    assert not bad, f"{len(bad)} of 20 lost their request: {bad[:3]}"
    assert all(e["bytes_in"] == "7" and e["server"] == "s1" for e in logs), logs


def test_malformed_or_missing_header(strata, backends):
    srv = backends.echo()
    port, admin = free_port(), free_port()
    s = strata(accept_config(port, [srv], admin=admin, inspect="500ms"),
               listen_ports=[port], admin_port=admin)
    bad_sig = bytearray(proxy_v2("192.0.2.1", 1, "127.0.0.1", port))
    bad_sig[8] ^= 0x01
    bad_ver = bytearray(proxy_v2("192.0.2.1", 1, "127.0.0.1", port))
    bad_ver[12] = 0x11
    udp = bytearray(proxy_v2("192.0.2.1", 1, "127.0.0.1", port))
    udp[13] = 0x12  # AF_INET + DGRAM: a UDP flow's header on a TCP listener
    cases = [
        ("bad_ip", b"PROXY TCP4 256.1.1.1 127.0.0.1 1 2\r\nhello", "proxy_error"),
        ("bad_port", b"PROXY TCP4 192.0.2.1 127.0.0.1 65536 2\r\nhello", "proxy_error"),
        ("lf_only", b"PROXY TCP4 192.0.2.1 127.0.0.1 1 2\nhello", "proxy_error"),
        ("no_crlf", b"PROXY UNKNOWN " + b"x" * 120, "proxy_error"),
        ("tcp5", b"PROXY TCP5 192.0.2.1 127.0.0.1 1 2\r\n", "proxy_error"),
        ("v4_in_tcp6", b"PROXY TCP6 192.0.2.1 127.0.0.1 1 2\r\n", "proxy_error"),
        ("v2_bad_sig", bytes(bad_sig), "proxy_error"),
        ("v2_bad_version", bytes(bad_ver), "proxy_error"),
        ("v2_udp_on_tcp", bytes(udp), "proxy_error"),
        ("v2_bad_crc", with_crc(proxy_v2("192.0.2.1", 1, "127.0.0.1", port), good=False),
         "proxy_error"),
        ("no_header", b"GET / HTTP/1.0\r\n\r\n", "proxy_error"),
        ("tls_no_header", b"\x16\x03\x01\x00\x05\x01\x00\x00\x01\x03", "proxy_error"),
        ("partial_then_silent", b"PROXY TCP4 192.0.2.1", "inspect_timeout"),
        ("silent", b"", "inspect_timeout"),
    ]
    for i, (what, data, end) in enumerate(cases):
        c = connect(port)
        with c:
            t0 = time.monotonic()
            if data:
                c.sendall(data)
            assert closed_by_peer(c, 5), f"{what}: connection left open"
            took = time.monotonic() - t0
        limit = 2.0 if end == "inspect_timeout" else 1.0
        assert took < limit, f"{what}: closed after {took:.2f}s"
        e = s.wait_conn_logs(i + 1)[i]
        assert e["end"] == end and e["server"] == "-", (what, nth_conn_line(s, i))
        assert e["client"].startswith("127.0.0.1:"), (what, e)
    assert srv.accepted == 0, "a connection without a valid header reached the server"
    m = s.metrics(admin)
    assert m.get("strata_listener_proxy_errors_total", listener="pp") == len(cases), m.text
    assert m.get("strata_listener_connections_active", listener="pp") == 0, m.text
    # Still serving.
    c = connect(port)
    with c:
        c.sendall(proxy_v1("192.0.2.1", 1, "127.0.0.1", port))
        assert echo_or_closed(c) == "ok"


def test_untrusted_source_is_denied(strata, backends):
    srv = backends.echo()
    port, admin = free_port(), free_port()
    s = strata(accept_config(port, [srv], admin=admin, trusted="[ 10.0.0.0/8, 127.0.0.1 ]"),
               listen_ports=[port], admin_port=admin)
    hdr = proxy_v1("192.0.2.1", 1, "127.0.0.1", port)
    for src in ("127.0.0.2", "127.0.0.3"):
        c = connect_from(port, src)
        with c:
            t0 = time.monotonic()
            try:
                c.sendall(hdr)
            except ConnectionResetError:
                pass  # refused with a reset before the header was even sent
            assert closed_by_peer(c, 3), f"untrusted {src} not closed"
            assert time.monotonic() - t0 < 1.0
    c = connect_from(port, "127.0.0.1")      # trusted
    with c:
        c.sendall(hdr)
        assert echo_or_closed(c) == "ok"
    logs = s.wait_conn_logs(3)
    # Each worker writes its own log lines: compare by client, not by order.
    ends = {e["client"].rsplit(":", 1)[0]: e["end"] for e in logs}
    assert ends == {"127.0.0.2": "denied", "127.0.0.3": "denied", "192.0.2.1": "client_close"}, logs
    denied_lines = [ln for ln in s.log().splitlines() if "end=denied" in ln]
    assert len(denied_lines) == 2 and all('error="' in ln for ln in denied_lines), denied_lines
    assert srv.accepted == 1
    m = s.metrics(admin)
    assert m.get("strata_listener_denied_total", listener="pp") == 2, m.text
    assert m.get("strata_listener_connections_rejected_total", listener="pp") == 2, m.text


def test_acl_applies_to_carried_address(strata, backends):
    srv = backends.echo()
    port, admin = free_port(), free_port()
    cfg = accept_config(port, [srv], admin=admin,
                        extra="acl: { allow: [ 198.51.100.0/24 ], deny: [ 198.51.100.66 ] }")
    s = strata(cfg, listen_ports=[port], admin_port=admin)
    cases = [
        (proxy_v1("198.51.100.1", 1000, "127.0.0.1", port), "ok", "198.51.100.1:1000"),
        (proxy_v1("198.51.100.66", 1001, "127.0.0.1", port), "closed", "198.51.100.66:1001"),
        (proxy_v2("203.0.113.9", 1002, "127.0.0.1", port), "closed", "203.0.113.9:1002"),
        # The real source, 127.0.0.1, is not in `allow`: a header keeping it is refused.
        (b"PROXY UNKNOWN\r\n", "closed", None),
        (proxy_v2("198.51.100.2", 1003, "127.0.0.1", port), "ok", "198.51.100.2:1003"),
    ]
    for i, (hdr, want, client) in enumerate(cases):
        c = connect(port)
        with c:
            real = _real(c)
            c.sendall(hdr)
            assert echo_or_closed(c) == want, (hdr, s.log()[-1500:])
        e = s.wait_conn_logs(i + 1)[i]
        assert e["client"] == (client or real), e
        assert e["end"] == ("denied" if want == "closed" else "client_close"), e
    assert srv.accepted == 2
    m = s.metrics(admin)
    assert m.get("strata_listener_denied_total", listener="pp") == 3, m.text


@pytest.mark.parametrize("balance", ["source_hash", "maglev"])
def test_hashing_uses_carried_address(strata, backends, balance):
    srvs = [backends.echo(greeting=b"hello %d\n" % (i + 1)) for i in range(3)]
    port = free_port()
    strata(accept_config(port, srvs, balance=balance), listen_ports=[port])

    def who(src):
        c = connect(port)
        with c:
            c.sendall(proxy_v1(src, 40000, "127.0.0.1", port))
            return recv_line(c).decode().strip()

    first = [who("203.0.113.9") for _ in range(10)]
    assert len(set(first)) == 1, first
    picks = {}
    for i in range(12):
        src = f"198.51.100.{10 + i}"
        seen = {who(src) for _ in range(3)}
        assert len(seen) == 1, (src, seen)
        picks[src] = seen.pop()
    # The real source is 127.0.0.1 for all of them: spreading proves the carried one is used.
    assert len(set(picks.values())) >= 2, picks


def test_per_source_limit_uses_carried_address(strata, backends):
    srv = backends.echo()
    port, admin = free_port(), free_port()
    cfg = accept_config(port, [srv], admin=admin, extra="per_source: { max_connections: 1 }")
    s = strata(cfg, listen_ports=[port], admin_port=admin)
    held = []

    def attempt(src, keep):
        c = connect(port)
        c.sendall(proxy_v1(src, 1, "::1" if ":" in src else "127.0.0.1", port))
        result = echo_or_closed(c)
        if keep and result == "ok":
            held.append(c)
        else:
            c.close()
        return result

    try:
        assert attempt("192.0.2.1", keep=True) == "ok"
        assert attempt("192.0.2.1", keep=False) == "closed"       # same carried address
        assert attempt("192.0.2.2", keep=True) == "ok"            # another one
        assert attempt("2001:db8:1:2::1", keep=True) == "ok"
        assert attempt("2001:db8:1:2::99", keep=False) == "closed"  # same /64
        assert attempt("2001:db8:1:3::1", keep=True) == "ok"        # next /64
        held.pop(0).close()                                        # 192.0.2.1 leaves
        time.sleep(0.3)
        assert attempt("192.0.2.1", keep=False) == "ok"
    finally:
        for c in held:
            c.close()
    ends = collections.Counter(e["end"] for e in s.wait_conn_logs(7))
    assert ends["limit"] == 2, ends
    m = s.metrics(admin)
    assert m.get("strata_listener_connections_rejected_total", listener="pp") == 2, m.text
