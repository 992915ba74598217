/* redis_sync.c — see redis_sync.h.
 *
 * hiredis drives the protocol; this file is its adapter to the control loop (which is
 * edge-triggered: reads are drained while the socket has bytes, writes asked for after the
 * connect are made by a task after the batch) and the exchange rounds. hiredis calls every
 * pending callback with a NULL reply when a connection is freed, so each command's context
 * is freed exactly once, in its callback.
 */
#include "redis_sync.h"

#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <arpa/inet.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#include "core/bug.h"
#include "core/log.h"
#include "core/siphash.h"
#include "core/time.h"
#include "http/filters/rate_limit.h"
#include "http/filters/rate_limit_cluster.h"

struct redis_sync_stats redis_sync_stats;

#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 5000
#define READS_PER_EVENT 64

/* KEYS: this window's count, the previous one's; ARGV: requests to add, expiry (ms).
 * Returns both counts. A key is only created by a real increment. */
static const char sync_script[] = "local n = tonumber(ARGV[1]) "
                                  "local c "
                                  "if n > 0 then c = redis.call('INCRBY', KEYS[1], n) "
                                  "redis.call('PEXPIRE', KEYS[1], ARGV[2]) "
                                  "else c = tonumber(redis.call('GET', KEYS[1])) or 0 end "
                                  "return {c, tonumber(redis.call('GET', KEYS[2])) or 0}";

/* KEYS: the node set; ARGV: now (ms), this node, how long a silent node counts (ms).
 * Returns the number of live nodes. */
static const char node_script[] =
    "redis.call('ZADD', KEYS[1], ARGV[1], ARGV[2]) "
    "redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', tonumber(ARGV[1]) - tonumber(ARGV[3])) "
    "redis.call('PEXPIRE', KEYS[1], ARGV[3]) "
    "return redis.call('ZCARD', KEYS[1])";

struct rs_client {
    struct redis_sync *owner;
    const struct http_route *route;
    struct filter_rate_limit_conf *conf;
    redisAsyncContext *ac;
    struct ev_handler h; /* ac's socket */
    struct ev_task write_task;
    struct ev_timer tick;
    bool connected, want_write, freeing, up;
    bool round_failed; /* an answer of this round was an error (e.g. a read-only replica) */
    uint64_t connect_started, next_connect, round_started; /* mono ms; round 0 = none */
    uint32_t outstanding, backoff_ms, attempts;
};

struct redis_sync {
    struct ev_loop *loop;
    char node[17]; /* this process among the nodes: random hex */
    struct rs_client *clients;
    uint32_t nclients;
};

/* One command's context. */
struct rs_cmd {
    struct rs_client *c;
    struct rl_limit *l; /* NULL: the node registration */
    uint32_t slot, sent;
    uint64_t fp, wno;
};

/* ---- up and down ---- */

static void set_up(struct rs_client *c, bool up)
{
    if (c->up == up)
        return;
    c->up = up;
    atomic_store_explicit(&c->conf->redis_state->up, up, memory_order_relaxed);
    if (up)
        atomic_fetch_add(&redis_sync_stats.up, 1);
    else
        atomic_fetch_sub(&redis_sync_stats.up, 1);
    if (up)
        log_info("rate_limit: route %s: Redis %s is up", c->route->name,
                 c->conf->redis.address_text);
}

/* Counts are not shared: the fail mode applies (said once, when it starts). */
static void mark_failed(struct rs_client *c, const char *why)
{
    if (c->up || c->attempts <= 1)
        log_warn("rate_limit: route %s: Redis %s: %s; limits use their fail mode (%s)",
                 c->route->name, c->conf->redis.address_text, why,
                 c->conf->redis.fail == RL_FAIL_OPEN ? "open: local fallback" : "closed");
    atomic_fetch_add(&redis_sync_stats.failures, 1);
    set_up(c, false);
}

/* The connection is gone or useless: the fail mode applies, and a reconnect is planned. */
static void went_down(struct rs_client *c, const char *why)
{
    mark_failed(c, why);
    c->connected = false;
    c->round_started = 0;
    c->outstanding = 0;
    c->next_connect = mono_ms() + c->backoff_ms;
    c->backoff_ms = c->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : c->backoff_ms * 2;
}

