/* server_admin.c — runtime state of servers (drain, maintenance, weight, runtime slots) and
 * their transition history; see server_admin.h for the threading and publication rules. */
#include "server_admin.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "config/config.h"
#include "core/log.h"
#include "lb/lb.h"
#include "net/addr.h"

const char *server_admin_name(enum server_admin a)
{
    switch (a) {
    case SRV_READY:
        return "ready";
    case SRV_DRAIN:
        return "drain";
    case SRV_MAINT:
        return "maint";
    case SRV_REMOVED:
        break;
    }
    return "removed";
}

/* ---- history: a seqlock per entry over atomic words ---- */

static uint64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

void server_history_add(struct server *s, const char *fmt, ...)
{
    union {
        char c[SERVER_HISTORY_WORDS * 8];
        uint64_t w[SERVER_HISTORY_WORDS];
    } text;
    memset(&text, 0, sizeof(text));
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text.c, sizeof(text.c), fmt, ap);
    va_end(ap);

    struct server_history *h = &s->st.history;
    uint64_t t = atomic_fetch_add_explicit(&h->next, 1, memory_order_relaxed);
    struct server_event *e = &h->ev[t % SERVER_HISTORY_LEN];
    atomic_store_explicit(&e->seq, 2 * t + 1, memory_order_relaxed);
    atomic_thread_fence(memory_order_release);
    atomic_store_explicit(&e->at_ms, wall_ms(), memory_order_relaxed);
    for (unsigned i = 0; i < SERVER_HISTORY_WORDS; i++)
        atomic_store_explicit(&e->reason[i], text.w[i], memory_order_relaxed);
    atomic_store_explicit(&e->seq, 2 * t + 2, memory_order_release);
}

static int by_seq(const void *a, const void *b)
{
    const uint64_t *x = a, *y = b;
    return *x < *y ? -1 : *x > *y;
}

unsigned server_history_read(const struct server *s, struct server_event_copy *out)
{
    struct {
        uint64_t seq;
        struct server_event_copy ev;
    } got[SERVER_HISTORY_LEN];
    unsigned n = 0;
    for (unsigned i = 0; i < SERVER_HISTORY_LEN; i++) {
        const struct server_event *e = &s->st.history.ev[i];
        uint64_t seq = atomic_load_explicit(&e->seq, memory_order_acquire);
        if (seq == 0 || (seq & 1))
            continue;
        union {
            char c[SERVER_HISTORY_WORDS * 8];
            uint64_t w[SERVER_HISTORY_WORDS];
        } text;
        got[n].seq = seq;
        got[n].ev.at_ms = atomic_load_explicit(&e->at_ms, memory_order_relaxed);
        for (unsigned k = 0; k < SERVER_HISTORY_WORDS; k++)
            text.w[k] = atomic_load_explicit(&e->reason[k], memory_order_relaxed);
        atomic_thread_fence(memory_order_acquire);
        if (atomic_load_explicit(&e->seq, memory_order_relaxed) != seq)
            continue; /* rewritten while we read it */
        memcpy(got[n].ev.reason, text.c, sizeof(text.c));
        got[n].ev.reason[sizeof(text.c) - 1] = '\0';
        n++;
    }
    qsort(got, n, sizeof(got[0]), by_seq); /* seq is the first member */
    for (unsigned i = 0; i < n; i++)
        out[i] = got[i].ev;
    return n;
}

/* ---- state and weight ---- */

int server_set_admin(struct server *s, enum server_admin to, const char *who, const char **why)
{
    enum server_admin from = server_admin_get(s);
    if (from == SRV_REMOVED) {
        *why = "the server was removed";
        return -1;
    }
    if (from == to)
        return 0;
    atomic_store_explicit(&s->st.admin, (uint8_t)to, memory_order_release);
    server_history_add(s, "%s (was %s) by %s", server_admin_name(to), server_admin_name(from), who);
    return 0;
}

int server_set_weight(struct server *s, uint32_t weight, const char *who, const char **why)
{
    enum balance_kind k = s->backend->balance;
    if (weight < 1 || weight > 1000) {
        *why = "weight must be an integer from 1 to 1000";
        return -1;
    }
    if (k == BAL_ROUND_ROBIN || k == BAL_MAGLEV) {
        *why = k == BAL_ROUND_ROBIN ? "balance round_robin ignores weights (weighted, "
                                      "least_conn, p2c and source_hash use them)"
                                    : "balance maglev builds its table from the weights at "
                                      "load: change the file and reload";
        return -1;
    }
    uint32_t old = atomic_exchange_explicit(&s->st.weight, weight, memory_order_relaxed);
    if (old != weight)
        server_history_add(s, "weight %u (was %u) by %s", weight, old, who);
    return 0;
}

/* ---- runtime slots ---- */

