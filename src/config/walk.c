/* walk.c — the generic schema walker: applies the tables of schema.c to a YAML tree.
 *
 * It applies defaults, checks every mapping for unknown, duplicate and missing keys,
 * parses scalars by type with their limits, builds arrays for sequences and named
 * mappings, and records every error with its position and KEY.PATH. It also frees what it
 * built, driven by the same tables.
 */
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <inttypes.h>
#include <string.h>
#include <strings.h>

#include "core/bug.h"
#include "core/units.h"
#include "net/addr.h"
#include "schema.h"

#define AT(target, off) ((void *)((char *)(target) + (off)))

static void walk_keys(struct cfg_ctx *ctx, const struct cfg_section *sec, const struct ynode *map,
                      void *target);

/* ---- errors and paths ---------------------------------------------------------------- */

void cfg_error(struct cfg_ctx *ctx, const struct ynode *at, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    int off = 0;

    if (ctx->nerrs == CFG_MAX_ERRORS) {
        ctx->dropped++;
        return;
    }
    if (ctx->pathlen)
        off = snprintf(msg, sizeof(msg), "%s: ", ctx->path);
    va_start(ap, fmt);
    vsnprintf(msg + off, sizeof(msg) - (size_t)off, fmt, ap);
    va_end(ap);
    struct cfg_err *e = &ctx->errs[ctx->nerrs];
    if (!(e->msg = strdup(msg))) {
        ctx->oom = true;
        ctx->dropped++;
        return;
    }
    e->line = at ? at->line : 0;
    e->col = at ? at->col : 0;
    ctx->nerrs++;
}

void cfg_oom(struct cfg_ctx *ctx, const struct ynode *at)
{
    ctx->oom = true;
    cfg_error(ctx, at, "out of memory");
}

static size_t path_append(struct cfg_ctx *ctx, const char *fmt, const char *s, size_t i)
{
    size_t old = ctx->pathlen, room = sizeof(ctx->path) - old;
    int w = s ? snprintf(ctx->path + old, room, fmt, s) : snprintf(ctx->path + old, room, fmt, i);
    ctx->pathlen = w < 0 || (size_t)w >= room ? sizeof(ctx->path) - 1 : old + (size_t)w;
    return old;
}

size_t cfg_path_key(struct cfg_ctx *ctx, const char *name)
{
    return path_append(ctx, ctx->pathlen ? ".%s" : "%s", name, 0);
}

size_t cfg_path_index(struct cfg_ctx *ctx, size_t i)
{
    return path_append(ctx, "[%zu]", NULL, i);
}

void cfg_path_pop(struct cfg_ctx *ctx, size_t len)
{
    ctx->pathlen = len;
    ctx->path[len] = '\0';
}

const char *cfg_describe(const struct ynode *n, char *buf, size_t len)
{
    switch (n->kind) {
    case YN_NULL:
        return "nothing (null)";
    case YN_SEQ:
        return "a sequence";
    case YN_MAP:
        return "a mapping";
    case YN_SCALAR:
        break;
    }
    size_t max = len > 48 ? 40 : len - 8, o = 0;
    buf[o++] = '"';
    for (size_t i = 0; i < n->len && o < max; i++) {
        unsigned char c = (unsigned char)n->text[i];
        buf[o++] = c < 0x20 || c == 0x7f ? '?' : (char)c;
    }
    if (o >= max && n->len > max - 1) {
        memcpy(buf + o, "...", 3);
        o += 3;
    }
    buf[o++] = '"';
    buf[o] = '\0';
    return buf;
}

static void type_error(struct cfg_ctx *ctx, const struct ynode *n, const char *expected)
{
    char b[64];
    cfg_error(ctx, n, "expected %s, got %s", expected, cfg_describe(n, b, sizeof(b)));
}

/* ---- did you mean -------------------------------------------------------------------- */

