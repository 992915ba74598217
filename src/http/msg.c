/* msg.c — the HTTP message's header operations and the per-transaction arena. */
#include "http/msg.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#define ARENA_BLOCK 4096
#define ARENA_DEFAULT_LIMIT (1u << 20)

struct arena_block {
    struct arena_block *next;
    size_t size, used;
    bool fixed; /* the caller's memory (arena_init_buf): never freed */
    _Alignas(8) char data[];
};

void arena_init(struct arena *a, size_t limit)
{
    a->head = NULL;
    a->used = 0;
    a->limit = limit ? limit : ARENA_DEFAULT_LIMIT;
}

void arena_init_buf(struct arena *a, void *buf, size_t size, size_t limit)
{
    arena_init(a, limit);
    if (size <= sizeof(struct arena_block) + 8)
        return;
    struct arena_block *b = buf;
    b->next = NULL;
    b->size = size - sizeof(*b);
    b->used = 0;
    b->fixed = true;
    a->head = b;
}

void arena_reset(struct arena *a)
{
    struct arena_block *b = a->head;
    if (!b)
        return;
    /* keep the oldest block (the last in the list) for the next transaction */
    while (b->next) {
        struct arena_block *next = b->next;
        if (!b->fixed)
            free(b);
        b = next;
    }
    b->used = 0;
    a->head = b;
    a->used = 0;
}

void arena_free(struct arena *a)
{
    while (a->head) {
        struct arena_block *next = a->head->next;
        if (!a->head->fixed)
            free(a->head);
        a->head = next;
    }
    a->used = 0;
}

void *arena_alloc(struct arena *a, size_t n)
{
    n = (n + 7) & ~(size_t)7;
    if (n == 0 || a->used + n > a->limit)
        return NULL;
    struct arena_block *b = a->head;
    if (!b || b->size - b->used < n) {
        size_t size = n > ARENA_BLOCK - sizeof(*b) ? n : ARENA_BLOCK - sizeof(*b);
        b = malloc(sizeof(*b) + size);
        if (!b)
            return NULL;
        b->size = size;
        b->used = 0;
        b->fixed = false;
        b->next = a->head;
        a->head = b;
    }
    void *p = b->data + b->used;
    b->used += n;
    a->used += n;
    return p;
}

struct hstr arena_dup(struct arena *a, const void *s, size_t n)
{
    char *p = n ? arena_alloc(a, n) : (char *)"";
    if (!p)
        return (struct hstr){NULL, 0};
    if (n)
        memcpy(p, s, n);
    return (struct hstr){p, (uint32_t)n};
}

struct hstr arena_printf(struct arena *a, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        return (struct hstr){NULL, 0};
    char *p = arena_alloc(a, (size_t)n + 1);
    if (!p)
        return (struct hstr){NULL, 0};
    va_start(ap, fmt);
    vsnprintf(p, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return (struct hstr){p, (uint32_t)n};
}

static inline char lower(char c)
{
    return (c >= 'A' && c <= 'Z') ? (char)(c + 32) : c;
}

bool mem_ieq(const char *a, const char *b, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++)
        if (lower(a[i]) != lower(b[i]))
            return false;
    return true;
}

int http_hdr_find(const struct http_msg *m, struct hstr name, uint32_t from)
{
    for (uint32_t i = from; i < m->nhdrs; i++)
        if (hstr_ieq(m->hdrs[i].name, name))
            return (int)i;
    return -1;
}

struct hstr http_hdr_get(const struct http_msg *m, struct hstr name)
{
    int i = http_hdr_find(m, name, 0);
    return i < 0 ? (struct hstr){NULL, 0} : m->hdrs[i].value;
}

int http_hdr_add(struct http_msg *m, struct arena *a, struct hstr name, struct hstr value)
{
    if (!name.p || !value.p)
        return -1;
    if (m->nhdrs == m->hdr_cap) {
        uint32_t cap = m->hdr_cap ? m->hdr_cap * 2 : 16;
        struct http_hdr *h = arena_alloc(a, cap * sizeof(*h));
        if (!h)
            return -1;
        if (m->nhdrs)
            memcpy(h, m->hdrs, m->nhdrs * sizeof(*h));
        m->hdrs = h;
        m->hdr_cap = cap;
    }
    m->hdrs[m->nhdrs++] = (struct http_hdr){name, value};
    return 0;
}

int http_hdr_set(struct http_msg *m, struct arena *a, struct hstr name, struct hstr value)
{
    int i = http_hdr_find(m, name, 0);
    if (i < 0)
        return http_hdr_add(m, a, name, value);
    m->hdrs[i].value = value;
    /* drop later duplicates */
    uint32_t out = (uint32_t)i + 1;
    for (uint32_t j = out; j < m->nhdrs; j++)
        if (!hstr_ieq(m->hdrs[j].name, name))
            m->hdrs[out++] = m->hdrs[j];
    m->nhdrs = out;
    return 0;
}

uint32_t http_hdr_remove(struct http_msg *m, struct hstr name)
{
    uint32_t out = 0;
    for (uint32_t j = 0; j < m->nhdrs; j++)
        if (!hstr_ieq(m->hdrs[j].name, name))
            m->hdrs[out++] = m->hdrs[j];
    uint32_t removed = m->nhdrs - out;
    m->nhdrs = out;
    return removed;
}

static bool is_ows(char c)
{
    return c == ' ' || c == '\t';
}

