"""TLS termination and re-encryption end to end: curl, `openssl s_client` and Python's ssl
module against TLS listeners (certificates chosen by SNI, ECDSA or RSA by what the client
supports, ALPN, versions, resumption, mTLS required and optional), TLS offload on a tcp
listener (an echo server, and psql with sslmode=require in front of a PostgreSQL without
TLS), TLS to servers (NGINX origins: verification, SNI, client certificates, session
reuse, keep-alive, health checks), and bad input (plaintext on a TLS port, garbage, a
silent client) closed within the handshake timeout and counted per reason."""
import hashlib
import json
import os
import shutil
import socket
import ssl
import subprocess
import time

import pytest

from conftest import (EchoServer, closed_by_peer, connect, die_with_parent, free_port,
                      port_listening, recv_until_eof, stop_process, wait_for)
from http_backend import http_config, http_request, parse_response
from test_postgres import PSQL, postgres  # noqa: F401 - the PostgreSQL fixture

pytestmark = pytest.mark.skipif(not shutil.which("openssl"), reason="openssl not installed")


# --------------------------------------------------------------------------- certificates

def _openssl(*args, cwd):
    r = subprocess.run(["openssl", *args], cwd=cwd, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, f"openssl {' '.join(args)}:\n{r.stderr}"


def _issue(d, name, cn, sans, ca="ca", key="rsa", days=30, client=False):
    keyargs = (["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"] if key == "ec"
               else ["-newkey", "rsa:2048"])
    _openssl("req", "-new", *keyargs, "-nodes", "-keyout", f"{name}.key", "-out", f"{name}.csr",
             "-subj", f"/O=Strata tests/CN={cn}", cwd=d)
    ext = f"{name}.ext"
    lines = ["basicConstraints=CA:FALSE"]
    if sans:
        lines.append("subjectAltName=" + ",".join(f"DNS:{s}" for s in sans))
    lines.append("extendedKeyUsage=" + ("clientAuth" if client else "serverAuth"))
    (d / ext).write_text("\n".join(lines) + "\n")
    _openssl("x509", "-req", "-in", f"{name}.csr", "-CA", f"{ca}.pem", "-CAkey", f"{ca}.key",
             "-CAcreateserial", "-days", str(days), "-sha256", "-extfile", ext,
             "-out", f"{name}.pem", cwd=d)


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    """A CA, server certificates (RSA and ECDSA for site.test, a wildcard, a backend
    name), a second CA for client certificates, and a client certificate."""
    d = tmp_path_factory.mktemp("pki")
    for ca, cn in (("ca", "Strata test CA"), ("clientca", "Strata client CA"),
                   ("otherca", "Unrelated CA")):
        _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{ca}.key",
                 "-out", f"{ca}.pem", "-days", "30", "-subj", f"/CN={cn}", cwd=d)
    _issue(d, "site_rsa", "site.test", ["site.test", "www.site.test"])
    _issue(d, "site_ec", "site.test", ["site.test", "www.site.test"], key="ec")
    _issue(d, "wild", "other", ["*.other.test"], key="ec")
    _issue(d, "backend", "backend.test", ["backend.test"])
    _issue(d, "alice", "alice", [], ca="clientca", client=True)
    _issue(d, "stranger", "mallory", [], ca="otherca", client=True)
    return d


def cert_cn(der):
    r = subprocess.run(["openssl", "x509", "-inform", "DER", "-noout", "-subject",
                        "-nameopt", "multiline"], input=der, capture_output=True, timeout=10)
    for line in r.stdout.decode().splitlines():
        if "commonName" in line:
            return line.split("=", 1)[1].strip()
    return None


def client_ctx(pki, cert=None, alpn=("http/1.1",)):
    ctx = ssl.create_default_context(cafile=str(pki / "ca.pem"))
    if alpn:
        ctx.set_alpn_protocols(list(alpn))
    if cert:
        ctx.load_cert_chain(str(pki / f"{cert}.pem"), str(pki / f"{cert}.key"))
    return ctx


