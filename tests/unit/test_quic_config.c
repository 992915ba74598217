/* test_quic_config.c — the configuration of QUIC routing: `listeners[].udp.quic` (defaults,
 * QUIC-LB length rules) and servers' `quic_id` (hex, length against every QUIC listener of
 * the backend, duplicates), each error at its file:line:col.
 */
#include <string.h>

#include "config/config.h"
#include "test.h"

#define LISTENER(udp)                                                                              \
    "listeners:\n"                                                                                 \
    "  - name: q\n"                                                                                \
    "    listen: 127.0.0.1:443\n"                                                                  \
    "    mode: udp\n"                                                                              \
    "    backend: app\n"                                                                           \
    "    udp: " udp "\n"

static struct config *load(const char *yaml, struct config_errors *e)
{
    memset(e, 0, sizeof(*e));
    return config_load_string("strata.yaml", yaml, 2, e);
}

static void expect_error(const char *yaml, const char *msg)
{
    struct config_errors e;
    struct config *c = load(yaml, &e);
    CHECK(c == NULL);
    CHECK_STR_CONTAINS(e.text, msg);
    config_unref(c);
    config_errors_free(&e);
}

TEST(quic_config_values_and_defaults)
{
    struct config_errors e;
    struct config *c = load(LISTENER("{ quic: { cid_length: 9, server_id_length: 3, "
                                     "config_id: 2 } }") "  - { name: plain, listen: "
                                                         "127.0.0.1:444, mode: udp, "
                                                         "backend: app }\n"
                                                         "  - { name: dflt, listen: "
                                                         "127.0.0.1:445, mode: udp, "
                                                         "backend: other, udp: { quic: {} } }\n"
                                                         "backends:\n"
                                                         "  app:\n"
                                                         "    servers:\n"
                                                         "      - { address: 127.0.0.1:1, "
                                                         "quic_id: \"0A01ff\" }\n"
                                                         "      - 127.0.0.1:2\n"
                                                         "  other:\n"
                                                         "    servers:\n"
                                                         "      - { address: 127.0.0.1:3, "
                                                         "quic_id: 0a01 }\n",
                            &e);
    CHECK(c != NULL);
    if (!c) {
        test_fail(__FILE__, __LINE__, "%s", e.text ? e.text : "?");
        config_errors_free(&e);
        return;
    }
    const struct udp_quic_conf *q = &c->listeners[0].udp.quic;
    CHECK(q->enabled);
    CHECK_EQ_U64(q->cid_len, 9);
    CHECK_EQ_U64(q->server_id_len, 3);
    CHECK_EQ_U64(q->config_id, 2);
    CHECK(!c->listeners[1].udp.quic.enabled);
    q = &c->listeners[2].udp.quic;
    CHECK(q->enabled);
    CHECK_EQ_U64(q->cid_len, 8);
    CHECK_EQ_U64(q->server_id_len, 2);
    CHECK_EQ_U64(q->config_id, 0);
    const struct server *s = &c->backends[0].servers[0];
    CHECK_EQ_U64(s->quic_id_len, 3);
    CHECK(memcmp(s->quic_id, "\x0a\x01\xff", 3) == 0);
    CHECK_EQ_U64(c->backends[0].servers[1].quic_id_len, 0);
    config_unref(c);
    config_errors_free(&e);
}

#define ONE_BACKEND(id)                                                                            \
    "backends:\n  app:\n    servers:\n      - { address: 127.0.0.1:1, quic_id: " id " }\n"

TEST(quic_config_bad_lengths)
{
    expect_error(LISTENER("{ quic: { cid_length: 6 } }") ONE_BACKEND("\"0a01\""),
                 "strata.yaml:6:18: error: listeners[0].udp.quic: cid_length must hold the "
                 "first octet, the server ID and a 4-byte nonce");
    expect_error(LISTENER("{ quic: { cid_length: 21 } }") ONE_BACKEND("\"0a01\""),
                 "listeners[0].udp.quic: QUIC connection IDs are at most 20 bytes");
    expect_error(LISTENER("{ quic: { server_id_length: 0 } }") ONE_BACKEND("\"0a01\""),
                 "listeners[0].udp.quic: QUIC-LB server_id_length must be 1..15");
    expect_error(LISTENER("{ quic: { cid_length: 20, server_id_length: 16 } }")
                     ONE_BACKEND("\"0a01\""),
                 "QUIC-LB server_id_length must be 1..15");
    expect_error(LISTENER("{ quic: { config_id: 7 } }") ONE_BACKEND("\"0a01\""),
                 "listeners[0].udp.quic: QUIC-LB config_id must be 0..6");
    expect_error(LISTENER("{ quic: { cid_length: x } }") ONE_BACKEND("\"0a01\""),
                 "listeners[0].udp.quic.cid_length: expected an integer");
}

TEST(quic_config_bad_hex)
{
    static const char *const bad[] = {
        "\"0g01\"", "\"0a1\"", "\"\"", "\"0a 01\"", "\"00112233445566778899aabbccddeeff\"", "[1]"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char yaml[512];
        snprintf(yaml, sizeof(yaml), LISTENER("{ quic: {} }") ONE_BACKEND("%s"), bad[i]);
        expect_error(yaml, "strata.yaml:10:42: error: backends.app.servers[0].quic_id: "
                           "expected 1 to 15 bytes as hex digits");
    }
}

TEST(quic_config_id_length_must_match_listeners)
{
    expect_error(LISTENER("{ quic: { server_id_length: 2 } }") ONE_BACKEND("\"0a0102\""),
                 "strata.yaml:10:42: error: backends.app.servers[0].quic_id: is 3 bytes long, "
                 "but listener \"q\" has udp.quic.server_id_length 2");
    /* a backend with quic_ids used only by a listener without quic: any length */
    struct config_errors e;
    struct config *c = load(
        "listeners:\n"
        "  - { name: u, listen: 127.0.0.1:1, mode: udp, backend: app }\n" ONE_BACKEND("\"0a0102\""),
        &e);
    CHECK(c != NULL);
    config_unref(c);
    config_errors_free(&e);
    /* two QUIC listeners of one backend with different lengths: one of them disagrees */
    expect_error(
        LISTENER("{ quic: { server_id_length: 2 } }") "  - { name: r, listen: "
                                                      "127.0.0.1:2, mode: udp, "
                                                      "backend: app, udp: { quic: { "
                                                      "server_id_length: 3 } } }\n" ONE_BACKEND(
                                                          "\"0a01\""),
        "but listener \"r\" has udp.quic.server_id_length 3");
}

TEST(quic_config_duplicate_ids)
{
    expect_error(LISTENER("{ quic: {} }") "backends:\n"
                                          "  app:\n"
                                          "    servers:\n"
                                          "      - { address: 127.0.0.1:1, quic_id: \"0a01\" }\n"
                                          "      - { address: 127.0.0.1:2, quic_id: \"0b01\" }\n"
                                          "      - { address: 127.0.0.1:3, quic_id: \"0A01\" }\n",
                 "strata.yaml:12:42: error: backends.app.servers[2].quic_id: duplicate "
                 "quic_id, already used by servers[0]");
}