/* Frees the connection from outside hiredis's callbacks. */
static void drop(struct rs_client *c, const char *why)
{
    redisAsyncContext *ac = c->ac;
    if (ac) {
        c->freeing = true;
        redisAsyncFree(ac); /* pending callbacks get NULL replies; cleanup unregisters */
        c->freeing = false;
        c->ac = NULL;
    }
    went_down(c, why);
}

/* ---- the event adapter ---- */

static void ev_add_read(void *priv)
{
    (void)priv; /* the socket is always registered for input */
}

static void ev_del_read(void *priv)
{
    (void)priv;
}

static void ev_add_write(void *priv)
{
    struct rs_client *c = priv;
    c->want_write = true;
    if (c->connected) /* edge-triggered: no new edge while the socket stays writable */
        ev_task_queue(c->owner->loop, &c->write_task);
}

static void ev_del_write(void *priv)
{
    ((struct rs_client *)priv)->want_write = false;
}

static void ev_cleanup(void *priv)
{
    struct rs_client *c = priv;
    ev_del(c->owner->loop, &c->h);
    ev_task_cancel(&c->write_task);
    c->want_write = false;
}

static void write_task_run(struct ev_task *t)
{
    struct rs_client *c = container_of(t, struct rs_client, write_task);
    if (c->ac && c->want_write)
        redisAsyncHandleWrite(c->ac);
}

static void on_io(struct ev_loop *loop, struct ev_handler *h, uint32_t events)
{
    struct rs_client *c = container_of(h, struct rs_client, h);
    if (c->ac && c->want_write && (events & (EPOLLOUT | EPOLLERR | EPOLLHUP)))
        redisAsyncHandleWrite(c->ac);
    for (int i = 0; i < READS_PER_EVENT && c->ac && c->connected &&
                    (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR));
         i++) {
        redisAsyncHandleRead(c->ac);
        int avail = 0;
        if (!c->ac || ioctl(h->fd, FIONREAD, &avail) < 0 || avail <= 0)
            break;
    }
}

static void on_connect(const redisAsyncContext *ac, int status)
{
    struct rs_client *c = ac->ev.data;
    if (status != REDIS_OK) {
        c->ac = NULL; /* hiredis frees it after this callback */
        went_down(c, ac->errstr[0] ? ac->errstr : "cannot connect");
        return;
    }
    c->connected = true;
    c->backoff_ms = BACKOFF_MIN_MS;
    if (c->want_write)
        ev_task_queue(c->owner->loop, &c->write_task);
}

static void on_disconnect(const redisAsyncContext *ac, int status)
{
    struct rs_client *c = ac->ev.data;
    if (c->freeing)
        return; /* drop() does the rest */
    c->ac = NULL;
    went_down(c, status == REDIS_OK ? "connection closed" : ac->errstr);
}

static void on_auth(redisAsyncContext *ac, void *reply, void *priv)
{
    const redisReply *r = reply;
    struct rs_client *c = priv;
    /* refused: every exchange then fails (NOAUTH) and marks Redis down */
    if (r && r->type == REDIS_REPLY_ERROR)
        log_warn("rate_limit: route %s: Redis %s refused the password: %s", c->route->name,
                 c->conf->redis.address_text, r->str);
}

static void start_connect(struct rs_client *c)
{
    const struct rl_redis_conf *rc = &c->conf->redis;
    char host[INET6_ADDRSTRLEN];
    const struct sockaddr_any *a = &rc->address;
    bool v6 = a->u.sa.sa_family == AF_INET6;
    inet_ntop(a->u.sa.sa_family, v6 ? (const void *)&a->u.in6.sin6_addr : &a->u.in.sin_addr, host,
              sizeof(host));
    if (c->attempts++ > 0)
        atomic_fetch_add(&redis_sync_stats.reconnects, 1);
    c->connect_started = mono_ms();
    redisAsyncContext *ac =
        redisAsyncConnect(host, ntohs(v6 ? a->u.in6.sin6_port : a->u.in.sin_port));
    if (!ac) {
        went_down(c, "out of memory");
        return;
    }
    if (ac->err) {
        char why[128];
        snprintf(why, sizeof(why), "%s", ac->errstr);
        redisAsyncFree(ac);
        went_down(c, why);
        return;
    }
    c->ac = ac;
    ac->ev.data = c;
    ac->ev.addRead = ev_add_read;
    ac->ev.delRead = ev_del_read;
    ac->ev.addWrite = ev_add_write;
    ac->ev.delWrite = ev_del_write;
    ac->ev.cleanup = ev_cleanup;
    redisAsyncSetConnectCallback(ac, on_connect);
    redisAsyncSetDisconnectCallback(ac, on_disconnect);
    c->want_write = true; /* the connect completes with the first writable edge */
    c->h.fd = ac->c.fd;
    if (ev_add(c->owner->loop, &c->h) < 0) {
        drop(c, "cannot watch its socket");
        return;
    }
    if (rc->password) /* queued: sent first once connected */
        redisAsyncCommand(ac, on_auth, c, "AUTH %s", rc->password);
}