def https_get(port, pki, path="/", sni="site.test", ctx=None, headers="", session=None):
    """One request on a new TLS connection; returns (status, headers, body, ssl socket info)."""
    ctx = ctx or client_ctx(pki)
    raw = socket.create_connection(("127.0.0.1", port), timeout=5)
    with ctx.wrap_socket(raw, server_hostname=sni, session=session) as s:
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: {sni or 'x'}\r\n{headers}"
                  "Connection: close\r\n\r\n".encode())
        data = recv_until_eof(s)
        info = {"cn": cert_cn(s.getpeercert(binary_form=True)), "version": s.version(),
                "alpn": s.selected_alpn_protocol(), "reused": s.session_reused,
                "session": s.session}
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    hdrs = {}
    for ln in lines[1:]:
        k, _, v = ln.partition(":")
        hdrs[k.strip().lower()] = v.strip()
    return int(lines[0].split()[1]), hdrs, body, info


def s_client(port, *args, sni="site.test", stdin=b"Q\n", brief=True):
    cmd = ["openssl", "s_client", "-connect", f"127.0.0.1:{port}"] + (["-brief"] if brief else [])
    if sni:
        cmd += ["-servername", sni]
    r = subprocess.run(cmd + list(args), input=stdin, capture_output=True, timeout=20)
    return r.returncode, (r.stdout + r.stderr).decode(errors="replace")


# --------------------------------------------------------------------------- configs

def tls_block(pki, extra=""):
    return ("tls:\n"
            "  certificates:\n"
            f"    - {{ cert: {pki}/site_ec.pem, key: {pki}/site_ec.key }}\n"
            f"    - {{ cert: {pki}/site_rsa.pem, key: {pki}/site_rsa.key }}\n"
            f"    - {{ cert: {pki}/wild.pem, key: {pki}/wild.key }}\n"
            "  handshake_timeout: 1s\n" + "".join(f"  {ln}\n" for ln in extra.splitlines()))


@pytest.fixture
def https(strata, origin, pki):
    """Starts an https listener in front of one recording origin; returns (strata, port,
    admin port, origin, access log path)."""
    def start(tls_extra="", routes=None, http_extra=""):
        a = origin("a", lambda req: (200, {"content-type": "text/plain"}, b"a"))
        port, admin = free_port(), free_port()
        log = pki.parent / f"access-{port}.log"
        cfg = http_config(port, {"app": {"servers": [a.address]}}, admin_port=admin,
                          listener_extra=tls_block(pki, tls_extra), routes=routes,
                          http_extra=f"access_log: {{ format: json, path: {log} }}\n" + http_extra,
                          workers=1)
        s = strata(cfg, listen_ports=[port])
        return s, port, admin, a, log

    return start


def metric_sum(m, name, **labels):
    """Sum of the samples of `name` whose labels include `labels`."""
    want = {(k, str(v)) for k, v in labels.items()}
    return sum(v for (n, ls), v in m.items() if n == name and want <= set(ls))


def access_entries(log, n, timeout=5.0):
    wait_for(lambda: log.exists() and len(log.read_text().splitlines()) >= n, timeout,
             what=f"{n} access-log lines")
    return [json.loads(ln) for ln in log.read_text().splitlines()]


# --------------------------------------------------------------------------- termination

def test_https_through_curl_and_python(https, pki):
    s, port, admin, a, log = https()
    r = subprocess.run(["curl", "-sS", "--cacert", str(pki / "ca.pem"), "--resolve",
                        f"site.test:{port}:127.0.0.1", f"https://site.test:{port}/hello"],
                       capture_output=True, timeout=20)
    assert r.returncode == 0, r.stderr
    assert r.stdout == b"a"
    status, hdrs, body, info = https_get(port, pki, "/py")
    assert (status, body) == (200, b"a")
    assert info["alpn"] == "http/1.1" and info["version"] in ("TLSv1.2", "TLSv1.3")
    assert [r.target for r in a.requests] == ["/hello", "/py"]
    assert all(r.header("x-forwarded-proto") == "https" for r in a.requests)
    e = access_entries(log, 2)[-1]
    assert e["tls_version"] == info["version"] and e["tls_sni"] == "site.test", e
    assert e["tls_cipher"] not in ("", "-") and e["status"] == 200


