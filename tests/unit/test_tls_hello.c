/* test_tls_hello.c — the ClientHello peek (src/net/tls_hello.c) and SNI pattern matching.
 * Fixtures are real ClientHellos captured from OpenSSL 3.0 s_client and curl against a
 * local listener; malformed variants are built by hand with the helpers below. Every
 * fixture is also checked at every prefix and re-framed across several records.
 */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "net/tls_hello.h"
#include "test.h"

/* openssl s_client -servername api.example.com -alpn h2,http/1.1 (TLS 1.3) */
static const uint8_t hello_tls13_alpn[] = {
    0x16, 0x03, 0x01, 0x01, 0x4e, 0x01, 0x00, 0x01, 0x4a, 0x03, 0x03, 0x82, 0x44, 0x35, 0x4c, 0x3b,
    0xeb, 0x8a, 0xd6, 0x70, 0x75, 0x3e, 0xa3, 0x30, 0xe5, 0x48, 0x39, 0xc7, 0x1c, 0x5f, 0x34, 0xd5,
    0xf8, 0xf2, 0x9c, 0xb8, 0x5c, 0xd2, 0xd6, 0x95, 0xfa, 0x58, 0x82, 0x20, 0x25, 0xc6, 0x11, 0xc5,
    0x74, 0x35, 0xd2, 0xaa, 0xee, 0x65, 0x97, 0x05, 0x5d, 0xec, 0x4b, 0x4a, 0xfc, 0x3e, 0x5a, 0xa1,
    0x58, 0x4e, 0xca, 0x02, 0x01, 0xec, 0x0d, 0x02, 0x5a, 0x66, 0x29, 0xed, 0x00, 0x3e, 0x13, 0x02,
    0x13, 0x03, 0x13, 0x01, 0xc0, 0x2c, 0xc0, 0x30, 0x00, 0x9f, 0xcc, 0xa9, 0xcc, 0xa8, 0xcc, 0xaa,
    0xc0, 0x2b, 0xc0, 0x2f, 0x00, 0x9e, 0xc0, 0x24, 0xc0, 0x28, 0x00, 0x6b, 0xc0, 0x23, 0xc0, 0x27,
    0x00, 0x67, 0xc0, 0x0a, 0xc0, 0x14, 0x00, 0x39, 0xc0, 0x09, 0xc0, 0x13, 0x00, 0x33, 0x00, 0x9d,
    0x00, 0x9c, 0x00, 0x3d, 0x00, 0x3c, 0x00, 0x35, 0x00, 0x2f, 0x00, 0xff, 0x01, 0x00, 0x00, 0xc3,
    0x00, 0x00, 0x00, 0x14, 0x00, 0x12, 0x00, 0x00, 0x0f, 0x61, 0x70, 0x69, 0x2e, 0x65, 0x78, 0x61,
    0x6d, 0x70, 0x6c, 0x65, 0x2e, 0x63, 0x6f, 0x6d, 0x00, 0x0b, 0x00, 0x04, 0x03, 0x00, 0x01, 0x02,
    0x00, 0x0a, 0x00, 0x16, 0x00, 0x14, 0x00, 0x1d, 0x00, 0x17, 0x00, 0x1e, 0x00, 0x19, 0x00, 0x18,
    0x01, 0x00, 0x01, 0x01, 0x01, 0x02, 0x01, 0x03, 0x01, 0x04, 0x00, 0x23, 0x00, 0x00, 0x00, 0x10,
    0x00, 0x0e, 0x00, 0x0c, 0x02, 0x68, 0x32, 0x08, 0x68, 0x74, 0x74, 0x70, 0x2f, 0x31, 0x2e, 0x31,
    0x00, 0x16, 0x00, 0x00, 0x00, 0x17, 0x00, 0x00, 0x00, 0x0d, 0x00, 0x2a, 0x00, 0x28, 0x04, 0x03,
    0x05, 0x03, 0x06, 0x03, 0x08, 0x07, 0x08, 0x08, 0x08, 0x09, 0x08, 0x0a, 0x08, 0x0b, 0x08, 0x04,
    0x08, 0x05, 0x08, 0x06, 0x04, 0x01, 0x05, 0x01, 0x06, 0x01, 0x03, 0x03, 0x03, 0x01, 0x03, 0x02,
    0x04, 0x02, 0x05, 0x02, 0x06, 0x02, 0x00, 0x2b, 0x00, 0x09, 0x08, 0x03, 0x04, 0x03, 0x03, 0x03,
    0x02, 0x03, 0x01, 0x00, 0x2d, 0x00, 0x02, 0x01, 0x01, 0x00, 0x33, 0x00, 0x26, 0x00, 0x24, 0x00,
    0x1d, 0x00, 0x20, 0xae, 0xd7, 0xa2, 0x35, 0x06, 0x9a, 0xd2, 0x97, 0xd4, 0x1e, 0x92, 0x09, 0x11,
    0x5b, 0x47, 0x8d, 0xeb, 0x12, 0x72, 0x5f, 0x9a, 0x06, 0xf2, 0xca, 0x59, 0x9f, 0xd5, 0xd4, 0xfa,
    0x19, 0x01, 0x56,
};

