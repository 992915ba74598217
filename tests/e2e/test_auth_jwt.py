"""mode: http — the jwt filter with real tokens: keys made and tokens signed here with
python3-cryptography (RS256/384/512, PS256, ES256/384, EdDSA, HS256), a JWKS file, and a
JWKS URL served by a test HTTPS server that Strata fetches again on an unknown kid. Each
kind of bad token is refused with 401 and a Bearer challenge; claims are forwarded as
request fields and routes match them."""
import base64
import http.server
import json
import re
import ssl
import threading
import time

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa, utils
import hmac
import hashlib

from conftest import LOOPBACK, free_port, wait_for
from h2_backend import make_cert
from http_backend import http_config
from test_http_filters import get, json_log


def b64u(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def uint_b64(n, size=None):
    size = size or (n.bit_length() + 7) // 8
    return b64u(n.to_bytes(size, "big"))


class Keys:
    """One key of each type, their JWKS, and a signer for every algorithm."""

    def __init__(self, prefix=""):
        self.rsa = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.p256 = ec.generate_private_key(ec.SECP256R1())
        self.p384 = ec.generate_private_key(ec.SECP384R1())
        self.ed = ed25519.Ed25519PrivateKey.generate()
        self.secret = b"s" * 32
        self.prefix = prefix

    def jwks(self, only=None):
        rn = self.rsa.public_key().public_numbers()
        p2 = self.p256.public_key().public_numbers()
        p3 = self.p384.public_key().public_numbers()
        ed = self.ed.public_key().public_bytes(serialization.Encoding.Raw,
                                               serialization.PublicFormat.Raw)
        keys = [
            {"kty": "RSA", "kid": self.prefix + "rsa", "n": uint_b64(rn.n), "e": uint_b64(rn.e)},
            {"kty": "EC", "kid": self.prefix + "p256", "crv": "P-256",
             "x": uint_b64(p2.x, 32), "y": uint_b64(p2.y, 32)},
            {"kty": "EC", "kid": self.prefix + "p384", "crv": "P-384",
             "x": uint_b64(p3.x, 48), "y": uint_b64(p3.y, 48)},
            {"kty": "OKP", "kid": self.prefix + "ed", "crv": "Ed25519", "x": b64u(ed)},
            {"kty": "oct", "kid": self.prefix + "hs", "k": b64u(self.secret)},
            {"kty": "RSA", "use": "enc", "kid": "ignored", "n": uint_b64(rn.n), "e": "AQAB"},
        ]
        if only:
            keys = [k for k in keys if k["kid"] in only]
        return json.dumps({"keys": keys})

    KID = {"RS256": "rsa", "RS384": "rsa", "RS512": "rsa", "PS256": "rsa", "ES256": "p256",
           "ES384": "p384", "EdDSA": "ed", "HS256": "hs"}

    def sign(self, alg, claims, kid=None, header=None):
        h = {"alg": alg, "typ": "JWT", "kid": kid if kid is not None else
             self.prefix + self.KID.get(alg, "rsa")}
        if kid is False:
            del h["kid"]
        h.update(header or {})
        inp = (b64u(json.dumps(h).encode()) + "." + b64u(json.dumps(claims).encode())).encode()
        return inp.decode() + "." + b64u(self.signature(alg, inp))

    def signature(self, alg, inp):
        md = {"256": hashes.SHA256(), "384": hashes.SHA384(), "512": hashes.SHA512()}
        if alg.startswith("RS"):
            return self.rsa.sign(inp, padding.PKCS1v15(), md[alg[2:]])
        if alg == "PS256":
            return self.rsa.sign(inp, padding.PSS(padding.MGF1(hashes.SHA256()), 32), hashes.SHA256())
        if alg.startswith("ES"):
            key, size = (self.p256, 32) if alg == "ES256" else (self.p384, 48)
            r, s = utils.decode_dss_signature(key.sign(inp, ec.ECDSA(md[alg[2:]])))
            return r.to_bytes(size, "big") + s.to_bytes(size, "big")
        if alg == "EdDSA":
            return self.ed.sign(inp)
        if alg == "HS256":
            return hmac.new(self.secret, inp, hashlib.sha256).digest()
        if alg == "none":
            return b""
        raise ValueError(alg)


@pytest.fixture(scope="module")
def keys():
    return Keys()


def claims(**kw):
    now = int(time.time())
    c = {"sub": "alice", "iss": "https://issuer.test", "aud": ["api", "other"], "exp": now + 300,
         "nbf": now - 10, "role": "admin", "groups": ["a", "b"]}
    c.update(kw)
    return {k: v for k, v in c.items() if v is not None}


JWT_ROUTE = """\
- match: {{ path_prefix: / }}
  backend: app
  jwt:
    jwks_file: {jwks}
    issuer: https://issuer.test
    audiences: [api]
    clock_skew: 5s
    forward_token: false
    forward_claims: {{ sub: x-user, role: x-role, groups: x-groups }}
"""


def run_jwt(strata, origin, tmp_path, keys, admin=False):
    a = origin()
    jwks = tmp_path / "jwks.json"
    jwks.write_text(keys.jwks())
    port, admin_port = free_port(), free_port() if admin else None
    text = http_config(port, {"app": {"servers": [a.address]}},
                       routes=JWT_ROUTE.format(jwks=jwks), admin_port=admin_port,
                       http_extra="access_log: { format: json }")
    s = strata(text, listen_ports=[port], admin_port=admin_port)
    return s, port, a, admin_port


def bearer(tok):
    return {"Authorization": "Bearer " + tok}


@pytest.mark.parametrize("alg", ["RS256", "RS384", "RS512", "PS256", "ES256", "ES384", "EdDSA",
                                 "HS256"])
def test_each_algorithm_accepted_and_claims_forwarded(strata, origin, tmp_path, keys, alg):
    s, port, a, _ = run_jwt(strata, origin, tmp_path, keys)
    status, _, body = get(port, "/x", {**bearer(keys.sign(alg, claims())),
                                       "X-User": "mallory", "X-Role": "root"})
    assert status == 200, body
    req = a.requests[-1]
    assert req.header("x-user") == "alice"
    assert req.header("x-role") == "admin"
    assert req.header("x-groups") == "a,b"
    assert req.header_all("x-user") == ["alice"]
    assert req.header("authorization") is None  # forward_token: false


def test_a_token_without_kid_uses_the_keys_of_its_algorithm(strata, origin, tmp_path, keys):
    s, port, a, _ = run_jwt(strata, origin, tmp_path, keys)
    status, _, body = get(port, "/", bearer(keys.sign("ES256", claims(), kid=False)))
    assert status == 200, body


def bad_tokens(keys):
    now = int(time.time())
    good = keys.sign("RS256", claims())
    h, p, sig = good.split(".")
    flipped = sig[:-2] + ("A" if sig[-2] != "A" else "B") + sig[-1]
    other = Keys()
    return {
        "bad signature": (h + "." + p + "." + flipped, "invalid signature"),
        "signed by another key": (other.sign("RS256", claims(), kid="rsa"), "invalid signature"),
        "payload changed": (h + "." + b64u(json.dumps(claims(sub="root")).encode()) + "." + sig,
                            "invalid signature"),
        "expired": (keys.sign("ES256", claims(exp=now - 60)), "token expired"),
        "nbf in the future": (keys.sign("ES256", claims(nbf=now + 120)), "token not yet valid"),
        "no exp": (keys.sign("ES256", claims(exp=None)), "token without expiry"),
        "wrong issuer": (keys.sign("EdDSA", claims(iss="https://evil.test")), "wrong issuer"),
        "wrong audience": (keys.sign("EdDSA", claims(aud="web")), "wrong audience"),
        "unknown kid": (keys.sign("RS256", claims(), kid="nope"), "unknown key id"),
        "alg none": (keys.sign("none", claims(), kid="rsa"), "malformed token signature"),
        "alg none signed": (keys.sign("RS256", claims(), header={"alg": "none"}),
                            "algorithm not allowed"),
        "HS256 with the RSA key as secret": (keys.sign("HS256", claims(), kid="rsa"),
                                             "invalid signature"),
        "malformed": ("not.a.jwt", "malformed token header"),
        "two parts": ("abc.def", "malformed token"),
        "bad base64": (h + "." + p + "." + sig + "*", "malformed token signature"),
        "crit": (keys.sign("EdDSA", claims(), header={"crit": ["exp"]}),
                 "unsupported critical header"),
    }


def test_each_kind_of_bad_token_is_refused(strata, origin, tmp_path, keys):
    s, port, a, admin = run_jwt(strata, origin, tmp_path, keys, admin=True)
    cases = bad_tokens(keys)
    for name, (tok, why) in cases.items():
        status, msg, body = get(port, "/", bearer(tok))
        assert status == 401, (name, body)
        challenge = msg["WWW-Authenticate"]
        assert challenge.startswith('Bearer realm="strata", error="invalid_token"'), name
        assert why in body.decode(), (name, body)
    status, msg, body = get(port, "/")
    assert status == 401 and msg["WWW-Authenticate"] == 'Bearer realm="strata"'
    status, msg, body = get(port, "/", {"Authorization": "Basic YTpi"})
    assert status == 401
    assert a.requests == []
    lines = json_log(s, len(cases) + 2)
    assert {ln["detail"] for ln in lines} >= {w for _, w in cases.values()}
    assert all(ln["status"] == 401 and ln["end"] == "answered" for ln in lines)
    m = s.metrics(admin)
    ev = "strata_listener_http_filter_events_total"
    assert m.get(ev, listener="web", event="jwt_refused") == len(cases)
    assert m.get(ev, listener="web", event="jwt_missing") == 2
    assert m.get(ev, listener="web", event="jwt_accepted") == 0


def test_routes_match_a_claim_forwarded_by_the_listener(strata, origin, tmp_path, keys):
    admin_o, user_o = origin("admin"), origin("user")
    jwks = tmp_path / "jwks.json"
    jwks.write_text(keys.jwks())
    port = free_port()
    routes = """\
- match: { header: { x-role: admin } }
  backend: admin
- backend: user
"""
    http_extra = f"""\
jwt:
  jwks_file: {jwks}
  optional: true
  forward_claims: {{ role: x-role }}
"""
    s = strata(http_config(port, {"admin": {"servers": [admin_o.address]},
                                  "user": {"servers": [user_o.address]}},
                           routes=routes, http_extra=http_extra), listen_ports=[port])
    assert get(port, "/", bearer(keys.sign("ES384", claims(role="admin"))))[0] == 200
    assert get(port, "/", bearer(keys.sign("ES384", claims(role="viewer"))))[0] == 200
    # no token (optional): the client's own x-role is removed before routing
    assert get(port, "/", {"X-Role": "admin"})[0] == 200
    assert get(port, "/", bearer(keys.sign("ES384", claims(exp=1))))[0] == 401
    assert len(admin_o.requests) == 1 and len(user_o.requests) == 2
    assert user_o.requests[1].header("x-role") is None


class JwksServer:
    """An HTTPS server that serves `self.body` at /jwks and counts the fetches."""

    def __init__(self, cert, key, body):
        self.body = body
        self.fetches = 0
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                outer.fetches += 1
                data = outer.body.encode()
                self.send_response(200 if self.path == "/jwks" else 404)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer((LOOPBACK, 0), Handler)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(cert, key)
        self.httpd.socket = ctx.wrap_socket(self.httpd.socket, server_side=True)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self):
        return f"https://localhost:{self.httpd.server_address[1]}/jwks"

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def test_jwks_url_is_fetched_over_tls_and_refreshed_on_an_unknown_kid(strata, origin, tmp_path,
                                                                       keys):
    cert, key = make_cert(str(tmp_path))
    srv = JwksServer(cert, key, keys.jwks(only=["rsa"]))
    try:
        a = origin()
        port = free_port()
        routes = f"""\
- backend: app
  jwt:
    jwks_url: {srv.url}
    jwks_ca: {cert}
    min_refresh: 300ms
    refresh: 1h
"""
        s = strata(http_config(port, {"app": {"servers": [a.address]}}, routes=routes),
                   listen_ports=[port])
        tok = keys.sign("RS256", claims())
        wait_for(lambda: get(port, "/", bearer(tok))[0] == 200, 10, what="the first fetch")
        first = srv.fetches
        assert first >= 1
        # a key the fetched set does not have yet: refused, and a refresh is asked for
        srv.body = keys.jwks()
        new = keys.sign("EdDSA", claims())
        assert get(port, "/", bearer(new))[0] == 401
        wait_for(lambda: get(port, "/", bearer(new))[0] == 200, 10, what="the refresh")
        assert srv.fetches > first
        # unknown kids do not make a fetch each: at most one per min_refresh
        before = srv.fetches
        t0 = time.monotonic()
        for i in range(30):
            get(port, "/", bearer(keys.sign("RS256", claims(), kid=f"x{i}")))
        elapsed = time.monotonic() - t0
        time.sleep(0.4)
        assert srv.fetches - before <= 2 + int(elapsed / 0.3), (srv.fetches, before, elapsed)
        # the old keys still work: a failed fetch keeps what is held
        srv.body = "not json"
        get(port, "/", bearer(keys.sign("RS256", claims(), kid="y")))
        time.sleep(0.5)
        assert get(port, "/", bearer(tok))[0] == 200
        assert "jwt: fetching" in s.log()
    finally:
        srv.stop()


