/* schema_error_pages.c — `error_pages` of a listener's `http` and of a route: the kind of
 * the built-in page and template files by status, class or `default`, read at load. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http/error_page.h"
#include "schema.h"

#define PAGE_FILE_MAX (64 * 1024)

static const struct cfg_enum formats[] = {
    {"text", ERRF_TEXT},
    {"html", ERRF_HTML},
    {"json", ERRF_JSON},
    {NULL, 0},
};

/* "404" → 404..404, "5xx" → 500..599, "default" → 400..599; -1 otherwise. */
static int status_range(const char *k, uint16_t *lo, uint16_t *hi)
{
    if (strcmp(k, "default") == 0) {
        *lo = 400, *hi = 599;
        return 0;
    }
    if (strlen(k) != 3 || (k[0] != '4' && k[0] != '5'))
        return -1;
    if (strcmp(k + 1, "xx") == 0) {
        *lo = (uint16_t)((k[0] - '0') * 100), *hi = (uint16_t)(*lo + 99);
        return 0;
    }
    if (!isdigit((unsigned char)k[1]) || !isdigit((unsigned char)k[2]))
        return -1;
    *lo = *hi = (uint16_t)atoi(k);
    return 0;
}

/* The kind of a page by its file name: .html/.htm, .json, else text. */
static void page_kind(struct error_page *e, const char *path)
{
    const char *dot = strrchr(path, '.');
    bool html = dot && (strcmp(dot, ".html") == 0 || strcmp(dot, ".htm") == 0);
    bool json = dot && strcmp(dot, ".json") == 0;
    e->kind = html ? ERRF_HTML : json ? ERRF_JSON : ERRF_TEXT;
    e->content_type = strdup(html   ? "text/html; charset=utf-8"
                             : json ? "application/json"
                                    : "text/plain; charset=utf-8");
}

static int load_page(struct cfg_ctx *ctx, const struct ynode *v, struct error_page *e)
{
    char *path = cfg_dup_text(ctx, v, "a file name");
    if (!path)
        return -1;
    cfg_resolve_path(ctx, v, &path);
    size_t n;
    e->body = cfg_read_file(ctx, v, path, PAGE_FILE_MAX, &n);
    if (!e->body) {
        free(path);
        return -1;
    }
    e->len = (uint32_t)n;
    page_kind(e, path);
    free(path);
    if (!e->content_type)
        cfg_oom(ctx, v);
    return e->content_type ? 0 : -1;
}

static int parse_files(struct cfg_ctx *ctx, const struct cfg_key *key, const struct ynode *n,
                       void *target)
{
    struct error_pages *p = target;
    char b[64];
    if (n->kind != YN_MAP || n->n == 0) {
        cfg_error(ctx, n, "expected a mapping of statuses (404, 5xx, default) to files, got %s",
                  cfg_describe(n, b, sizeof(b)));
        return -1;
    }
    if (!(p->pages = calloc(n->n, sizeof(*p->pages)))) {
        cfg_oom(ctx, n);
        return -1;
    }
    int rc = 0;
    for (size_t i = 0; i < n->n && rc == 0; i++) {
        const struct ynode *k = n->kids[2 * i], *v = n->kids[2 * i + 1];
        struct error_page *e = &p->pages[p->npages];
        size_t mark = cfg_path_key(ctx, k->text ? k->text : "?");
        if (!k->text || status_range(k->text, &e->lo, &e->hi) < 0) {
            cfg_error(ctx, k,
                      "expected a status from 400 to 599, `4xx`, `5xx` or `default`, "
                      "got %s",
                      cfg_describe(k, b, sizeof(b)));
            rc = -1;
        } else if (e->lo < 400 || e->hi > 599) {
            cfg_error(ctx, k, "expected a status from 400 to 599");
            rc = -1;
        } else if ((rc = load_page(ctx, v, e)) == 0) {
            p->npages++;
        } else {
            free(e->body);
        }
        cfg_path_pop(ctx, mark);
    }
    return rc;
}

static void pages_finish(struct cfg_ctx *ctx, const struct ynode *map, void *target)
{
    ((struct error_pages *)target)->set = true;
}

static void pages_release(void *target)
{
    error_pages_free(target);
}

static const struct cfg_key error_pages_keys[] = {
    {"format", CT_ENUM, 0, "text", .enums = formats, .off = offsetof(struct error_pages, format),
     .help = "The built-in page for statuses no file serves: `text` (`404 Not Found: why`), "
             "`html`, or `json` (`{\"status\":404,\"error\":\"Not Found\",\"detail\":...,"
             "\"request_id\":...}`, for API routes)."},
    {"files", CT_CUSTOM, .parse = parse_files, .type_doc = "mapping of statuses to files",
     .def_doc = "none",
     .help = "Templates by status (`404`), class (`5xx`) or `default`, read at load (64 KiB "
             "each); the most specific wins. `{status}`, `{reason}`, `{detail}`, "
             "`{request_id}`, `{method}`, `{host}`, `{path}` are replaced, escaped for the "
             "file's kind (`.html`, `.json`, else text), which also gives the Content-Type."},
};

const struct cfg_section cfg_error_pages_section = {
    .path = "listeners[].http.error_pages",
    .help = "Pages for the answers Strata gives itself with a status from 400 to 599 (bad "
            "requests, no route, refusals of the access filters, server errors and "
            "timeouts), with the request id in them. A route's `error_pages` serve the "
            "answers made once it was chosen; the listener's serve the others. gRPC calls "
            "keep their status answers; `respond` and `redirect` keep theirs.",
    .keys = error_pages_keys,
    .nkeys = ARRAY_SIZE(error_pages_keys),
    .finish = pages_finish,
    .release = pages_release,
};