/* openssl s_client -noservername: no server_name, no ALPN */
static const uint8_t hello_nosni[] = {
    0x16, 0x03, 0x01, 0x01, 0x24, 0x01, 0x00, 0x01, 0x20, 0x03, 0x03, 0xcb, 0x4a, 0x99, 0x8c, 0xa8,
    0x7d, 0xe8, 0xa2, 0xa6, 0xd9, 0x71, 0x42, 0x5c, 0x72, 0x42, 0xd3, 0x42, 0x14, 0xdb, 0x5c, 0x13,
    0xc6, 0x24, 0x27, 0x8e, 0x61, 0x0a, 0xc2, 0x61, 0x79, 0x2a, 0x2e, 0x20, 0xd0, 0xb2, 0x5c, 0x0b,
    0xab, 0x04, 0x84, 0xa7, 0xa7, 0xf4, 0xca, 0xb9, 0x4f, 0x1c, 0xff, 0x87, 0xd4, 0x15, 0x85, 0xc6,
    0x4d, 0xb0, 0x99, 0xbc, 0x4b, 0xa3, 0x40, 0x8c, 0xc4, 0x3b, 0xe8, 0xb4, 0x00, 0x3e, 0x13, 0x02,
    0x13, 0x03, 0x13, 0x01, 0xc0, 0x2c, 0xc0, 0x30, 0x00, 0x9f, 0xcc, 0xa9, 0xcc, 0xa8, 0xcc, 0xaa,
    0xc0, 0x2b, 0xc0, 0x2f, 0x00, 0x9e, 0xc0, 0x24, 0xc0, 0x28, 0x00, 0x6b, 0xc0, 0x23, 0xc0, 0x27,
    0x00, 0x67, 0xc0, 0x0a, 0xc0, 0x14, 0x00, 0x39, 0xc0, 0x09, 0xc0, 0x13, 0x00, 0x33, 0x00, 0x9d,
    0x00, 0x9c, 0x00, 0x3d, 0x00, 0x3c, 0x00, 0x35, 0x00, 0x2f, 0x00, 0xff, 0x01, 0x00, 0x00, 0x99,
    0x00, 0x0b, 0x00, 0x04, 0x03, 0x00, 0x01, 0x02, 0x00, 0x0a, 0x00, 0x16, 0x00, 0x14, 0x00, 0x1d,
    0x00, 0x17, 0x00, 0x1e, 0x00, 0x19, 0x00, 0x18, 0x01, 0x00, 0x01, 0x01, 0x01, 0x02, 0x01, 0x03,
    0x01, 0x04, 0x00, 0x23, 0x00, 0x00, 0x00, 0x16, 0x00, 0x00, 0x00, 0x17, 0x00, 0x00, 0x00, 0x0d,
    0x00, 0x2a, 0x00, 0x28, 0x04, 0x03, 0x05, 0x03, 0x06, 0x03, 0x08, 0x07, 0x08, 0x08, 0x08, 0x09,
    0x08, 0x0a, 0x08, 0x0b, 0x08, 0x04, 0x08, 0x05, 0x08, 0x06, 0x04, 0x01, 0x05, 0x01, 0x06, 0x01,
    0x03, 0x03, 0x03, 0x01, 0x03, 0x02, 0x04, 0x02, 0x05, 0x02, 0x06, 0x02, 0x00, 0x2b, 0x00, 0x09,
    0x08, 0x03, 0x04, 0x03, 0x03, 0x03, 0x02, 0x03, 0x01, 0x00, 0x2d, 0x00, 0x02, 0x01, 0x01, 0x00,
    0x33, 0x00, 0x26, 0x00, 0x24, 0x00, 0x1d, 0x00, 0x20, 0xa9, 0x81, 0x1a, 0x1b, 0xb4, 0x7f, 0xc9,
    0x8f, 0x0a, 0x89, 0x92, 0x21, 0x81, 0xc0, 0x11, 0x3f, 0x0a, 0x08, 0xa1, 0xe7, 0x48, 0x5b, 0xaf,
    0x0f, 0xcb, 0x0c, 0xfa, 0xab, 0x32, 0x62, 0x00, 0x5d,
};

/* openssl s_client -tls1_2 -servername WWW.Example.ORG */
static const uint8_t hello_tls12[] = {
    0x16, 0x03, 0x01, 0x00, 0xcf, 0x01, 0x00, 0x00, 0xcb, 0x03, 0x03, 0x77, 0x45, 0x2e, 0xb0, 0x92,
    0xe8, 0x99, 0x8d, 0xc9, 0xc1, 0x5b, 0x34, 0x4d, 0xee, 0x6d, 0x41, 0x1b, 0xe7, 0xbb, 0x88, 0x3e,
    0xe4, 0xfc, 0x50, 0x33, 0xf5, 0xf5, 0x05, 0x7d, 0x8a, 0x0c, 0xc3, 0x00, 0x00, 0x38, 0xc0, 0x2c,
    0xc0, 0x30, 0x00, 0x9f, 0xcc, 0xa9, 0xcc, 0xa8, 0xcc, 0xaa, 0xc0, 0x2b, 0xc0, 0x2f, 0x00, 0x9e,
    0xc0, 0x24, 0xc0, 0x28, 0x00, 0x6b, 0xc0, 0x23, 0xc0, 0x27, 0x00, 0x67, 0xc0, 0x0a, 0xc0, 0x14,
    0x00, 0x39, 0xc0, 0x09, 0xc0, 0x13, 0x00, 0x33, 0x00, 0x9d, 0x00, 0x9c, 0x00, 0x3d, 0x00, 0x3c,
    0x00, 0x35, 0x00, 0x2f, 0x00, 0xff, 0x01, 0x00, 0x00, 0x6a, 0x00, 0x00, 0x00, 0x14, 0x00, 0x12,
    0x00, 0x00, 0x0f, 0x57, 0x57, 0x57, 0x2e, 0x45, 0x78, 0x61, 0x6d, 0x70, 0x6c, 0x65, 0x2e, 0x4f,
    0x52, 0x47, 0x00, 0x0b, 0x00, 0x04, 0x03, 0x00, 0x01, 0x02, 0x00, 0x0a, 0x00, 0x0c, 0x00, 0x0a,
    0x00, 0x1d, 0x00, 0x17, 0x00, 0x1e, 0x00, 0x19, 0x00, 0x18, 0x00, 0x23, 0x00, 0x00, 0x00, 0x16,
    0x00, 0x00, 0x00, 0x17, 0x00, 0x00, 0x00, 0x0d, 0x00, 0x2a, 0x00, 0x28, 0x04, 0x03, 0x05, 0x03,
    0x06, 0x03, 0x08, 0x07, 0x08, 0x08, 0x08, 0x09, 0x08, 0x0a, 0x08, 0x0b, 0x08, 0x04, 0x08, 0x05,
    0x08, 0x06, 0x04, 0x01, 0x05, 0x01, 0x06, 0x01, 0x03, 0x03, 0x03, 0x01, 0x03, 0x02, 0x04, 0x02,
    0x05, 0x02, 0x06, 0x02,
};

