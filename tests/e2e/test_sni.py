"""TLS passthrough routed by SNI: real TLS servers behind a listener with `routes`, real
clients (`openssl s_client`, Python ssl), ClientHellos fragmented across TCP segments and
across TLS records, and clients that send something else, too little or nothing."""

import re
import shutil
import socket
import ssl
import subprocess
import tempfile
import time

import pytest

from conftest import closed_by_peer, connect, free_port, recv_line

NAMES = ("api", "wild", "fallback")
CN_RE = re.compile(r"^subject\s*=.*CN\s*=\s*([\w.-]+)", re.M)


# --------------------------------------------------------------------------- TLS plumbing

@pytest.fixture(scope="module")
def certs():
    """{name: (cert path, key path)}: one self-signed cert per backend, CN=<name>-backend."""
    if not shutil.which("openssl"):
        pytest.skip("openssl not installed (scripts/install-deps.sh test)")
    d = tempfile.mkdtemp(prefix="strata-sni-")
    try:
        out = {}
        for name in NAMES:
            cert, key = f"{d}/{name}.crt", f"{d}/{name}.key"
            subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes",
                            "-subj", f"/CN={name}-backend", "-days", "2",
                            "-keyout", key, "-out", cert],
                           check=True, capture_output=True, timeout=60)
            out[name] = (cert, key)
        yield out
    finally:
        shutil.rmtree(d, ignore_errors=True)


def tls_backend(backends, name, cert):
    """A TLS server (Python ssl, a thread per connection) presenting CN=<name>-backend that
    answers each line "L\\n" with "<name> L\\n". .handshakes counts completed handshakes."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(*cert)

    def handler(sock):
        sock.settimeout(5)
        try:
            tls = ctx.wrap_socket(sock, server_side=True)
        except (ssl.SSLError, OSError):
            return  # clients that give up during the handshake (s_client, refused probes)
        srv.handshakes += 1
        with tls:
            buf = b""
            for _ in range(256):
                try:
                    data = tls.recv(4096)
                except (ssl.SSLError, OSError):
                    return
                if not data:
                    return
                buf += data
                while b"\n" in buf:
                    line, buf = buf.split(b"\n", 1)
                    tls.sendall(name.encode() + b" " + line + b"\n")

    srv = backends.threaded(handler)
    srv.handshakes = 0
    return srv


def client_ctx():
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def tls_request(port, sni, line=b"ping"):
    """Full TLS client over Strata: handshake (SNI `sni`, None = no SNI), one line out,
    the backend's answer back."""
    raw = connect(port, timeout=5)
    with raw:
        with client_ctx().wrap_socket(raw, server_hostname=sni) as tls:
            tls.sendall(line + b"\n")
            return recv_line(tls).decode().strip()


def s_client(port, servername):
    """`openssl s_client` through Strata; returns the CN of the certificate it was shown."""
    args = ["openssl", "s_client", "-connect", f"127.0.0.1:{port}"]
    args += ["-noservername"] if servername is None else ["-servername", servername]
    p = subprocess.run(args, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                       timeout=20)
    m = CN_RE.search(p.stdout)
    assert m, f"s_client -servername {servername}: no certificate subject\n" \
              f"stdout:\n{p.stdout[-2000:]}\nstderr:\n{p.stderr[-2000:]}"
    return m.group(1)