def test_certificate_chosen_by_sni(https, pki):
    s, port, *_ = https()
    for sni, cn in [("site.test", "site.test"), ("www.site.test", "site.test"),
                    ("a.other.test", "other"), ("b.other.test", "other")]:
        assert https_get(port, pki, sni=sni)[3]["cn"] == cn, sni
    # unknown names and no SNI get the first certificate
    ctx = client_ctx(pki)
    ctx.check_hostname = False
    for sni in ("unknown.test", None):
        assert https_get(port, pki, sni=sni, ctx=ctx)[3]["cn"] == "site.test", sni


def test_ecdsa_or_rsa_by_what_the_client_supports(https, pki):
    s, port, *_ = https()
    rc, out = s_client(port, "-tls1_3")
    assert rc == 0 and "ECDSA" in out or "ecdsa" in out, out
    rc, out = s_client(port, "-tls1_3", "-sigalgs", "rsa_pss_rsae_sha256:rsa_pss_rsae_sha384")
    assert rc == 0 and ("RSA-PSS" in out or "rsa_pss" in out), out
    rc, out = s_client(port, "-tls1_2", "-cipher", "ECDHE-RSA-AES128-GCM-SHA256")
    assert rc == 0 and "ECDHE-RSA-AES128-GCM-SHA256" in out, out


def test_versions_and_alpn(https, pki):
    s, port, *_ = https()
    assert s_client(port, "-tls1_1")[0] != 0
    for v in ("-tls1_2", "-tls1_3"):
        rc, out = s_client(port, v, "-alpn", "h2,http/1.1", brief=False)
        assert rc == 0 and "ALPN protocol: http/1.1" in out, out
    rc, out = s_client(port, "-tls1_3", "-alpn", "h2", brief=False)
    assert rc == 0 and "No ALPN negotiated" in out, out


def test_session_resumption(https, pki):
    s, port, *_ = https()
    ctx = client_ctx(pki)
    first = https_get(port, pki, ctx=ctx)[3]
    assert not first["reused"] and first["session"] is not None
    second = https_get(port, pki, ctx=ctx, session=first["session"])[3]
    assert second["reused"], "the ticket from the first connection was not accepted"


def test_mtls_required(https, pki):
    s, port, admin, a, log = https(
        tls_extra=f"client_auth: {{ ca: {pki}/clientca.pem, required: true }}",
        http_extra="")
    status, _, body, _ = https_get(port, pki, ctx=client_ctx(pki, cert="alice"))
    assert status == 200
    for ctx in (client_ctx(pki), client_ctx(pki, cert="stranger")):
        with pytest.raises((ssl.SSLError, ConnectionResetError, BrokenPipeError)):
            https_get(port, pki, ctx=ctx)
    assert len(a.requests) == 1
    wait_for(lambda: metric_sum(s.metrics(admin), "strata_listener_tls_handshake_failures_total",
                                reason="bad_certificate") >= 1, 5, what="failure counted")


def test_mtls_optional_identity_in_routes_and_headers(https, pki):
    routes = ('- match: { client_cert: { subject: { regex: "CN=alice" } } }\n'
              '  request_headers:\n'
              '    set: { x-client-subject: "{tls_client_subject}",'
              ' x-client-fp: "{tls_client_fingerprint}" }\n'
              '  backend: app\n'
              '- respond: { status: 403, body: "client certificate needed" }\n')
    s, port, admin, a, log = https(
        tls_extra=f"client_auth: {{ ca: {pki}/clientca.pem, required: false }}", routes=routes)
    status, _, body, _ = https_get(port, pki)
    assert (status, body) == (403, b"client certificate needed")
    status, _, body, _ = https_get(port, pki, ctx=client_ctx(pki, cert="alice"))
    assert status == 200
    r = a.requests[0]
    assert "CN=alice" in r.header("x-client-subject"), r.headers
    fp = subprocess.run(["openssl", "x509", "-in", str(pki / "alice.pem"), "-noout",
                         "-fingerprint", "-sha256"], capture_output=True, text=True).stdout
    want = fp.split("=", 1)[1].strip().replace(":", "").lower()
    assert r.header("x-client-fp").replace(":", "").lower() == want


