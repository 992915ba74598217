"""`strata diff OLD NEW`: what a change does (listeners, routes added, removed, reordered
or changed, backends and servers) and which live connections a reload would drain; exit
codes as diff(1)."""
from conftest import run_strata

OLD = """\
listeners:
  - name: web
    listen: 127.0.0.1:19480
    mode: http
    routes:
      - { name: api, match: { host: api.example.com, path_prefix: /v1/ }, backend: app }
      - { name: canary, match: { header: { x-canary: "1" } }, backend: canary }
      - { name: legacy, match: { path_prefix: /old/ }, backend: app }
      - { match: { path: /healthz }, respond: { status: 200, body: "ok" } }
  - { name: db, listen: 127.0.0.1:15432, mode: tcp, backend: pg }
  - { name: gone, listen: 127.0.0.1:15433, mode: tcp, backend: pg }
backends:
  app:
    servers: [ { name: a, address: "127.0.0.1:1" }, { name: b, address: "127.0.0.1:2" } ]
  canary:
    servers: [127.0.0.1:3]
  pg:
    servers: [ { name: p1, address: "127.0.0.1:5" } ]
"""

NEW = """\
listeners:
  - name: web
    listen: 127.0.0.1:19480
    mode: http
    routes:
      - { name: canary, match: { header: { x-canary: "1" } }, backend: canary }
      - { name: api, match: { host: api.example.com, path_prefix: /v2/ }, backend: app2 }
      - { match: { path: /healthz }, respond: { status: 200, body: "ok" } }
      - { name: new, match: { path_prefix: /new/ }, backend: app }
  - { name: db, listen: 127.0.0.1:15434, mode: tcp, backend: pg }
backends:
  app:
    balance: least_conn
    servers: [ { name: a, address: "127.0.0.1:1", weight: 3 }, { name: c, address: "127.0.0.1:4" } ]
  app2:
    servers: [127.0.0.1:7]
  canary:
    servers: [127.0.0.1:3]
  pg:
    servers: [ { name: p1, address: "127.0.0.1:6" } ]
"""

EXPECTED = """\
listeners:
  ~ db: listen 127.0.0.1:15432 -> 127.0.0.1:15434
  - gone (127.0.0.1:15433, tcp)
routes of listener web:
  ^ canary: #2 -> #1 (reordered)
  ^ api: #1 -> #2 (reordered)
  ~ api: match host api.example.com, path prefix /v1/ -> host api.example.com, path prefix /v2/
  ~ api: backend app -> backend app2
  + new (#4)
  - legacy (was #3)
backends:
  ~ app: balance round_robin -> least_conn
  ~ app/a: weight 1 -> 3
  + app/c (127.0.0.1:4, weight 1)
  - app/b (127.0.0.1:2)
  + app2 (round_robin, 1 servers)
  ~ pg/p1: address 127.0.0.1:5 -> 127.0.0.1:6
a reload would drain:
  connections of listener db (its address changed)
  connections of listener gone (removed)
  tunnels (WebSocket) through route api of listener web (changed)
  tunnels (WebSocket) through route legacy of listener web (removed)
  connections to server app/b (removed)
  connections to server pg/p1 (its address changed)
"""


def test_diff_lists_the_changes_and_what_would_drain(strata_bin, tmp_path):
    (tmp_path / "old.yaml").write_text(OLD)
    (tmp_path / "new.yaml").write_text(NEW)
    r = run_strata(strata_bin, "diff", str(tmp_path / "old.yaml"), str(tmp_path / "new.yaml"))
    assert r.returncode == 1, r.stderr
    assert r.stdout == EXPECTED, r.stdout


def test_diff_same_and_trouble(strata_bin, tmp_path):
    (tmp_path / "old.yaml").write_text(OLD)
    (tmp_path / "bad.yaml").write_text("listeners: [\n")
    r = run_strata(strata_bin, "diff", str(tmp_path / "old.yaml"), str(tmp_path / "old.yaml"))
    assert r.returncode == 0 and r.stdout == "no difference\n"
    r = run_strata(strata_bin, "diff", str(tmp_path / "old.yaml"), str(tmp_path / "bad.yaml"))
    assert r.returncode == 2 and "bad.yaml:" in r.stderr
    r = run_strata(strata_bin, "diff", str(tmp_path / "old.yaml"))
    assert r.returncode == 2 and "usage: strata diff OLD NEW" in r.stderr


def test_man_page_renders_and_matches_the_binary(strata_bin):
    """doc/strata.8 is `strata man-page` (make man), and `man -l` renders it."""
    import shutil
    import subprocess
    from conftest import REPO
    r = run_strata(strata_bin, "man-page")
    assert r.returncode == 0
    assert (REPO / "doc" / "strata.8").read_text() == r.stdout, "run `make man`"
    if not shutil.which("man"):
        return
    out = subprocess.run(["man", "-l", str(REPO / "doc" / "strata.8")], capture_output=True,
                         text=True, timeout=30, env={"MANWIDTH": "100", "PATH": "/usr/bin:/bin"})
    assert out.returncode == 0, out.stderr
    assert "strata explain FILE" in out.stdout and "runtime_servers" in out.stdout
    assert "warning" not in out.stderr, out.stderr