/* Optimal-string-alignment distance (a swap of two letters counts as one edit). */
static unsigned edit_distance(const char *a, const char *b)
{
    enum { MAXLEN = 64 };
    unsigned d[MAXLEN + 1][MAXLEN + 1];
    size_t la = strlen(a), lb = strlen(b);
    if (la > MAXLEN || lb > MAXLEN)
        return 1000;
    for (size_t i = 0; i <= la; i++)
        d[i][0] = (unsigned)i;
    for (size_t j = 0; j <= lb; j++)
        d[0][j] = (unsigned)j;
    for (size_t i = 1; i <= la; i++) {
        for (size_t j = 1; j <= lb; j++) {
            unsigned cost = tolower((unsigned char)a[i - 1]) != tolower((unsigned char)b[j - 1]);
            unsigned v = d[i - 1][j] + 1;
            if (d[i][j - 1] + 1 < v)
                v = d[i][j - 1] + 1;
            if (d[i - 1][j - 1] + cost < v)
                v = d[i - 1][j - 1] + cost;
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] &&
                d[i - 2][j - 2] + 1 < v)
                v = d[i - 2][j - 2] + 1;
            d[i][j] = v;
        }
    }
    return d[la][lb];
}

const char *cfg_suggest(const char *word, const char *const *cands, size_t n)
{
    size_t len = strlen(word);
    unsigned limit = len <= 4 ? 1 : len <= 8 ? 2 : 3, best = limit + 1;
    const char *pick = NULL;
    for (size_t i = 0; i < n; i++) {
        unsigned d = edit_distance(word, cands[i]);
        if (d < best) {
            best = d;
            pick = cands[i];
        }
    }
    return pick;
}

/* ---- scalars ------------------------------------------------------------------------- */

static bool scalar_or_error(struct cfg_ctx *ctx, const struct ynode *n, const char *expected)
{
    if (n->kind == YN_SCALAR)
        return true;
    type_error(ctx, n, expected);
    return false;
}

/* Strict decimal integer: optional '-', digits only. Returns -1 when malformed or beyond
 * the int64 range. */
static int parse_int(const char *s, int64_t *out)
{
    bool neg = *s == '-';
    uint64_t v = 0, lim = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
    s += neg;
    if (!*s)
        return -1;
    for (; *s; s++) {
        if (*s < '0' || *s > '9')
            return -1;
        unsigned d = (unsigned)(*s - '0');
        if (v > (lim - d) / 10)
            return -1;
        v = v * 10 + d;
    }
    *out = neg ? (int64_t)(0 - v) : (int64_t)v;
    return 0;
}

static void parse_u32(struct cfg_ctx *ctx, const struct cfg_key *k, const struct ynode *n,
                      void *target)
{
    char what[96];
    int64_t v;
    snprintf(what, sizeof(what), "an integer from %lld to %lld", (long long)k->min,
             (long long)k->max);
    if (!scalar_or_error(ctx, n, what))
        return;
    if (parse_int(n->text, &v) < 0 || v < k->min || v > k->max) {
        type_error(ctx, n, what);
        return;
    }
    *(uint32_t *)AT(target, k->off) = (uint32_t)v;
}

/* Writes a millisecond count the way a user would: "2s", "5m", "250ms". */
static const char *fmt_ms(int64_t ms, char *buf, size_t len)
{
    if (ms && ms % 3600000 == 0)
        snprintf(buf, len, "%lldh", (long long)(ms / 3600000));
    else if (ms && ms % 60000 == 0)
        snprintf(buf, len, "%lldm", (long long)(ms / 60000));
    else if (ms && ms % 1000 == 0)
        snprintf(buf, len, "%llds", (long long)(ms / 1000));
    else
        snprintf(buf, len, "%lldms", (long long)ms);
    return buf;
}

