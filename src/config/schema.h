/* schema.h — the configuration schema as declaration tables, and the walker that applies them.
 *
 * Every key is declared once (struct cfg_key in schema.c): name, type, required or default,
 * limits, help text and where its value is stored. One generic walker (walk.c) uses these
 * tables to parse and validate a YAML tree into C structs, to report errors with
 * file:line:column, to free what it built, and to print the configuration reference.
 */
#ifndef STRATA_CONFIG_SCHEMA_H
#define STRATA_CONFIG_SCHEMA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "config-t.h"
#include "yaml_tree.h"

struct cfg_ctx;
struct cfg_key;

enum cfg_type {
    CT_U32,      /* integer in [min, max] -> uint32_t at off */
    CT_DURATION, /* "250ms", "2s", "5m", "1h" (bare integer = seconds), ms in [min, max]
                    -> uint32_t at off */
    CT_SIZE,     /* "4096", "16k", "1m", "1g" (powers of 1024), bytes in [min, max]
                    -> uint32_t at off */
    CT_BOOL,     /* true/false (yes/no, on/off) -> bool at off */
    CT_ENUM,     /* one of enums[].name -> int-sized enum at off */
    CT_STRING,   /* non-empty printable string -> malloc'd char * at off */
    CT_NAME,     /* [A-Za-z0-9_.-]{1,64} -> malloc'd char * at off */
    CT_ADDR,     /* addr_parse() text -> struct sockaddr_any at off, char * text at off2 */
    CT_SECTION,  /* mapping -> the fields of `sub`, stored inline at off */
    CT_LIST,     /* sequence of `sub` -> array (void *) at off, uint32_t count at off2 */
    CT_NAMED,    /* mapping name -> `sub` -> array at off, uint32_t count at off2 */
    CT_CUSTOM,   /* parsed by key->parse, freed by key->release */
};

enum {
    CK_REQUIRED = 1 << 0, /* error when absent or null */
    CK_UNIQUE = 1 << 1,   /* string key of a CT_LIST item: no two items may share it */
};

/* An enumeration value. `value` < 0 marks a name that is reserved for a later release:
 * using it says "not supported yet" rather than "unknown". */
struct cfg_enum {
    const char *name;
    int value;
};

typedef int (*cfg_parse_fn)(struct cfg_ctx *ctx, const struct cfg_key *key,
                            const struct ynode *node, void *target);

struct cfg_key {
    const char *name;
    enum cfg_type type;
    unsigned flags;
    const char *def;     /* default, written as in YAML; NULL when none */
    const char *def_doc; /* the reference's "default" text when def is NULL */
    const char *help;
    size_t off, off2;              /* where the value is stored in the section's target */
    int64_t min, max;              /* CT_U32 value, CT_DURATION ms, CT_LIST/NAMED item count */
    const struct cfg_enum *enums;  /* CT_ENUM: terminated by a NULL name */
    const struct cfg_section *sub; /* CT_SECTION, CT_LIST, CT_NAMED */
    cfg_parse_fn parse;            /* CT_CUSTOM: 0 on success, -1 after reporting errors */
    void (*release)(const struct cfg_key *key, void *target); /* CT_CUSTOM */
    const char *type_doc; /* CT_CUSTOM: the type as the reference shows it */
    /* CT_CUSTOM: a second section the value may take (the reference documents `sub` and
     * `alt`; the parser picks one, e.g. by the listener's mode). */
    const struct cfg_section *alt;
};

struct cfg_section {
    const char *path; /* as the reference titles it, e.g. "backends.<name>" */
    const char *help;
    const struct cfg_key *keys;
    size_t nkeys;
    size_t size;           /* CT_LIST/CT_NAMED: size of one item */
    size_t name_off;       /* CT_NAMED: where the item's name (char *) goes */
    const char *shorthand; /* CT_LIST: the key a plain string item stands for */
    /* After defaults are applied to a fresh target (e.g. inherited global values). */
    void (*init)(struct cfg_ctx *ctx, void *target);
    /* When the section's key is absent or null (the defaults stay in place). */
    void (*absent)(void *target);
    /* After a present mapping has been walked: checks across keys, derived values. */
    void (*finish)(struct cfg_ctx *ctx, const struct ynode *map, void *target);
    /* Frees what the hooks (or custom keys) allocated outside any key, after the keys. */
    void (*release)(void *target);
    /* Keys that belong to a sibling section (NULL-terminated): using one here reports
     * `other_msg` (e.g. "applies to `mode: http` listeners only") instead of "unknown". */
    const char *const *other_keys;
    const char *other_msg;
};