/* curl -k --http2 https://localhost:PORT/: SNI localhost, ALPN h2,http/1.1, padding */
static const uint8_t hello_curl[] = {
    0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03, 0x8f, 0xd2, 0x9e, 0x5d, 0xc7,
    0x31, 0xfa, 0x59, 0xfa, 0xe9, 0x46, 0x30, 0x63, 0xc4, 0xa6, 0x5e, 0x85, 0x2f, 0x11, 0x5a, 0xc3,
    0xf0, 0xde, 0xd2, 0xf1, 0x21, 0xc4, 0xdc, 0xfb, 0xd8, 0x17, 0x33, 0x20, 0xe4, 0x3c, 0x76, 0xfc,
    0x56, 0x33, 0xb7, 0x7f, 0xb2, 0xab, 0xf2, 0x43, 0xec, 0xf8, 0xd1, 0xd8, 0xe6, 0xf4, 0xf7, 0x7a,
    0x4e, 0x1e, 0xd5, 0x24, 0xc8, 0xd1, 0xf7, 0xd8, 0x65, 0x7b, 0x7e, 0x0d, 0x00, 0x3e, 0x13, 0x02,
    0x13, 0x03, 0x13, 0x01, 0xc0, 0x2c, 0xc0, 0x30, 0x00, 0x9f, 0xcc, 0xa9, 0xcc, 0xa8, 0xcc, 0xaa,
    0xc0, 0x2b, 0xc0, 0x2f, 0x00, 0x9e, 0xc0, 0x24, 0xc0, 0x28, 0x00, 0x6b, 0xc0, 0x23, 0xc0, 0x27,
    0x00, 0x67, 0xc0, 0x0a, 0xc0, 0x14, 0x00, 0x39, 0xc0, 0x09, 0xc0, 0x13, 0x00, 0x33, 0x00, 0x9d,
    0x00, 0x9c, 0x00, 0x3d, 0x00, 0x3c, 0x00, 0x35, 0x00, 0x2f, 0x00, 0xff, 0x01, 0x00, 0x01, 0x75,
    0x00, 0x00, 0x00, 0x0e, 0x00, 0x0c, 0x00, 0x00, 0x09, 0x6c, 0x6f, 0x63, 0x61, 0x6c, 0x68, 0x6f,
    0x73, 0x74, 0x00, 0x0b, 0x00, 0x04, 0x03, 0x00, 0x01, 0x02, 0x00, 0x0a, 0x00, 0x16, 0x00, 0x14,
    0x00, 0x1d, 0x00, 0x17, 0x00, 0x1e, 0x00, 0x19, 0x00, 0x18, 0x01, 0x00, 0x01, 0x01, 0x01, 0x02,
    0x01, 0x03, 0x01, 0x04, 0x00, 0x10, 0x00, 0x0e, 0x00, 0x0c, 0x02, 0x68, 0x32, 0x08, 0x68, 0x74,
    0x74, 0x70, 0x2f, 0x31, 0x2e, 0x31, 0x00, 0x16, 0x00, 0x00, 0x00, 0x17, 0x00, 0x00, 0x00, 0x31,
    0x00, 0x00, 0x00, 0x0d, 0x00, 0x2a, 0x00, 0x28, 0x04, 0x03, 0x05, 0x03, 0x06, 0x03, 0x08, 0x07,
    0x08, 0x08, 0x08, 0x09, 0x08, 0x0a, 0x08, 0x0b, 0x08, 0x04, 0x08, 0x05, 0x08, 0x06, 0x04, 0x01,
    0x05, 0x01, 0x06, 0x01, 0x03, 0x03, 0x03, 0x01, 0x03, 0x02, 0x04, 0x02, 0x05, 0x02, 0x06, 0x02,
    0x00, 0x2b, 0x00, 0x09, 0x08, 0x03, 0x04, 0x03, 0x03, 0x03, 0x02, 0x03, 0x01, 0x00, 0x2d, 0x00,
    0x02, 0x01, 0x01, 0x00, 0x33, 0x00, 0x26, 0x00, 0x24, 0x00, 0x1d, 0x00, 0x20, 0x67, 0xc2, 0x15,
    0x0a, 0x6f, 0xfe, 0xb3, 0xa9, 0x34, 0x07, 0x97, 0xfc, 0x92, 0xec, 0x10, 0x7c, 0x27, 0x27, 0x34,
    0x2b, 0x99, 0x4c, 0x66, 0xa0, 0x0e, 0x91, 0x99, 0x36, 0x1d, 0x71, 0x76, 0x73, 0x00, 0x15, 0x00,
    0xb4, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00,
};

#define FIXTURE(a)                                                                                 \
    {                                                                                              \
#a, a, sizeof(a)                                                                           \
    }
static const struct fixture {
    const char *name;
    const uint8_t *buf;
    size_t len;
} fixtures[] = {
    FIXTURE(hello_tls13_alpn),
    FIXTURE(hello_nosni),
    FIXTURE(hello_tls12),
    FIXTURE(hello_curl),
};
#define NFIXTURES (sizeof(fixtures) / sizeof(fixtures[0]))

/* ---- builders for hand-made ClientHellos ---- */

/* A byte buffer to build messages in; large enough for oversize cases. */
struct bytes {
    uint8_t b[8 * HELLO_MAX_BYTES]; /* room for a 16 KiB message in 1-byte records */
    size_t n;
};

static void put(struct bytes *o, const void *p, size_t n)
{
    memcpy(o->b + o->n, p, n);
    o->n += n;
}

static void put8(struct bytes *o, size_t v)
{
    o->b[o->n++] = (uint8_t)v;
}