static void parse_duration(struct cfg_ctx *ctx, const struct cfg_key *k, const struct ynode *n,
                           void *target)
{
    char lo[32], hi[32], what[128];
    uint64_t v;
    if (!scalar_or_error(ctx, n, "a duration such as 250ms, 2s, 5m or 1h"))
        return;
    if (parse_duration_ms(n->text, &v) < 0) {
        type_error(ctx, n, "a duration such as 250ms, 2s, 5m or 1h");
        return;
    }
    if (v < (uint64_t)k->min || v > (uint64_t)k->max) {
        snprintf(what, sizeof(what), "a duration from %s to %s", fmt_ms(k->min, lo, sizeof(lo)),
                 fmt_ms(k->max, hi, sizeof(hi)));
        type_error(ctx, n, what);
        return;
    }
    *(uint32_t *)AT(target, k->off) = (uint32_t)v;
}

static void parse_size_key(struct cfg_ctx *ctx, const struct cfg_key *k, const struct ynode *n,
                           void *target)
{
    char what[128];
    uint64_t v;
    if (!scalar_or_error(ctx, n, "a size such as 4096, 64k or 1m"))
        return;
    if (parse_size(n->text, &v) < 0) {
        type_error(ctx, n, "a size such as 4096, 64k or 1m");
        return;
    }
    if (v < (uint64_t)k->min || v > (uint64_t)k->max) {
        snprintf(what, sizeof(what), "a size from %" PRId64 " to %" PRId64 " bytes", k->min,
                 k->max);
        type_error(ctx, n, what);
        return;
    }
    *(uint32_t *)AT(target, k->off) = (uint32_t)v;
}

static void parse_bool(struct cfg_ctx *ctx, const struct cfg_key *k, const struct ynode *n,
                       void *target)
{
    static const char *const yes[] = {"true", "yes", "on"}, *const no[] = {"false", "no", "off"};
    if (!scalar_or_error(ctx, n, "true or false"))
        return;
    for (size_t i = 0; i < ARRAY_SIZE(yes); i++) {
        if (strcasecmp(n->text, yes[i]) == 0 || strcasecmp(n->text, no[i]) == 0) {
            *(bool *)AT(target, k->off) = strcasecmp(n->text, yes[i]) == 0;
            return;
        }
    }
    type_error(ctx, n, "true or false");
}

/* "a, b or c" of the supported (value >= 0) names of an enumeration. */
static void enum_list(const struct cfg_enum *e, bool supported, char *buf, size_t len)
{
    size_t o = 0;
    buf[0] = '\0';
    for (; e->name && o < len; e++) {
        if ((e->value >= 0) != supported)
            continue;
        int w = snprintf(buf + o, len - o, "%s%s", o ? ", " : "", e->name);
        o = w < 0 || (size_t)w >= len - o ? len : o + (size_t)w;
    }
}

static void parse_enum(struct cfg_ctx *ctx, const struct cfg_key *k, const struct ynode *n,
                       void *target)
{
    const char *cands[32];
    char list[256], b[64];
    size_t nc = 0;
    enum_list(k->enums, true, list, sizeof(list));
    if (!scalar_or_error(ctx, n, "a string"))
        return;
    for (const struct cfg_enum *e = k->enums; e->name; e++) {
        if (strcmp(e->name, n->text) == 0 && e->value < 0) {
            cfg_error(ctx, n, "\"%s\" is not supported yet (supported: %s)", e->name, list);
            return;
        }
        if (strcmp(e->name, n->text) == 0) {
            *(int *)AT(target, k->off) = e->value;
            return;
        }
        if (e->value >= 0 && nc < ARRAY_SIZE(cands))
            cands[nc++] = e->name;
    }
    const char *hint = cfg_suggest(n->text, cands, nc);
    if (hint)
        cfg_error(ctx, n, "unknown value %s, expected one of %s (did you mean \"%s\"?)",
                  cfg_describe(n, b, sizeof(b)), list, hint);
    else
        cfg_error(ctx, n, "unknown value %s, expected one of %s", cfg_describe(n, b, sizeof(b)),
                  list);
}

