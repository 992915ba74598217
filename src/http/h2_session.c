/* h2_session.c — an HTTP/2 client connection (see h2_session.h, h2_session-t.h).
 *
 * nghttp2 does the framing, HPACK and flow-control arithmetic; this file feeds it the
 * bytes read (nghttp2_session_mem_recv) and writes what it produces (mem_send, only while
 * less than H2_OUT_HIGH waits for the client: a client that does not read stops being
 * served, then read), turns its callbacks into streams (h2_stream.c), and enforces what
 * one connection may cost: streams (a reset one counts until its server side is done),
 * header lists (h2_msg.c), CONTINUATION frames, RST_STREAM (rapid reset), provoked stream
 * errors and invalid frames (MadeYouReset), SETTINGS, PING, PRIORITY, empty DATA and
 * WINDOW_UPDATE per second. Abuse ends the connection with GOAWAY(ENHANCE_YOUR_CALM).
 *
 * Request bodies use manual flow control: a stream's window reopens only as its body is
 * passed on (nghttp2_session_consume), so Strata holds at most `initial_window` bytes per
 * stream.
 */
#include "http/h2_session.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "config/config.h"
#include "ev/worker.h"
#include "http/h1_session.h"
#include "http/h2_mem.h"
#include "http/h2_stream.h"
#include "http/msg.h"
#include "http/stream.h"
#include "net/linger.h"

#define RUN_BUDGET 64    /* rounds per run before yielding to other sessions */
#define READ_CHUNK 16384 /* bytes read at a time (onto the stack, then into nghttp2) */
#define CLOSING_MS 2000  /* a connection ending on an error has this long to send GOAWAY */

static void session_close(struct h2c *c);

/* The worker's HTTP/2 sessions. The HTTP mode's operations run on the worker's thread, so
 * the list is per thread; it needs no memory of its own. */
static __thread struct list sessions;
static __thread uint32_t nsessions;

static struct list *session_list(void)
{
    if (!sessions.next)
        list_init(&sessions);
    return &sessions;
}

static struct listener_counters *lctr(struct h2c *c)
{
    return &c->lc->st.ctr[c->w->id];
}

/* The stream of id, or NULL. Callbacks come in runs for one stream (each field of a
 * header block, each frame): the last one found is asked first. */
static struct h2s *stream_of(struct h2c *c, int32_t id)
{
    if (c->last && c->last->id == id)
        return c->last;
    struct h2s *s = nghttp2_session_get_stream_user_data(c->ng, id);
    if (s)
        c->last = s;
    return s;
}

/* ---- limits ---- */

/* GOAWAY(ENHANCE_YOUR_CALM): the connection ends once it is sent; nothing more is read. */
static void calm(struct h2c *c, enum h2_limit why)
{
    CTR_ADD(lctr(c)->h2_limits[why], 1);
    if (c->calm)
        return;
    c->calm = true;
    CTR_ADD(lctr(c)->h2_calm, 1);
    nghttp2_session_terminate_session(c->ng, NGHTTP2_ENHANCE_YOUR_CALM);
}

/* Counts one more event of kind k this second; true past `limit`. */
static bool meter_over(struct h2c *c, enum h2_meter_kind k, uint32_t limit)
{
    struct h2_meter *m = &c->meters[k];
    uint64_t sec = c->w->loop.now_ms / 1000;
    if (m->sec != sec) {
        m->sec = sec;
        m->n = 0;
    }
    return ++m->n > limit;
}

void h2c_glitch(struct h2c *c)
{
    if (meter_over(c, H2M_GLITCHES, c->lc->http.h2.glitches_per_s))
        calm(c, H2L_GLITCHES);
}

void h2c_reset(struct h2c *c, struct h2s *s, uint32_t code)
{
    if (s->dead)
        return;
    s->dead = true;
    nghttp2_submit_rst_stream(c->ng, NGHTTP2_FLAG_NONE, s->id, code);
    h2c_kick(c);
}

/* The floods of frames that cost Strata work but carry no request, counted as each frame
 * begins (nghttp2 drops some, such as PRIORITY, without a frame callback). */
