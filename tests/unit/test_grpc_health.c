/* test_grpc_health.c — the gRPC health check's pieces that need no server: the request
 * body (a gRPC frame around HealthCheckRequest{service}), the reading of a response body
 * (one frame, HealthCheckResponse.status, unknown fields skipped, every malformed shape
 * refused), and the configuration (`type: grpc`, `service`, the keys of other types).
 * The check against live servers is in tests/e2e/test_grpc_health.py.
 */
#include <stdlib.h>
#include <string.h>

#include "config/config.h"
#include "core/bug.h"
#include "health/check.h"
#include "test.h"

TEST(grpc_health_request_body)
{
    uint8_t b[64];
    CHECK_EQ_U64(hc_grpc_request("", 0, b, sizeof(b)), 5);
    CHECK(memcmp(b, "\0\0\0\0\0", 5) == 0);
    ssize_t n = hc_grpc_request("pkg.Svc", 7, b, sizeof(b));
    CHECK_EQ_U64(n, 14);
    CHECK(memcmp(b, "\0\0\0\0\x09\x0a\x07pkg.Svc", 14) == 0);
    CHECK(hc_grpc_request("pkg.Svc", 7, b, 13) == -1); /* does not fit */

    /* a 200-byte name: a two-byte length varint (0xc8 0x01) */
    char name[200];
    uint8_t big[256];
    memset(name, 'a', sizeof(name));
    n = hc_grpc_request(name, sizeof(name), big, sizeof(big));
    CHECK_EQ_U64(n, 5 + 1 + 2 + 200);
    CHECK(big[4] == 203 && big[5] == 0x0a && big[6] == 0xc8 && big[7] == 0x01);
    CHECK(big[8] == 'a' && big[207] == 'a');
}

static int serving(const char *body, size_t len, uint64_t *st, const char **why)
{
    *why = NULL;
    return hc_grpc_serving((const uint8_t *)body, len, st, why);
}

TEST(grpc_health_response_status)
{
    uint64_t st;
    const char *why;
#define S(lit) serving(lit, sizeof(lit) - 1, &st, &why)
    CHECK(S("\0\0\0\0\x02\x08\x01") == 0 && st == 1);
    CHECK(S("\0\0\0\0\x02\x08\x02") == 0 && st == 2);
    CHECK(S("\0\0\0\0\0") == 0 && st == 0); /* an empty message: UNKNOWN */
    /* unknown fields of every wire type are skipped; the last status wins */
    CHECK(S("\0\0\0\0\x1a\x08\x02\x10\x96\x01\x1a\x03xyz\x21\1\2\3\4\5\6\7\x08\x2d\1\2\3\4\x08"
            "\x01") == 0 &&
          st == 1);
#undef S
}

TEST(grpc_health_response_malformed)
{
    static const struct {
        const char *body;
        size_t len;
        const char *why;
    } bad[] = {
        {"", 0, "no response message"},
        {"\0\0\0", 3, "response message cut short"},
        {"\0\0\0\0\x03\x08\x01", 7, "response message cut short"},
        {"\0\0\0\0\x02\x08\x01\0\0\0\0\x02\x08\x01", 14, "more than one response message"},
        {"\1\0\0\0\x02\x08\x01", 7, "compressed response message"},
        {"\x80\0\0\0\x02\x08\x01", 7, "bad message flags"},
        {"\0\0\0\0\x01\x08", 6, "malformed HealthCheckResponse"},         /* value missing */
        {"\0\0\0\0\x02\x08\x80", 7, "malformed HealthCheckResponse"},     /* varint cut */
        {"\0\0\0\0\x02\x0b\x01", 7, "malformed HealthCheckResponse"},     /* wire type 3 */
        {"\0\0\0\0\x02\x00\x01", 7, "malformed HealthCheckResponse"},     /* field 0 */
        {"\0\0\0\0\x03\x1a\x05x", 8, "malformed HealthCheckResponse"},    /* string too long */
        {"\0\0\0\0\x03\x0d\x01\x02", 8, "malformed HealthCheckResponse"}, /* fixed32 cut */
        {"\0\0\0\0\x0b\x08\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff", 16,
         "malformed HealthCheckResponse"}, /* an 11-byte varint */
    };
    for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
        uint64_t st = 99;
        const char *why = NULL;
        if (serving(bad[i].body, bad[i].len, &st, &why) != -1 || !why ||
            strcmp(why, bad[i].why) != 0)
            test_fail(__FILE__, __LINE__, "case %zu: got \"%s\", expected \"%s\"", i,
                      why ? why : "(accepted)", bad[i].why);
    }
}

static struct config *load(const char *yaml, struct config_errors *e)
{
    memset(e, 0, sizeof(*e));
    return config_load_string("strata.yaml", yaml, 1, e);
}

#define LST "listeners:\n  - { name: g, listen: 127.0.0.1:8080, mode: http, backend: b }\n"

TEST(grpc_health_config)
{
    struct config_errors e;
    struct config *c = load(LST "backends:\n  b:\n"
                                "    health_check: { type: grpc, service: pkg.Echo, host: g.test,"
                                " interval: 1s }\n"
                                "    servers: [127.0.0.1:9001]\n",
                            &e);
    CHECK(c != NULL);
    if (c) {
        const struct health_conf *hc = &c->backends[0].hc;
        CHECK(hc->type == HC_GRPC);
        CHECK(hc->grpc_service && strcmp(hc->grpc_service, "pkg.Echo") == 0);
        CHECK(hc->http_host && strcmp(hc->http_host, "g.test") == 0);
        CHECK_EQ_U64(hc->interval_ms, 1000);
        config_unref(c);
    }
    config_errors_free(&e);

    static const struct {
        const char *hc, *msg;
    } bad[] = {
        {"{ type: grpc, path: /x }", "health_check.path: applies to type http only"},
        {"{ type: grpc, expect_status: 200 }",
         "health_check.expect_status: applies to type http only"},
        {"{ type: http, service: x }", "health_check.service: applies to type grpc only"},
        {"{ type: tcp, host: a }", "health_check.host: applies to types http and grpc only"},
        {"{ type: grpc, service: \"a b\" }",
         "health_check.service: expected a service name of at most 1024 bytes, without spaces"},
        {"{ type: grpc, host: \"\" }", "health_check.host: expected a non-empty string"},
        {"{ type: grpc, host: \"a b\" }", "health_check.host: expected a host[:port] without"},
        {"{ type: grpc, payload: x }", "`payload` and `payload_hex` apply to type udp only"},
        {"{ type: grcp }", "expected one of tcp, udp, http, grpc, none"},
    };
    for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
        char yaml[512];
        snprintf(yaml, sizeof(yaml),
                 LST "backends:\n  b:\n    health_check: %s\n    servers: [127.0.0.1:9001]\n",
                 bad[i].hc);
        c = load(yaml, &e);
        if (c || !e.text || !strstr(e.text, bad[i].msg))
            test_fail(__FILE__, __LINE__, "case %zu: %s\n      errors: %s", i, bad[i].msg,
                      e.text ? e.text : "(none)");
        if (c)
            config_unref(c);
        config_errors_free(&e);
    }
}