static bool valid_name(const char *s)
{
    size_t len = strlen(s);
    if (len == 0 || len > 64)
        return false;
    for (; *s; s++)
        if (!isalnum((unsigned char)*s) && *s != '_' && *s != '.' && *s != '-')
            return false;
    return true;
}

static bool valid_string(const char *s)
{
    size_t len = strlen(s);
    if (len == 0 || len > 255)
        return false;
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            return false;
    return true;
}

#define NAME_RULE "a name of 1-64 letters, digits, '_', '.' or '-'"

static void parse_string(struct cfg_ctx *ctx, const struct cfg_key *k, const struct ynode *n,
                         void *target)
{
    const char *what = k->type == CT_NAME ? NAME_RULE
                                          : "a non-empty string without control "
                                            "characters (at most 255 bytes)";
    char **slot = AT(target, k->off);
    if (!scalar_or_error(ctx, n, what))
        return;
    if (!(k->type == CT_NAME ? valid_name(n->text) : valid_string(n->text))) {
        type_error(ctx, n, what);
        return;
    }
    char *s = strdup(n->text);
    if (!s) {
        cfg_oom(ctx, n);
        return;
    }
    free(*slot);
    *slot = s;
}

int cfg_parse_addr(struct cfg_ctx *ctx, const struct ynode *n, struct sockaddr_any *addr,
                   char **text)
{
    char b[64];
    const char *why = NULL;
    if (!scalar_or_error(ctx, n, "an address such as 127.0.0.1:80 or [::1]:80"))
        return -1;
    if (addr_parse(n->text, addr, &why) < 0) {
        cfg_error(ctx, n, "%s, got %s", why, cfg_describe(n, b, sizeof(b)));
        return -1;
    }
    char *s = strdup(n->text);
    if (!s) {
        cfg_oom(ctx, n);
        return -1;
    }
    free(*text);
    *text = s;
    return 0;
}

/* ---- collections ----------------------------------------------------------------------- */

static const struct cfg_key *find_key(const struct cfg_section *sec, const char *name)
{
    for (size_t i = 0; i < sec->nkeys; i++)
        if (strcmp(sec->keys[i].name, name) == 0)
            return &sec->keys[i];
    return NULL;
}

static bool other_key(const struct cfg_section *sec, const char *name)
{
    for (const char *const *o = sec->other_keys; o && *o; o++)
        if (strcmp(*o, name) == 0)
            return true;
    return false;
}

static void unknown_key(struct cfg_ctx *ctx, const struct cfg_section *sec, const struct ynode *key)
{
    const char *cands[32];
    char list[512];
    size_t nc = 0, o = 0;
    for (size_t i = 0; i < sec->nkeys && nc < ARRAY_SIZE(cands); i++) {
        cands[nc++] = sec->keys[i].name;
        o += (size_t)snprintf(list + o, sizeof(list) - o, "%s%s", i ? ", " : "", sec->keys[i].name);
        if (o >= sizeof(list))
            o = sizeof(list) - 1;
    }
    if (!nc)
        list[0] = '\0';
    const char *hint = cfg_suggest(key->text, cands, nc);
    if (hint)
        cfg_error(ctx, key, "unknown key, did you mean \"%s\"?", hint);
    else
        cfg_error(ctx, key, "unknown key, expected one of: %s", list);
}

