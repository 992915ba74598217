/* xprt_tls.c — the TLS transport: struct xprt_ops over an OpenSSL SSL on a socket BIO.
 *
 * c->ctx is the SSL (its app data word holds the failure reason and flags, tls_int.h).
 * Readiness: a step that waits clears the readiness flag it used up, as a plain recv
 * returning EAGAIN would; when a read must write first (or a write read first) it also
 * sets CONN_RD_WANTS_WR (CONN_WR_WANTS_RD), so that conn_note_events() turns the other
 * direction's event into the readiness the step waits for.
 *
 * send() after EAGAIN must be called again with at least the bytes it was given (the
 * buffer may move: SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER), as OpenSSL has already framed
 * them. The socket BIO writes with write(2): the process ignores SIGPIPE (main.c).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/x509.h>

#include "tls/tls_int.h"

static SSL *ssl_of(const struct conn *c)
{
    return c->ctx;
}

/* Before an SSL I/O call: SSL_get_error() needs an empty error queue. Emptying it with
 * ERR_clear_error() resets all its slots (about 5% of a keep-alive request's
 * instructions); looking first costs a fraction, and the queue is almost always empty. */
static void empty_error_queue(void)
{
    if (ERR_peek_error() != 0)
        ERR_clear_error();
}

static void state_or(SSL *s, uintptr_t bits)
{
    tls_state_set(s, tls_state(s) | bits);
}

static void set_fail(SSL *s, enum tls_fail f)
{
    tls_state_set(s, (tls_state(s) & ~(uintptr_t)TLS_ST_FAIL_MASK) | TLS_ST_FATAL | f);
}

/* The reason of an SSL_ERROR_SSL, from the first libssl error in the queue (which it
 * empties). */
static enum tls_fail ssl_reason(void)
{
    unsigned long e;
    int reason = 0;
    while ((e = ERR_get_error()) != 0)
        if (!reason && ERR_GET_LIB(e) == ERR_LIB_SSL)
            reason = ERR_GET_REASON(e);
    switch (reason) {
    case SSL_R_UNEXPECTED_EOF_WHILE_READING:
        return TLS_FAIL_EOF;
    case SSL_R_WRONG_VERSION_NUMBER:
    case SSL_R_HTTP_REQUEST:
    case SSL_R_HTTPS_PROXY_REQUEST:
    case SSL_R_UNKNOWN_PROTOCOL:
        return TLS_FAIL_NOT_TLS;
    case SSL_R_NO_SHARED_CIPHER:
    case SSL_R_UNSUPPORTED_PROTOCOL:
    case SSL_R_NO_PROTOCOLS_AVAILABLE:
    case SSL_R_VERSION_TOO_LOW:
    case SSL_R_VERSION_TOO_HIGH:
    case SSL_R_NO_SHARED_GROUPS:
    case SSL_R_NO_SUITABLE_SIGNATURE_ALGORITHM:
    case SSL_R_NO_CIPHERS_AVAILABLE:
    case SSL_R_TLSV1_ALERT_PROTOCOL_VERSION:
        return TLS_FAIL_NO_SHARED;
    case SSL_R_CERTIFICATE_VERIFY_FAILED:
        return TLS_FAIL_BAD_CERT;
    case SSL_R_PEER_DID_NOT_RETURN_A_CERTIFICATE:
    case SSL_R_TLSV13_ALERT_CERTIFICATE_REQUIRED:
        return TLS_FAIL_CERT_REQUIRED;
    default:
        return reason >= SSL_AD_REASON_OFFSET ? TLS_FAIL_PEER_ALERT : TLS_FAIL_HANDSHAKE;
    }
}

enum step { STEP_HANDSHAKE, STEP_READ, STEP_WRITE };

/* Maps a failed SSL call's error: -1 with errno EAGAIN (flags updated), or with the
 * failure reason in *fail and errno ECONNRESET (EOF) or EPROTO. A handshake step clears
 * the readiness it waits for; a read that must write (a write that must read) clears its
 * own readiness and sets the matching WANTS flag. */