static void put16(struct bytes *o, size_t v)
{
    put8(o, v >> 8);
    put8(o, v);
}

static void put24(struct bytes *o, size_t v)
{
    put8(o, v >> 16);
    put16(o, v);
}

/* Appends one extension: type, length, data. */
static void put_ext(struct bytes *o, size_t type, const void *data, size_t n)
{
    put16(o, type);
    put16(o, n);
    put(o, data, n);
}

/* Appends a server_name extension holding one host_name of n bytes. */
static void put_sni(struct bytes *o, const char *name, size_t n)
{
    put16(o, 0);
    put16(o, n + 5);
    put16(o, n + 3);
    put8(o, 0);
    put16(o, n);
    put(o, name, n);
}

/* A ClientHello handshake message (header included) around an extensions block. With
 * exts == NULL the message ends after the compression methods (no extensions field). */
static void make_msg(struct bytes *m, const struct bytes *exts)
{
    static const uint8_t random[32];
    size_t body = 2 + 32 + 1 + 4 + 2 + (exts ? 2 + exts->n : 0);
    m->n = 0;
    put8(m, 1);
    put24(m, body);
    put16(m, 0x0303);
    put(m, random, sizeof(random));
    put8(m, 0);  /* session id */
    put16(m, 2); /* cipher suites */
    put16(m, 0x1301);
    put8(m, 1); /* compression methods */
    put8(m, 0);
    if (exts) {
        put16(m, exts->n);
        put(m, exts->b, exts->n);
    }
}

/* Frames a handshake message into records; cuts[] are increasing offsets into msg where
 * a new record starts (ncuts of them). */
static void frame(struct bytes *out, const uint8_t *msg, size_t len, const size_t *cuts,
                  size_t ncuts)
{
    size_t start = 0;
    out->n = 0;
    for (size_t i = 0; i <= ncuts; i++) {
        size_t end = i < ncuts ? cuts[i] : len;
        put8(out, 22);
        put16(out, 0x0301);
        put16(out, end - start);
        put(out, msg + start, end - start);
        start = end;
    }
}

/* Frames msg into records of at most chunk bytes each. */
static void frame_chunks(struct bytes *out, const uint8_t *msg, size_t len, size_t chunk)
{
    out->n = 0;
    for (size_t off = 0; off < len; off += chunk) {
        size_t n = len - off < chunk ? len - off : chunk;
        put8(out, 22);
        put16(out, 0x0303);
        put16(out, n);
        put(out, msg + off, n);
    }
}

/* A one-record ClientHello around the given extensions. */
static void make_hello(struct bytes *out, const struct bytes *exts)
{
    static struct bytes m;
    make_msg(&m, exts);
    frame(out, m.b, m.n, NULL, 0);
}

static enum hello_result parse(const struct bytes *b, struct hello_info *info, const char **why)
{
    return tls_hello_parse(b->b, b->n, info, why);
}

/* True when every strict prefix of buf gives HELLO_NEED_MORE. */
static bool prefixes_need_more(const uint8_t *buf, size_t len)
{
    struct hello_info info;
    for (size_t i = 0; i < len; i++)
        if (tls_hello_parse(buf, i, &info, NULL) != HELLO_NEED_MORE) {
            fprintf(stderr, "    prefix of %zu bytes (of %zu) decided early\n", i, len);
            return false;
        }
    return true;
}

/* ---- real ClientHellos ---- */

TEST(tls_hello_openssl_tls13_alpn)
{
    struct hello_info info;
    const char *why = "unset";
    CHECK(tls_hello_parse(hello_tls13_alpn, sizeof(hello_tls13_alpn), &info, &why) == HELLO_OK);
    CHECK(why == NULL);
    CHECK_EQ_U64(info.sni_len, 15);
    CHECK(strcmp(info.sni, "api.example.com") == 0);
    CHECK(info.has_alpn && !info.alpn_incomplete);
    CHECK_EQ_U64(info.nalpn, 2);
    CHECK(strcmp(info.alpn[0], "h2") == 0);
    CHECK(strcmp(info.alpn[1], "http/1.1") == 0);
    CHECK_EQ_U64(info.legacy_version, 0x0303);
    CHECK_EQ_U64(info.max_version, 0x0304);
}

TEST(tls_hello_openssl_no_sni)
{
    struct hello_info info;
    CHECK(tls_hello_parse(hello_nosni, sizeof(hello_nosni), &info, NULL) == HELLO_OK);
    CHECK_EQ_U64(info.sni_len, 0);
    CHECK(info.sni[0] == '\0');
    CHECK(!info.has_alpn);
    CHECK_EQ_U64(info.nalpn, 0);
    CHECK_EQ_U64(info.max_version, 0x0304);
}

TEST(tls_hello_openssl_tls12_uppercase_sni)
{
    struct hello_info info;
    CHECK(tls_hello_parse(hello_tls12, sizeof(hello_tls12), &info, NULL) == HELLO_OK);
    CHECK(strcmp(info.sni, "www.example.org") == 0);
    CHECK_EQ_U64(info.sni_len, 15);
    CHECK_EQ_U64(info.legacy_version, 0x0303);
    CHECK_EQ_U64(info.max_version, 0x0303); /* no supported_versions */
}

TEST(tls_hello_curl)
{
    struct hello_info info;
    CHECK(tls_hello_parse(hello_curl, sizeof(hello_curl), &info, NULL) == HELLO_OK);
    CHECK(strcmp(info.sni, "localhost") == 0);
    CHECK_EQ_U64(info.nalpn, 2);
    CHECK(strcmp(info.alpn[0], "h2") == 0);
    CHECK(strcmp(info.alpn[1], "http/1.1") == 0);
}

TEST(tls_hello_every_prefix_needs_more)
{
    for (size_t f = 0; f < NFIXTURES; f++)
        CHECK(prefixes_need_more(fixtures[f].buf, fixtures[f].len));
}

