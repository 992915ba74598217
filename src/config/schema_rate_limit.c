/* schema_rate_limit.c — the `rate_limit` key of an HTTP route: its limits, their keys and
 * algorithms, and the Redis connection of cluster-wide limits. The finish hook checks
 * across keys and builds each limit's tables (http/filters/rate_limit.c).
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "http/filters/rate_limit.h"
#include "http/filters/util.h"
#include "schema.h"

#define SECTION(p, h, k, ...)                                                                      \
    {                                                                                              \
        .path = p, .help = h, .keys = k, .nkeys = ARRAY_SIZE(k), __VA_ARGS__                       \
    }

_Static_assert(sizeof(enum rl_algorithm) == sizeof(int), "CT_ENUM stores an int");
_Static_assert(sizeof(enum rl_fail) == sizeof(int), "CT_ENUM stores an int");

/* ---- key: client_ip[/V4[/V6]], header:NAME, cookie:NAME, route ---- */

static int parse_prefixes(const char *s, struct rl_key_part *k)
{
    k->prefix4 = 32;
    k->prefix6 = 64;
    if (*s == '\0')
        return 0;
    char *end;
    unsigned long v4 = strtoul(s + 1, &end, 10);
    if (*s != '/' || end == s + 1 || v4 > 32)
        return -1;
    k->prefix4 = (uint8_t)v4;
    if (*end == '\0')
        return 0;
    const char *p6 = end;
    unsigned long v6 = strtoul(p6 + 1, &end, 10);
    if (*p6 != '/' || end == p6 + 1 || v6 > 128 || *end != '\0')
        return -1;
    k->prefix6 = (uint8_t)v6;
    return 0;
}

static int key_part(struct cfg_ctx *ctx, const struct ynode *n, struct rl_key_part *k)
{
    char b[64];
    const char *s = n->kind == YN_SCALAR ? n->text : "";
    const char *named = strncmp(s, "header:", 7) == 0   ? s + 7
                        : strncmp(s, "cookie:", 7) == 0 ? s + 7
                                                        : NULL;
    if (strncmp(s, "client_ip", 9) == 0) {
        k->kind = RLK_CLIENT_IP;
        if (parse_prefixes(s + 9, k) == 0)
            return 0;
    } else if (strcmp(s, "route") == 0) {
        k->kind = RLK_ROUTE;
        return 0;
    } else if (named && http_token_valid(named, strlen(named))) {
        k->kind = s[0] == 'h' ? RLK_HEADER : RLK_COOKIE;
        if (!(k->name = strdup(named))) {
            cfg_oom(ctx, n);
            return -1;
        }
        k->name_len = (uint32_t)strlen(named);
        if (k->kind == RLK_HEADER)
            for (char *p = k->name; *p; p++)
                *p = (char)tolower((unsigned char)*p);
        return 0;
    }
    cfg_error(ctx, n,
              "expected client_ip, client_ip/V4 or client_ip/V4/V6 (prefix lengths), "
              "header:NAME, cookie:NAME or route, got %s",
              cfg_describe(n, b, sizeof(b)));
    return -1;
}

static void release_key(const struct cfg_key *key, void *target)
{
    struct rl_limit *l = target;
    for (uint32_t i = 0; l->key && i < l->nkey; i++)
        free(l->key[i].name);
    free(l->key);
    l->key = NULL;
    l->nkey = 0;
}

static int parse_key(struct cfg_ctx *ctx, const struct cfg_key *key, const struct ynode *n,
                     void *target)
{
    struct rl_limit *l = target;
    char b[64];
    size_t count = n->kind == YN_SEQ ? n->n : n->kind == YN_SCALAR ? 1 : 0;
    if (count == 0 || count > 8) {
        cfg_error(ctx, n, "expected a key part or a list of 1 to 8, got %s",
                  cfg_describe(n, b, sizeof(b)));
        return -1;
    }
    release_key(key, target); /* the default's, when a value replaces it */
    if (!(l->key = calloc(count, sizeof(*l->key)))) {
        cfg_oom(ctx, n);
        return -1;
    }
    int bad = 0;
    for (size_t i = 0; i < count; i++) {
        size_t mark = n->kind == YN_SEQ ? cfg_path_index(ctx, i) : ctx->pathlen;
        bad |= key_part(ctx, n->kind == YN_SEQ ? n->kids[i] : n, &l->key[i]);
        cfg_path_pop(ctx, mark);
        l->nkey = (uint32_t)i + 1;
    }
    return bad ? -1 : 0;
}

/* ---- one limit ---- */

static const struct cfg_enum algorithm_names[] = {
    {"sliding_window", RL_SLIDING_WINDOW}, {"token_bucket", RL_TOKEN_BUCKET}, {NULL, 0}};