def test_config_errors_name_the_key(strata_bin, tmp_path):
    import subprocess
    bad = tmp_path / "bad.json"
    bad.write_text('{"keys": [{"kty": "RSA", "n": "AQAB", "e": "AQAB"}]}')
    text = http_config(free_port(), {"app": {"servers": ["127.0.0.1:9"]}}, routes=f"""\
- backend: app
  jwt: {{ jwks_file: {bad}, algorithms: [RS256, none] }}
""")
    p = tmp_path / "c.yaml"
    p.write_text(text)
    r = subprocess.run([strata_bin, "check", str(p)], capture_output=True, text=True, timeout=10)
    assert r.returncode != 0
    assert "jwt.algorithms" in r.stderr and "unsigned tokens are never accepted" in r.stderr
    assert "jwt.jwks_file" in r.stderr and "shorter than 2048 bits" in r.stderr, r.stderr


def test_jwt_and_cors_over_http2(strata, origin, tmp_path, keys):
    """The filters see the protocol-neutral message: the same answers to an HTTP/2 client
    (curl with prior knowledge over h2c)."""
    import subprocess
    a = origin()
    jwks = tmp_path / "jwks.json"
    jwks.write_text(keys.jwks())
    port = free_port()
    routes = f"""\
- backend: app
  cors: {{ origins: [https://app.test], headers: [authorization] }}
  jwt: {{ jwks_file: {jwks}, forward_claims: {{ sub: x-user }} }}
"""
    s = strata(http_config(port, {"app": {"servers": [a.address]}}, routes=routes,
                           http_extra="h2: { cleartext: true }"), listen_ports=[port])

    def curl(*args):
        r = subprocess.run(["curl", "-sS", "--http2-prior-knowledge", "-o", "/dev/null", "-D", "-",
                            "-w", "%{http_version}", *args, f"http://{LOOPBACK}:{port}/x"],
                           capture_output=True, text=True, timeout=30)
        assert r.returncode == 0, r.stderr
        return r.stdout.lower()

    out = curl("-H", "Authorization: Bearer " + keys.sign("EdDSA", claims()))
    assert out.startswith("http/2 200") and out.endswith("2")
    assert a.requests[-1].header("x-user") == "alice"
    out = curl()
    assert out.startswith("http/2 401") and 'www-authenticate: bearer realm="strata"' in out
    out = curl("-X", "OPTIONS", "-H", "Origin: https://app.test",
               "-H", "Access-Control-Request-Method: GET",
               "-H", "Access-Control-Request-Headers: authorization")
    assert out.startswith("http/2 204")
    assert "access-control-allow-origin: https://app.test" in out
    assert len(a.requests) == 1


