/* h2_upstream.c — the HTTP/2 server codec (see h2_upstream.h): a connection object (struct
 * h2uc) per pooled server connection, owning nghttp2's client session, and a stream object
 * (struct h2u) per stream using it.
 *
 * Contexts: nghttp2 runs only from this file's connection I/O (events, and a task queued
 * after the batch) and from a stream's flush (sending). Its callbacks never call the stream
 * layer: they record into the stream object and queue the stream on the connection's run
 * list; the streams on it are then run by their client codecs (st->mux->run), whose calls to
 * step pass heads and bodies on and act on failures through the stream's own functions.
 * A socket error seen while sending is acted on from the task, never inside a client
 * codec's run of another stream.
 *
 * nghttp2 keeps no pointer to a stream object: frames name streams by id, looked up in the
 * connection's list (at most h2.max_streams), so a stream released while nghttp2 still
 * has frames queued for it can be freed at once.
 */
#include "http/h2_upstream.h"

#include <errno.h>
#include <stdatomic.h>
#include <nghttp2/nghttp2.h>
#include <stdlib.h>
#include <string.h>

#include "core/list.h"
#include "ev/worker.h"
#include "http/h2_msg.h"
#include "http/msg.h"
#include "http/stream.h"
#include "http/ws_handshake.h"
#include "upstream/pool.h"

#define REQ_BUF (64u << 10)  /* request body bytes held per stream */
#define OUT_HIGH (64u << 10) /* frames for the server past which nghttp2 is not asked */
#define OUT_MAX (256u << 10) /* ... plus one serialized frame (a head: at most 64 KiB) */
#define READ_CHUNK 16384     /* bytes read at a time */
#define READ_BUDGET 16       /* reads per event before yielding to other connections */
#define INITIAL_STREAMS                                                                            \
    100                       /* streams that may join a new connection before its SETTINGS        \
                                 when the server's limit is not known yet */
#define MAX_HEADER_LIST 65536 /* SETTINGS_MAX_HEADER_LIST_SIZE we announce */

/* A byte buffer allocated on first use, never past `max`. */
struct ubuf {
    char *p;
    uint32_t off, len, cap, max;
};

/* One server connection's HTTP/2 state; the pool's upconn is its transport. Lives from the
 * connection's opening to its close by the pool (conn_closed), freed after that batch. */
struct h2uc {
    struct upconn *uc;
    struct worker *w;
    struct backend *b;
    nghttp2_session *ng;
    struct up_attempt att; /* a copy of the opener's: drives the connect (never released) */
    struct list streams;   /* struct h2u holding a lease on this connection */
    struct list runq;      /* struct h2u to run (their client codecs) */
    struct ev_task task;   /* the rest of the reading, a failure, a run after the batch */
    struct ev_defer dfree;
    struct ubuf out;  /* frames for the server */
    const char *fail; /* the connection failed (why): its streams are told from the task */
    bool dead;        /* failed or closed: nghttp2 is not driven any more */
    bool goaway;      /* the server sent GOAWAY: no new stream */
    bool closed;      /* the pool closed it */
    bool settings;    /* the server's first SETTINGS came (RFC 8441: extended CONNECT) */
};

/* One stream's exchange with the server (one attempt at a time). */
struct h2u {
    struct http_stream *st;
    struct h2uc *c;      /* the connection of the current lease, or NULL */
    struct list link;    /* c->streams */
    struct list rlink;   /* c->runq while queued */
    int32_t id;          /* nghttp2's stream id */
    struct h2_head head; /* the header block being read */
    struct ubuf req;     /* request body bytes for the data provider */
    struct ubuf resp;    /* response body bytes for the client codec */
    nghttp2_nv *trail;   /* the request trailers to send after the body */
    int ntrail;          /* their count, -1: none */
    uint32_t close_code; /* nghttp2's error code when it closed the stream */
    const char *bad;     /* the response is malformed (why) */
    bool req_end;        /* the request body ended (its trailers staged) */
    bool req_deferred;   /* the data provider waits for bytes (resume it) */
    bool any_byte;       /* the server sent something for this stream */
    bool head_ready;     /* a final response head in t->resp, not yet passed on */
    bool final_head;     /* the final response head came (later blocks: trailers) */
    bool resp_eof;       /* the server ended the response (END_STREAM) */
    bool resp_done;      /* the response went whole to the client codec */
    bool closed;         /* nghttp2 closed the stream (or never sent it) */
    bool lost;           /* the connection failed under it */
    bool unseen;         /* the server never saw it: above a GOAWAY's last id, or not sent */
    bool ws;             /* the request is an extended CONNECT (RFC 8441, ws_* below) */
    bool ws_wait;        /* ...not submitted yet: the server's SETTINGS must allow it */
};

static void conn_run_task(struct ev_task *t);
static void conn_pump(struct h2uc *c);
static const struct http_msg *ws_request(struct http_stream *st, struct h2u *u);
static bool ws_defer(struct http_stream *st, struct h2u *u);
static enum move ws_submit(struct http_stream *st, struct h2u *u);
static bool ws_switched(struct http_stream *st, struct h2u *u);

static inline struct h2u *up_of(const struct http_stream *st)
{
    return st->upx;
}

/* ---- buffers ---- */

static void ubuf_free(struct ubuf *b)
{
    free(b->p);
    b->p = NULL;
    b->off = b->len = b->cap = 0;
}

static uint32_t ubuf_room(const struct ubuf *b)
{
    return b->max - b->len;
}