static void limit_release(void *target)
{
    rl_limit_release(target);
}

static const struct cfg_key limit_keys[] = {
    {"name", CT_NAME, CK_REQUIRED | CK_UNIQUE, .off = offsetof(struct rl_limit, name),
     .help = "Names the limit in the RateLimit fields, the access log (`rate_limit=NAME`), "
             "metrics, and Redis keys (processes sharing a budget use the same name)."},
    {"key", CT_CUSTOM, 0, "client_ip", .parse = parse_key, .release = release_key,
     .type_doc = "part or list of parts",
     .help = "What is counted apart: `client_ip` (IPv4 address, IPv6 /64), `client_ip/24` or "
             "`client_ip/24/48` (IPv4 and IPv6 prefix lengths), `header:NAME` (an API key; "
             "also a JWT claim that an auth filter forwards as a header), `cookie:NAME`, "
             "`route`; a list combines them (`[route, header:x-api-key]`). A request without "
             "the header or cookie is not subject to the limit."},
    {"algorithm", CT_ENUM, 0, "sliding_window", .enums = algorithm_names,
     .off = offsetof(struct rl_limit, algorithm),
     .help = "`sliding_window`: at most `rate` requests in any `per` (the current window's "
             "count plus the previous one's, weighted). `token_bucket`: `rate` tokens a `per` "
             "refill a bucket of `burst`; a request takes one."},
    {"rate", CT_U32, CK_REQUIRED, .min = 1, .max = RATE_WINDOW_MAX,
     .off = offsetof(struct rl_limit, rate), .help = "Requests (or tokens) per `per`."},
    {"per", CT_DURATION, 0, "1s", .min = 1, .max = CFG_MS_DAY,
     .off = offsetof(struct rl_limit, per_ms), .help = "The period of `rate`."},
    {"burst", CT_U32, 0, .def_doc = "`rate`", .min = 1, .max = RATE_WINDOW_MAX,
     .off = offsetof(struct rl_limit, burst),
     .help = "token_bucket: the tokens the bucket holds (requests allowed at once)."},
    {"shadow", CT_BOOL, 0, "false", .off = offsetof(struct rl_limit, shadow),
     .help = "Only count and log (`rate_limit=shadow:NAME`) what would be refused; refuse "
             "nothing. To try a limit on real traffic."},
    {"cluster", CT_BOOL, 0, "false", .off = offsetof(struct rl_limit, cluster),
     .help = "Share the budget with every Strata process using the same `redis` (and limit "
             "name). sliding_window only."},
    {"fallback", CT_U32, 0, .def_doc = "`rate`", .min = 1, .max = RATE_WINDOW_MAX,
     .off = offsetof(struct rl_limit, fallback),
     .help = "Cluster limits with `redis.fail: open`: the local limit (per `per`, this process "
             "alone) while Redis is down or slow."},
    {"slots", CT_U32, 0, "65536", .min = 1, .max = 1 << 24, .off = offsetof(struct rl_limit, slots),
     .help = "Size of the key table (a power of two, 8 bytes a slot; cluster limits 32 more). "
             "Keys sharing a slot share a budget: size it well above the active keys."},
};

static const struct cfg_section limit_section =
    SECTION("listeners[].routes[].rate_limit.limits[]", "One limit.", limit_keys,
            .size = sizeof(struct rl_limit), .release = limit_release);

/* ---- redis ---- */

static const struct cfg_enum fail_names[] = {
    {"open", RL_FAIL_OPEN}, {"closed", RL_FAIL_CLOSED}, {NULL, 0}};

static const struct cfg_key redis_keys[] = {
    {"address", CT_ADDR, CK_REQUIRED, .off = offsetof(struct rl_redis_conf, address),
     .off2 = offsetof(struct rl_redis_conf, address_text), .help = "The Redis server (IP:port)."},
    {"timeout", CT_DURATION, 0, "200ms", .min = 1, .max = 60000,
     .off = offsetof(struct rl_redis_conf, timeout_ms),
     .help = "An exchange or connect slower than this means Redis is down: the fail mode "
             "applies until an exchange succeeds again (reconnects back off from 100 ms to "
             "5 s)."},
    {"sync_interval", CT_DURATION, 0, "50ms", .min = 5, .max = 10000,
     .off = offsetof(struct rl_redis_conf, sync_ms),
     .help = "How often counts are exchanged with Redis (by the control thread; workers "
             "never wait for Redis)."},
    {"fail", CT_ENUM, 0, "open", .enums = fail_names, .off = offsetof(struct rl_redis_conf, fail),
     .help = "While Redis is down or slow: `open` decides each cluster limit locally with "
             "its `fallback`; `closed` refuses its requests (429)."},
    {"prefix", CT_STRING, 0, "strata:rl:", .off = offsetof(struct rl_redis_conf, prefix),
     .help = "Prefix of every Redis key."},
    {"password", CT_STRING, 0, .def_doc = "none", .off = offsetof(struct rl_redis_conf, password),
     .help = "Sent with AUTH after connecting (Redis `requirepass`). Refused: Redis counts as "
             "down."},
};

