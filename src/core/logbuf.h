/* logbuf.h — buffered log lines, one mechanism for every per-event log: the HTTP access log
 * (http/access_log.c), the L4 connection and flow logs (l4/, net/stage.c) and the worker's
 * own lines (ev/worker.c).
 *
 * Destinations (a file by path, stderr/stdout, or a syslog socket) are opened once per process by the main
 * thread before the workers start, shared by every listener naming the same path, and
 * reference-counted. Each worker keeps one buffer per destination (struct log_bufs) and
 * writes it once per event batch, or earlier when it fills: never a syscall per line. A
 * line is built in place in that buffer by hand-written appends (no printf), as text
 * (`key=value`) or JSON (one object per line); a line longer than LOG_LINE_MAX is cut.
 */
#ifndef STRATA_CORE_LOGBUF_H
#define STRATA_CORE_LOGBUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "core/logbuf-t.h"

#define LOG_DESTS_MAX 32   /* distinct destinations per process, stderr and stdout included */
#define LOG_DEST_STDERR 0  /* always open, never closed */
#define LOG_DEST_STDOUT 1  /* always open, never closed */
#define LOG_BUF_SIZE 65536 /* per destination and worker, allocated on its first line */
#define LOG_LINE_MAX 4096

/* Opens `path` for appending (O_APPEND | O_CREAT, 0640), or returns std_dest when path is
 * NULL; a path already open is shared (one more reference). Main thread only, before the
 * workers run. Returns the destination, or -1 with a message in err. */
int log_dest_open(const char *path, int std_dest, char *err, size_t errlen);
/* Opens (or shares, by address) a syslog destination: a non-blocking datagram socket
 * connected to c's Unix path or UDP address; each line goes out as one RFC 5424 message
 * ("<PRI>1 TIME HOST strata PID - - LINE"). Same rules as log_dest_open. */
int log_dest_open_syslog(const struct syslog_conf *c, char *err, size_t errlen);
/* Drops one reference taken by log_dest_open; the last one closes the file. */
void log_dest_close(int dest);
/* log_dest_open() (or log_dest_open_syslog() when c->syslog is set) for a configured log:
 * t->dest = -1 when the format is off. */
int log_target_open(struct log_target *t, const struct log_conf *c, int std_dest, char *err,
                    size_t errlen);
void log_target_close(struct log_target *t);

/* A worker's buffers, one per destination. Zero-initialise; one thread only. */
struct log_bufs {
    char *buf[LOG_DESTS_MAX];
    uint32_t len[LOG_DESTS_MAX];
    uint32_t dirty;  /* bit d: buf[d] holds lines */
    time_t date_sec; /* the second `date` was formatted for */
    char date[20];   /* "2026-01-02T03:04:05" */
};

/* Writes every buffer that holds lines (a failed write drops the lines, never blocks the
 * loop longer than the write). */
void log_bufs_flush(struct log_bufs *b);
void log_bufs_free(struct log_bufs *b);

/* A line being built at the end of a destination's buffer. */
struct log_line {
    struct log_bufs *b;
    char *p;      /* the line's first byte */
    uint32_t len; /* bytes written */
    uint32_t cap; /* bytes a field may use (room for the closing "}\n" kept apart) */
    int dest;
    bool json;
};

/* Starts a line for t: the time ("2026-01-02T03:04:05.678Z", cached per second) then, when
 * `event` is given, " info EVENT" in text or ,"event":"EVENT" in JSON. Returns false (and
 * nothing is written) when the log is off or out of memory. */
bool log_begin(struct log_line *l, struct log_bufs *b, struct log_target t, const char *event);
/* Ends the line ('}' in JSON, then '\n') and keeps it in the buffer. */
void log_end(struct log_line *l);

/* Fields. Keys are string literals. `str`: text key="value" (escaped \xHH: bytes outside
 * printable ASCII, '"' and '\'); `word`: text key=value, also escaping ' ' (names,
 * addresses); both are JSON strings; a NULL s stands for "-". `u64`: a number. `ms`:
 * microseconds as milliseconds with three decimals; < 0 is - in text, null in JSON. */
#define log_str(l, k, s, n) log_put_str(l, LOG_KEY_(" " k "=\"", ",\"" k "\":\""), s, n, true)
#define log_word(l, k, s, n) log_put_str(l, LOG_KEY_(" " k "=", ",\"" k "\":\""), s, n, false)
#define log_cstr(l, k, s) log_put_cstr(l, LOG_KEY_(" " k "=\"", ",\"" k "\":\""), s, true)
#define log_cword(l, k, s) log_put_cstr(l, LOG_KEY_(" " k "=", ",\"" k "\":\""), s, false)
/* Values that need no escaping — configuration names (letters, digits, `_.-#`), addresses
 * and words Strata made — written as `str` (quoted) or `word` without looking at them. */
#define log_name(l, k, s) log_put_name(l, LOG_KEY_(" " k "=\"", ",\"" k "\":\""), s, true)
#define log_nword(l, k, s) log_put_name(l, LOG_KEY_(" " k "=", ",\"" k "\":\""), s, false)
#define log_u64(l, k, v) log_put_u64(l, LOG_KEY_(" " k "=", ",\"" k "\":"), v)
#define log_ms(l, k, us) log_put_ms(l, LOG_KEY_(" " k "=", ",\"" k "\":"), us)

/* A key as written before its value in each format, quote included: made once, at compile
 * time, by the macros above. */
struct log_key {
    const char *text, *json;
    uint8_t text_len, json_len;
};
#define LOG_KEY_(t, j)                                                                             \
    ({                                                                                             \
        static const struct log_key k_ = {t, j, sizeof(t) - 1, sizeof(j) - 1};                     \
        &k_;                                                                                       \
    })
void log_put_str(struct log_line *l, const struct log_key *k, const char *s, size_t n, bool quoted);
void log_put_cstr(struct log_line *l, const struct log_key *k, const char *s, bool quoted);
void log_put_name(struct log_line *l, const struct log_key *k, const char *s, bool quoted);
void log_put_u64(struct log_line *l, const struct log_key *k, uint64_t v);
void log_put_ms(struct log_line *l, const struct log_key *k, int64_t us);
/* Raw bytes, unescaped (text lines whose shape is fixed by the caller). */
void log_put_raw(struct log_line *l, const char *s, size_t n);

#endif
