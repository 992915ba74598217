"""mode: http — `ip_access` by the client's country and continent (the configured geo
database, as tests/e2e/test_geo.py builds it: 127.0.0.2 FR/EU, 127.0.0.3 US/NA,
127.0.0.4 DE/EU, 127.0.0.5 JP/AS, 127.0.0.1 unknown): allow and deny lists of countries
and continents alone and mixed with prefix lists (deny wins; a member of any allow list
passes; an unknown location is in no list), refused 403 as the prefix lists are, counted
and logged; `strata check` names file:line:col for an unknown code, a continent where a
country belongs, and a list without a geo database."""
import json

from conftest import free_port, run_strata
from http_backend import http_config
from test_geo import geo_db, get_from  # noqa: F401 (a fixture)

ROUTES = """\
- match: { path_prefix: /fr-only/ }
  backend: app
  ip_access: { allow_countries: FR }
- match: { path_prefix: /no-eu/ }
  backend: app
  ip_access: { deny_continents: EU }
- match: { path_prefix: /mix/ }
  backend: app
  ip_access: { allow_countries: [US], allow: 127.0.0.5/32, deny_countries: [de] }
- match: { path_prefix: /eu-but-de/ }
  backend: app
  ip_access: { allow_continents: [EU, AS], deny_countries: DE, deny: 127.0.0.5 }
- match: { path_prefix: /451/ }
  backend: app
  ip_access: { deny_countries: [US, JP], status: 451 }
- backend: app
"""

SOURCES = ("127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.5", "127.0.0.1")


def test_countries_and_continents(strata, origin, geo_db, tmp_path):  # noqa: F811
    o = origin("app")
    port, admin = free_port(), free_port()
    log = tmp_path / "access.log"
    cfg = http_config(port, {"app": {"servers": [o.address]}}, routes=ROUTES, admin_port=admin,
                      top_extra=f'geo: {{ database: "{geo_db}" }}',
                      http_extra=f'access_log: {{ format: json, path: "{log}" }}')
    s = strata(cfg, listen_ports=[port], admin_port=admin)

    def statuses(path):
        return [get_from(port, src, path)[0] for src in SOURCES]
    #                                FR   US   DE   JP   unknown
    assert statuses("/fr-only/x") == [200, 403, 403, 403, 403]
    assert statuses("/no-eu/x") == [403, 200, 403, 200, 200]
    assert statuses("/mix/x") == [403, 200, 403, 200, 403]
    assert statuses("/eu-but-de/x") == [200, 403, 403, 403, 403]
    assert statuses("/451/x") == [200, 451, 200, 451, 200]
    assert statuses("/open/x") == [200] * 5
    status, body = get_from(port, "127.0.0.3", "/fr-only/x")
    assert status == 403 and "client location not allowed" in body
    status, body = get_from(port, "127.0.0.5", "/eu-but-de/x")
    assert status == 403 and "client address not allowed" in body
    refused = 4 + 2 + 3 + 4 + 2  # the five lists above
    m = s.metrics(admin)
    assert m.get("strata_listener_http_filter_events_total", listener="web",
                 event="ip_denied") == refused + 2  # and the two just before
    assert len(o.requests) == 5 * 6 - refused
    lines = [json.loads(ln) for ln in log.read_text().splitlines()]
    denied = [ln for ln in lines if ln["status"] in (403, 451)]
    assert {ln["country"] for ln in denied} == {"FR", "US", "DE", "JP", "-"}


def check(strata_bin, tmp_path, top, ip_access):
    p = tmp_path / "c.yaml"
    p.write_text(top + "listeners:\n  - name: web\n    listen: 127.0.0.1:1\n    mode: http\n"
                 "    routes:\n      - backend: b\n"
                 f"        ip_access: {{ {ip_access} }}\n"
                 "backends:\n  b:\n    servers: [127.0.0.1:2]\n")
    r = run_strata(strata_bin, "check", str(p))
    return r.returncode, r.stdout + r.stderr


def test_config_errors(strata_bin, tmp_path, geo_db):  # noqa: F811
    top = f'geo: {{ database: "{geo_db}" }}\n'
    rc, out = check(strata_bin, tmp_path, "", "deny_countries: FR")
    assert rc != 0 and "c.yaml:7:" in out and "geo.database" in out, out
    rc, out = check(strata_bin, tmp_path, top, "allow_countries: [FR, ZZ]")
    assert rc != 0 and "c.yaml:8:44:" in out and "ISO 3166" in out and "ZZ" in out, out
    rc, out = check(strata_bin, tmp_path, top, "deny_countries: EU")
    assert rc != 0 and "c.yaml:8:" in out and "ISO 3166" in out, out
    rc, out = check(strata_bin, tmp_path, top, "allow_continents: [EU, Europe]")
    assert rc != 0 and "c.yaml:8:" in out and "continent code" in out, out
    rc, out = check(strata_bin, tmp_path, f'geo: {{ database: "{tmp_path}/none.mmdb" }}\n',
                    "deny_countries: FR")
    assert rc != 0 and "c.yaml:1:" in out and "none.mmdb" in out, out
    rc, out = check(strata_bin, tmp_path, top, "allow_continents: [eu], deny_countries: [fr]")
    assert rc == 0, out