/* Every key of `map` must be a string and appear once; with `sec`, it must be declared. */
static void check_keys(struct cfg_ctx *ctx, const struct ynode *map, const struct cfg_section *sec)
{
    for (size_t i = 0; i < map->n; i++) {
        const struct ynode *key = map->kids[2 * i];
        if (key->kind != YN_SCALAR && key->kind != YN_NULL) {
            type_error(ctx, key, "a string as mapping key");
            continue;
        }
        size_t mark = cfg_path_key(ctx, key->text);
        for (size_t j = 0; j < i; j++) {
            const struct ynode *prev = map->kids[2 * j];
            if (prev->text && strcmp(prev->text, key->text) == 0) {
                cfg_error(ctx, key, "duplicate key (first defined at line %u)", prev->line);
                break;
            }
        }
        if (sec && !find_key(sec, key->text) && other_key(sec, key->text))
            cfg_error(ctx, key, "%s", sec->other_msg);
        else if (sec && !find_key(sec, key->text))
            unknown_key(ctx, sec, key);
        cfg_path_pop(ctx, mark);
    }
}

/* Sets defaults (recursively into inline sections), then calls the section's init hook. */
void cfg_init_target(struct cfg_ctx *ctx, const struct cfg_section *sec, void *target)
{
    for (size_t i = 0; i < sec->nkeys; i++) {
        const struct cfg_key *k = &sec->keys[i];
        if (k->def) {
            struct ynode n = {.kind = YN_SCALAR, .text = (char *)k->def, .len = strlen(k->def)};
            unsigned before = ctx->nerrs + ctx->dropped;
            cfg_parse_value(ctx, k, &n, target);
            /* a default that does not parse is a bug in the tables */
            BUG_ON(ctx->nerrs + ctx->dropped != before && !ctx->oom);
        }
        if (k->type == CT_SECTION)
            cfg_init_target(ctx, k->sub, AT(target, k->off));
    }
    if (sec->init)
        sec->init(ctx, target);
}

/* CK_UNIQUE string keys must differ between the items of a list. */
static void check_unique(struct cfg_ctx *ctx, const struct cfg_section *sec,
                         const struct ynode *seq, void *arr, size_t n)
{
    for (size_t k = 0; k < sec->nkeys; k++) {
        const struct cfg_key *key = &sec->keys[k];
        if (!(key->flags & CK_UNIQUE))
            continue;
        for (size_t i = 1; i < n; i++) {
            const char *a = *(char **)AT(arr, i * sec->size + key->off);
            for (size_t j = 0; a && j < i; j++) {
                const char *b = *(char **)AT(arr, j * sec->size + key->off);
                if (!b || strcmp(a, b) != 0)
                    continue;
                const struct ynode *at = ymap_get(seq->kids[i], key->name);
                char other[CFG_PATH_MAX + 24];
                snprintf(other, sizeof(other), "%s[%zu]", ctx->path, j);
                size_t mark = cfg_path_index(ctx, i);
                cfg_path_key(ctx, key->name);
                cfg_error(ctx, at ? at : seq->kids[i], "duplicate %s \"%s\", already used by %s",
                          key->name, a, other);
                cfg_path_pop(ctx, mark);
                break;
            }
        }
    }
}

/* A plain string standing for { <shorthand>: string }. */
static void walk_shorthand(struct cfg_ctx *ctx, const struct cfg_section *sec,
                           const struct ynode *n, void *item)
{
    const struct cfg_key *k = find_key(sec, sec->shorthand);
    BUG_ON(!k);
    cfg_parse_value(ctx, k, n, item);
    for (size_t i = 0; i < sec->nkeys; i++)
        if ((sec->keys[i].flags & CK_REQUIRED) && &sec->keys[i] != k)
            cfg_error(ctx, n, "missing required key \"%s\"", sec->keys[i].name);
    if (sec->finish)
        sec->finish(ctx, n, item);
}

/* Checks k->min against the n->n entries of n and allocates them (zeroed) into the
 * array at k->off, with the count at k->off2. NULL when there is nothing to walk. */
static void *alloc_entries(struct cfg_ctx *ctx, const struct cfg_key *k, const struct ynode *n,
                           void *target)
{
    if ((int64_t)n->n < k->min) {
        cfg_error(ctx, n, "expected at least %lld entr%s, got %zu", (long long)k->min,
                  k->min == 1 ? "y" : "ies", n->n);
        return NULL;
    }
    if (n->n == 0)
        return NULL;
    void *arr = calloc(n->n, k->sub->size);
    if (!arr) {
        cfg_oom(ctx, n);
        return NULL;
    }
    *(void **)AT(target, k->off) = arr;
    *(uint32_t *)AT(target, k->off2) = (uint32_t)n->n;
    return arr;
}

