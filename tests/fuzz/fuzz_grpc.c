/* fuzz_grpc.c — libFuzzer target for the byte-level gRPC pieces that read the network:
 * the grpc_web filter's streaming base64 decoder and frame tracker (http/filters/grpc_web.h)
 * and the gRPC health check's HealthCheckResponse reader (health/check.h). The first byte
 * picks a cut; the rest is decoded whole and in two pieces, and aborts unless: both agree,
 * output never exceeds the promised room, what decodes re-encodes and decodes back to the
 * same bytes, frame boundaries do not depend on the cut, and the response reader accepts
 * only bodies of exactly one frame.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "health/check.h"
#include "http/filters/grpc_web.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define REQUIRE(cond)                                                                              \
    do {                                                                                           \
        if (!(cond))                                                                               \
            abort();                                                                               \
    } while (0)

/* Decodes in[0..n) cut at `cut`; the bytes into out (room n / 4 * 3 + 6 per piece). */
static int decode(const char *in, size_t n, size_t cut, uint8_t *out, size_t *len)
{
    struct gw_b64_dec d = {0};
    size_t a = 0, b = 0;
    if (gw_b64_decode(&d, in, cut, false, out, &a) < 0)
        return -1;
    REQUIRE(a <= cut / 4 * 3 + 6);
    if (gw_b64_decode(&d, in + cut, n - cut, true, out + a, &b) < 0)
        return -1;
    REQUIRE(b <= (n - cut) / 4 * 3 + 6);
    *len = a + b;
    return 0;
}

static void fuzz_b64(const char *in, size_t n, size_t cut)
{
    uint8_t *x = malloc(n + 8), *y = malloc(n + 8), *z = malloc(n + 8);
    char *enc = malloc(n / 3 * 4 + 12);
    size_t lx = 0, ly = 0, lz = 0;
    REQUIRE(x && y && z && enc);
    int rx = decode(in, n, 0, x, &lx), ry = decode(in, n, cut, y, &ly);
    REQUIRE(rx == ry);
    if (rx == 0) {
        REQUIRE(lx == ly && memcmp(x, y, lx) == 0);
        size_t le = gw_b64_encode(x, lx, enc);
        REQUIRE(le == gw_b64_len(lx));
        REQUIRE(decode(enc, le, le / 2, z, &lz) == 0 && lz == lx && memcmp(z, x, lx) == 0);
    }
    free(x);
    free(y);
    free(z);
    free(enc);
}

static void fuzz_frames(const uint8_t *p, size_t n, size_t cut)
{
    struct gw_frames a = {0}, b = {0};
    bool whole = gw_frames_feed(&a, p, n);
    gw_frames_feed(&b, p, cut);
    REQUIRE(gw_frames_feed(&b, p + cut, n - cut) == whole);
    REQUIRE(a.have == b.have && a.left == b.left);
}

static void fuzz_health(const uint8_t *p, size_t n)
{
    uint64_t serving;
    const char *why = NULL;
    if (hc_grpc_serving(p, n, &serving, &why) == 0) {
        REQUIRE(n >= 5 && p[0] == 0);
        REQUIRE((size_t)((uint32_t)p[1] << 24 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 8 |
                         p[4]) == n - 5);
    } else {
        REQUIRE(why != NULL);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    const uint8_t *p = data + 1;
    size_t n = size - 1, cut = n ? data[0] % (n + 1) : 0;
    fuzz_b64((const char *)p, n, cut);
    fuzz_frames(p, n, cut);
    fuzz_health(p, n);
    return 0;
}
