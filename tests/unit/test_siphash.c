/* test_siphash.c — SipHash-2-4 (src/core/siphash.c) against the reference vectors of the
 * SipHash paper (key 00..0f, message 00..len-1): an empty message, one block and a tail,
 * and several blocks.
 */
#include <stdint.h>

#include "core/siphash.h"
#include "test.h"

TEST(siphash24_reference_vectors)
{
    const uint64_t k0 = 0x0706050403020100ull, k1 = 0x0f0e0d0c0b0a0908ull;
    uint8_t in[64];
    for (unsigned i = 0; i < sizeof(in); i++)
        in[i] = (uint8_t)i;
    CHECK_EQ_U64(siphash24(k0, k1, in, 0), 0x726fdb47dd0e0e31ull);
    CHECK_EQ_U64(siphash24(k0, k1, in, 15), 0xa129ca6149be45e5ull);
    CHECK_EQ_U64(siphash24(k0, k1, in, 63), 0x958a324ceb064572ull);
}