def test_keyset_swaps_while_workers_verify(strata, origin, tmp_path, keys):
    """Requests with a good token keep passing while the keyset is replaced again and
    again under them (each unknown kid asks for a fetch; min_refresh 100ms): the swap's grace
    period, not luck, keeps a worker from reading a freed keyset (run it under SAN=thread or
    address to see)."""
    import http.client
    cert, key = make_cert(str(tmp_path))
    srv = JwksServer(cert, key, keys.jwks())
    try:
        a = origin()
        port = free_port()
        routes = f"""\
- backend: app
  jwt: {{ jwks_url: {srv.url}, jwks_ca: {cert}, min_refresh: 100ms, refresh: 1h }}
"""
        s = strata(http_config(port, {"app": {"servers": [a.address]}}, routes=routes, workers=2),
                   listen_ports=[port])
        tok = keys.sign("ES256", claims())
        wait_for(lambda: get(port, "/", bearer(tok))[0] == 200, 10, what="the first fetch")
        results, stop = [], threading.Event()

        def hammer():
            c = http.client.HTTPConnection(LOOPBACK, port, timeout=5)
            try:
                while not stop.is_set() and len(results) < 5000:
                    c.request("GET", "/", headers=bearer(tok))
                    r = c.getresponse()
                    r.read()
                    results.append(r.status)
            finally:
                c.close()

        threads = [threading.Thread(target=hammer) for _ in range(2)]
        for t in threads:
            t.start()
        before = srv.fetches
        deadline = time.monotonic() + 3
        i = 0
        while time.monotonic() < deadline:
            get(port, "/", bearer(keys.sign("ES256", claims(), kid=f"miss{i}")))
            i += 1
            time.sleep(0.05)
        stop.set()
        for t in threads:
            t.join(10)
        assert srv.fetches - before >= 5, (srv.fetches, before)
        assert results and set(results) == {200}, set(results)
    finally:
        srv.stop()