TEST(tls_hello_trailing_bytes_ignored)
{
    /* e.g. TLS 1.3 early data or a ChangeCipherSpec sent right after the hello */
    static struct bytes b;
    struct hello_info info;
    b.n = 0;
    put(&b, hello_tls13_alpn, sizeof(hello_tls13_alpn));
    put(&b, "\x14\x03\x03\x00\x01\x01\x17\x03\x03", 9);
    CHECK(parse(&b, &info, NULL) == HELLO_OK);
    CHECK(strcmp(info.sni, "api.example.com") == 0);
}

/* ---- one ClientHello across several records ---- */

/* Re-frames a one-record fixture with record boundaries at cuts[] of its message. */
static enum hello_result reframe(const struct fixture *fx, const size_t *cuts, size_t ncuts,
                                 struct bytes *out, struct hello_info *info)
{
    frame(out, fx->buf + 5, fx->len - 5, cuts, ncuts);
    return parse(out, info, NULL);
}

TEST(tls_hello_two_records_every_cut)
{
    static struct bytes b;
    struct hello_info info;
    for (size_t f = 0; f < NFIXTURES; f++) {
        const struct fixture *fx = &fixtures[f];
        struct hello_info whole;
        CHECK(tls_hello_parse(fx->buf, fx->len, &whole, NULL) == HELLO_OK);
        for (size_t cut = 1; cut < fx->len - 5; cut++) {
            if (reframe(fx, &cut, 1, &b, &info) != HELLO_OK) {
                fprintf(stderr, "    %s: cut at %zu\n", fx->name, cut);
                CHECK(false);
                break;
            }
            CHECK(strcmp(info.sni, whole.sni) == 0);
            CHECK_EQ_U64(info.nalpn, whole.nalpn);
        }
    }
}

TEST(tls_hello_three_records)
{
    /* cuts inside the handshake header, inside the SNI name, and at record-ish places */
    static const size_t cuts[][2] = {{1, 2}, {3, 4}, {2, 100}, {40, 41}, {4, 200}, {150, 151}};
    static struct bytes b;
    struct hello_info info;
    const struct fixture *fx = &fixtures[0];
    for (size_t i = 0; i < sizeof(cuts) / sizeof(cuts[0]); i++) {
        CHECK(reframe(fx, cuts[i], 2, &b, &info) == HELLO_OK);
        CHECK(strcmp(info.sni, "api.example.com") == 0);
        CHECK_EQ_U64(info.nalpn, 2);
        CHECK(prefixes_need_more(b.b, b.n));
    }
}

TEST(tls_hello_one_byte_records)
{
    static struct bytes b;
    struct hello_info info;
    for (size_t f = 0; f < NFIXTURES; f++) {
        frame_chunks(&b, fixtures[f].buf + 5, fixtures[f].len - 5, 1);
        CHECK(parse(&b, &info, NULL) == HELLO_OK);
        CHECK(prefixes_need_more(b.b, b.n));
    }
    CHECK(strcmp(info.sni, "localhost") == 0);
}

TEST(tls_hello_bad_record_between_fragments)
{
    static struct bytes b;
    struct hello_info info;
    const char *why;
    size_t cut = 50;
    reframe(&fixtures[0], &cut, 1, &b, &info);
    b.b[5 + cut] = 21; /* the second record becomes an alert */
    CHECK(parse(&b, &info, &why) == HELLO_ERROR);
    CHECK_STR_CONTAINS(why, "non-handshake record");
    b.b[5 + cut] = 22;
    b.b[5 + cut + 1] = 2;
    CHECK(parse(&b, &info, &why) == HELLO_ERROR);
    b.b[5 + cut + 1] = 3;
    b.b[5 + cut + 3] = 0; /* second record length 0 */
    b.b[5 + cut + 4] = 0;
    CHECK(parse(&b, &info, &why) == HELLO_ERROR);
    CHECK_STR_CONTAINS(why, "empty handshake record");
}

/* ---- not TLS ---- */

TEST(tls_hello_not_tls_early)
{
    static const char *const inputs[] = {
        "GET / HTTP/1.1\r\nHost: a\r\n\r\n",
        "PRI * HTTP/2.0\r\n",
        "SSH-2.0-OpenSSH_9.2\r\n",
        "\x80\x2e\x01\x00\x02\x00\x15\x00\x00\x00\x10", /* SSLv2 CLIENT-HELLO */
        "\x16\x02\x00\x00\x10",                         /* SSL 2.0 version in a record */
        "\x17\x03\x03\x00\x10",                         /* application data */
        "\x15\x03\x01\x00\x02",                         /* alert */
    };
    struct hello_info info;
    const char *why;
    for (size_t i = 0; i < sizeof(inputs) / sizeof(inputs[0]); i++) {
        const uint8_t *in = (const uint8_t *)inputs[i];
        size_t n = in[0] == 0x16 ? 2 : 1; /* decided at the first byte that differs */
        CHECK(tls_hello_parse(in, n, &info, &why) == HELLO_NOT_TLS);
        CHECK(why != NULL);
        CHECK(tls_hello_parse(in, 5, &info, NULL) == HELLO_NOT_TLS);
    }
    CHECK(tls_hello_parse((const uint8_t *)"", 0, &info, NULL) == HELLO_NEED_MORE);
    CHECK(tls_hello_parse((const uint8_t *)"\x16", 1, &info, NULL) == HELLO_NEED_MORE);
    CHECK(tls_hello_parse((const uint8_t *)"\x16\x03", 2, &info, NULL) == HELLO_NEED_MORE);
}

TEST(tls_hello_handshake_not_client_hello)
{
    /* a ServerHello (type 2) where a ClientHello should be */
    static const uint8_t sh[] = {0x16, 0x03, 0x03, 0x00, 0x04, 0x02, 0x00, 0x00, 0x00};
    struct hello_info info;
    const char *why;
    CHECK(tls_hello_parse(sh, 5, &info, NULL) == HELLO_NEED_MORE);
    CHECK(tls_hello_parse(sh, 6, &info, &why) == HELLO_ERROR);
    CHECK_STR_CONTAINS(why, "not a ClientHello");
}