/* One `expect:` item (schema_expect.c): checked at load, then dropped. */
struct expect_conf {
    char *request;  /* "METHOD URL" */
    char **headers; /* "name: value" */
    uint32_t nheaders;
    char *listener, *route, *backend; /* NULL: not checked (listener: by the URL) */
    uint32_t status;                  /* 0: not checked */
};

/* What the root section parses into; config.c moves it into a struct config. */
struct cfg_root {
    uint32_t workers;
    struct {
        uint32_t connect_ms, idle_ms, drain_ms, reload_drain_ms;
    } timeouts;
    struct {
        bool enabled;
        bool histograms; /* latency histograms recorded (stats/runtime.h) */
        char *text;
        struct sockaddr_any addr;
        char *token, *token_file, *token_name; /* token_file is read into token */
    } admin;
    struct {
        uint32_t pipe_size, pipe_cache;
        bool io_uring;
    } tuning;
    uint32_t max_conns;
    char *upgrade_socket;
    struct analytics_conf analytics; /* `analytics:` and `geo:` (schema_analytics.c) */
    struct listener_conf *listeners;
    uint32_t nlisteners;
    struct backend *backends;
    uint32_t nbackends;
    struct expect_conf *expects;
    uint32_t nexpects;
};

extern const struct cfg_section cfg_expect_section;
/* Checks every `expect:` item against the built listeners (root_finish, when no error came
 * before), reporting failures at the item's file:line:col. */
void cfg_expect_verify(struct cfg_ctx *ctx);

#define CFG_MS_DAY (24 * 3600 * 1000LL)
#define CFG_MAX_DURATION (30 * CFG_MS_DAY) /* fits uint32_t milliseconds */

#define CFG_MAX_ERRORS 50
#define CFG_PATH_MAX 256

/* A listener's `backend:` reference, resolved once all backends are known. */
struct cfg_ref {
    struct backend **slot;
    const struct ynode *node;
    char path[CFG_PATH_MAX];
};

struct cfg_err {
    uint32_t line, col;
    char *msg; /* "KEY.PATH: message", malloc'd */
};

/* State of one load. Zero it, then set file and ncpu. */
struct cfg_ctx {
    const char *file;
    unsigned ncpu;
    const struct ynode *doc;
    struct cfg_root *root;
    char path[CFG_PATH_MAX]; /* KEY.PATH of the value being walked */
    size_t pathlen;
    struct cfg_err errs[CFG_MAX_ERRORS];
    unsigned nerrs, dropped;
    bool oom; /* an allocation failed (errors are then expected anywhere) */
    struct cfg_ref *refs;
    size_t nrefs, caprefs;
};

/* text | json | off, for every log's `format` (schema.c). */
extern const struct cfg_enum cfg_log_formats[];
/* A log's `syslog` and `facility` keys (schema.c): the address into the struct
 * syslog_conf at key->off. */
extern const struct cfg_enum cfg_syslog_facilities[];
int cfg_parse_syslog(struct cfg_ctx *ctx, const struct cfg_key *key, const struct ynode *n,
                     void *target);
void cfg_release_syslog(const struct cfg_key *key, void *target);
/* The finish hook of a log section: `path` and `syslog` exclude each other. */
void cfg_log_finish(struct cfg_ctx *ctx, const struct ynode *map, void *target);
/* The `syslog` and `facility` keys of a log section (struct log_conf), shared by `log:`
 * and `access_log:`. */
#define CFG_SYSLOG_KEYS                                                                            \
    {"syslog", CT_CUSTOM, .parse = cfg_parse_syslog, .release = cfg_release_syslog,                \
     .off = offsetof(struct log_conf, syslog), .type_doc = "path or udp:HOST:PORT",                \
     .def_doc = "none",                                                                            \
     .help = "Send the lines to a syslog daemon instead of a file, one RFC 5424 message per "   \
             "line (APP-NAME `strata`, severity informational): a Unix datagram socket path "  \
             "(`/dev/log`) or `udp:HOST:PORT`. The socket is non-blocking: lines the daemon "   \
             "cannot take at once are dropped, never waited for."},                              \
    {"facility", CT_ENUM, 0, "local0", .enums = cfg_syslog_facilities,                            \
     .off = offsetof(struct log_conf, syslog.facility),                                           \
     .help = "The syslog facility of the messages (with `syslog`)."}

