/* grpc.c — see grpc.h. */
#include "http/grpc.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "http/filter.h"
#include "http/msg.h"

bool grpc_content_type(const struct http_msg *m)
{
    static const char prefix[] = "application/grpc";
    struct hstr ct = http_hdr_get(m, HSTR_LIT("content-type"));
    size_t n = sizeof(prefix) - 1;
    if (!ct.p || ct.len < n || strncasecmp(ct.p, prefix, n) != 0)
        return false;
    return ct.len == n || ct.p[n] == '+' || ct.p[n] == ';' || ct.p[n] == '-';
}

uint64_t grpc_timeout_ms(const struct http_msg *req)
{
    struct hstr v = http_hdr_get(req, HSTR_LIT("grpc-timeout"));
    if (!v.p || v.len < 2 || v.len > 9)
        return 0;
    uint64_t n = 0;
    for (uint32_t i = 0; i + 1 < v.len; i++) {
        if (v.p[i] < '0' || v.p[i] > '9')
            return 0;
        n = n * 10 + (uint64_t)(v.p[i] - '0');
    }
    uint64_t ms;
    switch (v.p[v.len - 1]) {
    case 'H':
        ms = n * 3600000;
        break;
    case 'M':
        ms = n * 60000;
        break;
    case 'S':
        ms = n * 1000;
        break;
    case 'm':
        ms = n;
        break;
    case 'u':
        ms = (n + 999) / 1000;
        break;
    case 'n':
        ms = (n + 999999) / 1000000;
        break;
    default:
        return 0;
    }
    return ms ? ms : 1; /* a deadline of 0 has already passed: as soon as possible */
}

enum grpc_code grpc_code_for(unsigned http_status)
{
    switch (http_status) {
    case 200:
        return GRPC_OK;
    case 400:
    case 500:
        return GRPC_INTERNAL;
    case 401:
        return GRPC_UNAUTHENTICATED;
    case 403:
        return GRPC_PERMISSION_DENIED;
    case 404:
    case 501:
        return GRPC_UNIMPLEMENTED;
    case 408:
    case 504:
        return GRPC_DEADLINE_EXCEEDED;
    case 413:
    case 431:
        return GRPC_RESOURCE_EXHAUSTED;
    case 429:
    case 502:
    case 503:
        return GRPC_UNAVAILABLE;
    default:
        return GRPC_UNKNOWN;
    }
}

/* grpc-message is percent-encoded: bytes outside 0x20..0x7E, and '%'. */
static struct hstr percent_encode(struct arena *a, const char *s)
{
    size_t n = strlen(s);
    char *out = arena_alloc(a, n * 3 + 1);
    if (!out)
        return (struct hstr){NULL, 0};
    static const char hex[] = "0123456789ABCDEF";
    uint32_t o = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c <= 0x7E && c != '%') {
            out[o++] = (char)c;
            continue;
        }
        out[o++] = '%';
        out[o++] = hex[c >> 4];
        out[o++] = hex[c & 15];
    }
    return (struct hstr){out, o};
}

int grpc_answer(struct http_txn *t, unsigned http_status, const char *message)
{
    char code[12];
    snprintf(code, sizeof(code), "%u", (unsigned)grpc_code_for(http_status));
    struct hstr c = arena_dup(&t->arena, code, strlen(code));
    struct hstr m = percent_encode(&t->arena, message ? message : "");
    if (!c.p || !m.p || txn_answer(t, 200, NULL, "", 0) < 0 ||
        http_hdr_add(&t->resp, &t->arena, HSTR_LIT("content-type"), HSTR_LIT("application/grpc")) <
            0 ||
        http_hdr_add(&t->resp, &t->arena, HSTR_LIT("grpc-status"), c) < 0 ||
        (m.len && http_hdr_add(&t->resp, &t->arena, HSTR_LIT("grpc-message"), m) < 0))
        return -1;
    return 0;
}
