/* admin_int.h — what the admin listener's handlers (admin_stats.c, admin_web.c) use from
 * admin.c: the request's configuration and one call to answer.
 */
#ifndef STRATA_ADMIN_ADMIN_INT_H
#define STRATA_ADMIN_ADMIN_INT_H

#include <stdbool.h>
#include <stddef.h>

#include "config/config-t.h"
#include "http/msg-t.h"

struct admin_conn;

/* The configuration being served (valid during the handler). */
struct config *admin_conn_config(const struct admin_conn *c);

/* Answers with a complete response (body copied); `headers` are extra header lines, each
 * ending in CRLF, or NULL. head: the request was HEAD (no body sent). */
void admin_reply(struct admin_conn *c, int status, const char *ctype, const char *headers,
                 const char *body, size_t len, bool head);

/* Whether the request's Accept-Encoding takes gzip (admin_gzip.c). */
bool admin_accepts_gzip(const struct http_msg *m);
/* admin_reply, with the body gzip-compressed when the client takes it and it is not tiny. */
void admin_reply_maybe_gzip(struct admin_conn *c, const struct http_msg *m, int status,
                            const char *ctype, const char *body, size_t len, bool head);

/* GET /api/v1/stats (admin_stats.c). */
void admin_serve_stats(struct admin_conn *c, const struct http_msg *m, bool head);
/* Drops what admin_serve_stats keeps between requests (its recent window, which holds a
 * reference on the configuration it was taken of). */
void admin_stats_release(void);
/* GET / and the dashboard's assets (admin_web.c); false when path is not one of them. */
bool admin_serve_web(struct admin_conn *c, const struct http_msg *m, bool head);

#endif
