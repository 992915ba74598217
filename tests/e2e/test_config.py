"""`strata check`, the command line, and error reporting for bad configurations.

Error lines must read `FILE:LINE:COL: error: KEY.PATH: message`, LINE and COL 1-based.
Positions point at the offending node: a bad value at the value, an unknown or duplicate
key at the key, a duplicate name at its second occurrence, a missing key at the mapping
that lacks it (its first key), a YAML syntax error where libyaml found the problem.
"""

import glob
import re
import socket
import subprocess

import pytest

from conftest import REPO, free_port, run_strata

ERR_RE = re.compile(r"^(?P<file>[^:]+):(?P<line>\d+):(?P<col>\d+): error: (?P<msg>.+)$")
SUMMARY_RE = re.compile(r"^(?P<file>[^:]+): \d+ errors?$")  # optional closing line


def valid_line(path):
    """What `strata check` prints for a valid file: "FILE: configuration is valid",
    optionally followed by a parenthesised summary."""
    return re.compile(re.escape(path) + r": configuration is valid( \([^)]*\))?\n")

BASE = """\
workers: 2
timeouts: { connect: 2s, idle: 5m, drain: 10s }
admin: { listen: 127.0.0.1:9090 }
listeners:
  - name: web
    listen: 127.0.0.1:8080
    mode: tcp
    backend: app
    max_connections: 100
backends:
  app:
    balance: round_robin
    retries: 2
    health_check: { type: tcp, interval: 2s, timeout: 1s, rise: 2, fall: 3 }
    passive: { fall: 3, cooldown: 10s }
    servers:
      - { address: 127.0.0.1:8081, name: a1, weight: 1 }
      - 127.0.0.1:8082
"""

SECOND_LISTENER = """\
  - name: web
    listen: 127.0.0.1:8090
    mode: tcp
    backend: app
"""


def edit(old, new, text=BASE):
    assert text.count(old) == 1, f"{old!r} must occur once in the base config"
    return text.replace(old, new)


def at(text, marker, nth=1):
    """(line, col), 1-based, of the nth occurrence of `marker` in `text`."""
    idx = -1
    for _ in range(nth):
        idx = text.index(marker, idx + 1)
    line = text.count("\n", 0, idx) + 1
    col = idx - (text.rfind("\n", 0, idx) + 1) + 1
    return line, col