static void walk_list(struct cfg_ctx *ctx, const struct cfg_key *k, const struct ynode *n,
                      void *target)
{
    const struct cfg_section *sec = k->sub;
    const char *what = sec->shorthand ? "a mapping or a string" : "a mapping";
    if (n->kind != YN_SEQ) {
        type_error(ctx, n, "a sequence");
        return;
    }
    void *arr = alloc_entries(ctx, k, n, target);
    if (!arr)
        return;
    for (size_t i = 0; i < n->n; i++) {
        const struct ynode *item = n->kids[i];
        void *t = AT(arr, i * sec->size);
        size_t mark = cfg_path_index(ctx, i);
        cfg_init_target(ctx, sec, t);
        if (item->kind == YN_MAP)
            walk_keys(ctx, sec, item, t);
        else if (item->kind == YN_SCALAR && sec->shorthand)
            walk_shorthand(ctx, sec, item, t);
        else
            type_error(ctx, item, what);
        cfg_path_pop(ctx, mark);
    }
    check_unique(ctx, sec, n, arr, n->n);
}

static void walk_named(struct cfg_ctx *ctx, const struct cfg_key *k, const struct ynode *n,
                       void *target)
{
    const struct cfg_section *sec = k->sub;
    if (n->kind != YN_MAP) {
        type_error(ctx, n, "a mapping of names to entries");
        return;
    }
    check_keys(ctx, n, NULL);
    void *arr = alloc_entries(ctx, k, n, target);
    if (!arr)
        return;
    for (size_t i = 0; i < n->n; i++) {
        const struct ynode *key = n->kids[2 * i], *val = n->kids[2 * i + 1];
        void *t = AT(arr, i * sec->size);
        cfg_init_target(ctx, sec, t);
        if (key->kind == YN_NULL)
            type_error(ctx, key, NAME_RULE);
        if (key->kind != YN_SCALAR)
            continue; /* other kinds are reported by check_keys */
        size_t mark = cfg_path_key(ctx, key->text);
        if (!valid_name(key->text))
            type_error(ctx, key, NAME_RULE);
        else if (!(*(char **)AT(t, sec->name_off) = strdup(key->text)))
            cfg_oom(ctx, key);
        if (val->kind == YN_MAP)
            walk_keys(ctx, sec, val, t);
        else
            type_error(ctx, val, "a mapping");
        cfg_path_pop(ctx, mark);
    }
}

void cfg_parse_value(struct cfg_ctx *ctx, const struct cfg_key *k, const struct ynode *n,
                     void *target)
{
    switch (k->type) {
    case CT_U32:
        return parse_u32(ctx, k, n, target);
    case CT_DURATION:
        return parse_duration(ctx, k, n, target);
    case CT_SIZE:
        return parse_size_key(ctx, k, n, target);
    case CT_BOOL:
        return parse_bool(ctx, k, n, target);
    case CT_ENUM:
        return parse_enum(ctx, k, n, target);
    case CT_STRING:
    case CT_NAME:
        return parse_string(ctx, k, n, target);
    case CT_ADDR:
        cfg_parse_addr(ctx, n, AT(target, k->off), AT(target, k->off2));
        return;
    case CT_SECTION:
        if (n->kind != YN_MAP)
            return type_error(ctx, n, "a mapping");
        return walk_keys(ctx, k->sub, n, AT(target, k->off));
    case CT_LIST:
        return walk_list(ctx, k, n, target);
    case CT_NAMED:
        return walk_named(ctx, k, n, target);
    case CT_CUSTOM:
        k->parse(ctx, k, n, target);
        return;
    }
}

