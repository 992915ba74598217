/* error_page.c — see error_page.h. */
#include "http/error_page.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/config-t.h"
#include "core/strbuf.h"
#include "http/filter.h"
#include "http/msg.h"

#define PAGE_MAX (256 * 1024) /* an expanded page, whatever its template and variables */

static const char HTML_PAGE[] =
    "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>{status} {reason}</title>"
    "</head>\n<body><h1>{status} {reason}</h1>\n<p>{detail}</p>\n"
    "<p><small>Request id: {request_id}</small></p></body></html>\n";
static const char JSON_PAGE[] =
    "{\"status\":{status},\"error\":\"{reason}\",\"detail\":\"{detail}\","
    "\"request_id\":\"{request_id}\"}\n";
static const char TEXT_PAGE[] = "{status} {reason}: {detail}\n";

static const struct error_pages *pages_of(const struct http_txn *t)
{
    if (t->route && t->route->error_pages.set)
        return &t->route->error_pages;
    if (t->lc && t->lc->http.error_pages.set)
        return &t->lc->http.error_pages;
    return NULL;
}

/* The page for status: an exact one, else its class's, else `default`. */
static const struct error_page *page_for(const struct error_pages *p, unsigned status)
{
    const struct error_page *best = NULL;
    for (uint32_t i = 0; i < p->npages; i++) {
        const struct error_page *e = &p->pages[i];
        if (status < e->lo || status > e->hi)
            continue;
        if (!best || e->hi - e->lo < best->hi - best->lo)
            best = e;
    }
    return best;
}

/* Appends v escaped for the page's kind. */
static void put_escaped(struct strbuf *sb, enum error_format kind, struct hstr v)
{
    for (uint32_t i = 0; i < v.len; i++) {
        unsigned char c = (unsigned char)v.p[i];
        if (kind == ERRF_HTML && (c == '<' || c == '>' || c == '&' || c == '"' || c == '\'')) {
            sb_printf(sb, "&#%u;", c);
        } else if (kind == ERRF_JSON && (c == '"' || c == '\\' || c < 0x20 || c == 0x7f)) {
            sb_printf(sb, "\\u%04x", c);
        } else if (c < 0x20 && c != '\t' && c != '\n') {
            sb_putc(sb, '?');
        } else {
            sb_putc(sb, (char)c);
        }
    }
}

/* The value of {name} (name of len bytes), or .p NULL when it is not a variable. */
static struct hstr var(const struct http_txn *t, const char *name, size_t len, unsigned status,
                       const char *detail, char *num)
{
#define IS(s) (len == sizeof(s) - 1 && memcmp(name, s, len) == 0)
    if (IS("status")) {
        snprintf(num, 12, "%u", status);
        return hstr_c(num);
    }
    if (IS("reason"))
        return hstr_c(http_reason(status));
    if (IS("detail"))
        return hstr_c(detail ? detail : http_reason(status));
    if (IS("request_id"))
        return t->request_id.p ? t->request_id : (struct hstr){"", 0};
    if (IS("method"))
        return t->req.method_name.p ? t->req.method_name : (struct hstr){"", 0};
    if (IS("host"))
        return t->req.authority.p ? t->req.authority : (struct hstr){"", 0};
    if (IS("path"))
        return t->orig_path.p ? t->orig_path : (struct hstr){"", 0};
    return (struct hstr){NULL, 0};
#undef IS
}

static void expand(struct strbuf *sb, const struct http_txn *t, const char *tmpl, size_t len,
                   enum error_format kind, unsigned status, const char *detail)
{
    const char *p = tmpl, *end = tmpl + len;
    char num[12];
    while (p < end) {
        const char *open = memchr(p, '{', (size_t)(end - p));
        const char *close = open ? memchr(open, '}', (size_t)(end - open)) : NULL;
        if (!close) {
            sb_append(sb, p, (size_t)(end - p));
            return;
        }
        sb_append(sb, p, (size_t)(open - p));
        struct hstr v = var(t, open + 1, (size_t)(close - open - 1), status, detail, num);
        if (!v.p) { /* not a variable: the brace is text (JSON templates have many) */
            sb_putc(sb, '{');
            p = open + 1;
            continue;
        }
        put_escaped(sb, kind, v);
        p = close + 1;
    }
}

int error_page_apply(struct http_txn *t, unsigned status, const char *detail)
{
    const struct error_pages *p = status >= 400 ? pages_of(t) : NULL;
    if (!p)
        return 0;
    const struct error_page *e = page_for(p, status);
    enum error_format kind = e ? e->kind : p->format;
    const char *tmpl = e                   ? e->body
                       : kind == ERRF_HTML ? HTML_PAGE
                       : kind == ERRF_JSON ? JSON_PAGE
                                           : TEXT_PAGE;
    const char *ctype = e                   ? e->content_type
                        : kind == ERRF_HTML ? "text/html; charset=utf-8"
                        : kind == ERRF_JSON ? "application/json"
                                            : "text/plain; charset=utf-8";
    struct strbuf sb;
    sb_init(&sb, PAGE_MAX);
    expand(&sb, t, tmpl, e ? e->len : strlen(tmpl), kind, status, detail);
    /* the answer's other fields (WWW-Authenticate, Location...) are kept */
    struct http_msg saved = t->resp;
    int rc = sb.err ? -1 : txn_answer(t, status, ctype, sb_str(&sb), sb.len);
    sb_free(&sb);
    if (rc < 0)
        return -1;
    for (uint32_t i = 0; i < saved.nhdrs; i++) {
        if (hstr_ieq_c(saved.hdrs[i].name, "Content-Type"))
            continue;
        if (http_hdr_add(&t->resp, &t->arena, saved.hdrs[i].name, saved.hdrs[i].value) < 0)
            return -1;
    }
    return 0;
}

void error_pages_free(struct error_pages *p)
{
    for (uint32_t i = 0; p->pages && i < p->npages; i++) {
        free(p->pages[i].body);
        free(p->pages[i].content_type);
    }
    free(p->pages);
    p->pages = NULL;
    p->npages = 0;
}