static int failed(struct conn *c, int err, enum step step, enum tls_fail *fail)
{
    SSL *s = ssl_of(c);
    int saved = errno;
    *fail = TLS_FAIL_NONE;
    switch (err) {
    case SSL_ERROR_WANT_READ:
        c->flags &= step == STEP_WRITE ? ~(uint32_t)CONN_WR_READY : ~(uint32_t)CONN_RD_READY;
        c->flags |= step == STEP_WRITE ? CONN_WR_WANTS_RD : 0;
        if (step == STEP_HANDSHAKE)
            state_or(s, TLS_ST_HS_WAIT_RD);
        errno = EAGAIN;
        return -1;
    case SSL_ERROR_WANT_WRITE:
        c->flags &= step == STEP_READ ? ~(uint32_t)CONN_RD_READY : ~(uint32_t)CONN_WR_READY;
        c->flags |= step == STEP_READ ? CONN_RD_WANTS_WR : 0;
        if (step == STEP_HANDSHAKE)
            state_or(s, TLS_ST_HS_WAIT_WR);
        errno = EAGAIN;
        return -1;
    case SSL_ERROR_ZERO_RETURN:
        *fail = TLS_FAIL_EOF;
        ERR_clear_error();
        break;
    case SSL_ERROR_SYSCALL:
        *fail =
            saved == 0 || saved == ECONNRESET || saved == EPIPE ? TLS_FAIL_EOF : TLS_FAIL_HANDSHAKE;
        ERR_clear_error();
        break;
    default:
        *fail = ssl_reason();
        break;
    }
    set_fail(s, *fail);
    errno = *fail == TLS_FAIL_EOF ? ECONNRESET : EPROTO;
    return -1;
}

/* After a read from the socket (TLS_ST_READ): whether it drained the socket, for
 * note_drained(). */
static void note_socket_read(struct conn *c, SSL *s)
{
    uintptr_t st = tls_state(s);
    if (!(st & TLS_ST_READ))
        return;
    if (st & TLS_ST_SHORT_READ)
        c->flags |= CONN_RD_DRAINED;
    else
        c->flags &= ~CONN_RD_DRAINED;
}

/* Before an SSL call that may read: no socket read seen yet in this step (the `clear` bits
 * cleared too), and whether the peer's FIN was seen (tls_ctx.c's read needs it). */
static void begin_step(const struct conn *c, SSL *s, uintptr_t clear)
{
    uintptr_t st = tls_state(s) & ~(clear | TLS_ST_READ | TLS_ST_RD_HUP);
    tls_state_set(s, st | (c->flags & CONN_RD_HUP ? TLS_ST_RD_HUP : 0));
}

/* A handshake that waits for readability (writability) is not retried on a wake-up that
 * brings only the other: OpenSSL would try the socket and get EAGAIN again (an EPOLLOUT
 * edge follows each flight we send, when the peer's ACK frees the send buffer). */
static bool handshake_may_progress(const struct conn *c, uintptr_t st)
{
    return !((st & TLS_ST_HS_WAIT_RD) && !(c->flags & CONN_RD_READY)) &&
           !((st & TLS_ST_HS_WAIT_WR) && !(c->flags & CONN_WR_READY));
}

/* Sends the handshake output gathered so far: 1 all sent, 0 the socket is full (waits
 * for writability), -1 failed (*fail, errno). */
static int send_gathered(struct conn *c, SSL *s, enum tls_fail *fail)
{
    int rc = tls_send_gathered(s, c->h.fd);
    if (rc == 0) {
        c->flags &= ~CONN_WR_READY;
        tls_state_set(s, (tls_state(s) & ~(uintptr_t)TLS_ST_HS_WAIT_RD) | TLS_ST_HS_WAIT_WR);
        errno = EAGAIN;
    } else if (rc < 0) {
        *fail = errno == EPIPE || errno == ECONNRESET ? TLS_FAIL_EOF : TLS_FAIL_HANDSHAKE;
        set_fail(s, *fail);
        errno = *fail == TLS_FAIL_EOF ? ECONNRESET : EPROTO;
    }
    return rc;
}

/* One handshake step. What OpenSSL writes during it is gathered and sent at the end in one
 * write(2) (a TLS 1.3 server's session tickets: one segment instead of one per ticket);
 * the handshake is done only once all of it has left. */
static int tls_handshake(struct conn *c, const char **why)
{
    SSL *s = ssl_of(c);
    enum tls_fail fail = TLS_FAIL_NONE;
    bool gathered = tls_has_gathered(s);
    if (SSL_is_init_finished(s) && !gathered)
        return 0;
    if (!handshake_may_progress(c, tls_state(s))) {
        errno = EAGAIN;
        return -1;
    }
    begin_step(c, s, TLS_ST_HS_WAIT_RD | TLS_ST_HS_WAIT_WR);
    if (gathered && send_gathered(c, s, &fail) <= 0)
        goto out;
    if (SSL_is_init_finished(s))
        return 0;
    empty_error_queue();
    errno = 0; /* SSL_ERROR_SYSCALL with errno 0: the peer closed */
    state_or(s, TLS_ST_GATHER);
    int rc = SSL_do_handshake(s);
    int err = rc == 1 ? SSL_ERROR_NONE : SSL_get_error(s, rc), saved = errno;
    tls_state_set(s, tls_state(s) & ~(uintptr_t)TLS_ST_GATHER);
    note_socket_read(c, s);
    int sent = send_gathered(c, s, &fail); /* also an alert before a failure */
    if (rc == 1 && sent > 0)
        return 0;
    /* done or waiting, but our output has not all left: wait for writability (the peer's
     * answer cannot come before it), or fail if the socket did */
    if (rc == 1 || (sent <= 0 && (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE)))
        goto out;
    errno = saved;
    fail = TLS_FAIL_NONE;
    failed(c, err, STEP_HANDSHAKE, &fail);
    if (fail != TLS_FAIL_NONE && (tls_state(s) & TLS_ST_NOT_TLS)) {
        fail = TLS_FAIL_NOT_TLS; /* whatever OpenSSL made of the plaintext */
        set_fail(s, fail);
        errno = EPROTO;
    }
out:
    if (fail != TLS_FAIL_NONE)
        *why = tls_fail_reasons[fail];
    return -1;
}

