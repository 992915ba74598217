/* logbuf.c — see logbuf.h. */
#include "core/logbuf.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/bug.h"
#include "core/fmt.h"

#define PATH_MAX_KEY 320 /* "syslog:" + an address or a socket path */

/* ---- destinations (main thread; workers only read fd) ---- */

/* A destination: a file (or a standard stream) written in blocks, or a syslog socket
 * that takes one RFC 5424 message per line. */
static struct {
    int fd;
    unsigned refs;
    char *path; /* the file's path, or "syslog:" + the syslog address (the sharing key) */
    bool syslog;
    uint8_t pri;   /* syslog: facility * 8 + severity 6 (informational) */
    char tail[96]; /* syslog: " HOSTNAME strata PROCID - - " after the time */
} dests[LOG_DESTS_MAX] = {
    [LOG_DEST_STDERR] = {STDERR_FILENO, 1, NULL},
    [LOG_DEST_STDOUT] = {STDOUT_FILENO, 1, NULL},
};

/* The destination already open under `key` (one more reference), or a free slot in *slot
 * (-1 when none). */
static int dest_find(const char *key, int *slot)
{
    *slot = -1;
    for (int d = LOG_DEST_STDOUT + 1; d < LOG_DESTS_MAX; d++) {
        if (dests[d].refs && strcmp(dests[d].path, key) == 0) {
            dests[d].refs++;
            return d;
        }
        if (!dests[d].refs && *slot < 0)
            *slot = d;
    }
    return -1;
}

int log_dest_open(const char *path, int std_dest, char *err, size_t errlen)
{
    if (!path)
        return std_dest;
    int slot, d = dest_find(path, &slot);
    if (d >= 0)
        return d;
    if (slot < 0) {
        snprintf(err, errlen, "log %s: more than %d log files", path, LOG_DESTS_MAX - 2);
        return -1;
    }
    char *copy = strdup(path);
    int fd = copy ? open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640) : -1;
    if (fd < 0) {
        snprintf(err, errlen, "log %s: %s", path, copy ? strerror(errno) : "out of memory");
        free(copy);
        return -1;
    }
    dests[slot].fd = fd;
    dests[slot].refs = 1;
    dests[slot].path = copy;
    dests[slot].syslog = false;
    return slot;
}

/* A non-blocking datagram socket connected to the syslog daemon: a full socket buffer
 * drops lines rather than stalling a worker. */