/* ---- exchanges ---- */

static void round_reply_done(struct rs_client *c)
{
    if (c->outstanding > 0 && --c->outstanding == 0 && c->round_started) {
        c->round_started = 0;
        if (c->round_failed) {
            mark_failed(c, "it answers errors");
            return;
        }
        atomic_fetch_add(&redis_sync_stats.exchanges, 1);
        set_up(c, true);
    }
}

static bool reply_pair(const redisReply *r, long long *a, long long *b)
{
    if (!r || r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
        r->element[0]->type != REDIS_REPLY_INTEGER || r->element[1]->type != REDIS_REPLY_INTEGER)
        return false;
    *a = r->element[0]->integer;
    *b = r->element[1]->integer;
    return true;
}

static uint32_t clamp_count(long long v)
{
    return v < 0 ? 0 : v > RATE_WINDOW_MAX ? RATE_WINDOW_MAX : (uint32_t)v;
}

static void on_reply(redisAsyncContext *ac, void *reply, void *priv)
{
    struct rs_cmd *cmd = priv;
    struct rs_client *c = cmd->c;
    const redisReply *r = reply;
    if (cmd->l) {
        long long cur = 0, prev = 0;
        bool ok = reply_pair(r, &cur, &prev);
        rl_cluster_answer(cmd->l->cl, cmd->slot, cmd->fp, cmd->sent, ok, cmd->wno, cmd->l->per_ms,
                          clamp_count(prev), clamp_count(cur));
        if (r && !ok && !c->round_failed && c->up)
            log_warn("rate_limit: route %s: Redis answered %s", c->route->name,
                     r->type == REDIS_REPLY_ERROR ? r->str : "unexpectedly");
        c->round_failed |= r && !ok;
    } else if (r && r->type == REDIS_REPLY_INTEGER && r->integer > 0) {
        atomic_store_explicit(&c->conf->redis_state->nodes, (uint32_t)r->integer,
                              memory_order_relaxed);
    } else if (r) {
        c->round_failed = true;
    }
    free(cmd);
    if (r) /* a NULL reply: the connection is going; went_down resets the round */
        round_reply_done(c);
}

static bool send_cmd(struct rs_client *c, struct rs_cmd *cmd, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = redisvAsyncCommand(c->ac, on_reply, cmd, fmt, ap);
    va_end(ap);
    if (rc != REDIS_OK) {
        free(cmd);
        return false;
    }
    c->outstanding++;
    return true;
}

static struct rs_cmd *new_cmd(struct rs_client *c, struct rl_limit *l)
{
    struct rs_cmd *cmd = calloc(1, sizeof(*cmd));
    if (cmd) {
        cmd->c = c;
        cmd->l = l;
    }
    return cmd;
}

/* Every slot of limit l that was used lately or has counts to send. */
static void sync_limit(struct rs_client *c, struct rl_limit *l, uint64_t now_real)
{
    const char *prefix = c->conf->redis.prefix;
    uint64_t wno = now_real / l->per_ms;
    uint64_t ttl = 2ull * l->per_ms + 1000;
    uint32_t n = rl_cluster_nslots(l->cl);
    for (uint32_t i = 0; i < n && c->ac; i++) {
        uint64_t fp;
        uint32_t sent;
        if (!rl_cluster_collect(l->cl, i, now_real, l->per_ms, &fp, &sent))
            continue;
        struct rs_cmd *cmd = new_cmd(c, l);
        char k1[320], k2[320];
        snprintf(k1, sizeof(k1), "%s%s:%016" PRIx64 ":%" PRIu64, prefix, l->name, fp, wno);
        snprintf(k2, sizeof(k2), "%s%s:%016" PRIx64 ":%" PRIu64, prefix, l->name, fp, wno - 1);
        if (cmd) {
            *cmd = (struct rs_cmd){c, l, i, sent, fp, wno};
            if (send_cmd(c, cmd, "EVAL %s 2 %s %s %u %" PRIu64, sync_script, k1, k2, sent, ttl))
                continue;
        }
        rl_cluster_answer(l->cl, i, fp, sent, false, wno, l->per_ms, 0, 0);
    }
}

