/* yaml_tree.c — builds a struct ynode tree from libyaml's event stream.
 *
 * The builder keeps an explicit stack of open collections (bounded by YTREE_MAX_DEPTH) and
 * attaches every node to its parent as soon as it is created, so that on error the whole
 * partial tree is freed from its root. Anchors are recorded when their node is complete.
 */
#include "yaml_tree.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

struct anchor {
    char *name;
    const struct ynode *node;
};

struct builder {
    struct ynode *root;
    struct ynode *stack[YTREE_MAX_DEPTH];
    char *stack_anchor[YTREE_MAX_DEPTH]; /* anchor of each open collection, or NULL */
    size_t depth;
    unsigned docs;
    size_t nodes; /* created so far, copies included */
    struct anchor *anchors;
    size_t nanchors, capanchors;
    struct ytree_error *err;
};

static int fail_at(struct builder *b, yaml_mark_t m, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int fail_at(struct builder *b, yaml_mark_t m, const char *fmt, ...)
{
    va_list ap;
    b->err->line = (uint32_t)m.line + 1;
    b->err->col = (uint32_t)m.column + 1;
    va_start(ap, fmt);
    vsnprintf(b->err->msg, sizeof(b->err->msg), fmt, ap);
    va_end(ap);
    return -1;
}

static int oom(struct builder *b, yaml_mark_t m)
{
    return fail_at(b, m, "out of memory");
}

void ytree_free(struct ynode *n)
{
    if (!n)
        return;
    for (size_t i = 0; i < n->nkids; i++)
        ytree_free(n->kids[i]);
    free(n->kids);
    free(n->text);
    free(n);
}

static struct ynode *node_new(struct builder *b, enum ynode_kind kind, yaml_mark_t m)
{
    if (b->nodes >= YTREE_MAX_NODES) {
        fail_at(b, m, "document has more than %d nodes (alias expansion?)", YTREE_MAX_NODES);
        return NULL;
    }
    struct ynode *n = calloc(1, sizeof(*n));
    if (!n) {
        oom(b, m);
        return NULL;
    }
    b->nodes++;
    n->kind = kind;
    n->line = (uint32_t)m.line + 1;
    n->col = (uint32_t)m.column + 1;
    return n;
}

static int add_kid(struct ynode *parent, struct ynode *kid)
{
    if (parent->nkids == parent->cap) {
        size_t cap = parent->cap ? parent->cap * 2 : 4;
        struct ynode **k = realloc(parent->kids, cap * sizeof(*k));
        if (!k)
            return -1;
        parent->kids = k;
        parent->cap = cap;
    }
    parent->kids[parent->nkids++] = kid;
    parent->n = parent->kind == YN_MAP ? parent->nkids / 2 : parent->nkids;
    return 0;
}

/* Hands `n` to its parent (or makes it the root). Frees n and fails if it cannot. */
static int attach(struct builder *b, struct ynode *n, yaml_mark_t m)
{
    if (b->depth == 0) {
        b->root = n;
        return 0;
    }
    if (add_kid(b->stack[b->depth - 1], n) < 0) {
        ytree_free(n);
        return oom(b, m);
    }
    return 0;
}

static int anchor_add(struct builder *b, char *name, const struct ynode *n, yaml_mark_t m)
{
    if (b->nanchors == b->capanchors) {
        size_t cap = b->capanchors ? b->capanchors * 2 : 8;
        struct anchor *a = realloc(b->anchors, cap * sizeof(*a));
        if (!a) {
            free(name);
            return oom(b, m);
        }
        b->anchors = a;
        b->capanchors = cap;
    }
    b->anchors[b->nanchors].name = name;
    b->anchors[b->nanchors++].node = n;
    return 0;
}

static struct ynode *node_copy(struct builder *b, const struct ynode *src, yaml_mark_t m)
{
    struct ynode *n = node_new(b, src->kind, m);
    if (!n)
        return NULL;
    n->line = src->line;
    n->col = src->col;
    n->quoted = src->quoted;
    n->len = src->len;
    if (src->text && !(n->text = strdup(src->text)))
        goto fail_oom;
    for (size_t i = 0; i < src->nkids; i++) {
        struct ynode *k = node_copy(b, src->kids[i], m);
        if (!k)
            goto fail;
        if (add_kid(n, k) < 0) {
            ytree_free(k);
            goto fail_oom;
        }
    }
    return n;
fail_oom:
    oom(b, m);
fail:
    ytree_free(n);
    return NULL;
}

static int on_alias(struct builder *b, const yaml_event_t *ev)
{
    const char *name = (const char *)ev->data.alias.anchor;
    for (size_t i = b->nanchors; i-- > 0;) {
        if (strcmp(b->anchors[i].name, name) == 0) {
            struct ynode *n = node_copy(b, b->anchors[i].node, ev->start_mark);
            return n ? attach(b, n, ev->start_mark) : -1;
        }
    }
    return fail_at(b, ev->start_mark, "unknown alias \"*%s\"", name);
}

static bool is_null_text(const char *s)
{
    return !*s || !strcmp(s, "~") || !strcmp(s, "null") || !strcmp(s, "Null") || !strcmp(s, "NULL");
}

static int on_scalar(struct builder *b, const yaml_event_t *ev)
{
    const char *v = (const char *)ev->data.scalar.value;
    size_t len = ev->data.scalar.length;
    bool plain = ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
    if (strlen(v) != len)
        return fail_at(b, ev->start_mark, "strings must not contain NUL characters");
    struct ynode *n = node_new(b, plain && is_null_text(v) ? YN_NULL : YN_SCALAR, ev->start_mark);
    if (!n)
        return -1;
    n->quoted = !plain;
    n->len = len;
    if (!(n->text = strdup(v))) {
        ytree_free(n);
        return oom(b, ev->start_mark);
    }
    if (attach(b, n, ev->start_mark) < 0)
        return -1;
    if (ev->data.scalar.anchor) {
        char *a = strdup((const char *)ev->data.scalar.anchor);
        return a ? anchor_add(b, a, n, ev->start_mark) : oom(b, ev->start_mark);
    }
    return 0;
}

static int on_start(struct builder *b, const yaml_event_t *ev, enum ynode_kind kind,
                    const yaml_char_t *anchor)
{
    if (b->depth == YTREE_MAX_DEPTH)
        return fail_at(b, ev->start_mark, "nesting deeper than %d levels", YTREE_MAX_DEPTH);
    char *a = NULL;
    if (anchor && !(a = strdup((const char *)anchor)))
        return oom(b, ev->start_mark);
    struct ynode *n = node_new(b, kind, ev->start_mark);
    if (!n || attach(b, n, ev->start_mark) < 0) {
        free(a);
        return -1;
    }
    b->stack_anchor[b->depth] = a;
    b->stack[b->depth++] = n;
    return 0;
}

static int on_end(struct builder *b, const yaml_event_t *ev)
{
    struct ynode *n = b->stack[--b->depth];
    char *a = b->stack_anchor[b->depth];
    b->stack_anchor[b->depth] = NULL;
    return a ? anchor_add(b, a, n, ev->start_mark) : 0;
}

static int on_event(struct builder *b, const yaml_event_t *ev)
{
    switch (ev->type) {
    case YAML_DOCUMENT_START_EVENT:
        if (b->docs++)
            return fail_at(b, ev->start_mark, "expected one YAML document, found a second one");
        return 0;
    case YAML_ALIAS_EVENT:
        return on_alias(b, ev);
    case YAML_SCALAR_EVENT:
        return on_scalar(b, ev);
    case YAML_SEQUENCE_START_EVENT:
        return on_start(b, ev, YN_SEQ, ev->data.sequence_start.anchor);
    case YAML_MAPPING_START_EVENT:
        return on_start(b, ev, YN_MAP, ev->data.mapping_start.anchor);
    case YAML_SEQUENCE_END_EVENT:
    case YAML_MAPPING_END_EVENT:
        return on_end(b, ev);
    default:
        return 0;
    }
}

/* Line and column of a byte offset, for reader errors (libyaml gives only the offset). */
static void offset_pos(const char *buf, size_t len, size_t off, struct ytree_error *err)
{
    err->line = 1;
    err->col = 1;
    for (size_t i = 0; i < off && i < len; i++) {
        if (buf[i] == '\n') {
            err->line++;
            err->col = 1;
        } else {
            err->col++;
        }
    }
}

/* The byte at a 0-based line and column (in characters), or '\0' when out of range.
 * libyaml's mark.index counts characters, not bytes, so it cannot index buf. */
static char char_at(const char *buf, size_t len, size_t line, size_t col)
{
    size_t i = 0;
    for (; i < len && line; i++)
        if (buf[i] == '\n')
            line--;
    for (; i < len && col; col--) /* skip one character: a lead byte and its continuations */
        for (i++; i < len && ((unsigned char)buf[i] & 0xc0) == 0x80; i++)
            ;
    return i < len ? buf[i] : '\0';
}

static void syntax_error(const yaml_parser_t *p, const char *buf, size_t len,
                         struct ytree_error *err)
{
    const char *problem = p->problem ? p->problem : "unknown error";
    if (p->error == YAML_READER_ERROR) {
        offset_pos(buf, len, p->problem_offset, err);
        snprintf(err->msg, sizeof(err->msg), "invalid YAML: %s", problem);
        return;
    }
    err->line = (uint32_t)p->problem_mark.line + 1;
    err->col = (uint32_t)p->problem_mark.column + 1;
    if (char_at(buf, len, p->problem_mark.line, p->problem_mark.column) == '\t')
        snprintf(err->msg, sizeof(err->msg),
                 "invalid YAML: a tab character; YAML indents "
                 "with spaces only");
    else if (p->context)
        snprintf(err->msg, sizeof(err->msg), "invalid YAML: %s (%s started at line %zu)", problem,
                 p->context, p->context_mark.line + 1);
    else
        snprintf(err->msg, sizeof(err->msg), "invalid YAML: %s", problem);
}

static void builder_release(struct builder *b)
{
    for (size_t i = 0; i < b->nanchors; i++)
        free(b->anchors[i].name);
    free(b->anchors);
    for (size_t i = 0; i < b->depth; i++)
        free(b->stack_anchor[i]);
}

enum ytree_status ytree_parse(const char *buf, size_t len, struct ynode **out,
                              struct ytree_error *err)
{
    struct builder b = {.err = err};
    yaml_parser_t p;
    int rc = 0;
    bool done = false;

    *out = NULL;
    memset(err, 0, sizeof(*err));
    if (!yaml_parser_initialize(&p)) {
        snprintf(err->msg, sizeof(err->msg), "out of memory");
        return YT_ERROR;
    }
    yaml_parser_set_input_string(&p, (const unsigned char *)buf, len);
    while (!done && rc == 0) {
        yaml_event_t ev;
        if (!yaml_parser_parse(&p, &ev)) {
            syntax_error(&p, buf, len, err);
            rc = -1;
            break;
        }
        done = ev.type == YAML_STREAM_END_EVENT;
        rc = on_event(&b, &ev);
        yaml_event_delete(&ev);
    }
    yaml_parser_delete(&p);
    builder_release(&b);
    if (rc < 0) {
        ytree_free(b.root);
        return YT_ERROR;
    }
    if (!b.root)
        return YT_EMPTY;
    *out = b.root;
    return YT_OK;
}

const struct ynode *ymap_key(const struct ynode *map, const char *key)
{
    if (!map || map->kind != YN_MAP)
        return NULL;
    for (size_t i = 0; i < map->n; i++) {
        const struct ynode *k = map->kids[2 * i];
        if (k->kind == YN_SCALAR && strcmp(k->text, key) == 0)
            return k;
    }
    return NULL;
}

const struct ynode *ymap_get(const struct ynode *map, const char *key)
{
    if (!map || map->kind != YN_MAP)
        return NULL;
    for (size_t i = 0; i < map->n; i++) {
        const struct ynode *k = map->kids[2 * i];
        if (k->kind == YN_SCALAR && strcmp(k->text, key) == 0)
            return map->kids[2 * i + 1];
    }
    return NULL;
}