/* ---- malformed ClientHellos ---- */

/* Parses the fixture with one byte at offset off replaced by v. */
static enum hello_result patched(const uint8_t *fx, size_t len, size_t off, uint8_t v,
                                 const char **why)
{
    static struct bytes b;
    struct hello_info info;
    b.n = 0;
    put(&b, fx, len);
    b.b[off] = v;
    return parse(&b, &info, why);
}

TEST(tls_hello_record_framing_errors)
{
    const uint8_t *fx = hello_nosni;
    size_t n = sizeof(hello_nosni);
    const char *why;
    CHECK(patched(fx, n, 3, 0x40, &why) == HELLO_ERROR); /* record length 0x40xx > 2^14 */
    CHECK_STR_CONTAINS(why, "2^14");
    /* a shorter record: the hello continues in "records" made of its own bytes */
    CHECK(patched(fx, n, 3, 0x00, &why) == HELLO_ERROR);
    CHECK(tls_hello_parse((const uint8_t *)"\x16\x03\x01\x00\x00\x01", 6, &(struct hello_info){0},
                          &why) == HELLO_ERROR);
    CHECK_STR_CONTAINS(why, "empty handshake record");
}

TEST(tls_hello_length_errors)
{
    /* offsets in hello_nosni: 5 type, 6..8 length, 9..10 version, 11..42 random, 43 sid len */
    const uint8_t *fx = hello_nosni;
    size_t n = sizeof(hello_nosni);
    size_t sid = 43, cs = 44 + fx[43];
    const char *why;
    CHECK(patched(fx, n, 9, 0x02, &why) == HELLO_ERROR);
    CHECK_STR_CONTAINS(why, "version");
    CHECK(patched(fx, n, sid, 33, &why) == HELLO_ERROR);
    CHECK_STR_CONTAINS(why, "session id");
    CHECK(patched(fx, n, cs + 1, (uint8_t)(fx[cs + 1] | 1), &why) == HELLO_ERROR);
    CHECK_STR_CONTAINS(why, "cipher suites");
    CHECK(patched(fx, n, 8, (uint8_t)(fx[8] + 1), &why) == HELLO_ERROR);
    CHECK_STR_CONTAINS(why, "extensions length");
    CHECK(patched(fx, n, 8, (uint8_t)(fx[8] - 1), &why) == HELLO_ERROR);
    CHECK(patched(fx, n, 7, 0x40, &why) == HELLO_ERROR); /* handshake length > 16 KiB */
    CHECK_STR_CONTAINS(why, "too large");
    static const uint8_t short_msg[] = {22, 3, 1, 0, 8, 1, 0, 0, 4, 3, 3, 0, 0};
    CHECK(tls_hello_parse(short_msg, 11, &(struct hello_info){0}, &why) == HELLO_ERROR);
    CHECK_STR_CONTAINS(why, "overruns the ClientHello"); /* random does not fit */
}

TEST(tls_hello_builder_baseline)
{
    static struct bytes e, b;
    struct hello_info info;
    e.n = 0;
    put_sni(&e, "Example.COM", 11);
    make_hello(&b, &e);
    CHECK(parse(&b, &info, NULL) == HELLO_OK);
    CHECK(strcmp(info.sni, "example.com") == 0);
    CHECK(prefixes_need_more(b.b, b.n));
    /* no extensions field at all (allowed before TLS 1.3) */
    make_hello(&b, NULL);
    CHECK(parse(&b, &info, NULL) == HELLO_OK);
    CHECK_EQ_U64(info.sni_len, 0);
    CHECK(prefixes_need_more(b.b, b.n));
    /* an empty extensions block */
    e.n = 0;
    make_hello(&b, &e);
    CHECK(parse(&b, &info, NULL) == HELLO_OK);
}

TEST(tls_hello_minimal_fields)
{
    static struct bytes b;
    struct hello_info info;
    const char *why;
    make_hello(&b, NULL);
    b.b[5 + 4 + 2 + 32 + 1 + 1] = 0; /* cipher suites length 2 -> 0 */
    CHECK(parse(&b, &info, &why) == HELLO_ERROR);
    CHECK_STR_CONTAINS(why, "cipher suites");
    make_hello(&b, NULL);
    b.b[5 + 4 + 2 + 32 + 1 + 4] = 0; /* compression methods length 1 -> 0 */
    CHECK(parse(&b, &info, &why) == HELLO_ERROR);
    CHECK_STR_CONTAINS(why, "compression");
}

/* Builds a hello whose extensions are e, expects HELLO_ERROR with msg in why. */
static void expect_ext_error(const struct bytes *e, const char *msg)
{
    static struct bytes b;
    struct hello_info info;
    const char *why = NULL;
    make_hello(&b, e);
    enum hello_result res = parse(&b, &info, &why);
    if (res != HELLO_ERROR)
        fprintf(stderr, "    expected error \"%s\", got %d\n", msg, (int)res);
    CHECK(res == HELLO_ERROR);
    CHECK_STR_CONTAINS(why, msg);
}

TEST(tls_hello_duplicates)
{
    static struct bytes e;
    e.n = 0;
    put_sni(&e, "a.example.com", 13);
    put_sni(&e, "b.example.com", 13);
    expect_ext_error(&e, "duplicate extension");
    e.n = 0;
    put_ext(&e, 0x0017, "", 0);
    put_ext(&e, 0x0017, "", 0);
    expect_ext_error(&e, "duplicate extension");
    /* two host_name entries in one list */
    e.n = 0;
    static const uint8_t two_hosts[] = {0, 8, 0, 0, 1, 'a', 0, 0, 1, 'b'};
    put_ext(&e, 0, two_hosts, sizeof(two_hosts));
    expect_ext_error(&e, "two host_name");
}

