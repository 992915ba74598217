/* route_describe.c — routes as text; see route_describe.h. */
#include "http/route_describe.h"

#include <stdbool.h>

static const char *const method_names[] = {"OTHER",  "GET",     "HEAD",    "POST",  "PUT",
                                           "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH"};

void str_match_describe(const struct str_match *m, struct strbuf *out)
{
    switch (m->kind) {
    case SM_ANY:
        sb_puts(out, "any");
        break;
    case SM_PRESENT:
        sb_puts(out, "present");
        break;
    case SM_EXACT:
        sb_printf(out, "= %s", m->text);
        break;
    case SM_PREFIX:
        sb_printf(out, "prefix %s", m->text);
        break;
    case SM_REGEX:
        sb_printf(out, "~ %s", m->text);
        break;
    }
}

static void describe_hosts(const struct route_match *m, struct strbuf *out)
{
    sb_puts(out, "host ");
    for (uint32_t i = 0; i < m->nhosts; i++)
        sb_printf(out, "%s%s%s", i ? " | " : "", m->hosts[i].wildcard ? "*" : "", m->hosts[i].text);
}

static void describe_methods(const struct route_match *m, struct strbuf *out)
{
    bool first = true;
    sb_puts(out, "method ");
    for (unsigned k = 1; k < sizeof(method_names) / sizeof(method_names[0]); k++)
        if ((m->methods >> k) & 1) {
            sb_printf(out, "%s%s", first ? "" : " | ", method_names[k]);
            first = false;
        }
    for (uint32_t i = 0; i < m->nother_methods; i++, first = false)
        sb_printf(out, "%s%s", first ? "" : " | ", m->other_methods[i]);
}

static void describe_named(const char *what, const struct named_match *nm, struct strbuf *out)
{
    sb_printf(out, "%s %s ", what, nm->name);
    str_match_describe(&nm->value, out);
}

void route_miss_describe(const struct route_match *m, enum route_miss_part part, uint32_t index,
                         struct strbuf *out)
{
    switch (part) {
    case ROUTE_MISS_NONE:
        sb_puts(out, "nothing");
        break;
    case ROUTE_MISS_CERT:
        sb_puts(out, "client certificate subject ");
        str_match_describe(&m->cert_subject, out);
        sb_puts(out, ", fingerprint ");
        str_match_describe(&m->cert_fingerprint, out);
        break;
    case ROUTE_MISS_METHOD:
        describe_methods(m, out);
        break;
    case ROUTE_MISS_HOST:
        describe_hosts(m, out);
        break;
    case ROUTE_MISS_GRPC:
        sb_puts(out, "grpc (content-type application/grpc)");
        break;
    case ROUTE_MISS_PATH:
        sb_puts(out, "path ");
        str_match_describe(&m->path, out);
        break;
    case ROUTE_MISS_HEADER:
        describe_named("header", &m->headers[index], out);
        break;
    case ROUTE_MISS_COOKIE:
        describe_named("cookie", &m->cookies[index], out);
        break;
    case ROUTE_MISS_QUERY:
        describe_named("query", &m->queries[index], out);
        break;
    }
}

/* The separator before every condition but the first (those after `start`). */
static struct strbuf *sep(struct strbuf *out, size_t start)
{
    if (out->len > start)
        sb_puts(out, ", ");
    return out;
}

void route_match_describe(const struct route_match *m, struct strbuf *out)
{
    size_t start = out->len;
    if (m->cert_subject.kind != SM_ANY || m->cert_fingerprint.kind != SM_ANY)
        route_miss_describe(m, ROUTE_MISS_CERT, 0, out);
    if (m->methods || m->nother_methods)
        describe_methods(m, sep(out, start));
    if (m->nhosts)
        describe_hosts(m, sep(out, start));
    if (m->grpc)
        route_miss_describe(m, ROUTE_MISS_GRPC, 0, sep(out, start));
    if (m->path.kind != SM_ANY)
        route_miss_describe(m, ROUTE_MISS_PATH, 0, sep(out, start));
    for (uint32_t i = 0; i < m->nheaders; i++)
        describe_named("header", &m->headers[i], sep(out, start));
    for (uint32_t i = 0; i < m->ncookies; i++)
        describe_named("cookie", &m->cookies[i], sep(out, start));
    for (uint32_t i = 0; i < m->nqueries; i++)
        describe_named("query", &m->queries[i], sep(out, start));
    if (out->len == start)
        sb_puts(out, "every request");
}
