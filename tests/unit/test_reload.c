/* test_reload.c — what a reload compares and carries: fingerprints (a route change leaves
 * a listener's path as it was, a listen or server change does not) and reload_carry
 * (health, passive state and counters of servers of the same name; per-source tables;
 * the global connection count).
 */
#include <string.h>

#include "config/config.h"
#include "lb/lb.h"
#include "net/src_limit.h"
#include "proxy/reload.h"
#include "test.h"

static struct config *load(const char *yaml)
{
    struct config_errors e = {0};
    struct config *c = config_load_string("r.yaml", yaml, 2, &e);
    if (!c)
        test_fail(__FILE__, __LINE__, e.text ? e.text : "load failed");
    config_errors_free(&e);
    return c;
}

#define GEN(route, listen, server)                                                                 \
    "workers: 2\n"                                                                                 \
    "listeners:\n"                                                                                 \
    "  - { name: web, listen: \"" listen "\", mode: http, routes: [ { backend: " route " } ] }\n" \
    "  - { name: t, listen: \"127.0.0.1:9001\", mode: tcp, backend: a,\n"                         \
    "      per_source: { max_connections: 5 } }\n"                                               \
    "backends:\n"                                                                                  \
    "  a: { servers: [ { name: s1, address: \"" server "\" }, { name: s2, address: "              \
    "\"127.0.0.1:8002\" } ] }\n"                                                                   \
    "  b: { servers: [ \"127.0.0.1:8003\" ] }\n"

TEST(reload_fingerprints_tell_what_stayed)
{
    struct config *c1 = load(GEN("a", "127.0.0.1:9000", "127.0.0.1:8001"));
    struct config *c2 = load(GEN("b", "127.0.0.1:9000", "127.0.0.1:8001")); /* a route */
    struct config *c3 = load(GEN("a", "127.0.0.1:9009", "127.0.0.1:8009")); /* listen, s1 */
    if (!c1 || !c2 || !c3)
        return;
    struct server *s1 = &config_backend(c1, "a")->servers[0];
    struct server *s2 = &config_backend(c1, "a")->servers[1];
    CHECK(config_path_kept(c2, &c1->listeners[0], s1));
    CHECK(config_path_kept(c2, &c1->listeners[1], s2));
    CHECK(!config_path_kept(c3, &c1->listeners[0], NULL)); /* its listen changed */
    CHECK(config_path_kept(c3, &c1->listeners[1], s2));   /* another server changed */
    CHECK(!config_path_kept(c3, &c1->listeners[1], s1));  /* its own server changed */
    CHECK(config_server_successor(c2, s1) == &config_backend(c2, "a")->servers[0]);
    CHECK(config_listener_successor(c3, &c1->listeners[1]) == &c3->listeners[1]);
    struct config *c4 = load("timeouts: { drain: 1s, reload_drain: 2s }\n" /* no path */
                             GEN("a", "127.0.0.1:9000", "127.0.0.1:8001"));
    struct config *c5 = load("timeouts: { idle: 1s }\n" /* every listener's default */
                             GEN("a", "127.0.0.1:9000", "127.0.0.1:8001"));
    if (c4 && c5) {
        CHECK(config_path_kept(c4, &c1->listeners[0], s1));
        CHECK(!config_path_kept(c5, &c1->listeners[0], NULL));
    }
    config_unref(c4);
    config_unref(c5);
    config_unref(c1);
    config_unref(c2);
    config_unref(c3);
}

TEST(reload_carries_state_of_what_kept_its_name)
{
    struct config *c1 = load(GEN("a", "127.0.0.1:9000", "127.0.0.1:8001"));
    struct config *c2 = load(GEN("b", "127.0.0.1:9000", "127.0.0.1:8009"));
    if (!c1 || !c2)
        return;
    struct server *o1 = &config_backend(c1, "a")->servers[0];
    struct server *o2 = &config_backend(c1, "a")->servers[1];
    struct server *n1 = &config_backend(c2, "a")->servers[0];
    struct server *n2 = &config_backend(c2, "a")->servers[1];
    atomic_store(&o1->st.live->up, false); /* s1 moves to another address: starts afresh */
    atomic_store(&o2->st.live->up, false);
    atomic_store(&o2->st.live->connect_fails, 3);
    atomic_store(&o2->st.live->passive_down_ms, 1234);
    CTR_ADD(o2->st.ctr[1].conns_total, 7);
    CTR_ADD(c1->listeners[0].st.ctr[0].http_requests, 5);
    reload_carry(c1, c2);
    CHECK(atomic_load(&n1->st.live->up));
    CHECK(!atomic_load(&n2->st.live->up));
    CHECK_EQ_U64(atomic_load(&n2->st.live->connect_fails), 3);
    CHECK_EQ_U64(atomic_load(&n2->st.live->passive_down_ms), 1234);
    CHECK(n2->st.ctr == o2->st.ctr && n1->st.ctr == o1->st.ctr); /* shared: monotonic */
    CHECK_EQ_U64(CTR_GET(n2->st.ctr[1].conns_total), 7);
    CHECK_EQ_U64(CTR_GET(c2->listeners[0].st.ctr[0].http_requests), 5);
    CHECK(c2->listeners[1].per_source.table == c1->listeners[1].per_source.table);
    CHECK(c2->global == c1->global);
    /* Live state: one block for s2 (same address) in both generations, a fresh one for
     * s1 (moved). An old connection's unit counts for the new s2 and goes back once. */
    CHECK(n2->st.live == o2->st.live && n1->st.live != o1->st.live);
    CHECK(server_acquire(o2));
    CHECK_EQ_U64(atomic_load(&n2->st.live->active), 1);
    CHECK(server_acquire(n2));
    server_release(o2);
    CHECK_EQ_U64(atomic_load(&n2->st.live->active), 1);
    CHECK(server_acquire(o1));
    CHECK_EQ_U64(atomic_load(&n1->st.live->active), 0);
    server_release(o1);
    config_unref(c1); /* the shared blocks live on with c2 */
    server_release(n2);
    CHECK_EQ_U64(atomic_load(&n2->st.live->active), 0);
    CTR_ADD(n2->st.ctr[1].conns_total, 1);
    CHECK_EQ_U64(CTR_GET(n2->st.ctr[1].conns_total), 8);
    CHECK(src_conn_acquire_slot(c2->listeners[1].per_source.table, 0, 5));
    config_unref(c2);
}
