/* access_log.h — one line per HTTP request, JSON or text, built in the worker's log buffer
 * for the listener's destination and written once per event batch (core/logbuf.h: the
 * machinery the L4 connection and flow logs share), so logging costs no syscall per line.
 */
#ifndef STRATA_HTTP_ACCESS_LOG_H
#define STRATA_HTTP_ACCESS_LOG_H

#include <stdint.h>

#include "config/config-t.h"
#include "http/txn-t.h"

struct worker;

struct access_entry {
    const struct http_txn *t;
    uint16_t status;    /* sent to the client; 0 = none (connection cut) */
    uint64_t bytes_in;  /* request bytes read from the client (head and body) */
    uint64_t bytes_out; /* response bytes written to the client */
    uint64_t total_us;  /* first request byte to last response byte */
    int64_t connect_us; /* upstream connect, -1 when no new connection was made */
    int64_t ttfb_us;    /* request start to the first response byte, -1 when none */
    uint32_t retries;
    const char *end;    /* how it ended: "ok", "client_abort", "server_error"... */
    const char *detail; /* or NULL */
};

/* Opens every HTTP listener's access log (path, or stdout) into lc->st.access; dest -1
 * for the others and those with the log off. Returns 0, or -1 with a message in err. */
int access_log_open(struct config *cfg, char *err, size_t errlen);
void access_log_close(struct config *cfg);

/* Formats one line into the worker's buffer. */
void access_log_write(struct worker *w, const struct listener_conf *lc,
                      const struct access_entry *e);

#endif
