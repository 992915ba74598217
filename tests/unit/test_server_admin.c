/* test_server_admin.c — servers' runtime state (lb/server_admin.h): drain, maintenance and
 * removal as the balancers see them (a drained server still takes its sticky cookie),
 * weights and where they are refused, servers added into the slots allocated at load
 * (published by nservers, names unique, capacity bounded, maglev refused), and the history
 * ring (oldest first, bounded, reasons cut). */
#include <stdio.h>
#include <string.h>

#include "config/config.h"
#include "lb/lb.h"
#include "lb/server_admin.h"
#include "test.h"

static struct config *load(const char *balance, unsigned runtime)
{
    char yaml[1024];
    snprintf(
        yaml, sizeof(yaml),
        "listeners:\n  - { name: web, listen: 127.0.0.1:8080, mode: tcp, backend: app }\n"
        "backends:\n  app:\n    balance: %s\n    runtime_servers: %u\n"
        "    servers: [ { name: a, address: 127.0.0.1:1 }, { name: b, address: 127.0.0.1:2 } ]\n",
        balance, runtime);
    return test_load_config(yaml, 2);
}

/* Names of the servers lb_pick returns over n picks, as "a,b,a..." counts in out[]. */
static void picks(struct backend *b, unsigned n, unsigned *count)
{
    for (unsigned i = 0; i < n; i++) {
        struct lb_req req = {0};
        struct server *s = lb_pick(b, 0, &req);
        count[s ? s->index : b->servers_cap]++;
    }
}

TEST(server_admin_states_as_balancers_see_them)
{
    struct config *c = load("round_robin", 2);
    if (!c)
        return;
    struct backend *b = config_backend(c, "app");
    struct server *a = backend_server_find(b, "a");
    const char *why = NULL;
    unsigned count[8] = {0};
    CHECK(a && b->nservers == 2 && b->servers_cap == 4 && b->nconfigured == 2);
    CHECK(server_set_admin(a, SRV_DRAIN, "test", &why) == 0);
    picks(b, 10, count);
    CHECK_EQ_U64(count[0], 0);
    CHECK_EQ_U64(count[1], 10);
    struct lb_req req = {0};
    CHECK(!lb_eligible(a, &req) && lb_eligible_sticky(a, &req));
    CHECK(server_set_admin(a, SRV_MAINT, "test", &why) == 0);
    CHECK(!lb_eligible_sticky(a, &req));
    CHECK(server_set_admin(a, SRV_READY, "test", &why) == 0);
    CHECK(lb_eligible(a, &req));
    CHECK(backend_server_remove(a, "test", &why) == 0);
    CHECK(!lb_eligible_sticky(a, &req) && !server_in_use(a));
    CHECK(backend_server_find(b, "a") == NULL);
    CHECK(server_set_admin(a, SRV_READY, "test", &why) < 0 && strstr(why, "removed"));
    CHECK(backend_server_remove(a, "test", &why) < 0);
    config_unref(c);
}

TEST(server_admin_weights)
{
    struct config *c = load("weighted", 0), *rr = load("round_robin", 0), *mg = load("maglev", 0);
    if (!c || !rr || !mg)
        return;
    struct backend *b = config_backend(c, "app");
    struct server *a = &b->servers[0];
    const char *why = NULL;
    unsigned count[8] = {0};
    CHECK(server_set_weight(a, 3, "test", &why) == 0 && lb_weight(a) == 3 && a->weight == 1);
    picks(b, 400, count);
    CHECK_EQ_U64(count[0], 300);
    CHECK_EQ_U64(count[1], 100);
    CHECK(server_set_weight(a, 0, "test", &why) < 0 && strstr(why, "1 to 1000"));
    CHECK(server_set_weight(a, 1001, "test", &why) < 0);
    CHECK(server_set_weight(&config_backend(rr, "app")->servers[0], 2, "t", &why) < 0 &&
          strstr(why, "round_robin"));
    CHECK(server_set_weight(&config_backend(mg, "app")->servers[0], 2, "t", &why) < 0 &&
          strstr(why, "maglev"));
    config_unref(c);
    config_unref(rr);
    config_unref(mg);
}