/* Appends n bytes (n <= room), growing the buffer by doubling; false out of memory. */
static bool ubuf_put(struct ubuf *b, const void *p, size_t n)
{
    if (n > ubuf_room(b))
        return false;
    if (b->off + b->len + n > b->cap && b->off) {
        memmove(b->p, b->p + b->off, b->len);
        b->off = 0;
    }
    if (b->len + n > b->cap) {
        uint32_t cap = b->cap ? b->cap : 16384;
        while (cap < b->len + n)
            cap *= 2;
        if (cap > b->max)
            cap = b->max;
        char *q = realloc(b->p, cap);
        if (!q)
            return false;
        b->p = q;
        b->cap = cap;
    }
    memcpy(b->p + b->off + b->len, p, n);
    b->len += (uint32_t)n;
    return true;
}

static void ubuf_take(struct ubuf *b, size_t n)
{
    b->off += (uint32_t)n;
    b->len -= (uint32_t)n;
    if (!b->len)
        b->off = 0;
}

/* ---- the connection's streams ---- */

static struct h2u *stream_of(struct h2uc *c, int32_t id)
{
    struct list *pos, *tmp;
    list_for_each_safe(pos, tmp, &c->streams)
    {
        struct h2u *u = list_entry(pos, struct h2u, link);
        if (u->id == id)
            return u;
    }
    return NULL;
}

/* Queues u's client codec to run after this round of I/O. */
static void wake(struct h2u *u)
{
    if (u->c && list_empty(&u->rlink))
        list_add_tail(&u->c->runq, &u->rlink);
}

static void wake_all(struct h2uc *c)
{
    struct list *pos, *tmp;
    list_for_each_safe(pos, tmp, &c->streams)
    {
        wake(list_entry(pos, struct h2u, link));
    }
}

/* Runs the queued streams' client codecs. One may end others (their objects leave the
 * queue as they are freed), or queue more. */
static void dispatch(struct h2uc *c)
{
    for (uint32_t guard = 0; guard < 4096 && !list_empty(&c->runq); guard++) {
        struct h2u *u = list_entry(c->runq.next, struct h2u, rlink);
        list_del(&u->rlink);
        list_init(&u->rlink);
        struct http_stream *st = u->st;
        st->mux->run(st);
    }
    if (!list_empty(&c->runq))
        ev_task_queue(&c->w->loop, &c->task);
}

static void kick(struct h2uc *c)
{
    if (!c->closed)
        ev_task_queue(&c->w->loop, &c->task);
}

/* ---- nghttp2 callbacks: they record and queue, nothing more ---- */

static void touch(struct h2u *u)
{
    u->any_byte = true;
    u->st->up_ms = u->st->w->loop.now_ms;
}

static int on_begin_headers(nghttp2_session *ng, const nghttp2_frame *f, void *user)
{
    struct h2uc *c = user;
    struct h2u *u = f->hd.type == NGHTTP2_HEADERS ? stream_of(c, f->hd.stream_id) : NULL;
    if (!u || u->bad)
        return 0;
    const struct http_limits *lim = &u->st->lc->http.limits;
    touch(u);
    if (!u->final_head) {
        memset(&u->st->t.resp, 0, sizeof(u->st->t.resp));
        h2_head_begin(&u->head, H2B_RESPONSE, u->st->t.req.method, lim->max_header_bytes,
                      lim->max_headers);
    } else {
        h2_head_begin(&u->head, H2B_TRAILERS, HTTP_M_OTHER, lim->max_header_bytes,
                      lim->max_headers);
    }
    return 0;
}

/* The response is malformed: the stream is reset, the stream answers or cuts in step. */
static void malformed(struct h2uc *c, struct h2u *u, const char *why)
{
    if (u->bad)
        return;
    u->bad = why ? why : "invalid response head";
    nghttp2_submit_rst_stream(c->ng, NGHTTP2_FLAG_NONE, u->id, NGHTTP2_PROTOCOL_ERROR);
    wake(u);
}

/* A field nghttp2 finds invalid (a name not in lowercase, a bad character): the response
 * is malformed (RFC 9113 §8.2.1), not passed on without it. */
static int on_invalid_header(nghttp2_session *ng, const nghttp2_frame *f, const uint8_t *name,
                             size_t namelen, const uint8_t *value, size_t valuelen, uint8_t flags,
                             void *user)
{
    struct h2u *u = stream_of(user, f->hd.stream_id);
    if (u)
        malformed(user, u, "invalid field in the response head");
    return 0;
}

static int on_header(nghttp2_session *ng, const nghttp2_frame *f, const uint8_t *name,
                     size_t namelen, const uint8_t *value, size_t valuelen, uint8_t flags,
                     void *user)
{
    struct h2uc *c = user;
    struct h2u *u = stream_of(c, f->hd.stream_id);
    if (!u || u->bad)
        return 0;
    if (h2_head_field(&u->head, &u->st->t.resp, &u->st->t.arena, name, namelen, value, valuelen) <
        0)
        malformed(c, u, u->head.err);
    return 0;
}

/* A header block is complete: an interim head goes to the client at once (the next block
 * overwrites it), a final one waits for step, trailers wait for the end. */
static void headers_done(struct h2uc *c, struct h2u *u, bool end)
{
    struct http_stream *st = u->st;
    if (h2_head_end(&u->head, &st->t.resp, &st->t.arena, end) != 0) {
        malformed(c, u, u->head.err ? u->head.err : "response head too large");
        return;
    }
    if (u->head.kind == H2B_TRAILERS) {
        u->resp_eof = true;
    } else if (st->t.resp.status < 200) {
        if (!st->resp_started)
            stream_interim(st); /* staged by the client codec; its run sends it */
        memset(&st->t.resp, 0, sizeof(st->t.resp));
    } else if (st->t.resp.status == 101) {
        malformed(c, u, "101 in HTTP/2");
        return;
    } else {
        u->final_head = u->head_ready = true;
        u->resp_eof = end;
    }
    wake(u);
}