struct server *backend_server_find(struct backend *b, const char *name)
{
    for (uint32_t i = 0; i < b->nservers; i++) {
        struct server *s = &b->servers[i];
        if (server_admin_get(s) != SRV_REMOVED && strcmp(s->name, name) == 0)
            return s;
    }
    return NULL;
}

bool server_name_valid(const char *name)
{
    size_t n = strlen(name);
    if (n == 0 || n > SERVER_NAME_MAX)
        return false;
    return strspn(name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.:-") == n;
}

/* The slot's fields, written before it is published; the strings are freed with the
 * configuration like those of the file's servers. */
static int fill_slot(struct server *s, const struct server_spec *spec,
                     const struct sockaddr_any *addr)
{
    char *name = strdup(spec->name ? spec->name : spec->addr_text);
    char *text = strdup(spec->addr_text);
    if (!name || !text) {
        free(name);
        free(text);
        return -1;
    }
    s->name = name;
    s->addr_text = text;
    s->addr = *addr;
    s->weight = spec->weight;
    s->backup = spec->backup;
    s->max_conns = 0;
    config_server_sticky_id(s, s->backend);
    atomic_store_explicit(&s->st.weight, spec->weight, memory_order_relaxed);
    atomic_store_explicit(&s->st.live->connect_fails, 0, memory_order_relaxed);
    atomic_store_explicit(&s->st.live->passive_down_ms, 0, memory_order_relaxed);
    atomic_store_explicit(&s->st.live->up, true, memory_order_relaxed);
    atomic_store_explicit(&s->st.admin, SRV_READY, memory_order_relaxed);
    return 0;
}

struct server *backend_server_add(struct backend *b, const struct server_spec *spec,
                                  const char *who, const char **why, int *status)
{
    struct sockaddr_any addr;
    const char *name = spec->name ? spec->name : spec->addr_text;
    *status = 400;
    if (addr_parse(spec->addr_text, &addr, why) < 0) {
        *why = "address: expected IPv4:port or [IPv6]:port (host names are not resolved)";
        return NULL;
    }
    if (!server_name_valid(name)) {
        *why = "name: expected 1-64 letters, digits, '_', '.', ':' or '-'";
        return NULL;
    }
    if (spec->weight < 1 || spec->weight > 1000) {
        *why = "weight must be an integer from 1 to 1000";
        return NULL;
    }
    *status = 409;
    if (backend_server_find(b, name)) {
        *why = "the backend already has a server of that name";
        return NULL;
    }
    if (b->balance == BAL_MAGLEV) {
        *why = "balance maglev builds its table at load: add the server to the file and reload";
        return NULL;
    }
    uint32_t n = atomic_load_explicit(&b->nservers, memory_order_relaxed); /* ours to change */
    if (n >= b->servers_cap) {
        *why = "no free runtime slot in this backend (runtime_servers; the slots of removed "
               "servers are free again after the next reload)";
        return NULL;
    }
    struct server *s = &b->servers[n];
    if (fill_slot(s, spec, &addr) < 0) {
        *status = 500;
        *why = "out of memory";
        return NULL;
    }
    server_history_add(s, "added by %s", who);
    atomic_store_explicit(&b->nservers, n + 1, memory_order_release); /* publish */
    return s;
}

void server_runtime_carry(const struct server *from, struct server *to)
{
    enum server_admin a = server_admin_get(from);
    atomic_store_explicit(&to->st.admin, (uint8_t)(a == SRV_REMOVED ? SRV_READY : a),
                          memory_order_relaxed);
    if (from->weight == to->weight)
        atomic_store_explicit(&to->st.weight, lb_weight(from), memory_order_relaxed);
    const struct server_history *fh = &from->st.history;
    struct server_history *th = &to->st.history;
    atomic_store_explicit(&th->next, atomic_load_explicit(&fh->next, memory_order_relaxed),
                          memory_order_relaxed);
    for (unsigned i = 0; i < SERVER_HISTORY_LEN; i++) {
        const struct server_event *fe = &fh->ev[i];
        struct server_event *te = &th->ev[i];
        atomic_store_explicit(&te->seq, atomic_load(&fe->seq), memory_order_relaxed);
        atomic_store_explicit(&te->at_ms, atomic_load(&fe->at_ms), memory_order_relaxed);
        for (unsigned k = 0; k < SERVER_HISTORY_WORDS; k++)
            atomic_store_explicit(&te->reason[k], atomic_load(&fe->reason[k]),
                                  memory_order_relaxed);
    }
}

int backend_server_remove(struct server *s, const char *who, const char **why)
{
    enum server_admin from = server_admin_get(s);
    if (from == SRV_REMOVED) {
        *why = "the server was removed";
        return -1;
    }
    atomic_store_explicit(&s->st.admin, SRV_REMOVED, memory_order_release);
    server_history_add(s, "removed by %s", who);
    return 0;
}