def test_jwt_filters_of_a_reloaded_configuration_fetch_their_keys(strata, origin, tmp_path,
                                                                   keys):
    """A reload builds new jwt filters; they are started (the JWKS fetcher, the per-worker
    readers) before the swap, so the new generation fetches its keys and verifies tokens."""
    from test_reload import post_reload
    cert, key = make_cert(str(tmp_path))
    srv = JwksServer(cert, key, keys.jwks())
    try:
        a = origin()
        port, admin = free_port(), free_port()
        routes = f"""\
- backend: app
  jwt: {{ jwks_url: "{srv.url}", jwks_ca: "{cert}", issuer: https://issuer.test }}
"""
        s = strata(http_config(port, {"app": {"servers": [a.address]}}, routes=routes,
                               admin_port=admin), listen_ports=[port], admin_port=admin)
        wait_for(lambda: get(port, "/", bearer(keys.sign("RS256", claims())))[0] == 200, 10,
                 what="the first fetch")
        s.config_path.write_text(s.config_path.read_text().replace("https://issuer.test",
                                                                   "https://new-issuer.test"))
        fetched = srv.fetches
        status, text = post_reload(admin)
        assert status == 200, text
        tok = keys.sign("ES256", claims(iss="https://new-issuer.test"))
        wait_for(lambda: get(port, "/", bearer(tok))[0] == 200, 10,
                 what="the new generation's fetch")
        assert srv.fetches > fetched
        assert get(port, "/", bearer(keys.sign("RS256", claims())))[0] == 401  # old issuer
    finally:
        srv.stop()