static void settings_done(struct h2uc *c)
{
    uint32_t n =
        nghttp2_session_get_remote_settings(c->ng, NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS);
    atomic_store_explicit(&c->uc->srv->st.h2_streams, n ? n : 1, memory_order_relaxed);
    c->settings = true;
    if (n > c->b->h2_max_streams)
        n = c->b->h2_max_streams;
    if (!c->goaway)
        upstream_set_max_streams(c->w, c->uc, (uint16_t)n);
    wake_all(c); /* the initial window may have grown */
}

/* The streams a GOAWAY says the server never saw. */
static void goaway_unseen(struct h2uc *c, int32_t last_id)
{
    struct list *pos, *tmp;
    list_for_each_safe(pos, tmp, &c->streams)
    {
        struct h2u *u = list_entry(pos, struct h2u, link);
        if (u->id > last_id || u->id <= 0)
            u->unseen = true;
    }
}

static int on_frame_recv(nghttp2_session *ng, const nghttp2_frame *f, void *user)
{
    struct h2uc *c = user;
    struct h2u *u = f->hd.stream_id ? stream_of(c, f->hd.stream_id) : NULL;
    bool end = f->hd.flags & NGHTTP2_FLAG_END_STREAM;
    switch (f->hd.type) {
    case NGHTTP2_HEADERS:
        if (u && !u->bad)
            headers_done(c, u, end);
        break;
    case NGHTTP2_DATA:
        if (u && end) {
            u->resp_eof = true;
            wake(u);
        }
        break;
    case NGHTTP2_SETTINGS:
        if (!(f->hd.flags & NGHTTP2_FLAG_ACK))
            settings_done(c);
        break;
    case NGHTTP2_WINDOW_UPDATE:
        if (u)
            wake(u);
        else if (!f->hd.stream_id)
            wake_all(c);
        break;
    case NGHTTP2_GOAWAY:
        /* nghttp2 closes the streams above last_stream_id (REFUSED_STREAM) and fails the
         * requests not sent yet; the others finish */
        c->goaway = true;
        goaway_unseen(c, f->goaway.last_stream_id);
        upstream_set_max_streams(c->w, c->uc, 0);
        kick(c);
        break;
    default:
        break;
    }
    return 0;
}

static int on_data_chunk(nghttp2_session *ng, uint8_t flags, int32_t id, const uint8_t *data,
                         size_t len, void *user)
{
    struct h2uc *c = user;
    struct h2u *u = stream_of(c, id);
    if (!u || u->bad || u->resp_done) {
        nghttp2_session_consume(ng, id, len); /* nobody wants it: reopen the window */
        return 0;
    }
    touch(u);
    if (!ubuf_put(&u->resp, data, len)) { /* past the window we gave, or no memory */
        nghttp2_session_consume(ng, id, len);
        malformed(c, u, "response body past the stream's window");
        return 0;
    }
    wake(u);
    return 0;
}

static int on_stream_close(nghttp2_session *ng, int32_t id, uint32_t code, void *user)
{
    struct h2u *u = stream_of(user, id);
    if (u && !u->closed) {
        u->closed = true;
        u->close_code = code;
        wake(u);
    }
    return 0;
}

/* A request HEADERS that could not go out (a GOAWAY came first, or no stream id was
 * left): the server never saw the stream. */
static int on_frame_not_send(nghttp2_session *ng, const nghttp2_frame *f, int err, void *user)
{
    struct h2u *u = f->hd.type == NGHTTP2_HEADERS ? stream_of(user, f->hd.stream_id) : NULL;
    if (u && !u->closed) {
        u->closed = u->unseen = true;
        u->close_code = NGHTTP2_REFUSED_STREAM;
        wake(u);
    }
    return 0;
}

/* The data provider: request body bytes as the server's windows allow; the trailers (if
 * any) after the last. */
static ssize_t req_read(nghttp2_session *ng, int32_t id, uint8_t *buf, size_t len, uint32_t *flags,
                        nghttp2_data_source *src, void *user)
{
    struct h2u *u = stream_of(user, id);
    if (!u)
        return NGHTTP2_ERR_DEFERRED; /* released: its reset follows */
    size_t n = u->req.len < len ? u->req.len : len;
    if (n) {
        memcpy(buf, u->req.p + u->req.off, n);
        ubuf_take(&u->req, n);
        u->st->up_ms = u->st->w->loop.now_ms;
        wake(u); /* room for more */
    }
    if (u->req.len || !u->req_end) {
        u->req_deferred = !n;
        return n ? (ssize_t)n : NGHTTP2_ERR_DEFERRED;
    }
    *flags |= NGHTTP2_DATA_FLAG_EOF;
    if (u->ntrail > 0) {
        *flags |= NGHTTP2_DATA_FLAG_NO_END_STREAM;
        if (nghttp2_submit_trailer(ng, id, u->trail, (size_t)u->ntrail) != 0)
            return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    }
    return (ssize_t)n;
}

static nghttp2_session_callbacks *callbacks(void)
{
    nghttp2_session_callbacks *cb;
    if (nghttp2_session_callbacks_new(&cb) != 0)
        return NULL;
    nghttp2_session_callbacks_set_on_begin_headers_callback(cb, on_begin_headers);
    nghttp2_session_callbacks_set_on_header_callback(cb, on_header);
    nghttp2_session_callbacks_set_on_invalid_header_callback(cb, on_invalid_header);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cb, on_frame_recv);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, on_data_chunk);
    nghttp2_session_callbacks_set_on_stream_close_callback(cb, on_stream_close);
    nghttp2_session_callbacks_set_on_frame_not_send_callback(cb, on_frame_not_send);
    return cb;
}

/* ---- the connection ---- */

/* nghttp2's client session with our SETTINGS queued (the preface goes first); -1 out of
 * memory. */
