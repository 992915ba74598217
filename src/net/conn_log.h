/* conn_log.h — the `conn` line of a listener's connection log (`log:`): one per TCP relay
 * session (l4/tcp_proxy.c) and per connection the stage refused or lost (net/stage.c),
 * text or JSON, buffered by the worker (core/logbuf.h).
 */
#ifndef STRATA_NET_CONN_LOG_H
#define STRATA_NET_CONN_LOG_H

#include <stdint.h>

#include "config/config-t.h"
#include "net/addr.h"
#include "net/conn_end.h"

struct worker;

struct conn_log_entry {
    const struct sockaddr_any *client;
    const char *server; /* name, or NULL */
    uint64_t bytes_in, bytes_out, duration_ms;
    enum conn_end end;
    const char *error; /* detail, or NULL */
};

void conn_log(struct worker *w, const struct listener_conf *lc, const struct conn_log_entry *e);

#endif
