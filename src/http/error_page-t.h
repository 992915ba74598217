/* error_page-t.h — custom pages for Strata's own error answers (types only; see
 * http/error_page.h). Built by config/schema_error_pages.c, read-only afterwards.
 */
#ifndef STRATA_HTTP_ERROR_PAGE_T_H
#define STRATA_HTTP_ERROR_PAGE_T_H

#include <stdbool.h>
#include <stdint.h>

enum error_format {
    ERRF_TEXT, /* "404 Not Found: detail" (the built-in answer) */
    ERRF_HTML, /* a small HTML page */
    ERRF_JSON, /* {"status":..,"error":..,"detail":..,"request_id":..} for API clients */
};

/* One page: the statuses lo..hi it serves (404..404, 500..599, 400..599 for `default`), a
 * template read from a file, and its content type (by the file's extension). */
struct error_page {
    uint16_t lo, hi;
    char *body;
    uint32_t len;
    enum error_format kind; /* how variables are escaped in it */
    char *content_type;
};

/* `error_pages` of a listener or a route; unset (format text, no pages, !set) changes
 * nothing. */
struct error_pages {
    bool set;
    enum error_format format; /* the built-in page when no file serves the status */
    struct error_page *pages; /* exact statuses first, then classes, then `default` */
    uint32_t npages;
};

#endif