def test_large_bodies_over_tls(https, pki, origin):
    s, port, admin, a, log = https()
    body = os.urandom(5 << 20)
    ctx = client_ctx(pki)
    raw = socket.create_connection(("127.0.0.1", port), timeout=10)
    with ctx.wrap_socket(raw, server_hostname="site.test") as c:
        c.sendall(b"POST /up HTTP/1.1\r\nHost: site.test\r\nContent-Length: "
                  + str(len(body)).encode() + b"\r\nConnection: close\r\n\r\n" + body)
        data = recv_until_eof(c)
    assert data.startswith(b"HTTP/1.1 200")
    assert hashlib.sha256(a.requests[0].body).digest() == hashlib.sha256(body).digest()



def test_early_answer_over_tls_lingers_after_close_notify(https, pki):
    """A 413 during an upload: close_notify and FIN after it, then the rest of the upload is
    read and discarded until the client closes (test_lingering_close.py)."""
    s, port, *_ = https(http_extra="max_request_body: 1m\nlingering_timeout: 1h\n")
    base = len(os.listdir(f"/proc/{s.pid}/fd"))
    raw = socket.create_connection(("127.0.0.1", port), timeout=10)
    with client_ctx(pki).wrap_socket(raw, server_hostname="site.test") as c:
        c.sendall(b"PUT /up HTTP/1.1\r\nHost: site.test\r\nContent-Length: 4194304\r\n\r\n"
                  + b"z" * (256 * 1024))
        time.sleep(0.2)
        got = recv_until_eof(c)  # raises on a reset
        assert got.startswith(b"HTTP/1.1 413 "), got[:80]
        c.sendall(b"z" * 65536)  # still read: the connection lingers, the client is not reset
        assert len(os.listdir(f"/proc/{s.pid}/fd")) == base + 1
    wait_for(lambda: len(os.listdir(f"/proc/{s.pid}/fd")) == base, 5,
             what="the lingering connection closed")


# --------------------------------------------------------------------------- bad input

def closed_with_at_most_an_alert(sock, timeout):
    """True if the peer closes within `timeout` having sent nothing but TLS alert records
    (a fatal alert before the close is what TLS asks for)."""
    sock.settimeout(timeout)
    data = b""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            chunk = sock.recv(4096)
        except (ConnectionResetError, BrokenPipeError):
            break
        except socket.timeout:
            return False
        if not chunk:
            break
        data += chunk
    else:
        return False
    while data:  # only alert records (type 21)
        if len(data) < 5 or data[0] != 21:
            return False
        data = data[5 + int.from_bytes(data[3:5], "big"):]
    return True


