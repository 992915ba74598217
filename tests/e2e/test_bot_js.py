"""mode: http — the bot filter's JavaScript challenge (`challenge_mode: javascript`): a
suspicious client without the signed cookie gets a page (403) whose inline script must find
a proof of work over a server token; clients that keep cookies but run no script (curl with
a cookie jar, a requests.Session) never reach the origin; a client that computes the proof
(here in Python, as the page's script does; the browser test in tests/browser runs the real
script in headless Chromium) gets the 307 with the HMAC-signed cookie and passes. Proofs
that are wrong, forged, made for another client or too weak are refused."""
import hashlib
import re
import subprocess

import requests

from conftest import LOOPBACK, free_port
from http_backend import http_config

UA = "suspicious-browser/1.0"
ROUTES = """\
- match: { path_prefix: /hard/ }
  backend: app
  bot: { challenge_all: true, challenge_mode: javascript, difficulty: 20 }
- backend: app
  bot: { challenge_all: true, challenge_mode: javascript, difficulty: 10 }
"""


def start(strata, origin):
    a = origin("app")
    port, admin = free_port(), free_port()
    s = strata(http_config(port, {"app": {"servers": [a.address]}}, routes=ROUTES,
                           admin_port=admin), listen_ports=[port])
    return s, port, admin, a


def page_params(text):
    m = re.search(r'var T="([0-9]+\.[0-9a-f]{64})",D=(\d+),C="([a-z_]+)"', text)
    assert m, text[:300]
    return m.group(1), int(m.group(2)), m.group(3)


def solve(token, bits):
    for n in range(1 << 26):  # bounded: 2^bits tries expected
        h = hashlib.sha256(f"{token}:{n}".encode()).digest()
        if int.from_bytes(h[:4], "big") >> (32 - bits) == 0 if bits else True:
            return n
    raise AssertionError("no proof found")


def test_no_script_no_entry(strata, origin, tmp_path):
    s, port, admin, a = start(strata, origin)
    url = f"http://{LOOPBACK}:{port}/page?q=1"
    jar = tmp_path / "jar.txt"
    for _ in range(3):  # curl keeping cookies and following redirects, again and again
        c = subprocess.run(["curl", "-sS", "-L", "-c", str(jar), "-b", str(jar), "-A", UA,
                            "-o", "-", "-w", "\n%{http_code}", url],
                           capture_output=True, text=True, timeout=30)
        body, _, code = c.stdout.rpartition("\n")
        assert code == "403" and "<script>" in body and "Checking your browser" in body
    with requests.Session() as sess:
        sess.headers["User-Agent"] = UA
        r = sess.get(url, timeout=5)
        assert r.status_code == 403 and r.headers["Cache-Control"] == "no-store"
        assert r.headers["Content-Type"].startswith("text/html")
        assert "Set-Cookie" not in r.headers and not sess.cookies
        assert "src=" not in r.text  # the script is inline: nothing else to fetch
    r = requests.post(url, data=b"x", headers={"User-Agent": UA}, timeout=5)
    assert r.status_code == 403 and "bot challenge required" in r.text
    assert a.requests == []


def test_proof_of_work_passes(strata, origin):
    s, port, admin, a = start(strata, origin)
    url = f"http://{LOOPBACK}:{port}/page?q=1"
    r = requests.get(url, headers={"User-Agent": UA}, timeout=5)
    token, bits, name = page_params(r.text)
    assert bits == 10 and name == "strata_bc_pow"
    n = solve(token, bits)
    # a wrong counter, a forged token, another client's proof, a weak proof: the page again
    wrong = next(i for i in range(n + 1, n + 10000)
                 if int.from_bytes(hashlib.sha256(f"{token}:{i}".encode()).digest()[:4],
                                   "big") >> (32 - bits))
    forged = token[:-1] + ("0" if token[-1] != "0" else "1")
    for ua, proof in ((UA, f"{token}.{wrong}"), (UA, f"{forged}.{solve(forged, bits)}"),
                      ("other-browser/2.0", f"{token}.{n}"), (UA, f"{token}.{n}x")):
        r = requests.get(url, headers={"User-Agent": ua, "Cookie": f"{name}={proof}"},
                         allow_redirects=False, timeout=5)
        assert r.status_code == 403 and "Checking your browser" in r.text, (ua, proof)
    # the /hard/ route asks 20 bits: a 10-bit proof for its own token is refused
    r = requests.get(f"http://{LOOPBACK}:{port}/hard/x", headers={"User-Agent": UA}, timeout=5)
    htoken, hbits, _ = page_params(r.text)
    assert hbits == 20
    weak = next(i for i in range(1 << 20) if int.from_bytes(
        hashlib.sha256(f"{htoken}:{i}".encode()).digest()[:4], "big") >> 22 == 0 and
        int.from_bytes(hashlib.sha256(f"{htoken}:{i}".encode()).digest()[:4], "big") >> 12)
    r = requests.get(f"http://{LOOPBACK}:{port}/hard/x",
                     headers={"User-Agent": UA, "Cookie": f"{name}={htoken}.{weak}"},
                     allow_redirects=False, timeout=5)
    assert r.status_code == 403
    assert a.requests == []
    # the right proof: a 307 with the signed cookie (and the proof dropped), then the page
    with requests.Session() as sess:
        sess.headers["User-Agent"] = UA
        sess.cookies.set(name, f"{token}.{n}", domain=LOOPBACK, path="/")
        r = sess.get(url, allow_redirects=False, timeout=5)
        assert r.status_code == 307 and r.headers["Location"] == "/page?q=1"
        cookies = r.headers["Set-Cookie"]
        assert re.search(r"strata_bc=\d+\.[0-9a-f]{64}; Path=/; Max-Age=3600; HttpOnly", cookies)
        assert "strata_bc_pow=; Path=/; Max-Age=0" in cookies
        r = sess.get(url, timeout=5)
        assert r.status_code == 200 and r.text == "GET /page?q=1\n"
        assert not sess.cookies.get(name)
        r = sess.get(f"http://{LOOPBACK}:{port}/other", timeout=5)
        assert r.status_code == 200
    assert len(a.requests) == 2
    m = s.metrics(admin)
    ev = "strata_listener_http_filter_events_total"
    assert m.get(ev, listener="web", event="bot_passed") == 2
    assert m.get(ev, listener="web", event="bot_challenged") >= 6


def test_config_errors(strata_bin, tmp_path):
    conf = http_config(free_port(), {"app": {"servers": [f"{LOOPBACK}:1"]}},
                       routes="- backend: app\n  bot: { challenge_mode: js, difficulty: 30 }\n")
    p = tmp_path / "bad.yaml"
    p.write_text(conf)
    r = subprocess.run([strata_bin, "check", str(p)], capture_output=True, text=True, timeout=60)
    assert r.returncode != 0
    assert re.search(r"bad\.yaml:\d+:\d+: .*challenge_mode.*javascript", r.stderr), r.stderr
    assert re.search(r"bad\.yaml:\d+:\d+: .*difficulty", r.stderr), r.stderr