/* Finds `name` in a list of "k=v" items separated by `sep` (with optional spaces). */
static struct hstr find_pair(struct hstr list, struct hstr name, char sep)
{
    const char *p = list.p, *end = list.p + list.len;
    while (p < end) {
        while (p < end && (is_ows(*p) || *p == sep))
            p++;
        const char *item = p;
        while (p < end && *p != sep)
            p++;
        const char *item_end = p;
        while (item_end > item && is_ows(item_end[-1]))
            item_end--;
        const char *eq = memchr(item, '=', (size_t)(item_end - item));
        const char *kend = eq ? eq : item_end;
        if ((size_t)(kend - item) == name.len && memcmp(item, name.p, name.len) == 0) {
            if (!eq)
                return (struct hstr){item_end, 0};
            const char *v = eq + 1;
            return (struct hstr){v, (uint32_t)(item_end - v)};
        }
    }
    return (struct hstr){NULL, 0};
}

struct hstr http_cookie_get(const struct http_msg *m, struct hstr name)
{
    static const struct hstr cookie = HSTR_LIT("cookie");
    for (int i = http_hdr_find(m, cookie, 0); i >= 0;
         i = http_hdr_find(m, cookie, (uint32_t)i + 1)) {
        struct hstr v = find_pair(m->hdrs[i].value, name, ';');
        if (v.p) {
            /* a quoted cookie value keeps its quotes out */
            if (v.len >= 2 && v.p[0] == '"' && v.p[v.len - 1] == '"')
                v = (struct hstr){v.p + 1, v.len - 2};
            return v;
        }
    }
    return (struct hstr){NULL, 0};
}

struct hstr http_query_get(const struct http_msg *m, struct hstr name)
{
    if (!m->query.p)
        return (struct hstr){NULL, 0};
    return find_pair(m->query, name, '&');
}

bool http_method_idempotent(enum http_method m)
{
    switch (m) {
    case HTTP_M_GET:
    case HTTP_M_HEAD:
    case HTTP_M_OPTIONS:
    case HTTP_M_TRACE:
    case HTTP_M_PUT:
    case HTTP_M_DELETE:
        return true;
    default:
        return false;
    }
}

enum http_method http_method_from(struct hstr n)
{
    static const struct {
        const char *name;
        enum http_method m;
    } known[] = {
        {"GET", HTTP_M_GET},         {"HEAD", HTTP_M_HEAD},     {"POST", HTTP_M_POST},
        {"PUT", HTTP_M_PUT},         {"DELETE", HTTP_M_DELETE}, {"CONNECT", HTTP_M_CONNECT},
        {"OPTIONS", HTTP_M_OPTIONS}, {"TRACE", HTTP_M_TRACE},   {"PATCH", HTTP_M_PATCH},
    };
    for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++)
        if (hstr_eq(n, hstr_c(known[i].name)))
            return known[i].m;
    return HTTP_M_OTHER;
}

const char *http_reason(unsigned status)
{
    switch (status) {
    case 100:
        return "Continue";
    case 101:
        return "Switching Protocols";
    case 200:
        return "OK";
    case 201:
        return "Created";
    case 204:
        return "No Content";
    case 206:
        return "Partial Content";
    case 301:
        return "Moved Permanently";
    case 302:
        return "Found";
    case 303:
        return "See Other";
    case 304:
        return "Not Modified";
    case 307:
        return "Temporary Redirect";
    case 308:
        return "Permanent Redirect";
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 408:
        return "Request Timeout";
    case 411:
        return "Length Required";
    case 413:
        return "Content Too Large";
    case 414:
        return "URI Too Long";
    case 417:
        return "Expectation Failed";
    case 429:
        return "Too Many Requests";
    case 431:
        return "Request Header Fields Too Large";
    case 500:
        return "Internal Server Error";
    case 501:
        return "Not Implemented";
    case 502:
        return "Bad Gateway";
    case 503:
        return "Service Unavailable";
    case 504:
        return "Gateway Timeout";
    case 505:
        return "HTTP Version Not Supported";
    default:
        return "";
    }
}

/* ---- comma lists, upgrades ---- */

bool http_list_next(const char **p, const char *end, struct hstr *el)
{
    while (*p < end) {
        const char *q = *p, *e = memchr(q, ',', (size_t)(end - q));
        e = e ? e : end;
        *p = e < end ? e + 1 : end;
        while (q < e && (*q == ' ' || *q == '\t'))
            q++;
        while (e > q && (e[-1] == ' ' || e[-1] == '\t'))
            e--;
        if (e > q) {
            *el = (struct hstr){q, (uint32_t)(e - q)};
            return true;
        }
    }
    return false;
}

bool http_list_has(struct hstr list, struct hstr proto)
{
    const char *p = list.p;
    struct hstr el;
    while (http_list_next(&p, list.p + list.len, &el))
        if (hstr_ieq(el, proto))
            return true;
    return false;
}

/* A 101 switches to protocols the request asked for, as forwarded: else the server would
 * open a tunnel nobody asked for (an h2c Strata stripped, for one). RFC 9110 §15.2.2: the
 * 101 names them in its Upgrade field. */
bool http_switch_asked(const struct http_msg *req, const struct http_msg *resp)
{
    if (!(req->flags & HTTP_F_UPGRADE) || !resp->upgrade.len)
        return false;
    const char *p = resp->upgrade.p;
    struct hstr el;
    while (http_list_next(&p, resp->upgrade.p + resp->upgrade.len, &el))
        if (!http_list_has(req->upgrade, el))
            return false;
    return true;
}
