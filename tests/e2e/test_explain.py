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


# --------------------------------------------------------------------------- expect:

def check(strata_bin, tmp_path, expect_yaml):
    path = tmp_path / "strata.yaml"
    path.write_text(CONFIG + "expect:\n" + expect_yaml)
    return run_strata(strata_bin, "check", str(path))


def line_of(text, needle):
    """1-based line of the first line of text containing needle."""
    for i, ln in enumerate(text.splitlines(), 1):
        if needle in ln:
            return i
    raise AssertionError(needle)


def test_expectations_that_hold_pass_check(strata_bin, tmp_path):
    r = check(strata_bin, tmp_path, """\
  - { request: "GET http://api.example.com/v1/users", route: api, backend: api }
  - request: POST http://www.example.com/x
    headers: { x-canary: "1" }
    route: canary
    backend: canary
  - { request: "GET http://x/healthz", route: health, status: 200 }
  - { request: "GET http://a.old.example.com/", status: 308 }
  - { request: "DELETE http://x/", route: none, status: 404 }
  - { request: "GET http://x/", route: rest, backend: canary }
  - { request: "GET /", headers: { host: x }, listener: other, backend: canary }
""")
    assert r.returncode == 0, r.stderr
    assert "configuration is valid" in r.stdout


def test_broken_expectations_refuse_the_config_at_file_line_col(strata_bin, tmp_path):
    r = check(strata_bin, tmp_path, """\
  - request: GET http://www.example.com/v1/users
    headers: { x-canary: "1" }
    route: api
  - { request: "GET http://api.example.com/v1/", route: canary }
  - { request: "GET http://api.example.com/v1/", backend: canary }
  - { request: "GET http://x/healthz", status: 204 }
  - { request: "GET http://x/", status: 200 }
  - { request: "DELETE http://x/", backend: api }
  - { request: "GET http://x/", route: nosuch }
  - { request: "GETX" }
  - { request: "GET http://x/", listener: nope }
""")
    assert r.returncode == 1
    text = (tmp_path / "strata.yaml").read_text()
    err = r.stderr
    base = line_of(text, "expect:")
    assert f'strata.yaml:{base + 3}:12: error: expect[0].route: GET http://www.example.com/v1/users ' \
        'takes route "canary" of listener plain, expected "api" (its condition host ' \
        'api.example.com does not hold)' in err, err
    assert f'strata.yaml:{base + 4}:' in err and 'expect[1].route: GET http://api.example.com/v1/ ' \
        'takes route "api" of listener plain, expected "canary" (its condition header ' \
        'x-canary = 1 does not hold)' in err
    assert 'expect[2].backend: GET http://api.example.com/v1/ goes to backend api (route ' \
        '"api"), expected canary' in err
    assert 'expect[3].status: GET http://x/healthz is answered 200 by Strata (route ' \
        '"health"), expected 204' in err
    assert 'expect[4].status: GET http://x/ is proxied by route "rest" (its server ' \
        'answers), expected Strata to answer 200' in err
    assert 'expect[5].backend: DELETE http://x/ is answered 404 by Strata (no route), ' \
        'expected backend api' in err
    assert 'expect[6].route: GET http://x/ takes route "rest" of listener plain, expected ' \
        '"nosuch" (listener plain has no route of that name)' in err
    assert 'expect[7].request: expected "METHOD URL"' in err
    assert 'expect[8].listener: no listener named nope' in err
    assert "strata.yaml: 9 errors" in err
    # every message names the line and column of its expectation
    for ln in err.splitlines()[:-1]:
        assert re.match(r".*strata\.yaml:\d+:\d+: error: expect\[\d\]\.", ln), ln


def test_expect_failure_stops_run_too(strata_bin, tmp_path):
    path = tmp_path / "strata.yaml"
    path.write_text(CONFIG + "expect:\n  - { request: \"GET http://x/\", route: api }\n")
    r = run_strata(strata_bin, "run", str(path), timeout=10)
    assert r.returncode == 1 and "expect[0].route" in r.stderr