static int session_init(struct h2uc *c)
{
    const struct backend *b = c->b;
    nghttp2_session_callbacks *cb = callbacks();
    nghttp2_option *o = NULL;
    int r = cb ? nghttp2_option_new(&o) : -1;
    if (r == 0) {
        nghttp2_option_set_no_auto_window_update(o, 1);
        /* until the server's SETTINGS say how many it takes, one stream goes out and the
         * others wait in nghttp2's queue: a server with a small limit is never sent more */
        nghttp2_option_set_peer_max_concurrent_streams(o, 1);
        nghttp2_option_set_max_settings(o, 32);
        nghttp2_option_set_max_outbound_ack(o, 1000);
        nghttp2_option_set_max_deflate_dynamic_table_size(o, 4096);
        r = nghttp2_session_client_new2(&c->ng, cb, c, o);
    }
    nghttp2_option_del(o);
    nghttp2_session_callbacks_del(cb);
    if (r != 0) {
        c->ng = NULL;
        return -1;
    }
    nghttp2_settings_entry iv[] = {
        {NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
        {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, b->h2_window},
        {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, MAX_HEADER_LIST},
    };
    uint64_t conn_window = (uint64_t)b->h2_window * b->h2_max_streams;
    if (conn_window > (1u << 30))
        conn_window = 1u << 30;
    if (nghttp2_submit_settings(c->ng, NGHTTP2_FLAG_NONE, iv, sizeof(iv) / sizeof(iv[0])) != 0 ||
        nghttp2_session_set_local_window_size(c->ng, NGHTTP2_FLAG_NONE, 0, (int32_t)conn_window) !=
            0)
        return -1;
    return 0;
}

static void conn_free(struct ev_defer *d)
{
    struct h2uc *c = container_of(d, struct h2uc, dfree);
    free(c);
}

/* The pool closes the connection (its last lease ended after a failure or a GOAWAY, its
 * idle time ran out, the worker ends): the session goes, the memory after the batch. */
static void conn_closed(struct upconn *uc)
{
    struct h2uc *c = uc->owner;
    struct list *pos, *tmp;
    list_for_each_safe(pos, tmp, &c->streams)
    { /* none should be left: they hold leases; let them find no connection */
        struct h2u *u = list_entry(pos, struct h2u, link);
        list_del(&u->rlink);
        list_init(&u->rlink);
        list_del(&u->link);
        list_init(&u->link);
        u->c = NULL;
        u->lost = true;
    }
    c->closed = c->dead = true;
    ev_task_cancel(&c->task);
    nghttp2_session_del(c->ng);
    c->ng = NULL;
    ubuf_free(&c->out);
    ev_defer_free(&c->w->loop, &c->dfree, conn_free);
}

/* The connection failed: no new stream; its streams learn it when they run (from the
 * task); an idle one is closed. */
static void conn_fail(struct h2uc *c, const char *why)
{
    if (c->dead)
        return;
    c->dead = true;
    c->fail = why;
    upstream_set_max_streams(c->w, c->uc, 0);
    kick(c);
}

/* Tells every stream of a failed connection, then closes it once none is left. */
static void conn_failed_streams(struct h2uc *c)
{
    struct list *pos, *tmp;
    list_for_each_safe(pos, tmp, &c->streams)
    {
        struct h2u *u = list_entry(pos, struct h2u, link);
        if (!u->lost) {
            u->lost = true;
            wake(u);
        }
    }
    dispatch(c);
    if (!c->closed && list_empty(&c->streams) && c->uc->active_streams == 0)
        upstream_conn_close(c->w, c->uc);
}

/* Reads what the server sent into nghttp2 (a bounded number of reads: the task goes on). */
static void conn_read(struct h2uc *c)
{
    struct conn *cn = &c->uc->c;
    char buf[READ_CHUNK];
    for (int i = 0; i < READ_BUDGET; i++) {
        if (c->dead || !(cn->flags & CONN_RD_READY))
            return;
        ssize_t n = cn->xprt->recv(cn, buf, sizeof(buf));
        if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
            cn->flags &= ~CONN_RD_READY;
            return;
        }
        if (n <= 0) {
            cn->flags |= n == 0 ? CONN_RD_EOF : CONN_ERROR;
            conn_fail(c, n == 0 ? "server closed the connection" : "server connection reset");
            return;
        }
        conn_note_read(cn, (size_t)n, sizeof(buf));
        ssize_t r = nghttp2_session_mem_recv(c->ng, (const uint8_t *)buf, (size_t)n);
        if (r < 0) {
            conn_fail(c, "HTTP/2 protocol error from the server");
            return;
        }
    }
    if (cn->flags & CONN_RD_READY)
        kick(c); /* more to read: after the other connections of this batch */
}

/* nghttp2's frames into the output, then to the server; MOVE_PROGRESS when bytes left. */
static enum move conn_send(struct h2uc *c)
{
    struct conn *cn = &c->uc->c;
    enum move m = MOVE_NONE;
    if (c->dead || c->uc->connecting)
        return MOVE_NONE;
    while (c->out.len < OUT_HIGH) {
        const uint8_t *p;
        ssize_t n = nghttp2_session_mem_send(c->ng, &p);
        if (n < 0 || (n > 0 && !ubuf_put(&c->out, p, (size_t)n))) {
            conn_fail(c, n < 0 ? "HTTP/2 session failed" : "out of memory");
            return MOVE_NONE;
        }
        if (n == 0)
            break;
    }
    while (c->out.len && (cn->flags & CONN_WR_READY)) {
        ssize_t n = cn->xprt->send(cn, c->out.p + c->out.off, c->out.len);
        if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
            cn->flags &= ~CONN_WR_READY;
            break;
        }
        if (n < 0) {
            cn->flags |= CONN_ERROR;
            conn_fail(c, "server connection reset while sending");
            return MOVE_NONE;
        }
        ubuf_take(&c->out, (size_t)n);
        m = MOVE_PROGRESS;
    }
    return m;
}

