/* test_udp_config.c — the configuration of UDP: `mode: udp` listeners and their `udp`
 * section (defaults, values, misuse on a tcp listener), a tcp and a udp listener sharing
 * an address, and the `udp` health check's payload (text, hex, and their errors).
 */
#include <string.h>

#include "config/config.h"
#include "test.h"

#define BACKENDS "backends:\n  dns:\n    servers: [127.0.0.1:5353]\n"

static struct config *load(const char *yaml, struct config_errors *e)
{
    memset(e, 0, sizeof(*e));
    return config_load_string("strata.yaml", yaml, 2, e);
}

/* Loads yaml, which must fail with `msg` in its errors. */
static void expect_error(const char *yaml, const char *msg)
{
    struct config_errors e;
    struct config *c = load(yaml, &e);
    CHECK(c == NULL);
    CHECK_STR_CONTAINS(e.text, msg);
    config_unref(c);
    config_errors_free(&e);
}

TEST(udp_config_defaults_and_values)
{
    struct config_errors e;
    struct config *c = load("listeners:\n"
                            "  - { name: a, listen: 127.0.0.1:53, mode: udp, backend: dns }\n"
                            "  - name: b\n"
                            "    listen: 127.0.0.1:54\n"
                            "    mode: udp\n"
                            "    backend: dns\n"
                            "    udp: { flow_idle: 500ms, max_flows: 7 }\n" BACKENDS,
                            &e);
    CHECK(c != NULL);
    if (!c) {
        test_fail(__FILE__, __LINE__, "%s", e.text ? e.text : "?");
        config_errors_free(&e);
        return;
    }
    CHECK(c->listeners[0].mode == MODE_UDP);
    CHECK_EQ_U64(c->listeners[0].udp.flow_idle_ms, 30000);
    CHECK_EQ_U64(c->listeners[0].udp.max_flows, 10000);
    CHECK_EQ_U64(c->listeners[1].udp.flow_idle_ms, 500);
    CHECK_EQ_U64(c->listeners[1].udp.max_flows, 7);
    config_unref(c);
    config_errors_free(&e);
}

TEST(udp_config_section_only_on_udp_listeners)
{
    expect_error(
        "listeners:\n"
        "  - { name: a, listen: 127.0.0.1:53, backend: dns, udp: { max_flows: 5 } }\n" BACKENDS,
        "strata.yaml:2:57: error: listeners[0].udp: applies to listeners with "
        "`mode: udp` only");
    expect_error("listeners:\n"
                 "  - { name: a, listen: 127.0.0.1:53, mode: udp, backend: dns,\n"
                 "      udp: { max_flows: 0 } }\n" BACKENDS,
                 "listeners[0].udp.max_flows: expected an integer from 1 to 10000000");
    expect_error("listeners:\n"
                 "  - { name: a, listen: 127.0.0.1:53, mode: udp, backend: dns,\n"
                 "      udp: { flow_idle: 1ms } }\n" BACKENDS,
                 "listeners[0].udp.flow_idle: expected a duration from 10ms to 720h");
}

TEST(udp_config_tcp_and_udp_share_an_address)
{
    struct config_errors e;
    struct config *c =
        load("admin: { listen: 127.0.0.1:9090 }\n"
             "listeners:\n"
             "  - { name: t, listen: 127.0.0.1:53, mode: tcp, backend: dns }\n"
             "  - { name: u, listen: 127.0.0.1:53, mode: udp, backend: dns }\n"
             "  - { name: u2, listen: 127.0.0.1:9090, mode: udp, backend: dns }\n" BACKENDS,
             &e);
    CHECK(c != NULL);
    config_unref(c);
    config_errors_free(&e);
    expect_error("listeners:\n"
                 "  - { name: u, listen: 127.0.0.1:53, mode: udp, backend: dns }\n"
                 "  - { name: v, listen: 127.0.0.1:53, mode: udp, backend: dns }\n" BACKENDS,
                 "listeners[1].listen: address 127.0.0.1:53 is already used by listener \"u\"");
}

#define UDP_L "listeners:\n  - { name: u, listen: 127.0.0.1:53, mode: udp, backend: dns }\n"

TEST(udp_config_health_payload)
{
    struct config_errors e;
    struct config *c =
        load(UDP_L "backends:\n"
                   "  dns:\n"
                   "    health_check: { type: udp, payload_hex: \"12 34 0100 ff\" }\n"
                   "    servers: [127.0.0.1:5353]\n"
                   "  txt:\n"
                   "    health_check: { type: udp, payload: \"ping\\x01\" }\n"
                   "    servers: [127.0.0.1:5354]\n",
             &e);
    CHECK(c != NULL);
    if (c) {
        const struct health_conf *hc = &c->backends[0].hc;
        CHECK(hc->type == HC_UDP);
        CHECK_EQ_U64(hc->payload_len, 5);
        CHECK(hc->payload && memcmp(hc->payload, "\x12\x34\x01\x00\xff", 5) == 0);
        hc = &c->backends[1].hc;
        CHECK_EQ_U64(hc->payload_len, 5);
        CHECK(hc->payload && memcmp(hc->payload, "ping\1", 5) == 0);
    }
    config_unref(c);
    config_errors_free(&e);
}

TEST(udp_config_health_payload_errors)
{
    expect_error(UDP_L "backends:\n  dns:\n    health_check: { type: udp }\n"
                       "    servers: [127.0.0.1:5353]\n",
                 "strata.yaml:5:19: error: backends.dns.health_check: type udp needs `payload` "
                 "or `payload_hex`");
    expect_error(UDP_L "backends:\n  dns:\n    health_check: { type: tcp, payload: x }\n"
                       "    servers: [127.0.0.1:5353]\n",
                 "backends.dns.health_check: `payload` and `payload_hex` apply to type udp only");
    expect_error(UDP_L "backends:\n  dns:\n"
                       "    health_check: { type: udp, payload: x, payload_hex: \"00\" }\n"
                       "    servers: [127.0.0.1:5353]\n",
                 "backends.dns.health_check.payload_hex: give either `payload` or `payload_hex`");
    expect_error(UDP_L "backends:\n  dns:\n    health_check: { type: udp, payload_hex: \"abc\" }\n"
                       "    servers: [127.0.0.1:5353]\n",
                 "backends.dns.health_check.payload_hex: expected pairs of hex digits of 1 to "
                 "65507 bytes, got \"abc\"");
    expect_error(UDP_L "backends:\n  dns:\n    health_check: { type: udp, payload_hex: \"zz\" }\n"
                       "    servers: [127.0.0.1:5353]\n",
                 "expected pairs of hex digits");
    expect_error(UDP_L "backends:\n  dns:\n    health_check: { type: udp, payload: [1] }\n"
                       "    servers: [127.0.0.1:5353]\n",
                 "backends.dns.health_check.payload: expected a string, got a sequence");
}