/* After a read that returned data: when the last socket read came back short (in this
 * call or an earlier one: a handshake's read-ahead often holds the first request) and no
 * EPOLLIN came since, with nothing left inside OpenSSL, the socket is drained (see
 * tls_ctx.c): no read that would say EAGAIN. */
static void note_drained(struct conn *c, SSL *s)
{
    note_socket_read(c, s);
    if ((c->flags & CONN_RD_DRAINED) && !SSL_has_pending(s) && !(c->flags & CONN_RD_HUP))
        c->flags &= ~CONN_RD_READY;
}

static ssize_t tls_recv(struct conn *c, void *buf, size_t len)
{
    SSL *s = ssl_of(c);
    size_t n = 0;
    enum tls_fail fail;
    empty_error_queue();
    errno = 0;
    begin_step(c, s, 0);
    if (SSL_read_ex(s, buf, len, &n) == 1) {
        note_drained(c, s);
        return (ssize_t)n;
    }
    int err = SSL_get_error(s, 0);
    if (err == SSL_ERROR_ZERO_RETURN)
        return 0; /* close_notify */
    failed(c, err, STEP_READ, &fail);
    if (fail != TLS_FAIL_EOF)
        return -1;
    /* closed without close_notify: an end all the same, and no failure to count (the SSL
     * stays marked fatal: no close_notify can follow) */
    tls_state_set(s, tls_state(s) & ~(uintptr_t)TLS_ST_FAIL_MASK);
    return 0;
}

static ssize_t tls_send(struct conn *c, const void *buf, size_t len)
{
    SSL *s = ssl_of(c);
    size_t n = 0;
    enum tls_fail fail;
    if (len == 0)
        return 0;
    begin_step(c, s, 0); /* no stale short-read note may fake an EAGAIN in a write */
    empty_error_queue();
    errno = 0;
    if (SSL_write_ex(s, buf, len, &n) == 1)
        return (ssize_t)n;
    int err = SSL_get_error(s, 0);
    failed(c, err, STEP_WRITE, &fail);
    if (fail == TLS_FAIL_EOF)
        errno = EPIPE;
    return -1;
}

static bool tls_pending(const struct conn *c)
{
    return SSL_pending(ssl_of(c)) > 0 || SSL_has_pending(ssl_of(c));
}

/* close_notify once (not after a fatal error, nor before the handshake ended), then FIN.
 * A close_notify that does not fit in the socket buffer now is dropped: the FIN follows
 * regardless, and the peer sees an end without close_notify, which we accept too. */
static int tls_shutdown_wr(struct conn *c)
{
    SSL *s = ssl_of(c);
    uintptr_t st = tls_state(s);
    if (!(st & (TLS_ST_CLOSE_SENT | TLS_ST_FATAL)) && SSL_is_init_finished(s)) {
        ERR_clear_error();
        SSL_shutdown(s);
        ERR_clear_error();
        state_or(s, TLS_ST_CLOSE_SENT);
    }
    return shutdown(c->h.fd, SHUT_WR);
}

/* OpenSSL invalidates the session of a healthy connection freed without close_notify
 * (ssl_clear_bad_session); with TLS 1.3 that is the session just cached for the next
 * connection to the server. A connection ending without close_notify (idle pool
 * connections, a peer's FIN) is not a bad session: mark the shutdown as done. */
static void tls_close(struct conn *c)
{
    SSL *s = ssl_of(c);
    /* An orderly close sends close_notify (best effort: a full socket buffer drops it):
     * without it, clients that read to EOF (OpenSSL's, for one) discard the session and
     * cannot resume. Either way the session stays valid for resumption. */
    if (s && !(tls_state(s) & TLS_ST_FATAL)) {
        if (SSL_is_init_finished(s) && !(SSL_get_shutdown(s) & SSL_SENT_SHUTDOWN) && c->h.fd >= 0 &&
            SSL_shutdown(s) < 0)
            ERR_clear_error(); /* a failed send must not leave errors for the next SSL call */
        SSL_set_shutdown(s, SSL_get_shutdown(s) | SSL_SENT_SHUTDOWN);
    }
    SSL_free(s);
    c->ctx = NULL;
    if (c->h.fd >= 0)
        close(c->h.fd);
    c->h.fd = -1;
}