TEST(server_admin_add_into_runtime_slots)
{
    struct config *c = load("least_conn", 1), *mg = load("maglev", 4);
    if (!c || !mg)
        return;
    struct backend *b = config_backend(c, "app");
    const char *why = NULL;
    int status = 0;
    struct server_spec spec = {.name = "c", .addr_text = "127.0.0.1:3", .weight = 2};
    struct server *s = backend_server_add(b, &spec, "test", &why, &status);
    CHECK(s && b->nservers == 3 && s == &b->servers[2] && s->backend == b);
    CHECK(s && strcmp(s->name, "c") == 0 && lb_weight(s) == 2 && strlen(s->sticky_id) == 16);
    CHECK(s && s->st.ctr != NULL); /* counters were allocated with the slot */
    unsigned count[8] = {0};
    picks(b, 30, count);
    CHECK(count[2] > 0);
    struct server_spec dup = {.name = "a", .addr_text = "127.0.0.1:9", .weight = 1};
    CHECK(!backend_server_add(b, &dup, "t", &why, &status) && status == 409);
    struct server_spec more = {.name = "d", .addr_text = "127.0.0.1:4", .weight = 1};
    CHECK(!backend_server_add(b, &more, "t", &why, &status) && status == 409 &&
          strstr(why, "no free runtime slot"));
    struct server_spec bad = {.name = "e", .addr_text = "nowhere", .weight = 1};
    CHECK(!backend_server_add(b, &bad, "t", &why, &status) && status == 400);
    struct server_spec badname = {.name = "x/y", .addr_text = "127.0.0.1:4", .weight = 1};
    CHECK(!backend_server_add(b, &badname, "t", &why, &status) && status == 400);
    CHECK(!server_name_valid("") && server_name_valid("web-1.a:b_c"));
    struct backend *m = config_backend(mg, "app");
    CHECK(m->servers_cap == 2);
    CHECK(!backend_server_add(m, &more, "t", &why, &status) && strstr(why, "maglev"));
    config_unref(c);
    config_unref(mg);
}

TEST(server_admin_history_ring)
{
    struct config *c = load("round_robin", 0);
    if (!c)
        return;
    struct server *a = &config_backend(c, "app")->servers[0];
    struct server_event_copy ev[SERVER_HISTORY_LEN];
    CHECK_EQ_U64(server_history_read(a, ev), 0);
    for (int i = 0; i < 20; i++)
        server_history_add(a, "event %d", i);
    unsigned n = server_history_read(a, ev);
    CHECK_EQ_U64(n, SERVER_HISTORY_LEN);
    CHECK(strcmp(ev[0].reason, "event 12") == 0);
    CHECK(strcmp(ev[n - 1].reason, "event 19") == 0);
    CHECK(ev[0].at_ms > 1700000000000ull && ev[0].at_ms <= ev[n - 1].at_ms);
    char long_reason[200];
    memset(long_reason, 'x', sizeof(long_reason) - 1);
    long_reason[sizeof(long_reason) - 1] = '\0';
    server_history_add(a, "%s", long_reason);
    n = server_history_read(a, ev);
    CHECK_EQ_U64(strlen(ev[n - 1].reason), sizeof(ev[0].reason) - 1);
    config_unref(c);
}

TEST(server_admin_carry_to_a_new_generation)
{
    struct config *old = load("weighted", 0), *new = load("weighted", 0);
    if (!old || !new)
        return;
    struct backend *ob = config_backend(old, "app"), *nb = config_backend(new, "app");
    const char *why = NULL;
    CHECK(server_set_admin(&ob->servers[0], SRV_DRAIN, "t", &why) == 0);
    CHECK(server_set_weight(&ob->servers[0], 9, "t", &why) == 0);
    CHECK(backend_server_remove(&ob->servers[1], "t", &why) == 0);
    nb->servers[1].weight = 4; /* the new file changed b's weight: the file wins */
    atomic_store(&nb->servers[1].st.weight, 4);
    server_runtime_carry(&ob->servers[0], &nb->servers[0]);
    server_runtime_carry(&ob->servers[1], &nb->servers[1]);
    CHECK(server_admin_get(&nb->servers[0]) == SRV_DRAIN && lb_weight(&nb->servers[0]) == 9);
    CHECK(server_admin_get(&nb->servers[1]) == SRV_READY && lb_weight(&nb->servers[1]) == 4);
    struct server_event_copy ev[SERVER_HISTORY_LEN];
    unsigned n = server_history_read(&nb->servers[0], ev);
    CHECK_EQ_U64(n, 2);
    CHECK(n == 2 && strstr(ev[0].reason, "drain") && strstr(ev[1].reason, "weight 9"));
    server_history_add(&nb->servers[0], "later");
    n = server_history_read(&nb->servers[0], ev);
    CHECK(n == 3 && strcmp(ev[2].reason, "later") == 0);
    config_unref(old);
    config_unref(new);
}