static int on_begin_frame(nghttp2_session *ng, const nghttp2_frame_hd *hd, void *user)
{
    struct h2c *c = user;
    const struct http2_conf *h = &c->lc->http.h2;
    bool ack = hd->flags & NGHTTP2_FLAG_ACK;
    switch (hd->type) {
    case NGHTTP2_SETTINGS:
        if (!ack && meter_over(c, H2M_SETTINGS, h->settings_per_s))
            calm(c, H2L_SETTINGS);
        break;
    case NGHTTP2_PING:
        if (!ack && meter_over(c, H2M_PING, h->pings_per_s))
            calm(c, H2L_PING);
        break;
    case NGHTTP2_PRIORITY:
        if (meter_over(c, H2M_PRIORITY, h->priority_per_s))
            calm(c, H2L_PRIORITY);
        break;
    case NGHTTP2_WINDOW_UPDATE:
        /* a client reading fast answers every DATA frame with window updates: only those
         * beyond what Strata's DATA earned count as a flood */
        if (c->wu_credit) {
            c->wu_credit--;
            break;
        }
        if (meter_over(c, H2M_WINDOW_UPDATE, h->window_update_per_s))
            calm(c, H2L_WINDOW_UPDATE);
        break;
    case NGHTTP2_RST_STREAM:
        if (meter_over(c, H2M_RESETS, h->resets_per_s))
            calm(c, H2L_RESETS);
        break;
    case NGHTTP2_DATA:
        if (!hd->length && !(hd->flags & NGHTTP2_FLAG_END_STREAM) &&
            meter_over(c, H2M_EMPTY_DATA, h->empty_data_per_s))
            calm(c, H2L_EMPTY_DATA);
        break;
    default:
        break;
    }
    return 0;
}

/* ---- nghttp2 callbacks (they never free a stream or the session: see h2s_closed) ---- */

static int on_begin_headers(nghttp2_session *ng, const nghttp2_frame *f, void *user)
{
    struct h2c *c = user;
    if (f->hd.type != NGHTTP2_HEADERS)
        return 0;
    struct h2s *s = stream_of(c, f->hd.stream_id);
    if (f->headers.cat != NGHTTP2_HCAT_REQUEST) {
        if (s && !s->dead) { /* trailers */
            h2_head_begin(&s->head, H2B_TRAILERS, HTTP_M_OTHER, c->lc->http.limits.max_header_bytes,
                          c->lc->http.limits.max_headers);
            h2_head_checked(&s->head);
        }
        return 0;
    }
    if (c->nstreams >= c->lc->http.h2.max_streams || c->calm) {
        /* past the limit, reset streams still being cancelled included */
        CTR_ADD(lctr(c)->h2_limits[H2L_STREAMS], 1);
        nghttp2_submit_rst_stream(ng, NGHTTP2_FLAG_NONE, f->hd.stream_id, NGHTTP2_REFUSED_STREAM);
        h2c_glitch(c);
        return 0;
    }
    if (!(s = h2s_new(c, f->hd.stream_id))) {
        nghttp2_submit_rst_stream(ng, NGHTTP2_FLAG_NONE, f->hd.stream_id, NGHTTP2_INTERNAL_ERROR);
        return 0;
    }
    nghttp2_session_set_stream_user_data(ng, f->hd.stream_id, s);
    return 0;
}

static int on_header(nghttp2_session *ng, const nghttp2_frame *f, const uint8_t *name,
                     size_t namelen, const uint8_t *value, size_t valuelen, uint8_t flags,
                     void *user)
{
    struct h2c *c = user;
    struct h2s *s = stream_of(c, f->hd.stream_id);
    if (!s || s->dead || s->finished)
        return 0;
    if (h2_head_field(&s->head, &s->st.t.req, &s->st.t.arena, name, namelen, value, valuelen) < 0) {
        h2c_glitch(c);
        h2c_reset(c, s, NGHTTP2_PROTOCOL_ERROR);
    }
    return 0;
}