static int syslog_socket(const struct syslog_conf *c)
{
    struct sockaddr_un un = {.sun_family = AF_UNIX};
    const struct sockaddr *sa = &c->addr.u.sa;
    socklen_t len = c->addr.len;
    if (c->unix_path) {
        if (strlen(c->text) >= sizeof(un.sun_path)) {
            errno = ENAMETOOLONG;
            return -1;
        }
        memcpy(un.sun_path, c->text, strlen(c->text) + 1);
        sa = (const struct sockaddr *)&un;
        len = sizeof(un);
    }
    int fd = socket(sa->sa_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    if (connect(fd, sa, len) < 0) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    return fd;
}

int log_dest_open_syslog(const struct syslog_conf *c, char *err, size_t errlen)
{
    char key[PATH_MAX_KEY];
    snprintf(key, sizeof(key), "syslog:%s", c->text);
    int slot, d = dest_find(key, &slot);
    if (d >= 0)
        return d;
    if (slot < 0) {
        snprintf(err, errlen, "syslog %s: more than %d log destinations", c->text,
                 LOG_DESTS_MAX - 2);
        return -1;
    }
    char *copy = strdup(key);
    int fd = copy ? syslog_socket(c) : -1;
    if (fd < 0) {
        snprintf(err, errlen, "syslog %s: %s", c->text, copy ? strerror(errno) : "out of memory");
        free(copy);
        return -1;
    }
    char host[64];
    if (gethostname(host, sizeof(host)) < 0 || !host[0])
        snprintf(host, sizeof(host), "-");
    host[sizeof(host) - 1] = 0;
    dests[slot].fd = fd;
    dests[slot].refs = 1;
    dests[slot].path = copy;
    dests[slot].syslog = true;
    dests[slot].pri = (uint8_t)(c->facility * 8 + 6);
    snprintf(dests[slot].tail, sizeof(dests[slot].tail), " %s strata %d - - ", host,
             (int)getpid());
    return slot;
}

void log_dest_close(int dest)
{
    if (dest <= LOG_DEST_STDOUT || dest >= LOG_DESTS_MAX || !dests[dest].refs)
        return;
    if (--dests[dest].refs)
        return;
    close(dests[dest].fd);
    free(dests[dest].path);
    dests[dest].path = NULL;
    dests[dest].fd = -1;
}

int log_target_open(struct log_target *t, const struct log_conf *c, int std_dest, char *err,
                    size_t errlen)
{
    t->format = (uint8_t)c->format;
    t->dest = -1;
    if (c->format == LOG_FORMAT_OFF)
        return 0;
    int d = c->syslog.text ? log_dest_open_syslog(&c->syslog, err, errlen)
                           : log_dest_open(c->path, std_dest, err, errlen);
    if (d < 0)
        return -1;
    t->dest = (int16_t)d;
    return 0;
}

void log_target_close(struct log_target *t)
{
    if (t->dest >= 0)
        log_dest_close(t->dest);
    t->dest = -1;
}

/* ---- a worker's buffers ---- */

static void date_of(struct log_bufs *b, time_t sec);
static void fmt_pad(char *out, unsigned v, unsigned d);

/* "<PRI>1 2026-01-02T03:04:05.678Z" for a syslog message sent now. */
static size_t syslog_head(struct log_bufs *b, int d, char *out)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    date_of(b, ts.tv_sec);
    size_t n = (size_t)snprintf(out, 8, "<%u>1 ", dests[d].pri);
    memcpy(out + n, b->date, 19);
    out[n + 19] = '.';
    fmt_pad(out + n + 20, (unsigned)(ts.tv_nsec / 1000000), 3);
    out[n + 23] = 'Z';
    return n + 24;
}

/* One datagram per line: the RFC 5424 header, then the line without its newline. A
 * message the socket cannot take now (a busy daemon, none listening) is dropped. */
static void flush_syslog(struct log_bufs *b, int d)
{
    char head[40];
    size_t hn = syslog_head(b, d, head), tn = strlen(dests[d].tail);
    const char *p = b->buf[d], *end = p + b->len[d];
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);
        struct iovec iov[3] = {{head, hn}, {dests[d].tail, tn}, {(void *)p, n}};
        struct msghdr msg = {.msg_iov = iov, .msg_iovlen = 3};
        while (sendmsg(dests[d].fd, &msg, MSG_NOSIGNAL) < 0 && errno == EINTR)
            ;
        p += n + 1;
    }
}