/* The server is done with the connection (GOAWAY, and nothing more to exchange). */
static bool conn_over(struct h2uc *c)
{
    return c->goaway && list_empty(&c->streams) && c->uc->active_streams == 0 && !c->out.len;
}

/* Reads, writes, then runs the streams concerned. */
static void conn_pump(struct h2uc *c)
{
    if (c->closed)
        return;
    if (!c->dead) {
        conn_read(c);
        conn_send(c);
    }
    if (c->dead) {
        conn_failed_streams(c);
        return;
    }
    dispatch(c);
    if (!c->closed && !c->dead)
        conn_send(c); /* what the streams staged and the window updates they made */
    if (!c->closed && conn_over(c))
        upstream_conn_close(c->w, c->uc);
}

static void conn_run_task(struct ev_task *t)
{
    conn_pump(container_of(t, struct h2uc, task));
}

/* The agreed protocol: h2 over TLS must have been chosen by ALPN. */
static bool alpn_ok(struct h2uc *c)
{
    if (c->b->protocol != PROTO_H2)
        return true;
    struct xprt_info info = {0};
    c->uc->c.xprt->info(&c->uc->c, &info);
    return info.alpn_len == 2 && memcmp(info.alpn, "h2", 2) == 0;
}

/* The connect (and the handshake) of the connection ended: its streams are told. */
static void connect_done(struct h2uc *c, enum up_connect r)
{
    if (r == UP_CONNECT_DONE && !alpn_ok(c)) {
        r = UP_CONNECT_FAILED;
        c->att.err = EPROTO;
        c->att.why = "server did not agree to h2 by ALPN";
    }
    if (r == UP_CONNECT_FAILED) {
        c->uc->c.flags |= CONN_ERROR;
        conn_fail(c, c->att.why ? c->att.why : "server connection failed");
        return;
    }
    struct list *pos, *tmp;
    list_for_each_safe(pos, tmp, &c->streams)
    {
        struct h2u *u = list_entry(pos, struct h2u, link);
        if (!u->st->reused)
            stream_connected(u->st);
    }
    wake_all(c);
}

/* Events on the connection, leased or idle. */
static void conn_io(struct upconn *uc, uint32_t events)
{
    struct h2uc *c = uc->owner;
    conn_note_events(&uc->c, events);
    if (c->dead)
        return;
    if (uc->connecting) {
        enum up_connect r = upstream_conn_step(c->w, &c->att, uc, events);
        if (r == UP_CONNECT_PENDING)
            return;
        connect_done(c, r);
    }
    conn_pump(c);
}

/* The connection object of uc, just opened for st; NULL out of memory. */
static struct h2uc *conn_new(struct http_stream *st, struct upconn *uc)
{
    struct h2uc *c = calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    c->uc = uc;
    c->w = st->w;
    c->b = st->t.backend;
    c->att = st->att;
    c->out.max = OUT_MAX;
    list_init(&c->streams);
    list_init(&c->runq);
    ev_task_init(&c->task, conn_run_task);
    if (session_init(c) < 0) {
        if (c->ng)
            nghttp2_session_del(c->ng);
        free(c);
        return NULL;
    }
    upstream_set_mux(uc, c, conn_io, conn_closed);
    /* before its SETTINGS, a connection takes as many streams as the server's last SETTINGS
     * allowed: a burst spreads over enough connections instead of queueing in one */
    uint32_t n = atomic_load_explicit(&uc->srv->st.h2_streams, memory_order_relaxed);
    if (!n)
        n = INITIAL_STREAMS;
    if (n > c->b->h2_max_streams)
        n = c->b->h2_max_streams;
    upstream_set_max_streams(c->w, uc, (uint16_t)n);
    return c;
}

/* ---- attempts ---- */

/* A lease on a pooled connection with room, or on a new one (with its connection object).
 * NULL with st->att.err/why set. */
static struct upconn *lease(struct http_stream *st)
{
    struct upconn *uc =
        upstream_acquire(st->w, &st->att, NULL, conn_io, st->fresh_only, &st->reused);
    if (!uc || uc->owner_closed)
        return uc;
    if (!conn_new(st, uc)) {
        upstream_lease_end(st->w, uc, false);
        st->att.err = ENOMEM;
        st->att.why = NULL;
        return NULL;
    }
    return uc;
}

/* `te: trailers` on every request: Strata takes the server's trailers whatever its client
 * takes (and gRPC servers require it); an HTTP/1 client's TE is hop-by-hop and not in the
 * model. NULL out of memory. */
static nghttp2_nv *with_te_trailers(struct arena *a, nghttp2_nv *nv, int *n)
{
    for (int i = 0; i < *n; i++)
        if (nv[i].namelen == 2 && memcmp(nv[i].name, "te", 2) == 0)
            return nv;
    nghttp2_nv *more = arena_alloc(a, ((size_t)*n + 1) * sizeof(*more));
    if (!more)
        return NULL;
    memcpy(more, nv, (size_t)*n * sizeof(*more));
    more[(*n)++] = (nghttp2_nv){(uint8_t *)"te", (uint8_t *)"trailers", 2, 8, NGHTTP2_NV_FLAG_NONE};
    return more;
}

