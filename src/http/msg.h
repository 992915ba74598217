/* msg.h — operations on the protocol-neutral HTTP message (see msg-t.h) and the
 * per-transaction arena that owns whatever a filter adds to it.
 */
#ifndef STRATA_HTTP_MSG_H
#define STRATA_HTTP_MSG_H

#include <string.h>

#include "http/msg-t.h"

/* ---- arena ---- */
void arena_init(struct arena *a, size_t limit);
/* An arena whose first block is `buf` (size bytes, 8-byte aligned, owned by the caller and
 * never freed): a transaction that fits in it allocates nothing. */
void arena_init_buf(struct arena *a, void *buf, size_t size, size_t limit);
/* Frees every block but the first, and rewinds. */
void arena_reset(struct arena *a);
void arena_free(struct arena *a);
/* Returns n bytes (8-byte aligned), or NULL when out of memory or past the limit. */
void *arena_alloc(struct arena *a, size_t n);
/* A copy of s (not NUL-terminated) in the arena; .p NULL on failure. */
struct hstr arena_dup(struct arena *a, const void *s, size_t n);
/* printf into the arena; .p NULL on failure. The result is NUL-terminated. */
struct hstr arena_printf(struct arena *a, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* ---- slices ---- */
static inline struct hstr hstr_c(const char *s)
{
    return (struct hstr){s, (uint32_t)strlen(s)};
}
static inline bool hstr_eq(struct hstr a, struct hstr b)
{
    return a.len == b.len && (a.len == 0 || memcmp(a.p, b.p, a.len) == 0);
}
/* ASCII case-insensitive equality of n bytes. */
bool mem_ieq(const char *a, const char *b, uint32_t n);
/* ASCII case-insensitive equality (inline: most field names compared differ in length). */
static inline bool hstr_ieq(struct hstr a, struct hstr b)
{
    return a.len == b.len && mem_ieq(a.p, b.p, a.len);
}
static inline bool hstr_ieq_c(struct hstr a, const char *b)
{
    return hstr_ieq(a, hstr_c(b));
}

/* ---- header fields ---- */
/* Index of the first field named `name` at or after `from` (case-insensitive), or -1. */
int http_hdr_find(const struct http_msg *m, struct hstr name, uint32_t from);
/* The first value of `name`, or a slice with .p NULL when absent. */
struct hstr http_hdr_get(const struct http_msg *m, struct hstr name);
/* Appends a field; the array grows in the arena. Returns 0 or -1 (out of memory). The
 * slices are stored as given: they must outlive the message (arena or static). */
int http_hdr_add(struct http_msg *m, struct arena *a, struct hstr name, struct hstr value);
/* Replaces every field `name` by one with `value` (added at the end when absent). */
int http_hdr_set(struct http_msg *m, struct arena *a, struct hstr name, struct hstr value);
/* Removes every field `name`; returns how many. Order of the others is kept. */
uint32_t http_hdr_remove(struct http_msg *m, struct hstr name);

/* Cookie lookup in the request's Cookie fields ("a=1; b=2"): the value of cookie `name`,
 * or .p NULL. */
struct hstr http_cookie_get(const struct http_msg *m, struct hstr name);
/* Query parameter lookup in m->query ("a=1&b=2"): the raw (not percent-decoded) value of
 * `name`, an empty slice for "a" or "a=", or .p NULL when absent. */
struct hstr http_query_get(const struct http_msg *m, struct hstr name);

/* The next element of the comma list [*p, end), without its surrounding spaces and tabs;
 * false at the end of the list. Empty elements are skipped. */
bool http_list_next(const char **p, const char *end, struct hstr *el);
/* The comma list `list` has the element `el` (case-insensitive). */
bool http_list_has(struct hstr list, struct hstr el);
/* A 101 switches only to protocols the request asked for, as forwarded (its Upgrade). */
bool http_switch_asked(const struct http_msg *req, const struct http_msg *resp);

/* The message has no body: none at all, or a length of 0. */
static inline bool http_msg_bodiless(const struct http_msg *m)
{
    return m->body == HTTP_BODY_NONE || (m->body == HTTP_BODY_LENGTH && m->content_length == 0);
}

/* GET, HEAD, OPTIONS, TRACE, PUT, DELETE (RFC 9110 §9.2.2): may be retried. */
bool http_method_idempotent(enum http_method m);
/* The method for a name (exact, case-sensitive per RFC 9110), HTTP_M_OTHER if unknown. */
enum http_method http_method_from(struct hstr name);

/* The reason phrase Strata sends with a status ("Not Found"), "" when unknown. */
const char *http_reason(unsigned status);

#endif