static void flush_one(struct log_bufs *b, int d)
{
    if (dests[d].syslog) {
        flush_syslog(b, d);
        b->len[d] = 0;
        b->dirty &= ~(1u << d);
        return;
    }
    size_t off = 0, len = b->len[d];
    while (off < len) {
        ssize_t n = write(dests[d].fd, b->buf[d] + off, len - off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break; /* a full disk or a closed pipe: the lines are dropped, not the loop */
        off += (size_t)n;
    }
    b->len[d] = 0;
    b->dirty &= ~(1u << d);
}

void log_bufs_flush(struct log_bufs *b)
{
    while (b->dirty)
        flush_one(b, __builtin_ctz(b->dirty));
}

void log_bufs_free(struct log_bufs *b)
{
    log_bufs_flush(b);
    for (int d = 0; d < LOG_DESTS_MAX; d++) {
        free(b->buf[d]);
        b->buf[d] = NULL;
    }
}

/* ---- lines ---- */

_Static_assert(LOG_DESTS_MAX <= 32, "dirty is a 32-bit mask");
_Static_assert(LOG_LINE_MAX < LOG_BUF_SIZE, "a line fits a buffer");

/* memcpy for the short pieces a line is made of (keys, names, numbers): up to 16 bytes in
 * two overlapping fixed-size moves the compiler inlines, instead of a call. */
static inline void copy(char *d, const char *s, size_t n)
{
    if (n >= 8 && n <= 16) {
        memcpy(d, s, 8);
        memcpy(d + n - 8, s + n - 8, 8);
    } else if (n >= 4 && n < 8) {
        memcpy(d, s, 4);
        memcpy(d + n - 4, s + n - 4, 4);
    } else {
        memcpy(d, s, n);
    }
}

static inline void put(struct log_line *l, const char *s, size_t n)
{
    if (n > l->cap - l->len)
        n = l->cap - l->len;
    copy(l->p + l->len, s, n);
    l->len += (uint32_t)n;
}

/* d digits of v, zero-padded */
static void fmt_pad(char *out, unsigned v, unsigned d)
{
    while (d--) {
        out[d] = (char)('0' + v % 10);
        v /= 10;
    }
}

/* "YYYY-MM-DDTHH:MM:SS" of t (UTC); gmtime_r only once a second. */
static void date_of(struct log_bufs *b, time_t sec)
{
    if (sec == b->date_sec && b->date[0])
        return;
    struct tm tm;
    gmtime_r(&sec, &tm);
    char *o = b->date;
    fmt_pad(o, (unsigned)tm.tm_year + 1900, 4);
    o[4] = '-';
    fmt_pad(o + 5, (unsigned)tm.tm_mon + 1, 2);
    o[7] = '-';
    fmt_pad(o + 8, (unsigned)tm.tm_mday, 2);
    o[10] = 'T';
    fmt_pad(o + 11, (unsigned)tm.tm_hour, 2);
    o[13] = ':';
    fmt_pad(o + 14, (unsigned)tm.tm_min, 2);
    o[16] = ':';
    fmt_pad(o + 17, (unsigned)tm.tm_sec, 2);
    b->date_sec = sec;
}

/* Makes room for one whole line in dest's buffer; false when out of memory. */
static bool reserve(struct log_bufs *b, int d)
{
    if (!b->buf[d] && !(b->buf[d] = malloc(LOG_BUF_SIZE)))
        return false;
    if (b->len[d] + LOG_LINE_MAX > LOG_BUF_SIZE)
        flush_one(b, d);
    return true;
}

bool log_begin(struct log_line *l, struct log_bufs *b, struct log_target t, const char *event)
{
    if (t.dest < 0 || t.format == LOG_FORMAT_OFF)
        return false;
    BUG_ON(t.dest >= LOG_DESTS_MAX);
    if (!reserve(b, t.dest))
        return false;
    *l = (struct log_line){.b = b,
                           .p = b->buf[t.dest] + b->len[t.dest],
                           .len = 0,
                           .cap = LOG_LINE_MAX - 2,
                           .dest = t.dest,
                           .json = t.format == LOG_FORMAT_JSON};
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    date_of(b, ts.tv_sec);
    char *o = l->p;
    if (l->json) {
        memcpy(o, "{\"time\":\"", 9);
        o += 9;
    }
    memcpy(o, b->date, 19);
    o[19] = '.';
    fmt_pad(o + 20, (unsigned)(ts.tv_nsec / 1000000), 3);
    o[23] = 'Z';
    o += 24;
    if (l->json)
        *o++ = '"';
    l->len = (uint32_t)(o - l->p);
    if (event) {
        if (l->json)
            put(l, ",\"event\":\"", 10);
        else
            put(l, " info ", 6);
        put(l, event, strlen(event));
        if (l->json)
            put(l, "\"", 1);
    }
    return true;
}

void log_end(struct log_line *l)
{
    if (l->json)
        l->p[l->len++] = '}';
    l->p[l->len++] = '\n';
    l->b->len[l->dest] += l->len;
    l->b->dirty |= 1u << l->dest;
}

void log_put_raw(struct log_line *l, const char *s, size_t n)
{
    put(l, s, n);
}

/* The key (and the value's opening quote), cut with the line if it does not fit. */
static void key(struct log_line *l, const struct log_key *k)
{
    const char *t = l->json ? k->json : k->text;
    size_t n = l->json ? k->json_len : k->text_len;
    if (n + 2 > l->cap - l->len) {
        l->len = l->cap;
        return;
    }
    copy(l->p + l->len, t, n);
    l->len += (uint32_t)n;
}

static inline void put1(struct log_line *l, char c)
{
    if (l->len < l->cap)
        l->p[l->len++] = c;
}

/* Bytes that are escaped: 1 in JSON strings, 2 in quoted text, 4 in bare text. */
static const uint8_t esc_class[256] = {
    [0 ... 0x1f] = 7, [' '] = 4, ['"'] = 7, ['\\'] = 7, [0x7f ... 0xff] = 7,
};

static void escaped(struct log_line *l, const char *s, size_t n, unsigned mask)
{
    static const char hex[] = "0123456789abcdef";
    char *o = l->p + l->len, *end = l->p + l->cap;
    size_t i = 0;
    while (i < n) {
        /* the run of bytes kept as they are, copied at once */
        size_t lim = n < i + (size_t)(end - o) ? n : i + (size_t)(end - o), j = i;
        while (j < lim && !(esc_class[(unsigned char)s[j]] & mask))
            j++;
        copy(o, s + i, j - i);
        o += j - i;
        i = j;
        if (i == n || end - o < 6)
            break;
        unsigned char c = (unsigned char)s[i++];
        if (mask == 1 && (c == '"' || c == '\\')) {
            *o++ = '\\';
            *o++ = (char)c;
        } else if (mask == 1) {
            memcpy(o, "\\u00", 4);
            o[4] = hex[c >> 4];
            o[5] = hex[c & 15];
            o += 6;
        } else {
            o[0] = '\\';
            o[1] = 'x';
            o[2] = hex[c >> 4];
            o[3] = hex[c & 15];
            o += 4;
        }
    }
    l->len = (uint32_t)(o - l->p);
}

void log_put_str(struct log_line *l, const struct log_key *k, const char *s, size_t n, bool quoted)
{
    key(l, k);
    if (!s) {
        s = "-";
        n = 1;
    }
    escaped(l, s, n, l->json ? 1 : quoted ? 2 : 4);
    if (l->json || quoted)
        put1(l, '"');
}

void log_put_cstr(struct log_line *l, const struct log_key *k, const char *s, bool quoted)
{
    log_put_str(l, k, s, s ? strlen(s) : 0, quoted);
}

void log_put_name(struct log_line *l, const struct log_key *k, const char *s, bool quoted)
{
    key(l, k);
    if (!s)
        s = "-";
    put(l, s, strlen(s));
    if (l->json || quoted)
        put1(l, '"');
}

void log_put_u64(struct log_line *l, const struct log_key *k, uint64_t v)
{
    char d[20];
    key(l, k);
    put(l, d, fmt_u64(d, v));
}

void log_put_ms(struct log_line *l, const struct log_key *k, int64_t us)
{
    key(l, k);
    if (us < 0) {
        if (l->json)
            put(l, "null", 4);
        else
            put(l, "-", 1);
        return;
    }
    char d[24];
    size_t n = fmt_u64(d, (uint64_t)us / 1000);
    d[n] = '.';
    fmt_pad(d + n + 1, (unsigned)((uint64_t)us % 1000), 3);
    put(l, d, n + 4);
}
