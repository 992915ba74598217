/* error_page.h — Strata's own error answers (400–599: from the codecs, the stream and the
 * access filters) dressed as the route's `error_pages` say, else the listener's: a file
 * template for the status, its class or `default`, or a built-in HTML or JSON page.
 * Templates know {status} {reason} {detail} {request_id} {method} {host} {path}, escaped
 * for the page's kind (HTML, JSON); other text is kept as written.
 */
#ifndef STRATA_HTTP_ERROR_PAGE_H
#define STRATA_HTTP_ERROR_PAGE_H

#include "http/error_page-t.h"
#include "http/txn-t.h"

/* Replaces t's answer (already made with `status`) by the configured page, if any.
 * Returns 0 (done, or nothing configured) or -1 (no memory: the answer is unchanged). */
int error_page_apply(struct http_txn *t, unsigned status, const char *detail);

/* Frees what the configuration allocated in p. */
void error_pages_free(struct error_pages *p);

#endif