static const struct cfg_section redis_section =
    SECTION("listeners[].routes[].rate_limit.redis", "The Redis server of the cluster-wide limits.",
            redis_keys);

/* ---- the filter ---- */

static void check_limit(struct cfg_ctx *ctx, const struct ynode *at,
                        struct filter_rate_limit_conf *c, struct rl_limit *l)
{
    if (!l->burst)
        l->burst = l->rate;
    if (!l->fallback)
        l->fallback = l->rate;
    l->window = (struct rate_window){l->rate, l->per_ms};
    l->fallback_window = (struct rate_window){l->fallback, l->per_ms};
    if (l->algorithm == RL_TOKEN_BUCKET &&
        rate_bucket_init(&l->bucket, l->rate, l->per_ms, l->burst) < 0)
        cfg_error(ctx, at,
                  "limit \"%s\": burst %u is too large for %u per %u ms (burst x period / "
                  "gcd(rate, period) must stay under 16M): use sliding_window",
                  l->name, l->burst, l->rate, l->per_ms);
    if (l->cluster && l->algorithm != RL_SLIDING_WINDOW)
        cfg_error(ctx, at, "limit \"%s\": cluster limits use algorithm sliding_window", l->name);
    if (l->cluster && !c->redis.address_text)
        cfg_error(ctx, at, "limit \"%s\": a cluster limit needs `redis`", l->name);
    if (ctx->nerrs == 0 && !ctx->oom && rl_limit_build(l) < 0)
        cfg_oom(ctx, at);
}

static void rate_limit_finish(struct cfg_ctx *ctx, const struct ynode *map, void *target)
{
    struct filter_rate_limit_conf *c = target;
    const struct ynode *seq = ymap_get(map, "limits");
    size_t mark = cfg_path_key(ctx, "limits");
    for (uint32_t i = 0; c->limits && i < c->nlimits; i++) {
        size_t m2 = cfg_path_index(ctx, i);
        check_limit(ctx, seq && seq->kind == YN_SEQ && i < seq->n ? seq->kids[i] : map, c,
                    &c->limits[i]);
        cfg_path_pop(ctx, m2);
    }
    cfg_path_pop(ctx, mark);
    if (c->redis.address_text && !(c->redis_state = calloc(1, sizeof(*c->redis_state))))
        cfg_oom(ctx, map);
}

static void rate_limit_release(void *target)
{
    struct filter_rate_limit_conf *c = target;
    free(c->redis_state);
    c->redis_state = NULL;
}

static const struct cfg_key rate_limit_keys[] = {
    {"limits", CT_LIST, CK_REQUIRED, .sub = &limit_section, .min = 1, .max = 16,
     .off = offsetof(struct filter_rate_limit_conf, limits),
     .off2 = offsetof(struct filter_rate_limit_conf, nlimits),
     .help = "The limits, checked in order; the first one refusing answers 429 (the limits "
             "before it have counted the request, those after it have not)."},
    {"headers", CT_BOOL, 0, "true", .off = offsetof(struct filter_rate_limit_conf, headers),
     .help = "Add `RateLimit-Policy` and `RateLimit` (draft-ietf-httpapi-ratelimit-headers) to "
             "the route's responses, one item per limit that applied: `\"NAME\";q=QUOTA;w=SECONDS` "
             "and `\"NAME\";r=REMAINING;t=SECONDS` (until the quota is whole again, or when "
             "nothing is left until the next request may go)."},
    {"redis", CT_SECTION, .sub = &redis_section,
     .off = offsetof(struct filter_rate_limit_conf, redis), .def_doc = "none",
     .help = "Where cluster limits share their counts."},
};

const struct cfg_section cfg_rate_limit_section = {
    .path = "listeners[].routes[].rate_limit",
    .help = "Limits the rate of requests per key. Over a limit the request is answered 429 "
            "with `Retry-After` and is not proxied. Local limits are exact across the "
            "workers of a process; `cluster` limits share one budget between Strata "
            "processes through Redis (counts exchanged every `sync_interval`: the budget "
            "holds to within about one request per process and exchange). Counted in "
            "/metrics (`strata_rate_limit_*`), named in the access log (`rate_limit=`).",
    .keys = rate_limit_keys,
    .nkeys = ARRAY_SIZE(rate_limit_keys),
    .finish = rate_limit_finish,
    .release = rate_limit_release,
};
