/* schema.c — every configuration key of Strata, declared once.
 *
 * These tables are the contract between the configuration file and the rest of the code:
 * walk.c parses and validates with them, reference.c prints doc/config.md from them. The
 * hooks below are the few rules a table cannot say (inherited defaults, references
 * between sections, addresses used twice).
 */
#include <stdlib.h>
#include <string.h>

#include "core/bug.h"
#include "net/addr.h"
#include "schema.h"

#define MS_DAY (24 * 3600 * 1000LL)
#define MAX_DURATION (30 * MS_DAY) /* fits uint32_t milliseconds */
#define MAX_CONNS 10000000

_Static_assert(sizeof(enum balance_kind) == sizeof(int), "CT_ENUM stores an int");
_Static_assert(sizeof(enum listener_mode) == sizeof(int), "CT_ENUM stores an int");
_Static_assert(sizeof(enum health_type) == sizeof(int), "CT_ENUM stores an int");

#define SECTION(p, h, k, ...)                                                                      \
    {                                                                                              \
        .path = p, .help = h, .keys = k, .nkeys = ARRAY_SIZE(k), __VA_ARGS__                       \
    }

static const struct cfg_enum balance_names[] = {
    {"round_robin", BAL_ROUND_ROBIN},
    {"weighted", BAL_WEIGHTED},
    {"least_conn", BAL_LEAST_CONN},
    {"p2c", BAL_P2C},
    {"source_hash", BAL_SOURCE_HASH},
    {"maglev", BAL_MAGLEV},
    {"cookie", -1},
    {NULL, 0},
};
static const struct cfg_enum mode_names[] = {
    {"tcp", MODE_TCP},
    {"udp", -1},
    {"http", -1},
    {NULL, 0},
};
static const struct cfg_enum health_names[] = {
    {"tcp", HC_TCP},
    {"none", HC_NONE},
    {"http", -1},
    {NULL, 0},
};

/* ---- servers ------------------------------------------------------------------------- */

static void server_finish(struct cfg_ctx *ctx, const struct ynode *n, void *target)
{
    struct server *s = target;
    if (!s->name && s->addr_text && !(s->name = strdup(s->addr_text)))
        cfg_oom(ctx, n);
}

static const struct cfg_key server_keys[] = {
    {"address", CT_ADDR, CK_REQUIRED, .off = offsetof(struct server, addr),
     .off2 = offsetof(struct server, addr_text),
     .help = "Where the server listens: `IPv4:port` or `[IPv6]:port`. Host names are not "
             "resolved."},
    {"name", CT_STRING, CK_UNIQUE, .def_doc = "the address", .off = offsetof(struct server, name),
     .help = "Name shown in statistics and the admin API; unique within the backend."},
    {"weight", CT_U32, 0, "1", .min = 1, .max = 1000, .off = offsetof(struct server, weight),
     .help = "Relative share of new connections (every `balance` but `round_robin`)."},
    {"backup", CT_BOOL, 0, "false", .off = offsetof(struct server, backup),
     .help = "A backup server is used only when no primary server is available."},
    {"max_connections", CT_U32, 0, "0", .min = 0, .max = MAX_CONNS,
     .off = offsetof(struct server, max_conns),
     .help = "Open connections above which the server is skipped; 0 = unlimited."},
};

static const struct cfg_section server_section = SECTION(
    "backends.<name>.servers[]",
    "One server of a backend. A plain string is shorthand for `{ address: STRING }`.", server_keys,
    .size = sizeof(struct server), .shorthand = "address", .finish = server_finish);

/* ---- backends ------------------------------------------------------------------------ */

static const struct cfg_key health_keys[] = {
    {"type", CT_ENUM, 0, "tcp", .enums = health_names, .off = offsetof(struct health_conf, type),
     .help = "`tcp`: a server is up when a TCP connection to it succeeds. `none`: no checks."},
    {"interval", CT_DURATION, 0, "2s", .min = 10, .max = MS_DAY,
     .off = offsetof(struct health_conf, interval_ms), .help = "Time between two checks."},
    {"timeout", CT_DURATION, 0, "1s", .min = 1, .max = MS_DAY,
     .off = offsetof(struct health_conf, timeout_ms),
     .help = "A check that takes longer has failed."},
    {"rise", CT_U32, 0, "2", .min = 1, .max = 100, .off = offsetof(struct health_conf, rise),
     .help = "Consecutive successful checks that bring a down server up."},
    {"fall", CT_U32, 0, "3", .min = 1, .max = 100, .off = offsetof(struct health_conf, fall),
     .help = "Consecutive failed checks that take an up server down."},
};

