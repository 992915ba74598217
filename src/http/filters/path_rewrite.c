/* path_rewrite.c — the path_rewrite filter: replaces a leading `prefix` of the request's
 * path by `replace`, or the first match of `regex` by `replace` with $0..$9 expanded.
 * The query is left alone; t->orig_path (set by the session) keeps the original path.
 * A path that does not match is left unchanged; a result not starting with '/' gets one.
 */
#include <string.h>

#include "http/filter.h"
#include "http/msg.h"
#include "http/router.h"

/* Room for a rewritten path: what the match leaves of the path, the replacement, and a
 * capture (each at most the path) for every "$N" of the replacement, plus a '/'. */
static size_t rewrite_cap(const struct http_msg *m, const struct filter_path_rewrite_conf *c)
{
    size_t refs = 0;
    for (uint32_t i = 0; i + 1 < c->replace_len; i++)
        refs += c->replace[i] == '$' && c->replace[i + 1] >= '0' && c->replace[i + 1] <= '9';
    return 2 + (size_t)m->path.len * (refs + 1) + c->replace_len;
}

/* Stores out[0..n) as the new path, with a leading '/' when it has none. */
static enum filter_verdict set_path(struct http_txn *t, char *out, size_t n)
{
    if (n == 0 || out[0] != '/') {
        memmove(out + 1, out, n);
        out[0] = '/';
        n++;
    }
    t->req.path = (struct hstr){out, (uint32_t)n};
    return FILTER_CONTINUE;
}

/* regex_replace() returns 0 both for "no match" and for a match whose result is empty
 * ('^/strip' replaced by ''): this tells them apart (run only in that rare case). */
static bool regex_matches(void *re, struct hstr path)
{
    struct str_match m = {.kind = SM_REGEX, .re = re};
    return str_match_holds(&m, path.p, path.len);
}

static enum filter_verdict on_request(struct http_txn *t, const void *conf)
{
    const struct filter_path_rewrite_conf *c = conf;
    struct hstr path = t->req.path;
    if (!path.p)
        return FILTER_CONTINUE;
    if (c->prefix) {
        if (path.len < c->prefix_len || memcmp(path.p, c->prefix, c->prefix_len) != 0)
            return FILTER_CONTINUE;
        size_t n = c->replace_len + path.len - c->prefix_len;
        char *out = arena_alloc(&t->arena, n + 1);
        if (!out)
            return FILTER_ERROR;
        memcpy(out, c->replace, c->replace_len);
        memcpy(out + c->replace_len, path.p + c->prefix_len, path.len - c->prefix_len);
        return set_path(t, out, n);
    }
    size_t cap = rewrite_cap(&t->req, c);
    char *out = arena_alloc(&t->arena, cap);
    if (!out)
        return FILTER_ERROR;
    /* one byte kept for a leading '/' */
    long n = regex_replace(c->re, path.p, path.len, c->replace, c->replace_len, out, cap - 1);
    if (n < 0)
        return FILTER_ERROR; /* cannot happen with rewrite_cap's room */
    if (n == 0 && !regex_matches(c->re, path))
        return FILTER_CONTINUE;
    return set_path(t, out, (size_t)n); /* an empty result becomes "/" */
}

const struct filter_ops filter_path_rewrite = {
    .name = "path_rewrite",
    .on_request = on_request,
};