class BioClient:
    """A TLS client on memory BIOs: the test decides how its bytes go on the wire."""

    def __init__(self, sni, alpn=None):
        self.inc, self.out = ssl.MemoryBIO(), ssl.MemoryBIO()
        ctx = client_ctx()
        if alpn:
            ctx.set_alpn_protocols(alpn)
        self.obj = ctx.wrap_bio(self.inc, self.out, server_hostname=sni)

    def client_hello(self):
        """The first flight: the ClientHello, as TLS records."""
        try:
            self.obj.do_handshake()
        except ssl.SSLWantReadError:
            pass
        hello = self.out.read()
        assert hello[:1] == b"\x16", hello[:16]
        return hello

    def _pump(self, sock, step, what, timeout=5.0):
        """Runs step() until it stops asking for input, moving bytes between the BIOs and
        the socket; bounded in rounds and time."""
        deadline = time.monotonic() + timeout
        for _ in range(500):
            try:
                result = step()
                pending = self.out.read()
                if pending:
                    sock.sendall(pending)
                return result
            except ssl.SSLWantReadError:
                pending = self.out.read()
                if pending:
                    sock.sendall(pending)
                sock.settimeout(max(0.05, deadline - time.monotonic()))
                data = sock.recv(65536)
                if not data:
                    raise ConnectionError(f"EOF during {what}")
                self.inc.write(data)
            if time.monotonic() > deadline:
                break
        raise AssertionError(f"{what} did not finish within {timeout}s")

    def handshake(self, sock):
        self._pump(sock, self.obj.do_handshake, "the TLS handshake")

    def request(self, sock, line=b"ping"):
        self.obj.write(line + b"\n")
        sock.sendall(self.out.read())
        buf = b""
        for _ in range(64):
            buf += self._pump(sock, lambda: self.obj.read(4096), "reading the reply")
            if b"\n" in buf:
                return buf.split(b"\n", 1)[0].decode()
        raise AssertionError(f"no complete reply line: {buf!r}")

    def peer_cn(self):
        der = self.obj.getpeercert(binary_form=True)
        pem = ssl.DER_cert_to_PEM_cert(der)
        p = subprocess.run(["openssl", "x509", "-noout", "-subject"], input=pem,
                           capture_output=True, text=True, timeout=10)
        m = CN_RE.search(p.stdout)
        assert m, p.stdout + p.stderr
        return m.group(1)


def reframe(hello, cuts):
    """The ClientHello record `hello` re-framed into several handshake records, the
    handshake message split at payload offsets `cuts`."""
    assert hello[0] == 0x16
    n = int.from_bytes(hello[3:5], "big")
    assert len(hello) == 5 + n, "expected the ClientHello in a single record"
    payload = hello[5:]
    bounds = [0] + list(cuts) + [len(payload)]
    out = b""
    for a, b in zip(bounds, bounds[1:]):
        part = payload[a:b]
        assert part, (cuts, len(payload))
        out += b"\x16" + hello[1:3] + len(part).to_bytes(2, "big") + part
    return out


# --------------------------------------------------------------------------- setup

def routes_config(port, admin, servers, default=True, inspect="5s"):
    text = f"""
timeouts: {{ connect: 1s, idle: 1m, drain: 1s }}
admin: {{ listen: 127.0.0.1:{admin} }}
listeners:
  - name: tls
    listen: "127.0.0.1:{port}"
    mode: tcp
    timeouts: {{ inspect: {inspect} }}
    routes:
      - match: {{ sni: api.example.test }}
        backend: api
      - match: {{ sni: [ "*.example.test" ] }}
        backend: wild
"""
    if default:
        text += "      - backend: fallback\n"
    text += "backends:\n"
    for name in NAMES:
        text += f"  {name}:\n    servers:\n"
        text += f'      - {{ name: {name}1, address: "{servers[name].address}" }}\n'
    return text


@pytest.fixture
def sni_setup(strata, backends, certs):
    """Three TLS backends and a Strata routing to them; returns (strata, port, admin, srvs)."""
    def start(default=True, inspect="5s"):
        srvs = {n: tls_backend(backends, n, certs[n]) for n in NAMES}
        port, admin = free_port(), free_port()
        s = strata(routes_config(port, admin, srvs, default=default, inspect=inspect),
                   listen_ports=[port], admin_port=admin)
        return s, port, admin, srvs
    return start


# --------------------------------------------------------------------------- tests

ROUTING = [
    ("api.example.test", "api"),
    ("API.Example.TEST", "api"),
    ("x.example.test", "wild"),
    ("a.b.example.test", "wild"),
    ("example.test", "fallback"),     # the apex is not under *.example.test
    ("other.test", "fallback"),
    ("xexample.test", "fallback"),    # a suffix that is not a label boundary
    (None, "fallback"),               # no SNI at all
]