static void health_absent(void *target)
{
    ((struct health_conf *)target)->type = HC_NONE;
}

static const struct cfg_section health_section =
    SECTION("backends.<name>.health_check",
            "Active health checks. Without this section no active checks run (`type: none`).",
            health_keys, .absent = health_absent);

static const struct cfg_key passive_keys[] = {
    {"fall", CT_U32, 0, "3", .min = 0, .max = 1000, .off = offsetof(struct passive_conf, fall),
     .help = "Consecutive failed connects that take a server down; 0 turns passive checks "
             "off."},
    {"cooldown", CT_DURATION, 0, "10s", .min = 100, .max = MS_DAY,
     .off = offsetof(struct passive_conf, cooldown_ms),
     .help = "Without active checks: how long a server taken down stays down before it is "
             "tried again."},
};

static const struct cfg_section passive_section =
    SECTION("backends.<name>.passive",
            "Passive health checks: failed connects made for real clients count against a server.",
            passive_keys);

static const struct cfg_key backend_timeout_keys[] = {
    {"connect", CT_DURATION, 0, .def_doc = "`timeouts.connect`", .min = 1, .max = MAX_DURATION,
     .off = offsetof(struct backend, connect_timeout_ms),
     .help = "Time allowed to connect to a server of this backend."},
};

static const struct cfg_section backend_timeout_section =
    SECTION("backends.<name>.timeouts", "Overrides the global `timeouts` for one backend.",
            backend_timeout_keys);

static void backend_init(struct cfg_ctx *ctx, void *target)
{
    ((struct backend *)target)->connect_timeout_ms = ctx->root->timeouts.connect_ms;
}

static const struct cfg_key backend_keys[] = {
    {"balance", CT_ENUM, 0, "round_robin", .enums = balance_names,
     .off = offsetof(struct backend, balance),
     .help = "How a server is chosen for a new connection: `round_robin` in turn; `weighted` "
             "in turn by weight; `least_conn` fewest open connections; `p2c` the better of two "
             "random servers; `source_hash` by client IP; `maglev` consistent hashing of the "
             "client IP (the same choice on every Strata instance)."},
    {"retries", CT_U32, 0, "2", .min = 0, .max = 16, .off = offsetof(struct backend, retries),
     .help = "Other servers tried after a failed connect, before the client is dropped."},
    {"timeouts", CT_SECTION, .sub = &backend_timeout_section,
     .help = "Timeouts of this backend, overriding the global ones."},
    {"health_check", CT_SECTION, .sub = &health_section, .off = offsetof(struct backend, hc),
     .def_doc = "no active checks", .help = "Active health checks."},
    {"passive", CT_SECTION, .sub = &passive_section, .off = offsetof(struct backend, passive),
     .help = "Passive health checks (on by default)."},
    {"servers", CT_LIST, CK_REQUIRED, .sub = &server_section, .min = 1,
     .off = offsetof(struct backend, servers), .off2 = offsetof(struct backend, nservers),
     .help = "The servers, at least one."},
};

static const struct cfg_section backend_section =
    SECTION("backends.<name>",
            "A named group of servers that listeners send connections to. The name (the mapping "
            "key) is 1-64 letters, digits, `_`, `.` or `-`.",
            backend_keys, .size = sizeof(struct backend),
            .name_off = offsetof(struct backend, name), .init = backend_init);

/* ---- listeners ----------------------------------------------------------------------- */

static int parse_listen(struct cfg_ctx *ctx, const struct cfg_key *key, const struct ynode *n,
                        void *target)
{
    struct listener_conf *l = target;
    size_t count = n->kind == YN_SEQ ? n->n : 1, bad = 0;
    char b[64];

    if (n->kind != YN_SEQ && n->kind != YN_SCALAR) {
        cfg_error(ctx, n, "expected an address or a sequence of addresses, got %s",
                  cfg_describe(n, b, sizeof(b)));
        return -1;
    }
    if (count == 0) {
        cfg_error(ctx, n, "expected at least one address, got an empty sequence");
        return -1;
    }
    l->addrs = calloc(count, sizeof(*l->addrs));
    l->addr_texts = calloc(count, sizeof(*l->addr_texts));
    if (!l->addrs || !l->addr_texts) {
        cfg_oom(ctx, n);
        return -1;
    }
    l->naddrs = (uint32_t)count;
    if (n->kind == YN_SCALAR)
        return cfg_parse_addr(ctx, n, &l->addrs[0], &l->addr_texts[0]);
    for (size_t i = 0; i < count; i++) {
        size_t mark = cfg_path_index(ctx, i);
        bad += cfg_parse_addr(ctx, n->kids[i], &l->addrs[i], &l->addr_texts[i]) < 0;
        cfg_path_pop(ctx, mark);
    }
    return bad ? -1 : 0;
}