static int peer_subject(SSL *s, char *buf, size_t len);
static int peer_fingerprint(SSL *s, char *hex, size_t len);

/* The subject and fingerprint of a verified peer, made once per connection. */
struct peer_id {
    char fingerprint[2 * 32 + 1];
    char subject[]; /* RFC 2253 */
};

static const struct peer_id *peer_id(SSL *s)
{
    struct peer_id *p = SSL_get_ex_data(s, tls_peer_index);
    char subj[1024];
    if (p)
        return p;
    int n = peer_subject(s, subj, sizeof(subj));
    if (n < 0 || !(p = malloc(sizeof(*p) + (size_t)n + 1)))
        return NULL;
    memcpy(p->subject, subj, (size_t)n + 1);
    if (peer_fingerprint(s, p->fingerprint, sizeof(p->fingerprint)) < 0 ||
        SSL_set_ex_data(s, tls_peer_index, p) != 1) {
        free(p);
        return NULL;
    }
    return p;
}

static void tls_info(const struct conn *c, struct xprt_info *out)
{
    const SSL *s = ssl_of(c);
    memset(out, 0, sizeof(*out));
    if (!s || !SSL_is_init_finished(s))
        return;
    out->version = SSL_get_version(s);
    out->cipher = SSL_get_cipher_name(s);
    out->sni = SSL_get_servername(s, TLSEXT_NAMETYPE_host_name);
    SSL_get0_alpn_selected(s, &out->alpn, &out->alpn_len);
    out->resumed = SSL_session_reused(s) == 1;
    out->peer_verified = (SSL_get_verify_mode(s) & SSL_VERIFY_PEER) &&
                         SSL_get0_peer_certificate(s) && SSL_get_verify_result(s) == X509_V_OK;
    const struct peer_id *p = out->peer_verified ? peer_id(ssl_of(c)) : NULL;
    if (p) {
        out->peer_subject = p->subject;
        out->peer_fingerprint = p->fingerprint;
    }
}

const struct xprt_ops xprt_tls = {
    .name = "tls",
    .recv = tls_recv,
    .send = tls_send,
    .handshake = tls_handshake,
    .pending = tls_pending,
    .shutdown_wr = tls_shutdown_wr,
    .close = tls_close,
    .info = tls_info,
    .can_splice = false,
    .short_read_drains = false,
};

enum tls_fail tls_last_fail(const struct conn *c)
{
    if (c->xprt != &xprt_tls || !c->ctx)
        return TLS_FAIL_NONE;
    return (enum tls_fail)(tls_state(ssl_of(c)) & TLS_ST_FAIL_MASK);
}

static int peer_subject(SSL *s, char *buf, size_t len)
{
    X509 *x = SSL_get0_peer_certificate(s);
    BIO *bio = x ? BIO_new(BIO_s_mem()) : NULL;
    char *data;
    int rc = -1;
    if (bio && X509_NAME_print_ex(bio, X509_get_subject_name(x), 0, XN_FLAG_RFC2253) >= 0) {
        long n = BIO_get_mem_data(bio, &data);
        if (n >= 0 && (size_t)n < len) {
            memcpy(buf, data, (size_t)n);
            buf[n] = '\0';
            rc = (int)n;
        }
    }
    BIO_free(bio);
    ERR_clear_error();
    return rc;
}

static int peer_fingerprint(SSL *s, char *hex, size_t len)
{
    static const char digits[] = "0123456789abcdef";
    X509 *x = SSL_get0_peer_certificate(s);
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    if (!x || !X509_digest(x, tls_algs.sha256, md, &n) || len < 2 * (size_t)n + 1) {
        ERR_clear_error();
        return -1;
    }
    for (unsigned i = 0; i < n; i++) {
        hex[2 * i] = digits[md[i] >> 4];
        hex[2 * i + 1] = digits[md[i] & 15];
    }
    hex[2 * n] = '\0';
    return (int)(2 * n);
}

int xprt_tls_peer_subject(const struct conn *c, char *buf, size_t len)
{
    return c->xprt == &xprt_tls && c->ctx ? peer_subject(ssl_of(c), buf, len) : -1;
}

int xprt_tls_peer_fingerprint(const struct conn *c, char *hex, size_t len)
{
    return c->xprt == &xprt_tls && c->ctx ? peer_fingerprint(ssl_of(c), hex, len) : -1;
}