def test_s_client_is_routed_by_sni(sni_setup):
    s, port, admin, srvs = sni_setup()
    seen = {sni: s_client(port, sni) for sni, _ in ROUTING}
    want = {sni: f"{name}-backend" for sni, name in ROUTING}
    assert seen == want
    logs = s.wait_conn_logs(len(ROUTING))
    servers = sorted(e["server"] for e in logs)
    assert servers == sorted(f"{name}1" for _, name in ROUTING), logs
    # s_client completes the handshake, sends nothing and closes: a clean relay.
    assert {e["end"] for e in logs} <= {"client_close", "server_close"}, logs


def test_python_client_full_tunnel(sni_setup):
    s, port, admin, srvs = sni_setup()
    for sni, name in ROUTING:
        assert tls_request(port, sni, b"hello " + (sni or "-").encode()) == \
            f"{name} hello {sni or '-'}"
    # A long exchange on one tunnel: many lines both ways after the handshake.
    raw = connect(port)
    with raw, client_ctx().wrap_socket(raw, server_hostname="api.example.test") as tls:
        for i in range(200):
            tls.sendall(b"line %d\n" % i)
            assert recv_line(tls) == b"api line %d\n" % i
    assert {n: srvs[n].handshakes for n in NAMES} == {"api": 3, "wild": 2, "fallback": 4}
    logs = s.wait_conn_logs(len(ROUTING) + 1)
    assert all(int(e["bytes_in"]) > 200 and int(e["bytes_out"]) > 200 for e in logs), logs


def test_client_hello_in_tiny_tcp_segments(sni_setup):
    s, port, admin, srvs = sni_setup()
    for sni, name in [("x.example.test", "wild"), ("api.example.test", "api")]:
        c = BioClient(sni)
        hello = c.client_hello()
        sock = connect(port)
        with sock:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            pieces = [hello[i:i + 7] for i in range(0, len(hello), 7)]
            assert 20 < len(pieces) < 400, len(hello)
            for p in pieces:
                sock.sendall(p)
                time.sleep(0.002)
            c.handshake(sock)
            assert c.peer_cn() == f"{name}-backend"
            assert c.request(sock, b"after tiny pieces") == f"{name} after tiny pieces"
    logs = s.wait_conn_logs(2)
    assert sorted(e["server"] for e in logs) == ["api1", "wild1"], logs