def test_cached_tokens_keep_their_claims_and_still_expire(strata, origin, tmp_path, keys):
    """A token verified once is found in the worker's cache next time: the claims are
    forwarded the same on every request, and its expiry still ends it."""
    s, port, a, _ = run_jwt(strata, origin, tmp_path, keys)
    tok = keys.sign("RS256", claims(exp=int(time.time()) + 2))
    for i in range(4):
        status, _, body = get(port, f"/c{i}", {**bearer(tok), "X-User": "mallory"})
        assert status == 200, body
        assert a.requests[-1].header_all("x-user") == ["alice"], i
        assert a.requests[-1].header("x-groups") == "a,b", i
    time.sleep(2 + 5 + 1.2)  # exp, then the 5 s clock skew
    status, hdrs, _ = get(port, "/late", bearer(tok))
    assert status == 401 and "token expired" in hdrs.get("www-authenticate", ""), hdrs


def test_a_new_keyset_invalidates_cached_tokens(strata, origin, tmp_path, keys):
    """A JWKS refresh that drops a key ends the tokens it verified, even those in the
    cache: the cache is keyed by the keyset's serial."""
    cert, key = make_cert(str(tmp_path))
    srv = JwksServer(cert, key, keys.jwks(only=["rsa", "p256"]))
    try:
        a = origin()
        port = free_port()
        routes = f"""\
- backend: app
  jwt: {{ jwks_url: "{srv.url}", jwks_ca: "{cert}", min_refresh: 200ms, refresh: 1h }}
"""
        strata(http_config(port, {"app": {"servers": [a.address]}}, routes=routes),
               listen_ports=[port])
        rsa_tok = keys.sign("RS256", claims())
        wait_for(lambda: get(port, "/", bearer(rsa_tok))[0] == 200, 10, what="the first fetch")
        assert get(port, "/", bearer(rsa_tok))[0] == 200  # now from the cache
        srv.body = keys.jwks(only=["p256", "ed"])  # the RSA key is withdrawn
        ed_tok = keys.sign("EdDSA", claims())       # an unknown kid asks for a refresh
        wait_for(lambda: get(port, "/", bearer(ed_tok))[0] == 200, 10, what="the refresh")
        assert get(port, "/", bearer(rsa_tok))[0] == 401
        assert get(port, "/", bearer(keys.sign("ES256", claims())))[0] == 200
    finally:
        srv.stop()