/* The request's HEADERS (and its data provider unless it has no body) on u's connection. */
static bool submit_request(struct http_stream *st, struct h2u *u)
{
    struct h2_out o = {.kind = H2B_REQUEST};
    o.scheme = st->t.backend->tls ? HSTR_LIT("https") : HSTR_LIT("http");
    nghttp2_nv *nv;
    const struct http_msg *req = ws_request(st, u);
    int n = req ? h2_msg_nv(req, &o, &st->t.arena, &nv) : -1;
    if (n < 0 || !(nv = with_te_trailers(&st->t.arena, nv, &n)))
        return false;
    nghttp2_data_provider dp = {.source = {.ptr = NULL}, .read_callback = req_read};
    bool bodiless = http_msg_bodiless(&st->t.req) && !u->ws;
    int32_t id = nghttp2_submit_request(u->c->ng, NULL, nv, (size_t)n, bodiless ? NULL : &dp, NULL);
    if (id < 0) { /* stream ids exhausted (or no memory): this connection takes no more */
        upstream_set_max_streams(st->w, st->up, 0);
        u->closed = true;
        u->close_code = NGHTTP2_REFUSED_STREAM;
        return true;
    }
    u->id = id;
    return true;
}

/* Clean per-attempt state. */
static void attempt_reset(struct h2u *u)
{
    ubuf_free(&u->req);
    ubuf_free(&u->resp);
    u->req.max = REQ_BUF;
    /* the server may send the default window's worth before our SETTINGS reach it */
    uint32_t window = u->st->t.backend->h2_window;
    u->resp.max = window > NGHTTP2_INITIAL_WINDOW_SIZE ? window : NGHTTP2_INITIAL_WINDOW_SIZE;
    u->id = 0;
    u->trail = NULL;
    u->ntrail = -1;
    u->close_code = 0;
    u->bad = NULL;
    u->req_end = u->req_deferred = u->any_byte = u->head_ready = u->final_head = false;
    u->resp_eof = u->resp_done = u->closed = u->lost = u->unseen = false;
    u->ws = u->ws_wait = false;
}

/* A new attempt: a lease (the connection's object made with a new connection), then the
 * request's HEADERS queued on it, sent once the connection is up. */
static enum up_start up_start(struct http_stream *st)
{
    struct h2u *u = up_of(st);
    if (!u) {
        if (!(u = calloc(1, sizeof(*u)))) {
            st->att.err = ENOMEM;
            st->att.why = NULL;
            return UP_START_CONNECT_FAILED;
        }
        u->st = st;
        list_init(&u->link);
        list_init(&u->rlink);
        st->upx = u;
    }
    attempt_reset(u);
    if (!(st->up = lease(st)))
        return UP_START_CONNECT_FAILED;
    st->reused = st->reused && !st->up->connecting; /* joined a connect in progress: not */
    u->c = st->up->owner;
    list_add_tail(&u->c->streams, &u->link);
    if (ws_defer(st, u))
        return UP_START_OK; /* submitted by ws_submit once the server's SETTINGS came */
    if (!submit_request(st, u))
        return UP_START_TOO_LARGE; /* the stream releases the lease */
    u->req_end = http_msg_bodiless(&st->t.req);
    if (!st->up->connecting)
        kick(u->c);
    return UP_START_OK;
}

/* Ends the lease: a stream nghttp2 still has open is reset (CANCEL; it may have been
 * complete: the server's END_STREAM and ours make no difference to a reset stream), and
 * response bytes never passed on are given back to the connection's window. The connection
 * stays for its other streams; the pool closes it when it can carry no more and this was
 * its last lease. */
static void up_release(struct http_stream *st, bool keep)
{
    struct h2u *u = up_of(st);
    struct h2uc *c = u->c;
    if (c && !c->dead && !c->closed) {
        if (u->id > 0 && !u->closed)
            nghttp2_submit_rst_stream(c->ng, NGHTTP2_FLAG_NONE, u->id, NGHTTP2_CANCEL);
        if (u->resp.len && u->id > 0)
            nghttp2_session_consume(c->ng, u->id, u->resp.len);
        kick(c);
    }
    list_del(&u->rlink);
    list_init(&u->rlink);
    list_del(&u->link);
    list_init(&u->link);
    u->c = NULL;
    ubuf_free(&u->req);
    ubuf_free(&u->resp);
    if (c && !c->closed)
        upstream_lease_end(st->w, st->up, true);
}

static void up_free(struct http_stream *st)
{
    struct h2u *u = up_of(st);
    ubuf_free(&u->req);
    ubuf_free(&u->resp);
    free(u);
    st->upx = NULL;
}

/* ---- the request body (http_up_ops.body) ---- */

/* The nghttp2 stream can take no more body: its bytes are dropped (the response may still
 * be complete: a server may answer before reading the whole body). */
static bool req_discarded(const struct h2u *u)
{
    return !u->c || u->c->dead || u->closed || u->bad;
}

static ssize_t up_send_room(struct http_stream *st)
{
    struct h2u *u = up_of(st);
    if (req_discarded(u))
        return REQ_BUF;
    int64_t room = ubuf_room(&u->req);
    int32_t sw = nghttp2_session_get_stream_remote_window_size(u->c->ng, u->id);
    int32_t cw = nghttp2_session_get_remote_window_size(u->c->ng);
    if (sw >= 0 && sw - (int64_t)u->req.len < room)
        room = sw - (int64_t)u->req.len;
    if (cw >= 0 && cw - (int64_t)u->req.len < room)
        room = cw - (int64_t)u->req.len;
    return room > 0 ? (ssize_t)room : 0;
}

/* Bytes staged: the data provider is told when it waits. */
static void req_resume(struct h2u *u)
{
    if (u->req_deferred && !req_discarded(u)) {
        u->req_deferred = false;
        nghttp2_session_resume_data(u->c->ng, u->id);
    }
}

static size_t up_send_data(struct http_stream *st, const char *p, size_t n)
{
    struct h2u *u = up_of(st);
    if (req_discarded(u))
        return n;
    size_t take = n < ubuf_room(&u->req) ? n : ubuf_room(&u->req);
    if (!take || !ubuf_put(&u->req, p, take))
        return 0;
    req_resume(u);
    return take;
}