@pytest.mark.parametrize("where", ["in_sni", "in_headers"])
def test_client_hello_split_across_tls_records(sni_setup, where):
    s, port, admin, srvs = sni_setup()
    sni = "deep.name.example.test"
    c = BioClient(sni)
    hello = c.client_hello()
    payload = hello[5:]
    at = payload.find(sni.encode())
    assert at > 0
    if where == "in_sni":
        cuts = [at - 3, at + len(sni) // 2]      # the name's length field and the name split
    else:
        cuts = [2, 40]                           # inside the handshake header, the random
    framed = reframe(hello, cuts)
    assert framed.count(b"\x16\x03") >= 3
    sock = connect(port)
    with sock:
        sock.sendall(framed)
        c.handshake(sock)
        assert c.peer_cn() == "wild-backend"
        assert c.request(sock, b"reframed") == "wild reframed"
    assert s.wait_conn_logs(1)[0]["server"] == "wild1"


def test_large_client_hello_is_routed(sni_setup):
    """A ~6 KB ClientHello (long ALPN list): several reads, still one record."""
    s, port, admin, srvs = sni_setup()
    alpn = [f"proto-{i:03d}-" + "x" * 40 for i in range(120)]
    c = BioClient("api.example.test", alpn=alpn)
    hello = c.client_hello()
    assert len(hello) > 5000, len(hello)
    sock = connect(port)
    with sock:
        sock.sendall(hello)
        c.handshake(sock)
        assert c.request(sock, b"big") == "api big"


def wait_closed(port, send, timeout):
    """Connects, sends `send` (bytes, or a callable taking the socket), returns how long the
    peer took to close the connection (fails if it stays open `timeout` seconds)."""
    sock = connect(port)
    with sock:
        t0 = time.monotonic()
        if callable(send):
            send(sock)
        elif send:
            sock.sendall(send)
        assert closed_by_peer(sock, timeout), f"connection left open after {send!r:.60}"
        return time.monotonic() - t0


def test_bad_first_bytes_are_refused_and_counted(sni_setup):
    s, port, admin, srvs = sni_setup(inspect="500ms")
    hello = BioClient("api.example.test").client_hello()

    def truncated_then_close(sock):
        sock.sendall(hello[:60])
        time.sleep(0.05)
        sock.shutdown(socket.SHUT_WR)

    def truncated_then_silent(sock):
        sock.sendall(hello[:60])

    huge = b"\x16\x03\x01\x40\x00" + b"\x01\x00\x3f\xfc" + b"\x03\x03"  # declares 16 KB
    cases = [
        # (what, what the client sends, expected end, expected error detail, max seconds)
        ("http", b"GET / HTTP/1.0\r\n\r\n", "bad_client_hello", "not a TLS", 1.0),
        ("sslv2", b"\x80\x2e\x01\x00\x02\x00\x15\x00\x00\x00\x10" + b"\x07\x00\xc0" * 5,
         "bad_client_hello", "not a TLS", 1.0),
        ("server_hello", b"\x16\x03\x03\x00\x08\x02\x00\x00\x04\x03\x03\x00\x00",
         "bad_client_hello", "not a ClientHello", 1.0),
        ("too_large", huge, "bad_client_hello", "too large", 1.0),
        ("alert", b"\x15\x03\x03\x00\x02\x02\x28", "bad_client_hello", "not a TLS", 1.0),
        ("truncated_close", truncated_then_close, "client_close", None, 1.0),
        ("truncated_silent", truncated_then_silent, "inspect_timeout", None, 2.0),
        ("nothing", b"", "inspect_timeout", None, 2.0),
    ]
    for i, (what, send, end, detail, limit) in enumerate(cases):
        took = wait_closed(port, send, timeout=5)
        assert took < limit, f"{what}: closed after {took:.2f}s"
        if end == "inspect_timeout":
            assert took >= 0.4, f"{what}: closed after {took:.2f}s, before the 500ms timeout"
        e = s.wait_conn_logs(i + 1)[i]
        assert e["end"] == end and e["server"] == "-", (what, e)
        if detail:
            line = [ln for ln in s.log().splitlines() if " conn listener=" in ln][i]
            assert 'error="' in line and detail in line, (what, line)
    assert sum(srv.accepted for srv in srvs.values()) == 0, "a bad client reached a backend"
    m = s.metrics(admin)
    failures = sum(1 for c in cases if c[2] in ("bad_client_hello", "inspect_timeout"))
    assert m.get("strata_listener_inspect_failures_total", listener="tls") == failures, m.text
    assert m.get("strata_listener_connections_active", listener="tls") == 0, m.text
    # Still serving.
    assert tls_request(port, "api.example.test") == "api ping"


def test_unknown_name_without_default_route(sni_setup):
    s, port, admin, srvs = sni_setup(default=False)
    assert tls_request(port, "api.example.test") == "api ping"
    assert tls_request(port, "z.example.test") == "wild ping"
    refused = {}
    for sni in ("other.test", "example.test", None):
        hello = BioClient(sni).client_hello()
        sock = connect(port)
        with sock:
            refused["127.0.0.1:%d" % sock.getsockname()[1]] = sni
            t0 = time.monotonic()
            sock.sendall(hello)
            assert closed_by_peer(sock, 3), f"{sni}: connection left open"
            assert time.monotonic() - t0 < 1.0, f"{sni}: not closed promptly"
    logs = {e["client"]: e for e in s.wait_conn_logs(5)}
    for client, sni in refused.items():
        e = logs[client]
        assert e["end"] == "no_route" and e["server"] == "-", (sni, e)
    assert srvs["fallback"].accepted == 0
    m = s.metrics(admin)
    assert m.get("strata_listener_inspect_failures_total", listener="tls") == 3, m.text


def test_complete_hello_then_half_close_reaches_the_server(sni_setup):
    """A client that sends its whole ClientHello and shuts its sending side at once: the
    hello is complete, so it must reach the server, whose ServerHello comes back."""
    s, port, admin, srvs = sni_setup()
    got = []
    for _ in range(10):
        hello = BioClient("api.example.test").client_hello()
        sock = connect(port)
        with sock:
            sock.sendall(hello)
            sock.shutdown(socket.SHUT_WR)
            sock.settimeout(5)
            data = b""
            try:
                for _ in range(64):
                    b = sock.recv(65536)
                    if not b:
                        break
                    data += b
            except ConnectionResetError:
                pass
            got.append(data[:1])
    lines = [ln for ln in s.log().splitlines() if " conn listener=" in ln]
    lost = [lines[i] if i < len(lines) else "?" for i, d in enumerate(got) if d != b"\x16"]
    assert not lost, f"{len(lost)} of 10 got no ServerHello: {lost[:3]}"


def test_proxy_header_then_client_hello(strata, backends, certs):
    """PROXY header and ClientHello on one listener: the header is taken off, the hello
    routes, the handshake completes; the carried address is the logged client."""
    from conftest import proxy_v1, proxy_v2
    srvs = {n: tls_backend(backends, n, certs[n]) for n in NAMES}
    port, admin = free_port(), free_port()
    cfg = routes_config(port, admin, srvs).replace(
        "    routes:\n",
        "    proxy_protocol: { accept: true, trusted: [ 127.0.0.0/8 ] }\n    routes:\n")
    s = strata(cfg, listen_ports=[port], admin_port=admin)
    cases = [(proxy_v1("192.0.2.10", 1010, "127.0.0.1", port), "x.example.test", "wild", False),
             (proxy_v2("192.0.2.11", 1011, "127.0.0.1", port), "api.example.test", "api", False),
             (proxy_v1("192.0.2.12", 1012, "127.0.0.1", port), "other.test", "fallback", True),
             (proxy_v2("192.0.2.13", 1013, "127.0.0.1", port), None, "fallback", True)]
    for hdr, sni, name, apart in cases:
        c = BioClient(sni)
        hello = c.client_hello()
        sock = connect(port)
        with sock:
            if apart:                     # the header first, the hello a moment later
                sock.sendall(hdr)
                time.sleep(0.1)
                sock.sendall(hello)
            else:
                sock.sendall(hdr + hello)
            c.handshake(sock)
            assert c.peer_cn() == f"{name}-backend", sni
            assert c.request(sock, b"via proxy") == f"{name} via proxy"
    logs = {e["client"]: e for e in s.wait_conn_logs(len(cases))}
    assert sorted(logs) == ["192.0.2.10:1010", "192.0.2.11:1011", "192.0.2.12:1012",
                            "192.0.2.13:1013"], logs
    assert [logs[k]["server"] for k in sorted(logs)] == ["wild1", "api1", "fallback1",
                                                         "fallback1"], logs


def test_sigterm_while_a_client_is_in_inspection(sni_setup):
    """A client that never sends its hello does not hold the shutdown past the drain."""
    s, port, admin, srvs = sni_setup(inspect="30s")
    sock = connect(port)
    with sock:
        time.sleep(0.2)
        t0 = time.monotonic()
        rc, clean = s.stop()
        took = time.monotonic() - t0
        assert closed_by_peer(sock, 1), "client still open after strata exited"
    assert rc == 0 and clean, (rc, s.log()[-2000:])
    assert took < 5, f"exit took {took:.1f}s with a 1s drain"
    ends = [e["end"] for e in s.conn_logs()]
    assert ends == ["shutdown"], (ends, s.log()[-2000:])
