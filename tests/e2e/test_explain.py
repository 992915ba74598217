"""`strata explain FILE 'METHOD URL' -H ...`: the listener, every route tried with the
condition that failed, the filters in order with what each would do, the backend, its
balancing rule and candidate servers, or Strata's own answer (404, redirect, respond).
And the configuration's `expect:` section: `strata check` (and so every load and reload)
refuses a configuration whose requests do not take the route/backend/status expected,
naming the file:line:col of the expectation."""
import re

from conftest import run_strata

CONFIG = """\
listeners:
  - name: plain
    listen: 127.0.0.1:18080
    mode: http
    routes:
      - name: api
        match: { host: api.example.com, path_prefix: /v1/ }
        path_rewrite: { prefix: /v1/, replace: / }
        request_headers: { set: { x-api: "1" }, remove: [x-debug] }
        backend: api
      - name: canary
        match: { header: { x-canary: "1" } }
        backend: canary
      - name: health
        match: { path: /healthz }
        respond: { status: 200, body: "ok\\n" }
      - name: old
        match: { host: "*.old.example.com" }
        redirect: { status: 308, location: "https://new.example.com{request_uri}" }
      - name: rest
        match: { method: [GET, HEAD] }
        split: [ { backend: api, weight: 90 }, { backend: canary, weight: 10 } ]
  - name: other
    listen: 127.0.0.1:18081
    mode: http
    backend: canary
backends:
  api:
    balance: least_conn
    servers:
      - { name: a1, address: 127.0.0.1:19001, weight: 3 }
      - { name: a2, address: 127.0.0.1:19002 }
      - { name: a3, address: 127.0.0.1:19003, backup: true }
  canary:
    balance: source_hash
    hash: { header: x-user }
    servers: [ 127.0.0.1:19009 ]
"""


def explain(strata_bin, tmp_path, *args, config=CONFIG):
    path = tmp_path / "strata.yaml"
    path.write_text(config)
    r = run_strata(strata_bin, "explain", str(path), *args)
    return r


def test_explain_matching_route_with_filters_and_servers(strata_bin, tmp_path):
    r = explain(strata_bin, tmp_path, "GET http://api.example.com/v1/users?id=7",
                "-H", "x-debug: yes")
    assert r.returncode == 0, r.stderr
    out = r.stdout
    assert "listener:  plain (127.0.0.1:18080; its port is the URL's)" not in out  # port 80
    assert "listener:  plain (127.0.0.1:18080; the first without TLS)" in out
    assert "  #1 api: MATCH (host api.example.com, path prefix /v1/)" in out
    assert "route:     api" in out
    # filters in order: the listener's, then the route's, with what each would do
    filters = re.findall(r"^  (\d+)\. (.*)$", out, re.M)
    assert [f[1].split(":")[0] for f in filters] == [
        "(listener) forwarded", "(listener) request_id", "(listener) traceparent",
        "path_rewrite", "request_headers"]
    assert "path_rewrite: prefix /v1/ -> /: /v1/users becomes /users" in out
    assert "request_headers: set x-api: 1; remove x-debug" in out
    assert "backend:   api (protocol h1)" in out
    assert "balance:   least_conn: the fewest open connections per unit of weight" in out
    assert "  a1 127.0.0.1:19001 weight 3 candidate" in out
    assert "  a3 127.0.0.1:19003 weight 1 backup (only when no primary is eligible)" in out


def test_explain_says_why_earlier_routes_did_not_match(strata_bin, tmp_path):
    r = explain(strata_bin, tmp_path, "POST http://www.example.com/v1/x", "-H", "x-canary: 1",
                "-H", "x-user: u1")
    assert r.returncode == 0, r.stderr
    out = r.stdout
    assert "  #1 api: no, host api.example.com does not hold" in out
    assert "  #2 canary: MATCH (header x-canary = 1)" in out
    assert "balance:   source_hash: rendezvous hash of the key (client address by default); " \
        "hashes the header x-user" in out
    r = explain(strata_bin, tmp_path, "DELETE http://www.example.com/")
    out = r.stdout
    assert "  #2 canary: no, header x-canary = 1 does not hold" in out
    assert "  #3 health: no, path = /healthz does not hold" in out
    assert "  #4 old: no, host *.old.example.com does not hold" in out
    assert "  #5 rest: no, method GET | HEAD does not hold" in out
    assert "route:     none: Strata answers 404" in out


def test_explain_answers_and_splits_and_listener_choice(strata_bin, tmp_path):
    r = explain(strata_bin, tmp_path, "GET http://x.example.com/healthz")
    assert "respond: answers 200 with 3 bytes" in r.stdout
    assert "answer:    Strata answers 200 itself (no backend)" in r.stdout
    r = explain(strata_bin, tmp_path, "GET http://a.old.example.com/p?q=1")
    assert "redirect: answers 308, Location: https://new.example.com{request_uri}" in r.stdout
    r = explain(strata_bin, tmp_path, "GET http://www.example.com/")
    assert "split:     api 90% canary 10%" in r.stdout
    assert "backend:   api" in r.stdout and "backend:   canary" in r.stdout
    # the URL's port picks the listener; --listener names one
    r = explain(strata_bin, tmp_path, "GET http://www.example.com:18081/")
    assert "listener:  other (127.0.0.1:18081; its port is the URL's)" in r.stdout
    r = explain(strata_bin, tmp_path, "GET /x", "-H", "host: h", "--listener", "other")
    assert r.returncode == 0 and "listener:  other (127.0.0.1:18081; named)" in r.stdout


def test_explain_bad_input(strata_bin, tmp_path):
    r = explain(strata_bin, tmp_path, "GET")
    assert r.returncode == 2 and 'expected "METHOD URL"' in r.stderr
    r = explain(strata_bin, tmp_path, "GET ftp://x/")
    assert r.returncode == 2 and "expected a URL" in r.stderr
    r = explain(strata_bin, tmp_path, "GET http://x/", "-H", "bad header")
    assert r.returncode == 2 and "does not parse as HTTP/1.1" in r.stderr
    r = explain(strata_bin, tmp_path, "GET http://x/", "--listener", "nope")
    assert r.returncode == 2 and "no listener named nope" in r.stderr
    r = explain(strata_bin, tmp_path, "GET http://x/", config="listeners: 3\n")
    assert r.returncode == 1 and "strata.yaml:1:" in r.stderr
    r = run_strata(strata_bin, "explain")
    assert r.returncode == 2 and "usage: strata explain" in r.stderr