static void headers_done(struct h2c *c, const nghttp2_frame *f)
{
    struct h2s *s = stream_of(c, f->hd.stream_id);
    if (!s)
        return;
    bool end = f->hd.flags & NGHTTP2_FLAG_END_STREAM;
    if (s->dead && !s->routed) {
        s->head.err = s->head.err ? s->head.err : "malformed header block";
        s->routed = true;
        s->st.end = "bad_request";
        s->st.detail = s->head.err;
        CTR_ADD(lctr(c)->http_bad_requests, 1);
        return;
    }
    if (s->dead)
        return;
    if (f->headers.cat == NGHTTP2_HCAT_REQUEST)
        h2s_head_done(s, end);
    else
        h2s_trailers_done(s);
}

static int on_frame_recv(nghttp2_session *ng, const nghttp2_frame *f, void *user)
{
    struct h2c *c = user;
    if (f->hd.type == NGHTTP2_HEADERS) {
        headers_done(c, f);
    } else if (f->hd.type == NGHTTP2_DATA && (f->hd.flags & NGHTTP2_FLAG_END_STREAM)) {
        struct h2s *s = stream_of(c, f->hd.stream_id);
        if (s)
            s->req_eof = true;
    }
    return 0;
}

static int on_data_chunk(nghttp2_session *ng, uint8_t flags, int32_t id, const uint8_t *data,
                         size_t len, void *user)
{
    struct h2c *c = user;
    struct h2s *s = stream_of(c, id);
    if (!s || s->dead) {
        nghttp2_session_consume(ng, id, len);
        return 0;
    }
    if (!h2s_data(s, data, len)) { /* past the window we gave: nghttp2 should have caught it */
        nghttp2_session_consume(ng, id, len);
        h2c_glitch(c);
        h2c_reset(c, s, NGHTTP2_FLOW_CONTROL_ERROR);
    }
    return 0;
}

static int on_stream_close(nghttp2_session *ng, int32_t id, uint32_t error_code, void *user)
{
    struct h2c *c = user;
    struct h2s *s = stream_of(c, id);
    if (s && c->state != H2C_CLOSED)
        h2s_closed(s, error_code);
    return 0;
}

/* nghttp2 found a frame invalid (and reset its stream, or will end the connection). */
static int on_invalid_frame(nghttp2_session *ng, const nghttp2_frame *f, int err, void *user)
{
    h2c_glitch(user);
    return 0;
}

#define H2_WU_CREDIT_MAX 4096 /* window updates earned and not yet used, at most */

static int on_frame_send(nghttp2_session *ng, const nghttp2_frame *f, void *user)
{
    struct h2c *c = user;
    if (f->hd.type == NGHTTP2_DATA && f->hd.length && c->wu_credit < H2_WU_CREDIT_MAX)
        c->wu_credit += 2;
    if (f->hd.type == NGHTTP2_RST_STREAM && f->rst_stream.error_code == NGHTTP2_REFUSED_STREAM) {
        CTR_ADD(lctr(c)->h2_limits[H2L_STREAMS], 1);
        h2c_glitch(c);
    }
    if ((f->hd.type == NGHTTP2_DATA || f->hd.type == NGHTTP2_HEADERS) &&
        (f->hd.flags & NGHTTP2_FLAG_END_STREAM)) {
        struct h2s *s = stream_of(c, f->hd.stream_id);
        if (s)
            h2s_sent_end(s);
    }
    return 0;
}

/* ---- the nghttp2 session ---- */

/* The callbacks (nghttp2 copies them into each session). */
static nghttp2_session_callbacks *callbacks(void)
{
    nghttp2_session_callbacks *cb;
    if (nghttp2_session_callbacks_new(&cb) != 0)
        return NULL;
    nghttp2_session_callbacks_set_on_begin_frame_callback(cb, on_begin_frame);
    nghttp2_session_callbacks_set_on_begin_headers_callback(cb, on_begin_headers);
    nghttp2_session_callbacks_set_on_header_callback(cb, on_header);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cb, on_frame_recv);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, on_data_chunk);
    nghttp2_session_callbacks_set_on_stream_close_callback(cb, on_stream_close);
    nghttp2_session_callbacks_set_on_invalid_frame_recv_callback(cb, on_invalid_frame);
    nghttp2_session_callbacks_set_on_frame_send_callback(cb, on_frame_send);
    return cb;
}