static void start_round(struct rs_client *c)
{
    uint64_t now_real = real_ms();
    c->round_started = mono_ms();
    c->outstanding = 0;
    c->round_failed = false;
    char nodes_key[300];
    uint64_t node_ttl =
        20ull * c->conf->redis.sync_ms < 3000 ? 3000 : 20ull * c->conf->redis.sync_ms;
    snprintf(nodes_key, sizeof(nodes_key), "%snodes", c->conf->redis.prefix);
    struct rs_cmd *cmd = new_cmd(c, NULL);
    if (cmd)
        send_cmd(c, cmd, "EVAL %s 1 %s %" PRIu64 " %s %" PRIu64, node_script, nodes_key, now_real,
                 c->owner->node, node_ttl);
    for (uint32_t i = 0; i < c->conf->nlimits && c->ac; i++)
        if (c->conf->limits[i].cl)
            sync_limit(c, &c->conf->limits[i], now_real);
    if (c->outstanding == 0)
        c->round_started = 0;
}

static void on_tick(struct ev_loop *loop, struct ev_timer *t)
{
    struct rs_client *c = container_of(t, struct rs_client, tick);
    const struct rl_redis_conf *rc = &c->conf->redis;
    uint64_t now = mono_ms();
    if (!c->ac) {
        if (now >= c->next_connect)
            start_connect(c);
    } else if (!c->connected) {
        if (now - c->connect_started > rc->timeout_ms)
            drop(c, "connect timed out");
    } else if (c->round_started) {
        if (now - c->round_started > rc->timeout_ms)
            drop(c, "no answer within the timeout");
    } else {
        start_round(c);
    }
    if (ev_timer_arm(loop, t, rc->sync_ms) < 0)
        log_err("rate_limit: cannot re-arm the Redis timer; cluster limits stop syncing");
}

/* ---- start and stop ---- */

static int count_clients(void *arg, const struct http_route *r, struct filter_rate_limit_conf *f)
{
    *(uint32_t *)arg += f->redis_state != NULL;
    return 0;
}

static int add_client(void *arg, const struct http_route *r, struct filter_rate_limit_conf *f)
{
    struct redis_sync *rs = arg;
    if (!f->redis_state)
        return 0;
    struct rs_client *c = &rs->clients[rs->nclients++];
    c->owner = rs;
    c->route = r;
    c->conf = f;
    c->h.cb = on_io;
    c->h.fd = -1;
    c->backoff_ms = BACKOFF_MIN_MS;
    atomic_store(&f->redis_state->nodes, 1);
    ev_task_init(&c->write_task, write_task_run);
    ev_timer_init(&c->tick, on_tick);
    return ev_timer_arm(rs->loop, &c->tick, 0) < 0 ? -1 : 0;
}

struct redis_sync *redis_sync_start(struct ev_loop *loop, const struct config *cfg)
{
    uint32_t n = 0;
    rate_limit_foreach(cfg, count_clients, &n);
    struct redis_sync *rs = calloc(1, sizeof(*rs));
    if (!rs || (n && !(rs->clients = calloc(n, sizeof(*rs->clients))))) {
        free(rs);
        return NULL;
    }
    rs->loop = loop;
    uint64_t key[2] = {0, 0};
    siphash_random_key(key);
    snprintf(rs->node, sizeof(rs->node), "%016" PRIx64, key[0]);
    if (rate_limit_foreach(cfg, add_client, rs) != 0) {
        redis_sync_stop(rs);
        return NULL;
    }
    return rs;
}

void redis_sync_stop(struct redis_sync *rs)
{
    if (!rs)
        return;
    for (uint32_t i = 0; i < rs->nclients; i++) {
        struct rs_client *c = &rs->clients[i];
        ev_timer_cancel(rs->loop, &c->tick);
        if (c->ac) {
            c->freeing = true;
            redisAsyncFree(c->ac);
            c->ac = NULL;
        }
        set_up(c, false);
    }
    free(rs->clients);
    free(rs);
}