TEST(tls_hello_sni_names)
{
    static struct bytes e;
    static const struct {
        const char *name;
        size_t len;
        const char *err; /* NULL: valid */
    } cases[] = {
        {"a", 1, NULL},
        {"x_y-z.Example.com", 17, NULL},
        {"a\0b.com", 7, "invalid character"},
        {"a b.com", 7, "invalid character"},
        {"a/b.com", 7, "invalid character"},
        {"\xc3\xa9.com", 6, "invalid character"},
        {"example.com.", 12, "empty label"},
        {".example.com", 12, "empty label"},
        {"a..com", 6, "empty label"},
        {"", 0, "empty"},
    };
    struct hello_info info;
    static struct bytes b;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        e.n = 0;
        put_sni(&e, cases[i].name, cases[i].len);
        if (cases[i].err) {
            expect_ext_error(&e, cases[i].err);
            continue;
        }
        make_hello(&b, &e);
        CHECK(parse(&b, &info, NULL) == HELLO_OK);
        CHECK_EQ_U64(info.sni_len, cases[i].len);
    }
}

TEST(tls_hello_sni_lengths)
{
    static struct bytes e, b;
    char name[300];
    struct hello_info info;
    /* 255 bytes in labels of 63: the longest valid name */
    memset(name, 'a', sizeof(name));
    for (size_t i = 63; i < 255; i += 64)
        name[i] = '.';
    e.n = 0;
    put_sni(&e, name, 255);
    make_hello(&b, &e);
    CHECK(parse(&b, &info, NULL) == HELLO_OK);
    CHECK_EQ_U64(info.sni_len, 255);
    CHECK(info.sni[255] == '\0' && strlen(info.sni) == 255);
    e.n = 0;
    put_sni(&e, name, 256);
    expect_ext_error(&e, "longer than 255");
    memset(name, 'a', 64);
    e.n = 0;
    put_sni(&e, name, 64);
    expect_ext_error(&e, "63");
}

TEST(tls_hello_server_name_framing)
{
    static struct bytes e;
    e.n = 0;
    put_ext(&e, 0, "", 0);
    expect_ext_error(&e, "server_name extension too short");
    e.n = 0;
    static const uint8_t list_mismatch[] = {0, 4, 0, 0, 2, 'a', 'b'}; /* list 4, extension 7 */
    put_ext(&e, 0, list_mismatch, sizeof(list_mismatch));
    expect_ext_error(&e, "server_name list length");
    e.n = 0;
    static const uint8_t name_overrun[] = {0, 5, 0, 0, 9, 'a', 'b'}; /* name 9 in a 5-byte list */
    put_ext(&e, 0, name_overrun, sizeof(name_overrun));
    expect_ext_error(&e, "overruns");
    e.n = 0;
    put_ext(&e, 0, "\x00\x02\x00\x00", 4); /* truncated entry */
    expect_ext_error(&e, "truncated server_name");
    e.n = 0;
    put_ext(&e, 0, "\x00\x03\x00\x00\x00", 5); /* host_name of length 0 */
    expect_ext_error(&e, "empty");
    e.n = 0;
    put_ext(&e, 0x10, "\x00\x04\x00\x02h2", 6); /* extension length beyond the block */
    e.b[3] = 40;
    expect_ext_error(&e, "overruns");
}

TEST(tls_hello_sni_unknown_name_type_skipped)
{
    static struct bytes e, b;
    struct hello_info info;
    e.n = 0;
    put_ext(&e, 0, "\x00\x0a\x07\x00\x02zz\x00\x00\x02ok", 12);
    make_hello(&b, &e);
    CHECK(parse(&b, &info, NULL) == HELLO_OK);
    CHECK(strcmp(info.sni, "ok") == 0);
}

TEST(tls_hello_alpn)
{
    static struct bytes e, b, list;
    struct hello_info info;
    char name[40];
    /* ten protocols, one of them 40 bytes: keeps the first eight that fit */
    list.n = 0;
    for (int i = 0; i < 10; i++) {
        size_t n = i == 1 ? 40 : (size_t)snprintf(name, sizeof(name), "p%d", i);
        if (i == 1)
            memset(name, 'x', 40);
        put8(&list, n);
        put(&list, name, n);
    }
    e.n = 0;
    put16(&e, 16);
    put16(&e, list.n + 2);
    put16(&e, list.n);
    put(&e, list.b, list.n);
    make_hello(&b, &e);
    CHECK(parse(&b, &info, NULL) == HELLO_OK);
    CHECK(info.has_alpn && info.alpn_incomplete);
    CHECK_EQ_U64(info.nalpn, 8);
    CHECK(strcmp(info.alpn[0], "p0") == 0);
    CHECK(strcmp(info.alpn[1], "p2") == 0);
    CHECK(strcmp(info.alpn[7], "p8") == 0);
    /* a NUL inside a protocol name: not kept */
    e.n = 0;
    put_ext(&e, 16, "\x00\x06\x02h\x00\x02h2", 8);
    make_hello(&b, &e);
    CHECK(parse(&b, &info, NULL) == HELLO_OK);
    CHECK_EQ_U64(info.nalpn, 1);
    CHECK(strcmp(info.alpn[0], "h2") == 0 && info.alpn[1][0] == '\0');
    CHECK(info.alpn_incomplete);
    e.n = 0;
    put_ext(&e, 16, "\x00\x03\x00\x01h", 5);
    expect_ext_error(&e, "empty ALPN protocol");
    e.n = 0;
    put_ext(&e, 16, "\x00\x03\x05h2", 5);
    expect_ext_error(&e, "ALPN protocol name overruns");
    e.n = 0;
    put_ext(&e, 16, "\x00\x00", 2);
    expect_ext_error(&e, "ALPN list length");
    e.n = 0;
    put_ext(&e, 16, "", 0);
    expect_ext_error(&e, "ALPN extension too short");
}