# (id, config text, (marker, nth) locating the expected position, path, message substrings
#  of which at least one must appear, case-insensitively)
CASES = [
    ("wrong-type-workers", edit("workers: 2", "workers: lots"),
     ("lots", 1), "workers", ["auto", "integer", "number"]),
    ("wrong-type-max-connections", edit("max_connections: 100", "max_connections: many"),
     ("many", 1), "listeners[0].max_connections", ["integer", "number"]),
    ("wrong-type-retries-list", edit("retries: 2", "retries: [2]"),
     ("[2]", 1), "backends.app.retries", ["integer", "number", "scalar"]),
    ("wrong-type-listeners-scalar",
     BASE.split("listeners:")[0] + "listeners: web\nbackends:" + BASE.split("backends:")[1],
     ("web\n", 1), "listeners", ["list", "sequence"]),
    ("unknown-key-did-you-mean", edit("    balance: round_robin", "    balnce: round_robin"),
     ("balnce", 1), "backends.app.balnce", ['did you mean "balance"?']),
    ("unknown-key-in-flow-map", edit("connect: 2s", "conect: 2s"),
     ("conect", 1), "timeouts.conect", ['did you mean "connect"?']),
    ("unknown-top-level-key", "listner: {}\n" + BASE,
     ("listner", 1), "listner", ['did you mean "listeners"?']),
    ("bad-address-no-port", edit("listen: 127.0.0.1:8080", "listen: 127.0.0.1"),
     ("127.0.0.1\n", 1), "listeners[0].listen", ['expected host:port, got "127.0.0.1"']),
    ("bad-address-ip", edit("address: 127.0.0.1:8081", "address: 127.0.0.300:8081"),
     ("127.0.0.300", 1), "backends.app.servers[0].address", ["127.0.0.300"]),
    ("bad-port-too-big", edit("listen: 127.0.0.1:8080", "listen: 127.0.0.1:70000"),
     ("127.0.0.1:70000", 1), "listeners[0].listen", ["port"]),
    ("bad-port-not-number", edit("      - 127.0.0.1:8082", "      - 127.0.0.1:http8"),
     ("127.0.0.1:http8", 1), "backends.app.servers[1]", ["port"]),
    ("duplicate-listener-name", BASE.replace("backends:\n", SECOND_LISTENER + "backends:\n"),
     ("web", 2), "listeners[1].name", ["duplicate", "already"]),
    ("duplicate-backend-name",
     BASE + "  app:\n    servers: [ 127.0.0.1:9999 ]\n",
     ("app:", 2), "backends.app", ["duplicate", "already"]),
    ("missing-backend", edit("backend: app", "backend: nope"),
     ("nope", 1), "listeners[0].backend", ['"nope"', "nope"]),
    ("unknown-balance", edit("balance: round_robin", "balance: fastest"),
     ("fastest", 1), "backends.app.balance", ["round_robin"]),
    ("bad-duration", edit("interval: 2s", "interval: 2 parsecs"),
     ("2 parsecs", 1), "backends.app.health_check.interval", ["duration", "2 parsecs"]),
    ("bad-duration-unit", edit("drain: 10s", "drain: 10y"),
     ("10y", 1), "timeouts.drain", ["duration", "10y"]),
    ("empty-servers",
     BASE.split("    servers:")[0] + "    servers: []\n",
     ("[]", 1), "backends.app.servers", ["empty", "at least"]),
    ("yaml-syntax-error", edit("    mode: tcp", "    mode: tcp: x"),
     (": x", 1), None, ["mapping values", "yaml", "syntax"]),
    ("yaml-unclosed-flow", edit("{ type: tcp, interval: 2s, timeout: 1s, rise: 2, fall: 3 }",
                                "{ type: tcp, interval: 2s"),
     (": { fall", 1), None, ["yaml", "expected", "flow"]),
    ("missing-listen", edit("    listen: 127.0.0.1:8080\n", ""),
     ("name: web", 1), "listeners[0]", ['"listen"', "listen"]),
    ("negative-weight", edit("weight: 1", "weight: -1"),
     ("-1", 1), "backends.app.servers[0].weight", ["weight", "1"]),
    ("unknown-mode", edit("mode: tcp", "mode: carrier-pigeon"),
     ("carrier-pigeon", 1), "listeners[0].mode", ["tcp"]),
    ("bad-health-type", edit("type: tcp", "type: telepathy"),
     ("telepathy", 1), "backends.app.health_check.type", ["tcp"]),
]


def run_check(strata_bin, tmp_path, text, name="bad.yaml"):
    (tmp_path / name).write_text(text)
    return run_strata(strata_bin, "check", name, cwd=str(tmp_path))


def test_base_config_is_valid(strata_bin, tmp_path):
    r = run_check(strata_bin, tmp_path, BASE, name="good.yaml")
    assert r.returncode == 0, r.stderr
    assert valid_line("good.yaml").fullmatch(r.stdout), r.stdout


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_bad_config(strata_bin, tmp_path, case):
    name, text, (marker, nth), path, substrings = case
    line, col = at(text, marker, nth)
    r = run_check(strata_bin, tmp_path, text)
    assert r.returncode == 1, f"exit {r.returncode}, stdout {r.stdout!r} stderr {r.stderr!r}"
    assert "configuration is valid" not in r.stdout
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    if lines and SUMMARY_RE.match(lines[-1]):
        assert SUMMARY_RE.match(lines[-1])["file"] == "bad.yaml", lines[-1]
        lines.pop()
    assert lines, "no error printed"
    parsed = []
    for ln in lines:
        m = ERR_RE.match(ln)
        assert m, f"error line not in FILE:LINE:COL: error: format: {ln!r}"
        assert m["file"] == "bad.yaml", ln
        parsed.append((int(m["line"]), int(m["col"]), m["msg"]))
    want = f"bad.yaml:{line}:{col}: error: " + (f"{path}: " if path else "")
    hits = [p for p in parsed if (p[0], p[1]) == (line, col)
            and (path is None or p[2].startswith(path + ": "))]
    assert hits, f"expected an error starting {want!r}, got:\n{r.stderr}"
    msg = hits[0][2].lower()
    assert any(s.lower() in msg for s in substrings), \
        f"message {hits[0][2]!r} mentions none of {substrings}"