static void release_listen(const struct cfg_key *key, void *target)
{
    struct listener_conf *l = target;
    for (uint32_t i = 0; l->addr_texts && i < l->naddrs; i++)
        free(l->addr_texts[i]);
    free(l->addr_texts);
    free(l->addrs);
}

/* Records the reference; root_finish() resolves it once every backend is known. */
static int parse_backend_ref(struct cfg_ctx *ctx, const struct cfg_key *key, const struct ynode *n,
                             void *target)
{
    struct listener_conf *l = target;
    char b[64];
    if (n->kind != YN_SCALAR) {
        cfg_error(ctx, n, "expected the name of a backend, got %s", cfg_describe(n, b, sizeof(b)));
        return -1;
    }
    if (ctx->nrefs == ctx->caprefs) {
        size_t cap = ctx->caprefs ? ctx->caprefs * 2 : 8;
        struct cfg_ref *r = realloc(ctx->refs, cap * sizeof(*r));
        if (!r) {
            cfg_oom(ctx, n);
            return -1;
        }
        ctx->refs = r;
        ctx->caprefs = cap;
    }
    struct cfg_ref *r = &ctx->refs[ctx->nrefs++];
    r->slot = &l->backend;
    r->node = n;
    snprintf(r->path, sizeof(r->path), "%s", ctx->path);
    return 0;
}

static const struct cfg_key listener_timeout_keys[] = {
    {"idle", CT_DURATION, 0, .def_doc = "`timeouts.idle`", .min = 1, .max = MAX_DURATION,
     .off = offsetof(struct listener_conf, idle_timeout_ms),
     .help = "A connection with no traffic in either direction for this long is closed."},
};

static const struct cfg_section listener_timeout_section =
    SECTION("listeners[].timeouts", "Overrides the global `timeouts` for one listener.",
            listener_timeout_keys);

static void listener_init(struct cfg_ctx *ctx, void *target)
{
    ((struct listener_conf *)target)->idle_timeout_ms = ctx->root->timeouts.idle_ms;
}

static const struct cfg_key listener_keys[] = {
    {"name", CT_NAME, CK_REQUIRED | CK_UNIQUE, .off = offsetof(struct listener_conf, name),
     .help = "Unique name: 1-64 letters, digits, `_`, `.` or `-`. Used in logs and metrics."},
    {"listen", CT_CUSTOM, CK_REQUIRED, .parse = parse_listen, .release = release_listen,
     .type_doc = "address or list of addresses",
     .help = "Where to accept connections: `IPv4:port`, `[IPv6]:port`, `*:port` (all IPv4) "
             "or `[::]:port`, or a list of them. No two listeners may use the same address."},
    {"mode", CT_ENUM, 0, "tcp", .enums = mode_names, .off = offsetof(struct listener_conf, mode),
     .help = "`tcp`: relay bytes to a server unchanged (any TCP protocol)."},
    {"backend", CT_CUSTOM, CK_REQUIRED, .parse = parse_backend_ref, .type_doc = "backend name",
     .help = "The backend (a key of `backends`) that serves this listener."},
    {"max_connections", CT_U32, 0, "0", .min = 0, .max = MAX_CONNS,
     .off = offsetof(struct listener_conf, max_conns),
     .help = "Open connections above which new ones are closed at once; 0 = unlimited."},
    {"backlog", CT_U32, 0, "1024", .min = 1, .max = 65535,
     .off = offsetof(struct listener_conf, backlog),
     .help = "Kernel queue of connections not yet accepted (`listen(2)` backlog)."},
    {"timeouts", CT_SECTION, .sub = &listener_timeout_section,
     .help = "Timeouts of this listener, overriding the global ones."},
};