static nghttp2_option *options(const struct http2_conf *h)
{
    nghttp2_option *o;
    if (nghttp2_option_new(&o) != 0)
        return NULL;
    nghttp2_option_set_no_auto_window_update(o, 1);
    nghttp2_option_set_max_settings(o, 32);
    nghttp2_option_set_max_outbound_ack(o, 1000); /* past our per-second limits */
    nghttp2_option_set_max_continuations(o, h->max_continuations);
    nghttp2_option_set_stream_reset_rate_limit(o, (uint64_t)h->resets_per_s * 2, h->resets_per_s);
    nghttp2_option_set_max_deflate_dynamic_table_size(o, 4096);
    return o;
}

/* nghttp2's server session, our SETTINGS queued: -1 out of memory. */
static int session_init(struct h2c *c)
{
    const struct http2_conf *h = &c->lc->http.h2;
    nghttp2_session_callbacks *cb = callbacks();
    nghttp2_option *o = cb ? options(h) : NULL;
    nghttp2_mem mem;
    int r = o ? nghttp2_session_server_new3(&c->ng, cb, c, o, h2_mem_of(c->w->h2mem, &mem)) : -1;
    nghttp2_option_del(o);
    nghttp2_session_callbacks_del(cb);
    if (r != 0) {
        c->ng = NULL;
        return -1;
    }
    nghttp2_settings_entry iv[] = {
        {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, h->max_streams},
        {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, h->window},
        {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, c->lc->http.limits.max_header_bytes},
        {NGHTTP2_SETTINGS_NO_RFC7540_PRIORITIES, 1},
        {NGHTTP2_SETTINGS_ENABLE_CONNECT_PROTOCOL, h->websocket}, /* RFC 8441 */
    };
    uint64_t conn_window = (uint64_t)h->window * h->max_streams;
    if (conn_window > H2_CONN_HELD)
        conn_window = h->window > H2_CONN_HELD ? h->window : H2_CONN_HELD;
    if (nghttp2_submit_settings(c->ng, NGHTTP2_FLAG_NONE, iv, sizeof(iv) / sizeof(iv[0])) != 0 ||
        nghttp2_session_set_local_window_size(c->ng, NGHTTP2_FLAG_NONE, 0, (int32_t)conn_window) !=
            0)
        return -1;
    return 0;
}

/* ---- I/O ---- */

/* A fatal error of nghttp2 (or of ours): nothing more is read, the connection ends once
 * what is queued (a GOAWAY) is out. */
static void fail(struct h2c *c, ssize_t err)
{
    if (err == NGHTTP2_ERR_TOO_MANY_CONTINUATIONS)
        calm(c, H2L_CONTINUATION);
    else if (err == NGHTTP2_ERR_FLOODED)
        calm(c, H2L_PING);
    c->fatal = true;
}

static enum move step_read(struct h2c *c)
{
    if (c->fatal || c->calm || c->out.len >= H2_OUT_HIGH || !nghttp2_session_want_read(c->ng) ||
        !(c->cli.flags & CONN_RD_READY) || (c->cli.flags & CONN_RD_EOF))
        return MOVE_NONE;
    char buf[READ_CHUNK];
    ssize_t n = c->cli.xprt->recv(&c->cli, buf, sizeof(buf));
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
        c->cli.flags |= n == 0 ? CONN_RD_EOF : CONN_ERROR;
        c->fatal = true;
        return MOVE_ERROR;
    }
    if (n < 0) {
        c->cli.flags &= ~CONN_RD_READY;
        return MOVE_NONE;
    }
    conn_note_read(&c->cli, (size_t)n, sizeof(buf));
    c->last_ms = c->w->loop.now_ms;
    ssize_t r = nghttp2_session_mem_recv(c->ng, (const uint8_t *)buf, (size_t)n);
    if (r < 0)
        fail(c, r);
    return MOVE_PROGRESS;
}

