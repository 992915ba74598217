/* schema_analytics.c — the configuration of traffic analytics (`analytics:`), of client
 * geolocation (`geo:`, the database opened here so that `strata check` finds a bad file),
 * and the geo conditions that routes (`match.country`, `match.continent`) and L4 ACLs
 * (`acl.allow_countries`, `acl.deny_countries`) use. Declared as tables like schema.c.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/bug.h"
#include "schema.h"
#include "stats/geo.h"

#define SECTION(p, h, k, ...)                                                                      \
    {                                                                                              \
        .path = p, .help = h, .keys = k, .nkeys = ARRAY_SIZE(k), __VA_ARGS__                       \
    }

/* ---- analytics ---- */

static int parse_api_key_header(struct cfg_ctx *ctx, const struct cfg_key *key,
                                const struct ynode *n, void *target)
{
    struct analytics_conf *a = target;
    char b[64];
    if (n->kind != YN_SCALAR || n->len == 0 || n->len > 64) {
        cfg_error(ctx, n, "expected a header name such as x-api-key, got %s",
                  cfg_describe(n, b, sizeof(b)));
        return -1;
    }
    if (cfg_check_field_name(ctx, n, "header name") < 0)
        return -1;
    if (!(a->api_key_header = strdup(n->text))) {
        cfg_oom(ctx, n);
        return -1;
    }
    for (char *p = a->api_key_header; *p; p++)
        *p = (char)tolower((unsigned char)*p);
    a->api_key_len = (uint32_t)n->len;
    return 0;
}

static void release_api_key_header(const struct cfg_key *key, void *target)
{
    struct analytics_conf *a = target;
    free(a->api_key_header);
    a->api_key_header = NULL;
    a->api_key_len = 0;
}

static const struct cfg_key analytics_keys[] = {
    {"enabled", CT_BOOL, 0, "true", .off = offsetof(struct analytics_conf, enabled),
     .help = "Count every HTTP request in the top-N tables (`GET /api/v1/top` on the admin "
             "listener). Trends (`GET /api/v1/trends`) come from the counters and always run "
             "with the admin listener."},
    {"api_key_header", CT_CUSTOM, .parse = parse_api_key_header,
     .release = release_api_key_header, .type_doc = "header name", .def_doc = "none",
     .help = "The request header whose values make the `api_keys` top-N table (the value is "
             "shown as sent: name a header that carries a key id, not a secret)."},
};

const struct cfg_section cfg_analytics_section =
    SECTION("analytics",
            "Traffic analytics in memory, bounded: per-second and per-minute trends (with "
            "requests and bytes per client country when `geo.database` is set) and the "
            "top paths (ids collapsed to `{id}`), clients, user agents, hosts, API keys, "
            "status/route pairs and countries over the last minute and hour.",
            analytics_keys);

/* ---- geo ---- */

static int parse_geo_database(struct cfg_ctx *ctx, const struct cfg_key *key,
                              const struct ynode *n, void *target)
{
    struct analytics_conf *a = target;
    char b[64], err[256];
    if (n->kind != YN_SCALAR || n->len == 0) {
        cfg_error(ctx, n, "expected the path of a MaxMind .mmdb file, got %s",
                  cfg_describe(n, b, sizeof(b)));
        return -1;
    }
    if (!(a->geo = geo_open(n->text, err, sizeof(err)))) {
        cfg_error(ctx, n, "%s", err);
        return -1;
    }
    if (!(a->geo_path = strdup(n->text))) {
        geo_close(a->geo);
        a->geo = NULL;
        cfg_oom(ctx, n);
        return -1;
    }
    return 0;
}

static void release_geo_database(const struct cfg_key *key, void *target)
{
    struct analytics_conf *a = target;
    geo_close(a->geo);
    free(a->geo_path);
    a->geo = NULL;
    a->geo_path = NULL;
}

static const struct cfg_key geo_keys[] = {
    {"database", CT_CUSTOM, CK_REQUIRED, .parse = parse_geo_database,
     .release = release_geo_database, .type_doc = "path", .def_doc = "none",
     .help = "A MaxMind-format database (GeoLite2/GeoIP2 Country or City, or any .mmdb with "
             "`country.iso_code`, `continent.code` and optionally `autonomous_system_number`). "
             "Mapped once at load; lookups are cached per thread."},
};

const struct cfg_section cfg_geo_section =
    SECTION("geo",
            "Client geolocation: the country, continent and AS number of each client, for "
            "the access log, the top-N countries, routes (`match.country`, "
            "`match.continent`) and L4 ACLs (`acl.allow_countries`). Without it geo is off.",
            geo_keys);

/* ---- country and continent sets ---- */

/* A code or a list of codes into the struct geo_codes at key->off; `continents` checks
 * them against the seven continent codes. Needs `geo.database` (declared before the
 * listeners, so it is known here). */
static int parse_codes(struct cfg_ctx *ctx, const struct cfg_key *key, const struct ynode *n,
                       void *target, bool continents)
{
    struct geo_codes *c = (struct geo_codes *)((char *)target + key->off);
    char b[64];
    if (!ctx->root->analytics.geo) {
        cfg_error(ctx, n, "needs a geo database: set `geo.database` at the top level");
        return -1;
    }
    size_t count = n->kind == YN_SEQ ? n->n : 1;
    if ((n->kind != YN_SEQ && n->kind != YN_SCALAR) || count == 0) {
        cfg_error(ctx, n, "expected a code or a list of codes, got %s",
                  cfg_describe(n, b, sizeof(b)));
        return -1;
    }
    int bad = 0;
    for (size_t i = 0; i < count; i++) {
        const struct ynode *it = n->kind == YN_SEQ ? n->kids[i] : n;
        bool ok = it->kind == YN_SCALAR && (continents ? geo_is_continent(it->text, it->len)
                                                       : geo_is_country(it->text, it->len));
        if (!ok) {
            cfg_error(ctx, it, "expected %s, got %s",
                      continents ? "a continent code (AF, AN, AS, EU, NA, OC, SA)"
                                 : "an assigned two-letter ISO 3166 country code such as FR",
                      cfg_describe(it, b, sizeof(b)));
            bad = -1;
            continue;
        }
        geo_codes_add(c, geo_code_index(it->text, it->len));
    }
    return bad;
}

int cfg_parse_countries(struct cfg_ctx *ctx, const struct cfg_key *key, const struct ynode *n,
                        void *target)
{
    return parse_codes(ctx, key, n, target, false);
}

int cfg_parse_continents(struct cfg_ctx *ctx, const struct cfg_key *key, const struct ynode *n,
                         void *target)
{
    return parse_codes(ctx, key, n, target, true);
}
