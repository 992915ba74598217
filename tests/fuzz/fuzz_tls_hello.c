/* fuzz_tls_hello.c — libFuzzer target for the ClientHello peek (src/net/tls_hello.c).
 * The input is the first bytes of a connection. Checked beyond "no crash": a decision
 * (anything but HELLO_NEED_MORE) reached on a prefix is final and identical on the whole
 * input; HELLO_OK results are well-formed; HELLO_MAX_BYTES bytes always get a decision.
 * The input, cut to a string, also exercises sni_pattern_valid and sni_match.
 */
#include <stdlib.h>
#include <string.h>

#include "net/tls_hello.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define REQUIRE(cond)                                                                              \
    do {                                                                                           \
        if (!(cond))                                                                               \
            __builtin_trap();                                                                      \
    } while (0)

static void check_info(const struct hello_info *info)
{
    REQUIRE(info->sni_len <= HELLO_SNI_MAX);
    REQUIRE(info->sni[info->sni_len] == '\0' && strlen(info->sni) == info->sni_len);
    REQUIRE(info->sni_len == 0 || sni_name_valid(info->sni, info->sni_len, NULL));
    for (size_t i = 0; i < info->sni_len; i++)
        REQUIRE(info->sni[i] < 'A' || info->sni[i] > 'Z');
    REQUIRE(info->nalpn <= HELLO_ALPN_MAX);
    for (unsigned i = 0; i < info->nalpn; i++) {
        size_t n = strnlen(info->alpn[i], HELLO_ALPN_NAME_MAX);
        REQUIRE(n > 0 && n < HELLO_ALPN_NAME_MAX);
    }
    REQUIRE(info->has_alpn || (info->nalpn == 0 && !info->alpn_incomplete));
    REQUIRE(info->legacy_version >> 8 == 3);
}

static bool same_info(const struct hello_info *a, const struct hello_info *b)
{
    if (a->sni_len != b->sni_len || strcmp(a->sni, b->sni) || a->nalpn != b->nalpn ||
        a->has_alpn != b->has_alpn || a->alpn_incomplete != b->alpn_incomplete ||
        a->legacy_version != b->legacy_version || a->max_version != b->max_version)
        return false;
    for (unsigned i = 0; i < a->nalpn; i++)
        if (strcmp(a->alpn[i], b->alpn[i]))
            return false;
    return true;
}

/* Parses a prefix from its own heap copy, so that ASan sees any read past its end. */
static enum hello_result parse_prefix(const uint8_t *data, size_t n, struct hello_info *info,
                                      const char **why)
{
    uint8_t *copy = malloc(n ? n : 1);
    REQUIRE(copy != NULL);
    memcpy(copy, data, n);
    enum hello_result res = tls_hello_parse(copy, n, info, why);
    free(copy);
    return res;
}

static void check_patterns(const uint8_t *data, size_t size)
{
    char p[300], name[300];
    size_t n = size < sizeof(p) - 1 ? size : sizeof(p) - 1;
    memcpy(p, data, n);
    p[n] = '\0';
    if (!sni_pattern_valid(p, NULL))
        return;
    n = strlen(p);
    if (p[0] != '*') {
        REQUIRE(sni_match(p, p, n));
        return;
    }
    /* "*.suffix" matches "a.suffix" but not "suffix" */
    name[0] = 'a';
    memcpy(name + 1, p + 1, n); /* the suffix and its NUL */
    REQUIRE(sni_match(p, name, n));
    REQUIRE(!sni_match(p, p + 2, n - 2));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct hello_info whole, part;
    const char *why_whole, *why_part;
    enum hello_result res = parse_prefix(data, size, &whole, &why_whole);

    if (res == HELLO_OK)
        check_info(&whole);
    if (res == HELLO_ERROR || res == HELLO_NOT_TLS)
        REQUIRE(why_whole != NULL);
    if (size >= HELLO_MAX_BYTES)
        REQUIRE(res != HELLO_NEED_MORE);
    REQUIRE((res == HELLO_NOT_TLS) ==
            (size >= 1 && (data[0] != 22 || (size >= 2 && data[1] != 3))));

    const size_t cuts[] = {1, 5, 6, size / 3, size / 2, size - 1};
    for (size_t i = 0; i < sizeof(cuts) / sizeof(cuts[0]); i++) {
        if (cuts[i] >= size)
            continue;
        enum hello_result r = parse_prefix(data, cuts[i], &part, &why_part);
        if (r == HELLO_NEED_MORE)
            continue;
        REQUIRE(r == res && why_part == why_whole);
        if (r == HELLO_OK)
            REQUIRE(same_info(&part, &whole));
    }
    check_patterns(data, size);
    return 0;
}