static bool up_send_trailers(struct http_stream *st, const struct http_msg *m)
{
    struct h2u *u = up_of(st);
    if (m->ntrailers && !req_discarded(u)) {
        struct h2_out o = {.kind = H2B_TRAILERS};
        u->ntrail = h2_msg_nv(m, &o, &st->t.arena, &u->trail);
        /* a field that cannot be sent safely: the trailers are dropped, as HTTP/1 does
         * for a message sent without chunking */
    }
    return true;
}

static void up_send_end(struct http_stream *st)
{
    struct h2u *u = up_of(st);
    u->req_end = true;
    req_resume(u);
}

/* ---- WebSocket over HTTP/2 (RFC 8441) ----
 * An upgrade from an HTTP/2 client (its extended CONNECT, an upgrade in the model) goes
 * out as an extended CONNECT, only to a server whose SETTINGS say
 * SETTINGS_ENABLE_CONNECT_PROTOCOL (on a new connection the HEADERS wait for them; another
 * server is tried, or 502, when they do not). Its 2xx is the switch: a 101 in the model,
 * then st->mux->tunnel and the stream's DATA both ways are the tunnel. An HTTP/1 client's
 * WebSocket upgrade goes the same way (its 101 gets the Accept of its key); any other
 * upgrade of an HTTP/1 client goes as a plain request. */

/* The request as it goes out: the model's, or a copy without the upgrade for a request
 * that is not sent as an extended CONNECT. NULL out of memory. */
static const struct http_msg *ws_request(struct http_stream *st, struct h2u *u)
{
    if (u->ws || !(st->t.req.flags & HTTP_F_UPGRADE))
        return &st->t.req;
    struct http_msg *plain = arena_alloc(&st->t.arena, sizeof(*plain));
    if (plain) {
        *plain = st->t.req;
        plain->flags &= ~(uint32_t)HTTP_F_UPGRADE;
    }
    return plain;
}

/* An extended CONNECT waits for the server's SETTINGS before it is submitted. */
static bool ws_defer(struct http_stream *st, struct h2u *u)
{
    const struct http_msg *req = &st->t.req;
    u->ws = (req->flags & HTTP_F_UPGRADE) &&
            (req->version == 20 || hstr_ieq_c(req->upgrade, "websocket"));
    u->ws_wait = u->ws;
    return u->ws_wait;
}

/* The server's SETTINGS came: the extended CONNECT goes, or another server is tried (or
 * 502) when this one does not take it. */
static enum move ws_submit(struct http_stream *st, struct h2u *u)
{
    if (!u->c->settings)
        return MOVE_NONE;
    u->ws_wait = false;
    if (!nghttp2_session_get_remote_settings(u->c->ng, NGHTTP2_SETTINGS_ENABLE_CONNECT_PROTOCOL)) {
        static const char why[] = "server does not take extended CONNECT (RFC 8441)";
        stream_attempt_failed(st, true, false);
        st->att.err = EPROTONOSUPPORT; /* no server left to try answers 502, not 503 */
        st->att.why = why;
        stream_retry_or_answer(st, true, true, 502, "bad_gateway", why);
        return MOVE_ERROR;
    }
    if (!submit_request(st, u)) {
        stream_attempt_failed(st, false, false);
        stream_answer(st, 502, "bad_request", "request head cannot be sent");
        return MOVE_ERROR;
    }
    kick(u->c);
    return MOVE_PROGRESS;
}

/* A 2xx to an extended CONNECT switched protocols: in the model, the 101 an HTTP/1 server
 * sends (so the log and the metrics count one kind of WebSocket). */
static bool ws_switched(struct http_stream *st, struct h2u *u)
{
    struct http_msg *resp = &st->t.resp;
    if (!u->ws || resp->status < 200 || resp->status > 299)
        return false;
    resp->status = 101;
    resp->reason = HSTR_LIT("Switching Protocols");
    resp->flags |= HTTP_F_UPGRADE;
    resp->upgrade = st->t.req.upgrade;
    /* an HTTP/1 client checks the Accept of its key (RFC 6455 §4.1): ours to compute */
    struct hstr key = http_hdr_get(&st->t.req, HSTR_LIT("Sec-WebSocket-Key"));
    char acc[WS_ACCEPT_LEN + 1];
    if (key.len && ws_accept_of(key, acc)) {
        struct hstr v = arena_dup(&st->t.arena, acc, WS_ACCEPT_LEN);
        if (v.p)
            http_hdr_set(resp, &st->t.arena, HSTR_LIT("Sec-WebSocket-Accept"), v);
    }
    return true;
}

/* ---- the response (step) ---- */

/* The connection failed under the stream, or nghttp2 closed the stream, before the end of
 * the response: retried when the server cannot have seen it or sent nothing, else answered
 * or cut. */
static enum move stream_broken(struct http_stream *st, struct h2u *u)
{
    const char *why = u->lost ? (u->c && u->c->fail ? u->c->fail : "server connection failed")
                              : "server reset the stream";
    if (st->resp_started) {
        stream_up_cut(st, "server_abort", why);
        return MOVE_ERROR;
    }
    if (u->closed && u->close_code == NGHTTP2_REFUSED_STREAM) {
        /* RFC 9113 §8.7: the server did not process it; any method may go again. A stream
         * a GOAWAY left out is the connection's end, not the server's refusal: its new
         * attempt is free, once per request (as a stale pooled HTTP/1 connection's) */
        stream_attempt_failed(st, false, false);
        if (u->unseen)
            stream_free_retry(st);
        stream_retry_or_answer(st, true, true, 502, "server_refused", "server refused the stream");
        return MOVE_ERROR;
    }
    stream_up_broken(st, why, !u->any_byte);
    return MOVE_ERROR;
}