def test_bad_input_is_closed_and_counted(https, pki):
    s, port, admin, a, log = https()
    cases = [(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", "not_tls"),
             (b"\x16\x03\x01\x00\x05garbagegarbage", None),
             (b"\x16\x03\x01\xff\xff" + os.urandom(200), None)]
    for raw, _ in cases:
        c = connect(port)
        with c:
            c.sendall(raw)
            assert closed_with_at_most_an_alert(c, 3.0), raw
    # a silent client: closed by handshake_timeout (1s)
    c = connect(port)
    with c:
        t0 = time.monotonic()
        assert closed_by_peer(c, 4.0)
        assert 0.5 < time.monotonic() - t0 < 3.5
    m = s.metrics(admin)
    name = "strata_listener_tls_handshake_failures_total"
    assert metric_sum(m, name, reason="not_tls") == 1, m.text
    assert metric_sum(m, name, reason="timeout") == 1, m.text
    assert metric_sum(m, name) == 4, m.text
    ends = [e["end"] for e in s.conn_logs()]
    assert ends.count("tls_error") == 3 and ends.count("handshake_timeout") == 1, ends
    assert a.requests == []
    # and a good client is still served
    assert https_get(port, pki)[0] == 200


def _expired_cert(pki, d):
    """A certificate for expired.test signed by the test CA, valid only in 2020."""
    import datetime
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID
    ca_key = serialization.load_pem_private_key((pki / "ca.key").read_bytes(), None)
    ca = x509.load_pem_x509_certificate((pki / "ca.pem").read_bytes())
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "expired.test")]))
            .issuer_name(ca.subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(datetime.datetime(2020, 1, 1))
            .not_valid_after(datetime.datetime(2020, 2, 1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("expired.test")]), False)
            .sign(ca_key, hashes.SHA256()))
    (d / "expired.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (d / "expired.key").write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))


def test_bad_tls_configs_are_refused_by_check(pki, tmp_path, strata_bin):
    _expired_cert(pki, tmp_path)
    cases = {
        "mismatched key": (f"{{ cert: {pki}/site_rsa.pem, key: {pki}/site_ec.key }}",
                           "does not match"),
        "missing file": (f"{{ cert: {pki}/nope.pem, key: {pki}/site_ec.key }}", "nope.pem"),
        "not a certificate": (f"{{ cert: {pki}/site_ec.key, key: {pki}/site_ec.key }}",
                              "certificate"),
        "expired": (f"{{ cert: {tmp_path}/expired.pem, key: {tmp_path}/expired.key }}",
                    "expired"),
    }
    for name, (entry, want) in cases.items():
        cfg = tmp_path / f"{name.replace(' ', '_')}.yaml"
        cfg.write_text("listeners:\n  - name: web\n    listen: 127.0.0.1:1\n    mode: http\n"
                       f"    tls: {{ certificates: [ {entry} ] }}\n    backend: app\n"
                       "backends:\n  app: { servers: [ 127.0.0.1:2 ] }\n")
        r = subprocess.run([strata_bin, "check", str(cfg)], capture_output=True, text=True,
                           timeout=20)
        assert r.returncode == 1, (name, r.stdout, r.stderr)
        assert f"{cfg}:5:" in r.stderr and want in r.stderr, (name, r.stderr)


# --------------------------------------------------------------------------- L4 offload

def test_tls_offload_on_tcp_listener(strata, pki):
    echo = EchoServer().start()
    try:
        port = free_port()
        cfg = ("workers: 1\nlisteners:\n  - name: web\n"
               f"    listen: 127.0.0.1:{port}\n    mode: tcp\n    backend: app\n"
               + "".join(f"    {ln}\n" for ln in tls_block(pki).splitlines())
               + f"backends:\n  app: {{ servers: [ \"{echo.address}\" ] }}\n")
        strata(cfg, listen_ports=[port])
        ctx = client_ctx(pki, alpn=None)
        payload = os.urandom(1 << 20)
        raw = socket.create_connection(("127.0.0.1", port), timeout=10)
        with ctx.wrap_socket(raw, server_hostname="site.test") as c:
            got = b""
            for i in range(0, len(payload), 65536):
                c.sendall(payload[i:i + 65536])
                while len(got) < i + min(65536, len(payload) - i):
                    got += c.recv(65536)
            assert got == payload
    finally:
        echo.stop()


@pytest.mark.timeout(180)
def test_psql_sslmode_require_through_offload(strata, pki, postgres):
    """psql asks for TLS (sslmode=require); Strata answers the SSLRequest, terminates TLS
    and relays the plaintext protocol to a PostgreSQL that has no TLS at all."""
    port = free_port()
    cfg = ("workers: 1\nlisteners:\n  - name: pg\n"
           f"    listen: 127.0.0.1:{port}\n    mode: tcp\n    backend: pg\n"
           + "".join(f"    {ln}\n" for ln in tls_block(pki, "starttls: postgres").splitlines())
           + f"backends:\n  pg: {{ servers: [ \"127.0.0.1:{postgres}\" ] }}\n")
    strata(cfg, listen_ports=[port])
    env = dict(os.environ, PGCONNECT_TIMEOUT="5", PGSSLMODE="verify-full",
               PGSSLROOTCERT=str(pki / "ca.pem"), PGGSSENCMODE="disable")
    base = [PSQL, "-h", "site.test", "-p", str(port), "-U", "postgres", "-d", "postgres",
            "-X", "-A", "-t", "-v", "ON_ERROR_STOP=1"]
    hosts = dict(env, PGHOSTADDR="127.0.0.1")
    r = subprocess.run(base + ["-c", "SELECT sum(g) FROM generate_series(1, 100000) g"],
                       capture_output=True, text=True, env=hosts, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "5000050000"
    # the server itself has no TLS: a direct sslmode=require connection fails
    direct = subprocess.run([PSQL, "-h", "127.0.0.1", "-p", str(postgres), "-U", "postgres",
                             "-X", "-c", "SELECT 1"], capture_output=True, text=True,
                            env=dict(env, PGSSLMODE="require"), timeout=30)
    assert direct.returncode != 0 and "SSL" in direct.stderr, direct.stderr
    # a client that does not ask for TLS is refused by the TLS listener
    plain = subprocess.run(base + ["-c", "SELECT 1"], capture_output=True, text=True,
                           env=dict(hosts, PGSSLMODE="disable"), timeout=30)
    assert plain.returncode != 0


# --------------------------------------------------------------------------- to servers

class NginxTLS:
    """An NGINX origin over TLS that answers `reused=<$ssl_session_reused>
    sni=<$ssl_server_name> client=<$ssl_client_s_dn>` for every request."""

    def __init__(self, workdir, pki, client_ca=None):
        self.port = free_port()
        workdir.mkdir(exist_ok=True)
        verify = (f"ssl_client_certificate {client_ca}; ssl_verify_client on;"
                  if client_ca else "")
        conf = workdir / "nginx.conf"
        conf.write_text(f"""
worker_processes 1;
events {{ worker_connections 256; }}
http {{
    access_log off;
    server {{
        listen 127.0.0.1:{self.port} ssl;
        ssl_certificate {pki}/backend.pem;
        ssl_certificate_key {pki}/backend.key;
        ssl_session_cache shared:S:1m;
        {verify}
        location / {{
            return 200 "reused=$ssl_session_reused sni=$ssl_server_name client=$ssl_client_s_dn\\n";
        }}
    }}
}}
""")
        self._log = open(workdir / "nginx.stderr", "wb")
        self.proc = subprocess.Popen(
            ["nginx", "-e", "stderr", "-c", str(conf), "-p", str(workdir), "-g",
             f"daemon off; error_log stderr; pid {workdir}/nginx.pid;"],
            stdin=subprocess.DEVNULL, stdout=self._log, stderr=self._log,
            preexec_fn=die_with_parent)
        deadline = time.monotonic() + 10
        while not port_listening(self.port):
            assert self.proc.poll() is None and time.monotonic() < deadline, \
                (workdir / "nginx.stderr").read_text()
            time.sleep(0.05)

    def stop(self):
        stop_process(self.proc, timeout=10)
        self._log.close()


@pytest.fixture
def nginx_tls(tmp_path, pki):
    if not shutil.which("nginx"):
        pytest.skip("nginx not installed (scripts/install-deps.sh test)")
    started = []

    def start(**kw):
        n = NginxTLS(tmp_path / f"ngx{len(started)}", pki, **kw)
        started.append(n)
        return n

    yield start
    for n in started:
        n.stop()


def http_to_tls_backend(strata, port, nginx_port, backend_tls, admin=None, extra=""):
    cfg = http_config(port, {"app": {"servers": [f"127.0.0.1:{nginx_port}"],
                                     "extra": f"tls: {backend_tls}\n" + extra}},
                      admin_port=admin, workers=1)
    return strata(cfg, listen_ports=[port])


def plain_get(port, path="/"):
    """(status, body) of one plain request through Strata."""
    raw = f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode()
    out = parse_response(http_request(port, raw))
    assert len(out) == 1, out
    return out[0][0], out[0][2]


def test_reencryption_verified_with_sni_and_session_reuse(strata, nginx_tls, pki):
    n = nginx_tls()
    port = free_port()
    http_to_tls_backend(strata, port, n.port,
                        f"{{ ca: {pki}/ca.pem, sni: backend.test }}",
                        extra="keepalive: { max_idle: 0 }\n")
    bodies = [plain_get(port) for _ in range(4)]
    assert all(st == 200 for st, _ in bodies), bodies
    assert all(b"sni=backend.test" in b for _, b in bodies), bodies
    # keep-alive off: four TLS connections, the later ones resumed
    assert b"reused=." in bodies[0][1] and b"reused=r" in bodies[-1][1], bodies


def test_reencryption_keepalive_pool(strata, nginx_tls, pki):
    n = nginx_tls()
    port = free_port()
    http_to_tls_backend(strata, port, n.port, f"{{ ca: {pki}/ca.pem, sni: backend.test }}")
    c = socket.create_connection(("127.0.0.1", port), timeout=5)
    with c:
        for i in range(20):
            c.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            data = b""
            while b"\n" not in data.partition(b"\r\n\r\n")[2]:
                data += c.recv(65536)
            assert data.startswith(b"HTTP/1.1 200"), data


def test_reencryption_refuses_unverified_server(strata, nginx_tls, pki):
    n = nginx_tls()
    port = free_port()
    s = http_to_tls_backend(strata, port, n.port, f"{{ ca: {pki}/otherca.pem, sni: backend.test }}")
    assert plain_get(port)[0] == 502
    # wrong name, right CA
    s.stop()
    port = free_port()
    http_to_tls_backend(strata, port, n.port, f"{{ ca: {pki}/ca.pem, sni: wrong.test }}")
    assert plain_get(port)[0] == 502


def test_reencryption_with_client_certificate(strata, nginx_tls, pki):
    n = nginx_tls(client_ca=pki / "clientca.pem")
    port = free_port()
    http_to_tls_backend(strata, port, n.port,
                        f"{{ ca: {pki}/ca.pem, sni: backend.test, cert: {pki}/alice.pem,"
                        f" key: {pki}/alice.key }}")
    status, body = plain_get(port)
    assert status == 200 and b"CN=alice" in body, body


def test_tls_health_check(strata, nginx_tls, pki):
    n = nginx_tls()
    port, admin = free_port(), free_port()
    s = http_to_tls_backend(strata, port, n.port, f"{{ ca: {pki}/ca.pem, sni: backend.test }}",
                            admin=admin,
                            extra="health_check: { type: http, path: /, interval: 200ms,"
                                  " rise: 1, fall: 1 }\n")
    wait_for(lambda: metric_sum(s.metrics(admin), "strata_server_up", backend="app") == 1, 5,
             what="server up by a TLS health check")
    n.stop()
    wait_for(lambda: metric_sum(s.metrics(admin), "strata_server_up", backend="app") == 0, 5,
             what="server down")


def test_tls_health_check_refuses_unverified_server(strata, nginx_tls, pki):
    n = nginx_tls()
    port, admin = free_port(), free_port()
    s = http_to_tls_backend(strata, port, n.port, f"{{ ca: {pki}/otherca.pem, sni: backend.test }}",
                            admin=admin,
                            extra="health_check: { type: tcp, interval: 200ms, rise: 1, fall: 1 }\n")
    s.wait_log(r"is DOWN: .*TLS handshake failed: bad certificate", timeout=5)
    assert metric_sum(s.metrics(admin), "strata_server_up", backend="app") == 0


@pytest.mark.timeout(600)
def test_testssl_finds_nothing_high_on_defaults(https, pki, tmp_path):
    """testssl.sh (Debian's `testssl`) against a listener with default TLS settings: no
    HIGH or CRITICAL finding about protocols, ciphers, key exchange or vulnerabilities.
    Findings about the certificate itself (`cert_*`: the test CA is not trusted, it lives
    30 days, it names no OCSP/CRL) are about the file the operator supplies, not Strata."""
    tool = shutil.which("testssl") or shutil.which("testssl.sh")
    if not tool:
        pytest.skip("testssl not installed (scripts/install-deps.sh test)")
    s, port, *_ = https()
    out = tmp_path / "testssl.json"
    r = subprocess.run([tool, "--quiet", "--color", "0", "--warnings", "off", "--jsonfile",
                        str(out), f"https://127.0.0.1:{port}"], capture_output=True, text=True,
                       timeout=500)
    assert out.exists(), r.stdout[-2000:] + r.stderr[-2000:]
    findings = json.loads(out.read_text())
    assert len(findings) > 50, findings  # the scan really ran
    bad = [(f["severity"], f["id"], f["finding"]) for f in findings
           if f.get("severity") in ("HIGH", "CRITICAL") and not f["id"].startswith("cert")]
    assert bad == [], bad
    ids = {f["id"]: f["finding"] for f in findings}
    assert "not offered" in ids.get("SSLv3", "") and "not offered" in ids.get("TLS1_1", "")
    assert "offered" in ids.get("TLS1_3", "")


def test_ocsp_response_is_stapled(strata, pki, tmp_path, origin):
    """An OCSP response made by the test CA (openssl ocsp, from an index) is stapled to
    handshakes that ask for it (`openssl s_client -status`)."""
    d = tmp_path
    serial = subprocess.run(["openssl", "x509", "-in", str(pki / "site_ec.pem"), "-noout",
                             "-serial"], capture_output=True, text=True).stdout.split("=")[1]
    expiry = time.strftime("%y%m%d%H%M%SZ", time.gmtime(time.time() + 20 * 86400))
    (d / "index.txt").write_text(f"V\t{expiry}\t\t{serial.strip()}\tunknown\t/CN=site.test\n")
    _openssl("ocsp", "-issuer", f"{pki}/ca.pem", "-cert", f"{pki}/site_ec.pem", "-no_nonce",
             "-reqout", "req.der", cwd=d)
    _openssl("ocsp", "-index", "index.txt", "-CA", f"{pki}/ca.pem", "-rsigner", f"{pki}/ca.pem",
             "-rkey", f"{pki}/ca.key", "-reqin", "req.der", "-respout", "resp.der", "-ndays", "1",
             cwd=d)
    a = origin("a")
    port = free_port()
    tls = ("tls:\n  certificates:\n"
           f"    - {{ cert: {pki}/site_ec.pem, key: {pki}/site_ec.key, ocsp: {d}/resp.der }}\n")
    strata(http_config(port, {"app": {"servers": [a.address]}}, listener_extra=tls, workers=1),
           listen_ports=[port])
    rc, out = s_client(port, "-status", brief=False)
    assert rc == 0 and "OCSP Response Status: successful" in out and "Cert Status: good" in out, out


@pytest.mark.timeout(120)
def test_websocket_over_tls(strata, pki):
    """wss:// through a TLS listener to a plain WebSocket origin: frames from 5 bytes to
    16 MiB both ways, intact (TLS records and the tunnel's partial writes)."""
    import asyncio
    websockets = pytest.importorskip("websockets")
    sizes = (5, 70000, 1 << 20, 16 << 20, 17)

    async def echo(ws, path=None):
        async for msg in ws:
            await ws.send(msg)

    async def scenario():
        server = await websockets.serve(echo, "127.0.0.1", 0, max_size=None, compression=None)
        try:
            wport = server.sockets[0].getsockname()[1]
            port = free_port()
            strata(http_config(port, {"ws": {"servers": [f"127.0.0.1:{wport}"]}},
                               listener_extra=tls_block(pki)), listen_ports=[port])
            ctx = client_ctx(pki)
            async with websockets.connect(f"wss://site.test:{port}/chat", ssl=ctx,
                                          host="127.0.0.1", port=port,
                                          server_hostname="site.test", open_timeout=5,
                                          max_size=None, compression=None) as ws:
                for i, n in enumerate(sizes):
                    data = os.urandom(n)
                    await ws.send(data)
                    got = await asyncio.wait_for(ws.recv(), 30)
                    assert got == data, f"frame {i}: {len(got)} bytes back, {n} sent"
        finally:
            server.close()
            await server.wait_closed()

    asyncio.run(asyncio.wait_for(scenario(), 100))
