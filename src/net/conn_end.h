/* conn_end.h — how a client connection ended, as the connection log (`end=`) and the
 * listener counters name it; shared by the connection stage and the L4 relay.
 */
#ifndef STRATA_NET_CONN_END_H
#define STRATA_NET_CONN_END_H

enum conn_end {
    END_NONE,
    END_CLIENT_CLOSE,
    END_SERVER_CLOSE,
    END_CLIENT_ERROR,
    END_SERVER_ERROR,
    END_IDLE_TIMEOUT,
    END_CONNECT_FAILED,
    END_NO_SERVER,
    END_LIMIT,
    END_SHUTDOWN,
    END_DENIED,
    END_RATE_LIMITED,
    END_PROXY_ERROR,
    END_BAD_HELLO,
    END_NO_ROUTE,
    END_INSPECT_TIMEOUT,
    END_TLS_ERROR,
    END_HANDSHAKE_TIMEOUT,
    END_LOCAL_ERROR, /* this process ran short (memory for a timer) */
    END_RELOAD_DRAIN, /* a reload changed its path; timeouts.reload_drain ran out */
    END_COUNT
};

static const char *const conn_end_names[END_COUNT] = {
    [END_NONE] = "none",
    [END_CLIENT_CLOSE] = "client_close",
    [END_SERVER_CLOSE] = "server_close",
    [END_CLIENT_ERROR] = "client_error",
    [END_SERVER_ERROR] = "server_error",
    [END_IDLE_TIMEOUT] = "idle_timeout",
    [END_CONNECT_FAILED] = "connect_failed",
    [END_NO_SERVER] = "no_server",
    [END_LIMIT] = "limit",
    [END_SHUTDOWN] = "shutdown",
    [END_DENIED] = "denied",
    [END_RATE_LIMITED] = "rate_limited",
    [END_PROXY_ERROR] = "proxy_error",
    [END_BAD_HELLO] = "bad_client_hello",
    [END_NO_ROUTE] = "no_route",
    [END_INSPECT_TIMEOUT] = "inspect_timeout",
    [END_TLS_ERROR] = "tls_error",
    [END_HANDSHAKE_TIMEOUT] = "handshake_timeout",
    [END_LOCAL_ERROR] = "local_error",
    [END_RELOAD_DRAIN] = "reload_drain",
};

#endif