/* The connect of the stream's connection failed (the connection says why). */
static enum move connect_failed(struct http_stream *st, struct h2u *u)
{
    struct up_attempt *ca = &u->c->att;
    int err = ca->err ? ca->err : ECONNREFUSED;
    const char *why = ca->why;
    if (!ca->server) { /* already booked for another stream: retry quietly */
        bool local = upstream_classify(err) == UP_FAULT_LOCAL;
        stream_attempt_failed(st, !local, false);
        st->att.err = err; /* as upstream_failed records it: no server left answers 502 */
        st->att.why = why;
        stream_retry_or_answer(st, true, !local, err == ETIMEDOUT ? 504 : 502, "connect_failed",
                               why ? why : "server connection failed");
        return MOVE_ERROR;
    }
    ca->server = NULL; /* booked once, by this stream */
    stream_connect_failed(st, err, why);
    return MOVE_ERROR;
}

/* The final response head: the stream's checks, then the head for the client. */
static enum move pass_head(struct http_stream *st, struct h2u *u)
{
    u->head_ready = false;
    bool switched = ws_switched(st, u);
    if (!stream_response_checks(st))
        return MOVE_ERROR; /* retried on its status: the head is dropped */
    if (!stream_send_response(st))
        return MOVE_ERROR;
    if (switched)
        st->mux->tunnel(st);
    return MOVE_PROGRESS;
}

/* Response body bytes to the client codec, as much as it takes now; the window reopens by
 * that much. */
static enum move pass_body(struct http_stream *st, struct h2u *u)
{
    const struct http_body_ops *out = stream_response_body_dest(st);
    enum move m = stream_resp_drain(st); /* a held response let go: its bytes first */
    while (u->resp.len) {
        ssize_t room = out->send_room(st);
        if (room < 0) {
            stream_up_cut(st, "internal_error", "out of memory");
            return MOVE_ERROR;
        }
        size_t take = stream_body_budget(st, true, (size_t)room);
        size_t n = u->resp.len < take ? u->resp.len : take;
        if (!n)
            break;
        const char *data = u->resp.p + u->resp.off, *why = NULL;
        size_t dlen = n;
        unsigned status = stream_body_piece(st, true, &data, &dlen, false, (size_t)room, &why);
        if (status || out->send_data(st, data, dlen) < dlen) {
            stream_up_cut(st, "bad_response", why ? why : "a body filter failed");
            return MOVE_ERROR;
        }
        ubuf_take(&u->resp, n);
        if (u->c && !u->c->closed) {
            nghttp2_session_consume(u->c->ng, u->id, n);
            kick(u->c);
        }
        m = MOVE_PROGRESS;
    }
    return m;
}

/* The response ended: the filters' last word, the trailers (t->resp.trailers), the end. */
static enum move pass_end(struct http_stream *st, struct h2u *u)
{
    const struct http_body_ops *out = stream_response_body_dest(st);
    const char *data = NULL, *why = NULL;
    size_t dlen = 0;
    ssize_t room = st->resp_body_hooks ? out->send_room(st) : 0;
    if (!st->up)
        return MOVE_ERROR; /* a filter refused the held response: answered instead */
    unsigned status =
        stream_body_piece(st, true, &data, &dlen, true, room > 0 ? (size_t)room : 0, &why);
    if (status || (dlen && out->send_data(st, data, dlen) < dlen)) {
        stream_up_cut(st, "bad_response", why ? why : "a body filter failed");
        return MOVE_ERROR;
    }
    if (!out->send_trailers(st, &st->t.resp))
        return MOVE_NONE;
    u->resp_done = true;
    out->send_end(st);
    return MOVE_PROGRESS;
}

/* Server → client: failures first, then the head, the body and the end. */
static enum move up_step(struct http_stream *st)
{
    struct h2u *u = up_of(st);
    if (!u || !st->up || u->resp_done)
        return MOVE_NONE;
    if (!u->c) /* the pool closed the connection under it */
        return u->lost ? stream_broken(st, u) : MOVE_NONE;
    if (u->c->dead && u->c->att.err)
        return connect_failed(st, u);
    if (st->up->connecting)
        return MOVE_NONE;
    if (u->ws_wait && !u->lost && !u->closed)
        return ws_submit(st, u);
    if (u->bad && !u->resp_eof) {
        if (st->resp_started) {
            stream_up_cut(st, "bad_response", u->bad);
            return MOVE_ERROR;
        }
        CTR_ADD(st->t.server->st.ctr[st->w->id].http_5xx, 1);
        stream_attempt_failed(st, true, true);
        stream_answer(st, 502, "bad_response", u->bad);
        return MOVE_ERROR;
    }
    enum move m = MOVE_NONE;
    if (u->head_ready && !st->resp_started && (m = pass_head(st, u)) == MOVE_ERROR)
        return m;
    if (!st->resp_started) {
        if ((u->lost || u->closed) && !u->head_ready)
            return stream_broken(st, u);
        return m;
    }
    enum move b = pass_body(st, u);
    if (b == MOVE_ERROR || !st->up)
        return MOVE_ERROR; /* !st->up: a filter refused the held response, answered instead */
    m |= b;
    if (u->resp_eof && !u->resp.len)
        return pass_end(st, u) == MOVE_ERROR ? MOVE_ERROR : MOVE_PROGRESS;
    if ((u->lost || u->closed) && !u->resp_eof)
        return stream_broken(st, u);
    return m;
}

static enum move up_flush(struct http_stream *st)
{
    struct h2u *u = up_of(st);
    if (!u || !u->c || u->c->dead || st->up->connecting)
        return MOVE_NONE;
    return conn_send(u->c);
}

const struct http_up_ops h2_up_ops = {
    .start = up_start,
    .body = {up_send_room, up_send_data, up_send_trailers, up_send_end, NULL},
    .flush = up_flush,
    .step = up_step,
    .release = up_release,
    .free = up_free,
};