TEST(tls_hello_supported_versions)
{
    static struct bytes e, b;
    struct hello_info info;
    e.n = 0;
    put_ext(&e, 43, "\x06\x7a\x7a\x03\x04\x03\x03", 7); /* GREASE, 1.3, 1.2 */
    make_hello(&b, &e);
    CHECK(parse(&b, &info, NULL) == HELLO_OK);
    CHECK_EQ_U64(info.max_version, 0x0304);
    e.n = 0;
    put_ext(&e, 43, "\x03\x03\x04\x03", 4);
    expect_ext_error(&e, "supported_versions");
    e.n = 0;
    put_ext(&e, 43, "", 0);
    expect_ext_error(&e, "supported_versions extension too short");
}

/* ---- size bounds ---- */

/* A hello padded (extension 21) so that its handshake message is msglen bytes. */
static void make_padded_msg(struct bytes *m, size_t msglen)
{
    static struct bytes e;
    static const uint8_t zeros[HELLO_MAX_BYTES];
    size_t fixed = 4 + 2 + 32 + 1 + 4 + 2 + 2; /* make_msg with an extensions block */
    e.n = 0;
    put_sni(&e, "big.example.com", 15);
    put_ext(&e, 21, zeros, msglen - fixed - e.n - 4);
    make_msg(m, &e);
}

TEST(tls_hello_size_bounds)
{
    static struct bytes m, b;
    struct hello_info info;
    const char *why;
    /* the largest hello: one record, ending exactly at HELLO_MAX_BYTES */
    make_padded_msg(&m, HELLO_MAX_BYTES - 5);
    frame(&b, m.b, m.n, NULL, 0);
    CHECK_EQ_U64(b.n, HELLO_MAX_BYTES);
    CHECK(parse(&b, &info, NULL) == HELLO_OK);
    CHECK(strcmp(info.sni, "big.example.com") == 0);
    /* one byte more: refused from the handshake header on */
    make_padded_msg(&m, HELLO_MAX_BYTES - 4);
    frame(&b, m.b, m.n, NULL, 0);
    CHECK(tls_hello_parse(b.b, 9, &info, &why) == HELLO_ERROR);
    CHECK_STR_CONTAINS(why, "too large");
    /* the same message within bounds but spread over records: the headers push it over */
    make_padded_msg(&m, HELLO_MAX_BYTES - 5);
    frame_chunks(&b, m.b, m.n, 1000);
    CHECK(parse(&b, &info, &why) == HELLO_ERROR);
    CHECK_STR_CONTAINS(why, "too large");
    /* whatever the framing, HELLO_MAX_BYTES bytes always get a decision */
    for (size_t chunk = 1; chunk < 20000; chunk = chunk * 3 + 1) {
        frame_chunks(&b, m.b, m.n, chunk > 16384 ? 16384 : chunk);
        CHECK(tls_hello_parse(b.b, HELLO_MAX_BYTES, &info, NULL) == HELLO_ERROR);
    }
}

/* ---- SNI patterns ---- */

TEST(tls_sni_match_exact)
{
    CHECK(sni_match("api.example.com", "api.example.com", 15));
    CHECK(sni_match("API.Example.com", "api.EXAMPLE.com", 15));
    CHECK(!sni_match("api.example.com", "api.example.co", 14));
    CHECK(!sni_match("api.example.com", "api.example.comm", 16));
    CHECK(!sni_match("api.example.com", "x.api.example.com", 17));
    /* name_len bounds the name, which need not be NUL-terminated */
    CHECK(sni_match("api.example.com", "api.example.com.evil", 15));
    CHECK(!sni_match("a", "", 0));
}

TEST(tls_sni_match_wildcard)
{
    const char *p = "*.example.com";
    CHECK(sni_match(p, "www.example.com", 15));
    CHECK(sni_match(p, "WWW.EXAMPLE.COM", 15));
    CHECK(sni_match(p, "a.b.example.com", 15)); /* any depth (NGINX semantics) */
    CHECK(sni_match(p, "x.example.com", 13));
    CHECK(!sni_match(p, "example.com", 11)); /* never the apex */
    CHECK(!sni_match(p, ".example.com", 12));
    CHECK(!sni_match(p, "wwwexample.com", 14));
    CHECK(!sni_match(p, "www.example.org", 15));
    CHECK(!sni_match(p, "www.example.com.org", 19));
    CHECK(!sni_match(p, "", 0));
    CHECK(sni_name_valid("a.b", 3, NULL) && !sni_name_valid("a..b", 4, NULL));
}

TEST(tls_sni_pattern_valid)
{
    static const char *const good[] = {"example.com",     "*.example.com",     "*.com", "localhost",
                                       "API.Example.COM", "_acme.x-y.example", "*.a"};
    static const struct {
        const char *pattern;
        const char *err;
    } bad[] = {
        {"", "empty"},
        {"*", "followed by '.'"},
        {"*.", "empty"},
        {"*example.com", "followed by '.'"},
        {"www.*.com", "only allowed"},
        {"*.*.example.com", "only allowed"},
        {"a*.example.com", "only allowed"},
        {"example.com.", "empty label"},
        {".example.com", "empty label"},
        {"exa mple.com", "invalid character"},
        {"*..example.com", "empty label"},
    };
    const char *why;
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
        CHECK(sni_pattern_valid(good[i], NULL));
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        why = NULL;
        CHECK(!sni_pattern_valid(bad[i].pattern, &why));
        CHECK_STR_CONTAINS(why, bad[i].err);
    }
    /* length: 255 bytes is the limit for a name and for a wildcard pattern */
    char p[300];
    memset(p, 'a', sizeof(p));
    for (size_t i = 63; i < sizeof(p); i += 64)
        p[i] = '.';
    p[255] = '\0';
    CHECK(sni_pattern_valid(p, NULL));
    p[0] = '*';
    p[1] = '.';
    CHECK(sni_pattern_valid(p, NULL));
    p[255] = 'a';
    p[256] = '\0';
    CHECK(!sni_pattern_valid(p, &why));
    p[0] = 'a';
    p[1] = 'a';
    CHECK(!sni_pattern_valid(p, &why));
}