/* Appends to the output (it grows past H2_OUT_HIGH by at most one of nghttp2's chunks). */
static bool out_append(struct h2c *c, const uint8_t *p, size_t n)
{
    struct h2_buf *b = &c->out;
    if (b->off && b->off + b->len + n > b->cap) {
        memmove(b->p, b->p + b->off, b->len);
        b->off = 0;
    }
    if (b->len + n > b->cap) {
        uint32_t cap =
            (uint32_t)(b->len + n) > H2_OUT_HIGH * 2 ? (uint32_t)(b->len + n) : H2_OUT_HIGH * 2;
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

/* nghttp2's frames into the output, then to the client. */
static enum move step_send(struct h2c *c)
{
    enum move m = MOVE_NONE;
    while (c->out.len < H2_OUT_HIGH) {
        const uint8_t *p;
        ssize_t n = nghttp2_session_mem_send(c->ng, &p);
        if (n < 0 || (n > 0 && !out_append(c, p, (size_t)n))) {
            c->fatal = true;
            return MOVE_ERROR;
        }
        if (n == 0)
            break;
    }
    while (c->out.len && (c->cli.flags & CONN_WR_READY)) {
        ssize_t n = c->cli.xprt->send(&c->cli, c->out.p + c->out.off, c->out.len);
        if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
            c->cli.flags &= ~CONN_WR_READY;
            break;
        }
        if (n < 0) {
            c->cli.flags |= CONN_ERROR;
            c->fatal = true;
            c->out.len = 0;
            return MOVE_ERROR;
        }
        c->out.off += (uint32_t)n;
        c->out.len -= (uint32_t)n;
        c->last_ms = c->w->loop.now_ms;
        m = MOVE_PROGRESS;
    }
    if (!c->out.len)
        c->out.off = 0;
    return m;
}

static enum move step_streams(struct h2c *c)
{
    enum move m = MOVE_NONE;
    struct list *pos, *tmp;
    list_for_each_safe(pos, tmp, &c->streams)
    {
        if (h2s_step(list_entry(pos, struct h2s, link)) != MOVE_NONE)
            m = MOVE_PROGRESS;
    }
    return m;
}

/* The connection is over: nghttp2 wants nothing more and everything is sent, or it failed
 * (then whatever could not be sent is given up). */
static bool over(struct h2c *c)
{
    if (c->cli.flags & CONN_ERROR)
        return true;
    bool wants = nghttp2_session_want_read(c->ng) || nghttp2_session_want_write(c->ng);
    if (c->out.len)
        return false;
    return c->fatal || c->calm ? !nghttp2_session_want_write(c->ng) : !wants;
}

void h2c_run(struct h2c *c)
{
    if (c->state != H2C_OPEN || c->running)
        return;
    c->running = true;
    int i;
    for (i = 0; i < RUN_BUDGET; i++) {
        enum move m = step_read(c);
        m |= step_streams(c);
        m |= step_send(c);
        if (m == MOVE_NONE)
            break;
    }
    c->running = false;
    if (over(c)) {
        /* a GOAWAY out, the client maybe still sending: a reset could destroy the GOAWAY
         * (an abusive client gets none of this time) */
        c->linger = !c->calm && !(c->cli.flags & (CONN_RD_EOF | CONN_ERROR));
        session_close(c);
        return;
    }
    if (i == RUN_BUDGET)
        h2c_kick(c); /* a long transfer: let the other sessions of this worker run */
    h2c_arm_timer(c);
}

void h2c_kick(struct h2c *c)
{
    if (!c->running && c->state == H2C_OPEN)
        ev_task_queue(&c->w->loop, &c->task);
}

static void client_io(struct ev_loop *loop, struct ev_handler *h, uint32_t events)
{
    struct h2c *c = container_of(h, struct h2c, cli.h);
    conn_note_events(&c->cli, events);
    h2c_run(c);
}

/* ---- timers ---- */

/* When the connection has been quiet too long: no I/O at all for the listener's idle
 * timeout, or output waiting for a client that does not read for stream_stall_timeout. */
static uint64_t quiet_deadline(const struct h2c *c)
{
    uint32_t ms = c->lc->idle_timeout_ms;
    if (c->out.len && c->lc->http.h2.stall_ms < ms)
        ms = c->lc->http.h2.stall_ms;
    return c->last_ms + ms;
}

static uint64_t state_deadline(const struct h2c *c);

/* The next deadline, a reload's drain included. */
static uint64_t deadline(const struct h2c *c)
{
    uint64_t d = state_deadline(c);
    return c->drain_at_ms && c->drain_at_ms < d ? c->drain_at_ms : d;
}

static uint64_t state_deadline(const struct h2c *c)
{
    const struct http_timeouts *to = &c->lc->http.timeouts;
    if (c->state == H2C_SNIFF)
        return c->start_ms + to->request_header_ms;
    if (c->fatal || c->calm)
        return c->last_ms + CLOSING_MS;
    if (list_empty(&c->streams))
        return c->last_ms + (c->requests ? to->keepalive_ms : to->request_header_ms);
    uint64_t d = quiet_deadline(c);
    struct list *pos, *tmp;
    list_for_each_safe(pos, tmp, &c->streams)
    {
        uint64_t sd = h2s_deadline(list_entry(pos, struct h2s, link));
        if (sd && sd < d)
            d = sd;
    }
    return d;
}

static void timer_lost(struct h2c *c)
{
    c->timer_lost = true;
    ev_task_queue(&c->w->loop, &c->task);
}

void h2c_arm_timer(struct h2c *c)
{
    uint64_t d = deadline(c);
    if ((!ev_timer_armed(&c->timer) || d < c->timer.expire_ms) &&
        ev_timer_arm_at(&c->w->loop, &c->timer, d) < 0)
        timer_lost(c);
}

void h2c_arm_timer_for(struct h2c *c, const struct h2s *s)
{
    uint64_t d = h2s_deadline(s);
    if (!ev_timer_armed(&c->timer)) {
        h2c_arm_timer(c);
        return;
    }
    if (d && d < c->timer.expire_ms && ev_timer_arm_at(&c->w->loop, &c->timer, d) < 0)
        timer_lost(c);
}

static void expire_streams(struct h2c *c, uint64_t now)
{
    struct list *pos, *tmp;
    list_for_each_safe(pos, tmp, &c->streams)
    {
        struct h2s *s = list_entry(pos, struct h2s, link);
        uint64_t d = h2s_deadline(s);
        if (d && d <= now)
            h2s_expired(s);
    }
}

static void session_timer(struct ev_loop *loop, struct ev_timer *t)
{
    struct h2c *c = container_of(t, struct h2c, timer);
    uint64_t d = deadline(c);
    if (loop->now_ms < d) {
        if (ev_timer_arm_at(loop, t, d) < 0)
            timer_lost(c);
        return;
    }
    if (c->drain_at_ms && loop->now_ms >= c->drain_at_ms) { /* h2_reload */
        struct list *pos, *tmp;
        list_for_each_safe(pos, tmp, &c->streams)
        {
            list_entry(pos, struct h2s, link)->st.end = "reload_drain";
        }
        session_close(c);
        return;
    }
    if (c->state == H2C_OPEN && !c->fatal && !c->calm && list_empty(&c->streams)) {
        h2c_goaway(c); /* idle: said, then closed */
        step_send(c);
    }
    bool quiet = loop->now_ms >= quiet_deadline(c);
    struct list *pos, *tmp;
    list_for_each_safe(pos, tmp, &c->streams)
    {
        struct http_stream *st = &list_entry(pos, struct h2s, link)->st;
        if (quiet && !strcmp(st->end, "ok")) {
            st->end = st->tunnel ? "tunnel_idle" : "timeout"; /* a WebSocket (RFC 8441) */
            st->detail = st->tunnel ? NULL : "the client stopped reading";
        }
    }
    if (c->state == H2C_SNIFF || c->fatal || c->calm || list_empty(&c->streams) || quiet) {
        session_close(c); /* idle, or a preface or a GOAWAY that never came through */
        return;
    }
    expire_streams(c, loop->now_ms);
    h2c_run(c);
}

static void session_task(struct ev_task *t)
{
    struct h2c *c = container_of(t, struct h2c, task);
    if (c->timer_lost)
        session_close(c);
    else
        h2c_run(c);
}

/* ---- lifecycle ---- */

static void session_free(struct ev_defer *d)
{
    struct h2c *c = container_of(d, struct h2c, dfree);
    free(c->out.p);
    free(c);
}

/* Ends the streams left (their server sides cancelled, their lines logged) and the
 * connection. */
static void session_close(struct h2c *c)
{
    struct worker *w = c->w;
    if (c->state == H2C_CLOSED)
        return;
    struct list *pos, *tmp;
    list_for_each_safe(pos, tmp, &c->streams)
    {
        h2s_closed(list_entry(pos, struct h2s, link), NGHTTP2_CANCEL);
    }
    c->state = H2C_CLOSED;
    nghttp2_session_del(c->ng);
    c->ng = NULL;
    ev_timer_cancel(&w->loop, &c->timer);
    ev_task_cancel(&c->task);
    uint32_t linger_ms = c->linger ? c->lc->http.timeouts.lingering_ms : 0;
    if (linger_ms)
        CTR_ADD(lctr(c)->http_lingering, 1);
    admission_release(w->cfg, c->lc, &c->ad);
    conn_linger(w, &c->cli, linger_ms); /* 0: a plain close */
    list_del(&c->link);
    nsessions--;
    ev_defer_free(&w->loop, &c->dfree, session_free);
}

static struct h2c *session_new(struct worker *w, struct listener_conf *lc, struct accepted *a)
{
    struct h2c *c = calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    c->w = w;
    c->lc = lc;
    c->client = a->client;
    c->ad = a->ad;
    c->cli = a->cli;
    c->start_ms = c->last_ms = w->loop.now_ms;
    list_init(&c->streams);
    ev_timer_init(&c->timer, session_timer);
    ev_task_init(&c->task, session_task);
    list_add_tail(session_list(), &c->link);
    nsessions++;
    return c;
}

/* From the preface on: nghttp2's session, our SETTINGS, and the first bytes. */
static void session_open(struct h2c *c)
{
    c->state = H2C_OPEN;
    c->cli.h.cb = client_io;
    if (session_init(c) < 0) {
        c->fatal = true;
        session_close(c);
        return;
    }
    CTR_ADD(lctr(c)->h2_conns, 1);
    c->cli.flags |= CONN_RD_READY | CONN_WR_READY;
    h2c_run(c);
}

/* ---- h2c with prior knowledge: the preface decides ---- */

enum sniff { SNIFF_H2, SNIFF_H1, SNIFF_WAIT, SNIFF_EOF };

/* Peeks at the first bytes (they stay in the socket for whichever codec reads them). */
static enum sniff sniff(int fd)
{
    char buf[H2_PREFACE_LEN];
    ssize_t n = recv(fd, buf, sizeof(buf), MSG_PEEK);
    if (n < 0)
        return errno == EAGAIN || errno == EINTR ? SNIFF_WAIT : SNIFF_EOF;
    if (n == 0)
        return SNIFF_EOF;
    if (memcmp(buf, H2_PREFACE, (size_t)n) != 0)
        return SNIFF_H1;
    return n == H2_PREFACE_LEN ? SNIFF_H2 : SNIFF_WAIT;
}

static void sniff_io(struct ev_loop *loop, struct ev_handler *h, uint32_t events);

/* Not the preface: the connection goes to the HTTP/1 codec, registered as it is. */
static void hand_to_h1(struct h2c *c)
{
    struct accepted a = {.cli = c->cli, .client = c->client, .ad = c->ad, .registered = true};
    struct worker *w = c->w;
    struct listener_conf *lc = c->lc;
    c->state = H2C_CLOSED;
    ev_timer_cancel(&w->loop, &c->timer);
    list_del(&c->link);
    nsessions--;
    ev_defer_free(&w->loop, &c->dfree, session_free);
    h1_start(w, lc, &a); /* h2_claims knows it by its handler: sniff_io */
}

static void sniff_io(struct ev_loop *loop, struct ev_handler *h, uint32_t events)
{
    struct h2c *c = container_of(h, struct h2c, cli.h);
    if (c->state != H2C_SNIFF)
        return;
    switch (sniff(c->cli.h.fd)) {
    case SNIFF_H2:
        session_open(c);
        break;
    case SNIFF_H1:
        hand_to_h1(c);
        break;
    case SNIFF_EOF:
        session_close(c);
        break;
    case SNIFF_WAIT:
        break;
    }
}

static bool alpn_h2(const struct conn *cli)
{
    struct xprt_info info = {0};
    cli->xprt->info(cli, &info);
    return info.alpn_len == 2 && memcmp(info.alpn, "h2", 2) == 0;
}

bool h2_claims(struct worker *w, struct listener_conf *lc, struct accepted *a)
{
    const struct http2_conf *h = &lc->http.h2;
    bool tls = a->cli.ctx != NULL;
    if (a->registered && a->cli.h.cb == sniff_io)
        return false; /* handed back by the sniffer */
    /* over TLS the handshake decided: h2 is offered when enabled (or listed in tls.alpn) */
    if (tls ? !alpn_h2(&a->cli) : !h->cleartext)
        return false;
    enum sniff first = tls ? SNIFF_H2 : sniff(a->cli.h.fd);
    if (first == SNIFF_H1)
        return false;
    struct h2c *c = session_new(w, lc, a);
    if (!c) {
        CTR_ADD(lc->st.ctr[w->id].conns_rejected, 1);
        admission_release(w->cfg, lc, &a->ad);
        a->cli.xprt->close(&a->cli);
        return true;
    }
    c->state = H2C_SNIFF;
    c->cli.h.cb = sniff_io;
    if (conn_take_registration(w, &c->cli, a) < 0 || first == SNIFF_EOF) {
        session_close(c);
        return true;
    }
    h2c_arm_timer(c);
    if (first == SNIFF_H2)
        session_open(c);
    return true;
}

/* ---- the mode's hooks (h1_session.c) ---- */

void h2c_goaway(struct h2c *c)
{
    if (c->goaway || c->state != H2C_OPEN)
        return;
    c->goaway = true;
    nghttp2_submit_goaway(c->ng, NGHTTP2_FLAG_NONE, nghttp2_session_get_last_proc_stream_id(c->ng),
                          NGHTTP2_NO_ERROR, NULL, 0);
    h2c_kick(c);
}

void h2_drain(struct worker *w)
{
    struct list *pos, *tmp;
    list_for_each_safe(pos, tmp, session_list())
    {
        struct h2c *c = list_entry(pos, struct h2c, link);
        if (c->state == H2C_SNIFF) {
            session_close(c);
            continue;
        }
        h2c_goaway(c);
        h2c_run(c);
    }
}

bool h2c_follow(struct h2c *c)
{
    struct listener_conf *lc = admission_follow(c->w->cfg, c->lc, &c->ad, true);
    if (lc)
        c->lc = lc;
    return lc != NULL;
}

void h2_reload(struct worker *w)
{
    struct list *pos, *tmp;
    list_for_each_safe(pos, tmp, session_list())
    {
        struct h2c *c = list_entry(pos, struct h2c, link);
        if (c->state == H2C_SNIFF || c->goaway)
            continue;
        struct listener_conf *to = config_listener_successor(w->cfg, c->lc);
        if (!to || to->fp != c->lc->fp) { /* its listener changed: clients reach the new one
                                             by a new connection */
            c->drain_at_ms = w->loop.now_ms + w->cfg->reload_drain_ms;
            h2c_goaway(c);
            h2c_arm_timer(c);
            h2c_run(c);
        } else if (c->nstreams == 0) {
            h2c_follow(c);
        } else {
            struct list *sp, *stmp;
            list_for_each_safe(sp, stmp, &c->streams)
            {
                h2s_reload(list_entry(sp, struct h2s, link), w->cfg);
            }
            h2c_arm_timer(c);
        }
    }
}

void h2_close_all(struct worker *w)
{
    struct list *pos, *tmp;
    list_for_each_safe(pos, tmp, session_list())
    {
        struct h2c *c = list_entry(pos, struct h2c, link);
        struct list *sp, *stmp;
        list_for_each_safe(sp, stmp, &c->streams)
        {
            list_entry(sp, struct h2s, link)->st.end = "shutdown";
        }
        session_close(c);
    }
}

uint32_t h2_sessions(const struct worker *w)
{
    return nsessions;
}
