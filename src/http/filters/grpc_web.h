/* grpc_web.h — the pieces of the grpc_web filter (grpc_web.c) that work on bytes alone:
 * streaming base64 both ways, the tracking of gRPC frame boundaries in a response body,
 * and the trailer frame. Pure functions on caller-owned memory; exposed for the unit tests.
 */
#ifndef STRATA_HTTP_FILTERS_GRPC_WEB_H
#define STRATA_HTTP_FILTERS_GRPC_WEB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "http/msg-t.h"

#define GW_TRAILER_FLAG 0x80 /* the first byte of a trailer frame (uncompressed) */

/* Bytes base64 of n bytes takes, padded. */
static inline size_t gw_b64_len(size_t n)
{
    return (n + 2) / 3 * 4;
}

/* Standard base64 (RFC 4648 §4) of in[0..n), padded with '='; returns gw_b64_len(n). */
size_t gw_b64_encode(const uint8_t *in, size_t n, char *out);

/* A base64 decoder fed in pieces cut anywhere: up to 3 characters wait for the next
 * piece. Padded groups may occur in the middle ("QQ==QkM="), as gRPC-Web text streams
 * are padded wherever the sender flushed; ASCII whitespace is skipped. */
struct gw_b64_dec {
    char q[4];
    uint8_t n; /* characters in q */
};

/* Decodes in[0..n) into out (room for n / 4 * 3 + 3 bytes); *outlen is what was written.
 * `last`: the input ends here, and a tail of 2 or 3 characters without padding is taken as
 * if padded. Returns 0, or -1 on a character outside the alphabet, misplaced padding or a
 * last tail of one character. */
int gw_b64_decode(struct gw_b64_dec *d, const char *in, size_t n, bool last, uint8_t *out,
                  size_t *outlen);

/* Where a response body is in its gRPC frames (5-byte header: flags, length). */
struct gw_frames {
    uint8_t hdr[5];
    uint8_t have;  /* header bytes seen of the frame being read */
    uint64_t left; /* payload bytes still to come of the current frame */
};

/* Follows p[0..n) through the frames; true when it ends exactly at a frame boundary. */
bool gw_frames_feed(struct gw_frames *f, const uint8_t *p, size_t n);

/* Bytes of the trailer frame of fields t[0..n): 5 + the sum of "name:value\r\n". */
size_t gw_trailer_frame_len(const struct http_hdr *t, uint32_t n);

/* Writes the trailer frame (flag 0x80, 4-byte big-endian length, then one lowercased
 * "name:value\r\n" line per field) into out (gw_trailer_frame_len bytes); returns that
 * length. */
size_t gw_trailer_frame(const struct http_hdr *t, uint32_t n, uint8_t *out);

#endif