static void walk_key(struct cfg_ctx *ctx, const struct cfg_key *k, const struct ynode *map,
                     void *target)
{
    const struct ynode *v = ymap_get(map, k->name);
    if (!v && (k->flags & CK_REQUIRED)) {
        cfg_error(ctx, map, "missing required key \"%s\"", k->name);
        return;
    }
    size_t mark = cfg_path_key(ctx, k->name);
    if (v && v->kind == YN_NULL && (k->flags & CK_REQUIRED))
        cfg_error(ctx, v, "a value is required");
    else if ((!v || v->kind == YN_NULL) && k->type == CT_SECTION && k->sub->absent)
        k->sub->absent(AT(target, k->off));
    else if (v && v->kind != YN_NULL)
        cfg_parse_value(ctx, k, v, target);
    cfg_path_pop(ctx, mark);
}

/* Walks the keys of a present mapping in table order (so a section may rely on the
 * sections declared before it), then runs the section's finish hook. */
static void walk_keys(struct cfg_ctx *ctx, const struct cfg_section *sec, const struct ynode *map,
                      void *target)
{
    check_keys(ctx, map, sec);
    for (size_t i = 0; i < sec->nkeys; i++)
        walk_key(ctx, &sec->keys[i], map, target);
    if (sec->finish)
        sec->finish(ctx, map, target);
}

void cfg_walk_section(struct cfg_ctx *ctx, const struct cfg_section *sec, const struct ynode *map,
                      void *target)
{
    cfg_init_target(ctx, sec, target);
    if (map->kind != YN_MAP)
        type_error(ctx, map, "a mapping");
    else
        walk_keys(ctx, sec, map, target);
}

unsigned cfg_parse(struct cfg_ctx *ctx, const struct ynode *doc, struct cfg_root *root)
{
    ctx->doc = doc;
    ctx->root = root;
    cfg_init_target(ctx, &cfg_root_section, root);
    if (doc->kind != YN_MAP)
        type_error(ctx, doc, "a mapping at the top level");
    else
        walk_keys(ctx, &cfg_root_section, doc, root);
    return ctx->nerrs + ctx->dropped;
}

/* ---- release ------------------------------------------------------------------------- */

void cfg_free_target(const struct cfg_section *sec, void *target)
{
    for (size_t i = 0; i < sec->nkeys; i++) {
        const struct cfg_key *k = &sec->keys[i];
        switch (k->type) {
        case CT_STRING:
        case CT_NAME:
            free(*(char **)AT(target, k->off));
            break;
        case CT_ADDR:
            free(*(char **)AT(target, k->off2));
            break;
        case CT_SECTION:
            cfg_free_target(k->sub, AT(target, k->off));
            break;
        case CT_LIST:
        case CT_NAMED: {
            char *arr = *(char **)AT(target, k->off);
            uint32_t n = *(uint32_t *)AT(target, k->off2);
            for (uint32_t j = 0; arr && j < n; j++) {
                if (k->type == CT_NAMED)
                    free(*(char **)AT(arr, j * k->sub->size + k->sub->name_off));
                cfg_free_target(k->sub, arr + j * k->sub->size);
            }
            free(arr);
            break;
        }
        case CT_CUSTOM:
            if (k->release)
                k->release(k, target);
            break;
        default:
            break;
        }
    }
    if (sec->release)
        sec->release(target);
}

void cfg_root_free(struct cfg_root *root)
{
    cfg_free_target(&cfg_root_section, root);
    memset(root, 0, sizeof(*root));
}

void cfg_ctx_release(struct cfg_ctx *ctx)
{
    for (unsigned i = 0; i < ctx->nerrs; i++)
        free(ctx->errs[i].msg);
    ctx->nerrs = 0;
    free(ctx->refs);
    ctx->refs = NULL;
    ctx->nrefs = ctx->caprefs = 0;
}