static const struct cfg_section listener_section =
    SECTION("listeners[]", "A socket that accepts client connections and sends them to a backend.",
            listener_keys, .size = sizeof(struct listener_conf), .init = listener_init);

/* ---- top level ----------------------------------------------------------------------- */

static int parse_workers(struct cfg_ctx *ctx, const struct cfg_key *key, const struct ynode *n,
                         void *target)
{
    struct cfg_root *root = target;
    char b[64];
    if (n->kind == YN_SCALAR && strcmp(n->text, "auto") == 0) {
        unsigned w = ctx->ncpu ? ctx->ncpu : 1;
        root->workers = w > 256 ? 256 : w;
        return 0;
    }
    char *end;
    long v = n->kind == YN_SCALAR ? strtol(n->text, &end, 10) : 0;
    if (n->kind != YN_SCALAR || !*n->text || *end || v < 1 || v > 256 || n->text[0] == ' ' ||
        n->text[0] == '+') {
        cfg_error(ctx, n, "expected \"auto\" or an integer from 1 to 256, got %s",
                  cfg_describe(n, b, sizeof(b)));
        return -1;
    }
    root->workers = (uint32_t)v;
    return 0;
}

static const struct cfg_key timeout_keys[] = {
    {"connect", CT_DURATION, 0, "2s", .min = 1, .max = MAX_DURATION,
     .off = offsetof(struct cfg_root, timeouts.connect_ms),
     .help = "Time allowed to connect to a server (a backend may override it)."},
    {"idle", CT_DURATION, 0, "5m", .min = 1, .max = MAX_DURATION,
     .off = offsetof(struct cfg_root, timeouts.idle_ms),
     .help = "A connection idle this long is closed (a listener may override it)."},
    {"drain", CT_DURATION, 0, "10s", .min = 0, .max = MAX_DURATION,
     .off = offsetof(struct cfg_root, timeouts.drain_ms),
     .help = "On SIGTERM, how long open connections may finish before they are closed."},
};

static const struct cfg_section timeout_section = SECTION(
    "timeouts", "Global timeouts; listeners and backends may override some of them.", timeout_keys);

static const struct cfg_key tuning_keys[] = {
    {"pipe_size", CT_SIZE, 0, "256k", .min = 4096, .max = 1 << 20,
     .off = offsetof(struct cfg_root, tuning.pipe_size),
     .help = "Kernel pipe size for zero-copy (splice) relaying of bulk transfers: larger means "
             "fewer system calls per MiB. Above /proc/sys/fs/pipe-max-size the kernel default "
             "(64k) is kept."},
    {"pipe_cache", CT_U32, 0, "256", .min = 0, .max = 65536,
     .off = offsetof(struct cfg_root, tuning.pipe_cache),
     .help = "Empty pipes each worker keeps for reuse. A pipe is held only while bytes are "
             "in flight through it, so idle connections hold none."},
};

static const struct cfg_section tuning_section = SECTION(
    "tuning", "Resource knobs with sane defaults; most setups never touch them.", tuning_keys);

static void admin_finish(struct cfg_ctx *ctx, const struct ynode *map, void *target)
{
    ((struct cfg_root *)target)->admin.enabled = true;
}

static void admin_absent(void *target)
{
    struct cfg_root *root = target;
    free(root->admin.text);
    root->admin.text = NULL;
    root->admin.enabled = false;
}

static const struct cfg_key admin_keys[] = {
    {"listen", CT_ADDR, 0, "127.0.0.1:9090", .off = offsetof(struct cfg_root, admin.addr),
     .off2 = offsetof(struct cfg_root, admin.text),
     .help = "Address of the admin API, metrics and dashboard. Keep it off public networks."},
};

static const struct cfg_section admin_section =
    SECTION("admin", "The admin listener. Without this section there is none.", admin_keys,
            .finish = admin_finish, .absent = admin_absent);

static void check_refs(struct cfg_ctx *ctx)
{
    const struct cfg_root *root = ctx->root;
    for (size_t i = 0; i < ctx->nrefs; i++) {
        const struct cfg_ref *r = &ctx->refs[i];
        const char *cands[64];
        size_t nc = 0;
        for (uint32_t j = 0; j < root->nbackends && !*r->slot; j++) {
            const char *name = root->backends[j].name;
            if (name && strcmp(name, r->node->text) == 0)
                *r->slot = &root->backends[j];
            else if (name && nc < ARRAY_SIZE(cands))
                cands[nc++] = name;
        }
        if (*r->slot || !root->nbackends) /* no backends at all is reported already */
            continue;
        const char *hint = cfg_suggest(r->node->text, cands, nc);
        snprintf(ctx->path, sizeof(ctx->path), "%s", r->path);
        ctx->pathlen = strlen(ctx->path);
        if (hint)
            cfg_error(ctx, r->node, "no backend named \"%s\" (did you mean \"%s\"?)", r->node->text,
                      hint);
        else
            cfg_error(ctx, r->node, "no backend named \"%s\" in `backends`", r->node->text);
        cfg_path_pop(ctx, 0);
    }
}

