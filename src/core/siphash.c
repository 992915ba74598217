/* siphash.c — see siphash.h. */
#include "siphash.h"

#include <endian.h>
#include <errno.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "core/hash.h"

#define ROTL64(x, b) (((x) << (b)) | ((x) >> (64 - (b))))
#define SIPROUND                                                                                   \
    do {                                                                                           \
        v0 += v1, v1 = ROTL64(v1, 13), v1 ^= v0, v0 = ROTL64(v0, 32);                              \
        v2 += v3, v3 = ROTL64(v3, 16), v3 ^= v2;                                                   \
        v0 += v3, v3 = ROTL64(v3, 21), v3 ^= v0;                                                   \
        v2 += v1, v1 = ROTL64(v1, 17), v1 ^= v2, v2 = ROTL64(v2, 32);                              \
    } while (0)

uint64_t siphash24(uint64_t k0, uint64_t k1, const void *data, size_t len)
{
    const uint8_t *in = data;
    uint64_t v0 = 0x736f6d6570736575ull ^ k0, v1 = 0x646f72616e646f6dull ^ k1;
    uint64_t v2 = 0x6c7967656e657261ull ^ k0, v3 = 0x7465646279746573ull ^ k1;
    uint64_t m, last = (uint64_t)len << 56;
    size_t i = 0;
    for (; i + 8 <= len; i += 8) {
        memcpy(&m, in + i, 8); /* one load; the words are little-endian */
        m = le64toh(m);
        v3 ^= m;
        SIPROUND;
        SIPROUND;
        v0 ^= m;
    }
    for (unsigned j = 0; i + j < len; j++)
        last |= (uint64_t)in[i + j] << (8 * j);
    v3 ^= last;
    SIPROUND;
    SIPROUND;
    v0 ^= last;
    v2 ^= 0xff;
    SIPROUND;
    SIPROUND;
    SIPROUND;
    SIPROUND;
    return v0 ^ v1 ^ v2 ^ v3;
}

void siphash_random_key(uint64_t key[2])
{
    size_t got = 0;
    while (got < 2 * sizeof(uint64_t)) {
        ssize_t n = getrandom((char *)key + got, 2 * sizeof(uint64_t) - got, 0);
        if (n > 0) {
            got += (size_t)n;
        } else if (n < 0 && errno != EINTR) {
            break;
        }
    }
    if (got == 2 * sizeof(uint64_t))
        return;
    /* no getrandom (very old kernel): see siphash.h */
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    key[0] ^= hash_mix64((uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 30));
    key[1] ^= hash_mix64((uint64_t)getpid() ^ (uint64_t)(uintptr_t)key ^ key[0]);
}
