/* ws_handshake.h — the two values of a WebSocket opening handshake (RFC 6455 §4) that
 * Strata computes itself when it speaks for a client that has none: an HTTP/2 client's
 * extended CONNECT (RFC 8441) relayed to an HTTP/1 server as an Upgrade.
 */
#ifndef STRATA_HTTP_WS_HANDSHAKE_H
#define STRATA_HTTP_WS_HANDSHAKE_H

#include <stdbool.h>

#include "http/msg-t.h"

#define WS_KEY_LEN 24    /* base64 of 16 random bytes */
#define WS_ACCEPT_LEN 28 /* base64 of a SHA-1 digest */

/* A new Sec-WebSocket-Key into out (WS_KEY_LEN bytes and a NUL); false when no random
 * bytes could be had. */
bool ws_key_new(char out[WS_KEY_LEN + 1]);
/* The Sec-WebSocket-Accept a server must answer to `key` into out (WS_ACCEPT_LEN bytes and
 * a NUL); false when the digest failed. */
bool ws_accept_of(struct hstr key, char out[WS_ACCEPT_LEN + 1]);

#endif