def test_several_errors_reported_together(strata_bin, tmp_path):
    text = edit("balance: round_robin", "balance: fastest",
                edit("backend: app", "backend: nope"))
    r = run_check(strata_bin, tmp_path, text)
    assert r.returncode == 1
    positions = {tuple(map(int, ERR_RE.match(ln).group("line", "col")))
                 for ln in r.stderr.splitlines() if ERR_RE.match(ln)}
    assert {at(text, "nope"), at(text, "fastest")} <= positions, r.stderr


def test_check_missing_file(strata_bin, tmp_path):
    r = run_strata(strata_bin, "check", str(tmp_path / "nope.yaml"))
    assert r.returncode == 1, r
    assert "nope.yaml" in r.stderr


def test_version(strata_bin):
    r = run_strata(strata_bin, "--version")
    assert r.returncode == 0, r
    assert re.fullmatch(r"strata \S+\n", r.stdout), r.stdout


def test_help(strata_bin):
    r = run_strata(strata_bin, "--help")
    assert r.returncode == 0, r
    for word in ("run", "check", "demo"):
        assert word in r.stdout, r.stdout


@pytest.mark.parametrize("args", [["frobnicate"], ["run"], ["check"], ["--no-such-flag"],
                                  ["demo", "notaport"]])
def test_usage_errors_exit_2(strata_bin, args):
    r = run_strata(strata_bin, *args, timeout=10)
    assert r.returncode == 2, f"{args}: exit {r.returncode}, stderr {r.stderr!r}"
    assert r.stderr.strip(), "usage error printed nothing on stderr"


def test_cannot_bind_exits_3(strata_bin, tmp_path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        back = free_port()
        cfg = f"""
listeners:
  - {{ name: web, listen: "127.0.0.1:{port}", mode: tcp, backend: app }}
backends:
  app: {{ servers: [ "127.0.0.1:{back}" ] }}
"""
        (tmp_path / "busy.yaml").write_text(cfg)
        try:
            r = run_strata(strata_bin, "run", str(tmp_path / "busy.yaml"), timeout=15)
        except subprocess.TimeoutExpired:
            pytest.fail("strata kept running although its port is taken")
    assert r.returncode == 3, f"exit {r.returncode}; stderr {r.stderr!r}"
    assert str(port) in r.stderr, r.stderr


def test_run_with_bad_config_exits_1(strata_bin, tmp_path):
    (tmp_path / "bad.yaml").write_text(edit("balance: round_robin", "balance: fastest"))
    r = run_strata(strata_bin, "run", "bad.yaml", cwd=str(tmp_path), timeout=10)
    assert r.returncode == 1, r
    assert re.search(r"bad\.yaml:12:14: error: ", r.stderr), r.stderr


EXAMPLES = sorted(glob.glob(str(REPO / "examples" / "*.yaml")) +
                  glob.glob(str(REPO / "examples" / "*.yml")))


@pytest.mark.parametrize("path", EXAMPLES or [None],
                         ids=[p.rsplit("/", 1)[1] for p in EXAMPLES] or ["none"])
def test_examples_pass_check(strata_bin, path):
    if path is None:
        pytest.skip("no examples/*.yaml yet")
    r = run_strata(strata_bin, "check", path)
    assert r.returncode == 0, f"{path}:\n{r.stderr}"
    assert valid_line(path).fullmatch(r.stdout), r.stdout
