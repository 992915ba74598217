/* fuzz_proxy_proto.c — libFuzzer target for src/net/proxy_proto.c. Parses the input whole
 * and at every split point, and aborts unless: prefixes of a header need more, a result never
 * changes once final, and a parsed header rebuilt as v1 and v2 parses back to the same
 * addresses. The input's first 37 bytes also serve as raw addresses for the builders.
 */
#include <arpa/inet.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "net/proxy_proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define REQUIRE(cond)                                                                              \
    do {                                                                                           \
        if (!(cond))                                                                               \
            abort();                                                                               \
    } while (0)

/* Builds v1 and v2 headers for src → dst and checks they parse back to the same ends
 * (same_family: not mixed IPv4/IPv6, which the builders send as IPv4-mapped IPv6). */
static void check_roundtrip(const struct sockaddr_any *src, const struct sockaddr_any *dst)
{
    char v1[PP_V1_BUILD_MAX];
    uint8_t v2[PP_V2_BUILD_MAX];
    struct pp_info info;
    size_t consumed;
    const char *why;
    bool same_family = src->u.sa.sa_family == dst->u.sa.sa_family;
    ssize_t n1 = pp_build_v1(src, dst, v1, sizeof(v1));
    ssize_t n2 = pp_build_v2(src, dst, v2, sizeof(v2));
    REQUIRE(n1 > 0 && n2 > 0);
    REQUIRE(pp_parse((const uint8_t *)v1, (size_t)n1, &info, &consumed, &why) == PP_OK);
    REQUIRE(consumed == (size_t)n1 && !info.local);
    REQUIRE(!same_family || (addr_equal(&info.src, src) && addr_equal(&info.dst, dst)));
    REQUIRE(pp_parse(v2, (size_t)n2, &info, &consumed, &why) == PP_OK);
    REQUIRE(consumed == (size_t)n2 && !info.local);
    REQUIRE(!same_family || (addr_equal(&info.src, src) && addr_equal(&info.dst, dst)));
}

/* Raw bytes as addresses: data[0] picks the families, then addresses and ports. */
static void fuzz_builders(const uint8_t *data, size_t size)
{
    struct sockaddr_any a[2];
    if (size < 1 + 2 * 18)
        return;
    memset(a, 0, sizeof(a));
    for (int i = 0; i < 2; i++) {
        const uint8_t *p = data + 1 + 18 * i;
        uint16_t port = (uint16_t)(p[16] << 8 | p[17]);
        if (data[0] >> i & 1) {
            a[i].u.in6.sin6_family = AF_INET6;
            memcpy(&a[i].u.in6.sin6_addr, p, 16);
            a[i].u.in6.sin6_port = htons(port);
            a[i].len = sizeof(struct sockaddr_in6);
        } else {
            a[i].u.in.sin_family = AF_INET;
            memcpy(&a[i].u.in.sin_addr, p, 4);
            a[i].u.in.sin_port = htons(port);
            a[i].len = sizeof(struct sockaddr_in);
        }
    }
    check_roundtrip(&a[0], &a[1]);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct pp_info whole, part;
    size_t consumed, c;
    const char *why = NULL;
    enum pp_result r = pp_parse(data, size, &whole, &consumed, &why);
    REQUIRE(r != PP_ERROR || why != NULL);
    REQUIRE(r != PP_NEED_MORE || size < PP_MAX_HEADER);
    REQUIRE(r != PP_OK || (consumed > 0 && consumed <= size && consumed <= PP_MAX_HEADER));

    /* every split: NEED_MORE until the first final result, which is the whole input's one
     * (PP_OK exactly at the header's end, with the same info) */
    for (size_t i = 0; i < size; i++) {
        enum pp_result p = pp_parse(data, i, &part, &c, &why);
        if (p == PP_NEED_MORE)
            continue;
        REQUIRE(p == r);
        if (p == PP_OK)
            REQUIRE(i == consumed && c == consumed && memcmp(&part, &whole, sizeof(part)) == 0);
        break;
    }

    if (r == PP_OK && !whole.local)
        check_roundtrip(&whole.src, &whole.dst);
    fuzz_builders(data, size);
    return 0;
}