/* Reports that address j of listener i is already used by `other`, at the node where it
 * was written ("listeners[i].listen" or "listeners[i].listen[j]"). */
static void listen_conflict(struct cfg_ctx *ctx, uint32_t i, uint32_t j, const char *other)
{
    const struct ynode *seq = ymap_get(ctx->doc, "listeners");
    const struct ynode *n = ymap_get(seq->kids[i], "listen");
    size_t mark = cfg_path_key(ctx, "listeners");
    cfg_path_index(ctx, i);
    cfg_path_key(ctx, "listen");
    if (n->kind == YN_SEQ) {
        cfg_path_index(ctx, j);
        n = n->kids[j];
    }
    cfg_error(ctx, n, "address %s is already used by %s", ctx->root->listeners[i].addr_texts[j],
              other);
    cfg_path_pop(ctx, mark);
}

/* No address may be used by two listeners, twice by one, or by a listener and admin. */
static void check_addresses(struct cfg_ctx *ctx)
{
    const struct cfg_root *root = ctx->root;
    char other[128];
    for (uint32_t i = 0; i < root->nlisteners; i++) {
        const struct listener_conf *l = &root->listeners[i];
        for (uint32_t j = 0; j < l->naddrs; j++) {
            if (!l->addr_texts[j])
                continue;
            bool dup = false;
            for (uint32_t pi = 0; pi <= i && !dup; pi++) {
                const struct listener_conf *p = &root->listeners[pi];
                for (uint32_t pj = 0; pj < (pi == i ? j : p->naddrs) && !dup; pj++) {
                    if (!p->addr_texts[pj] || !addr_equal(&p->addrs[pj], &l->addrs[j]))
                        continue;
                    if (pi == i)
                        snprintf(other, sizeof(other), "listen[%u] of the same listener", pj);
                    else
                        snprintf(other, sizeof(other), "listener \"%s\"", p->name ? p->name : "?");
                    listen_conflict(ctx, i, j, other);
                    dup = true;
                }
            }
            if (!dup && root->admin.enabled && root->admin.text &&
                addr_equal(&root->admin.addr, &l->addrs[j]))
                listen_conflict(ctx, i, j, "the admin listener (admin.listen)");
        }
    }
}

static void root_finish(struct cfg_ctx *ctx, const struct ynode *map, void *target)
{
    check_refs(ctx);
    check_addresses(ctx);
}

/* Order matters: `timeouts` comes before `listeners` and `backends`, whose init hooks copy
 * the global values as defaults. */
static const struct cfg_key root_keys[] = {
    {"workers", CT_CUSTOM, 0, "auto", .parse = parse_workers, .type_doc = "`auto` or 1..256",
     .help = "Worker threads, each with its own event loop. `auto`: one per CPU."},
    {"timeouts", CT_SECTION, .sub = &timeout_section, .help = "Global timeouts."},
    {"admin", CT_SECTION, .sub = &admin_section, .def_doc = "no admin listener",
     .help = "The admin API, metrics and dashboard listener."},
    {"tuning", CT_SECTION, .sub = &tuning_section, .help = "Resource knobs."},
    {"listeners", CT_LIST, CK_REQUIRED, .sub = &listener_section, .min = 1,
     .off = offsetof(struct cfg_root, listeners), .off2 = offsetof(struct cfg_root, nlisteners),
     .help = "The listeners, at least one."},
    {"backends", CT_NAMED, CK_REQUIRED, .sub = &backend_section, .min = 1,
     .off = offsetof(struct cfg_root, backends), .off2 = offsetof(struct cfg_root, nbackends),
     .help = "The backends by name, at least one."},
};

const struct cfg_section cfg_root_section =
    SECTION("", "The top level of the configuration file.", root_keys,
            .size = sizeof(struct cfg_root), .finish = root_finish);
