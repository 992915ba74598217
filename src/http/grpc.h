/* grpc.h — what the stream and the router know of gRPC, an application protocol on HTTP/2
 * (github.com/grpc/grpc doc/PROTOCOL-HTTP2.md): which requests are gRPC calls, their
 * deadline (grpc-timeout), and the form of Strata's own answers to them — HTTP 200 with
 * the gRPC status in the head (a "trailers-only" response), never an HTML or text page.
 */
#ifndef STRATA_HTTP_GRPC_H
#define STRATA_HTTP_GRPC_H

#include <stdbool.h>
#include <stdint.h>

#include "http/msg-t.h"
#include "http/txn-t.h"

/* gRPC status codes Strata produces. */
enum grpc_code {
    GRPC_OK = 0,
    GRPC_UNKNOWN = 2,
    GRPC_DEADLINE_EXCEEDED = 4,
    GRPC_PERMISSION_DENIED = 7,
    GRPC_RESOURCE_EXHAUSTED = 8,
    GRPC_UNIMPLEMENTED = 12,
    GRPC_INTERNAL = 13,
    GRPC_UNAVAILABLE = 14,
    GRPC_UNAUTHENTICATED = 16,
};

/* m's content type is gRPC's: application/grpc, application/grpc+... or
 * application/grpc-web... (for a request: a gRPC call; a gRPC-Web call answered before its
 * filter ran still wants a gRPC status). */
bool grpc_content_type(const struct http_msg *m);

/* The request's grpc-timeout ("1*8DIGIT unit", unit one of H M S m u n) in milliseconds,
 * rounded up; 0 when absent or malformed (no deadline). */
uint64_t grpc_timeout_ms(const struct http_msg *req);

/* The gRPC status for an HTTP status Strata answers with (grpc's
 * doc/http-grpc-status-mapping.md; timeouts are DEADLINE_EXCEEDED). */
enum grpc_code grpc_code_for(unsigned http_status);

/* Turns t->resp (an answer with `http_status`) into the gRPC form: 200, content-type
 * application/grpc, grpc-status and grpc-message (`message`, percent-encoded) in the head,
 * no body. Returns 0 or -1 (no memory). */
int grpc_answer(struct http_txn *t, unsigned http_status, const char *message);

#endif