/* The root of the schema (schema.c). */
extern const struct cfg_section cfg_root_section;

/* Walks `doc` into *root (zeroed by the caller). Returns the number of errors recorded in
 * ctx; *root holds whatever was built either way and must be released with
 * cfg_root_free(). */
unsigned cfg_parse(struct cfg_ctx *ctx, const struct ynode *doc, struct cfg_root *root);
void cfg_root_free(struct cfg_root *root);
/* Frees what a section's keys allocated in `target` (not target itself). */
void cfg_free_target(const struct cfg_section *sec, void *target);
void cfg_ctx_release(struct cfg_ctx *ctx);

/* Records an error at `at` (NULL: no position), prefixed with ctx->path when non-empty. */
void cfg_error(struct cfg_ctx *ctx, const struct ynode *at, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Records an allocation failure at `at`. */
void cfg_oom(struct cfg_ctx *ctx, const struct ynode *at);
/* Appends ".name" (or "name" at the root) / "[i]" to ctx->path; returns the old length
 * for cfg_path_pop(). */
size_t cfg_path_key(struct cfg_ctx *ctx, const char *name);
size_t cfg_path_index(struct cfg_ctx *ctx, size_t i);
void cfg_path_pop(struct cfg_ctx *ctx, size_t len);
/* Quotes a scalar for a message ("\"text\""), or names the kind of a collection. */
const char *cfg_describe(const struct ynode *n, char *buf, size_t len);
/* The candidate closest to `word` by edit distance if it is close enough, else NULL. */
const char *cfg_suggest(const char *word, const char *const *cands, size_t n);
/* Parses an address value into a sockaddr and a malloc'd copy of its text. */
int cfg_parse_addr(struct cfg_ctx *ctx, const struct ynode *n, struct sockaddr_any *addr,
                   char **text);

/* Applies the defaults of `sec` to a fresh target and runs its init hook. */
void cfg_init_target(struct cfg_ctx *ctx, const struct cfg_section *sec, void *target);
/* Parses one value by its key's type into target (as the walker does for each key). */
void cfg_parse_value(struct cfg_ctx *ctx, const struct cfg_key *k, const struct ynode *n,
                     void *target);
/* Applies the defaults of `sec` to target, then walks the mapping `map` into it (a type
 * error when it is not a mapping). */
void cfg_walk_section(struct cfg_ctx *ctx, const struct cfg_section *sec, const struct ynode *map,
                      void *target);
/* Records a backend reference at `n` (a scalar) to be resolved into *slot once every
 * backend is known. Returns 0 or -1 (reported). */
int cfg_backend_ref(struct cfg_ctx *ctx, const struct ynode *n, struct backend **slot);
/* CT_CUSTOM parser and release of a prefix or list of prefixes into the struct cidr_set
 * at key->off. */
int cfg_parse_cidr_list(struct cfg_ctx *ctx, const struct cfg_key *key, const struct ynode *n,
                        void *target);
void cfg_release_cidr_list(const struct cfg_key *key, void *target);

/* ---- the HTTP part of the schema (schema_http.c, schema_filters.c) ---- */

/* listeners[].http, listeners[].routes[] of mode http, and the HTTP keys of backends. */
extern const struct cfg_section cfg_http_section, cfg_http_route_section, cfg_sticky_section,
    cfg_keepalive_section, cfg_h2_upstream_section;
int cfg_parse_hash(struct cfg_ctx *ctx, const struct cfg_key *key, const struct ynode *n,
                   void *target);
void cfg_release_hash(const struct cfg_key *key, void *target);
int cfg_parse_sticky(struct cfg_ctx *ctx, const struct cfg_key *key, const struct ynode *n,
                     void *target);
void cfg_release_sticky(const struct cfg_key *key, void *target);
/* Gives the HTTP routes of a listener their default names ("route#N"). */
void cfg_http_routes_named(struct cfg_ctx *ctx, struct listener_conf *l);
/* After backend references are resolved: the default route of each HTTP listener with a
 * `backend`, and its listener filters. */
void cfg_http_finish(struct cfg_ctx *ctx);

/* Route filters (schema_filters.c): parses the key (path_rewrite, request_headers,
 * response_headers, redirect, respond) into a new filter_conf appended to the route's
 * filters (target is the struct http_route). cfg_free_route_filters() frees them all. */
int cfg_parse_filter(struct cfg_ctx *ctx, const struct cfg_key *key, const struct ynode *n,
                     void *target);
void cfg_free_route_filters(struct http_route *r);
extern const struct cfg_section cfg_grpc_web_section, cfg_path_rewrite_section,
    cfg_request_headers_section, cfg_response_headers_section, cfg_redirect_section,
    cfg_respond_section;
extern const struct cfg_section cfg_rate_limit_section; /* schema_rate_limit.c */
/* waf and ext_authz (schema_security.c). */
extern const struct cfg_section cfg_waf_section, cfg_ext_authz_section;
/* A field name a filter may set/add/remove or a match may read: a token, and not one the
 * codec owns (Host, Content-Length, Transfer-Encoding, Connection...). Reports at n and
 * returns -1 when it is not; `what` names it in the message ("header name"). */
int cfg_check_field_name(struct cfg_ctx *ctx, const struct ynode *n, const char *what);
/* A scalar (possibly empty) without control characters, malloc'd; NULL after reporting.
 * `what` says what was expected. */
char *cfg_dup_text(struct cfg_ctx *ctx, const struct ynode *n, const char *what);

/* ---- TLS (schema_tls.c) ---- */

/* listeners[].tls and backends.<name>.tls: walk the section, then build the listener's
 * tls_server / the backend's tls_client (freed by the release hooks). */
extern const struct cfg_section cfg_tls_server_section, cfg_tls_client_section;
int cfg_parse_listener_tls(struct cfg_ctx *ctx, const struct cfg_key *key, const struct ynode *n,
                           void *target);
void cfg_release_listener_tls(const struct cfg_key *key, void *target);
int cfg_parse_backend_tls(struct cfg_ctx *ctx, const struct cfg_key *key, const struct ynode *n,
                          void *target);
void cfg_release_backend_tls(const struct cfg_key *key, void *target);

/* ---- analytics and geo (schema_analytics.c) ---- */

extern const struct cfg_section cfg_analytics_section, cfg_geo_section;
/* CT_CUSTOM parsers of a country / continent code or list into the struct geo_codes at
 * key->off (nothing to release). */
int cfg_parse_countries(struct cfg_ctx *ctx, const struct cfg_key *key, const struct ynode *n,
                        void *target);
int cfg_parse_continents(struct cfg_ctx *ctx, const struct cfg_key *key, const struct ynode *n,
                         void *target);
/* Replaces the relative path in *slot by one from the configuration file's directory
 * (schema_tls.c). */
void cfg_resolve_path(struct cfg_ctx *ctx, const struct ynode *at, char **slot);

/* CT_CUSTOM parser of a size (0, "10m", "2g", up to 2^50) into the uint64_t at key->off
 * (schema_http.c). */
int cfg_parse_size_any(struct cfg_ctx *ctx, const struct cfg_key *key, const struct ynode *n,
                       void *target);
/* Reads a whole file of at most `max` bytes (NUL-terminated, malloc'd; *len set); NULL after
 * reporting at `at` (schema_auth.c). */
char *cfg_read_file(struct cfg_ctx *ctx, const struct ynode *at, const char *path, size_t max,
                    size_t *len);

/* ---- access filters (schema_auth.c): jwt, basic_auth, cors, ip_access, bot ---- */
extern const struct cfg_section cfg_jwt_section, cfg_basic_auth_section, cfg_cors_section,
    cfg_ip_access_section, cfg_bot_section, cfg_request_limits_section;
/* `listeners[].http.<filter>`: the filter appended to the listener's access_filters
 * (target is the struct http_listener_conf); cfg_free_listener_filters() frees them. */
int cfg_parse_listener_filter(struct cfg_ctx *ctx, const struct cfg_key *key,
                              const struct ynode *n, void *target);
void cfg_free_listener_filters(struct http_listener_conf *h);

/* `error_pages` of a listener's http and of a route (schema_error_pages.c). */
extern const struct cfg_section cfg_error_pages_section;

/* Prints the configuration reference (markdown) generated from the tables. */
void config_reference_print(FILE *out);

#endif
