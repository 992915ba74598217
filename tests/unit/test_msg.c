/* test_msg.c — the HTTP message helpers and the per-transaction arena. */
#include "http/msg.h"
#include "test.h"

#include <stdlib.h>

TEST(arena_fixed_first_block_then_heap)
{
    _Alignas(8) char buf[256];
    struct arena a;
    arena_init_buf(&a, buf, sizeof(buf), 0);
    char *p = arena_alloc(&a, 64);
    CHECK(p >= buf && p < buf + sizeof(buf)); /* from the caller's block */
    char *q = arena_alloc(&a, 1000);          /* too big for it: a heap block */
    CHECK(q && (q < buf || q >= buf + sizeof(buf)));
    arena_reset(&a);
    CHECK(arena_alloc(&a, 8) != NULL);
    arena_free(&a); /* ASan: the fixed block is not freed, the heap one is */
}

TEST(arena_limit_refuses)
{
    struct arena a;
    arena_init(&a, 1024);
    CHECK(arena_alloc(&a, 1000) != NULL);
    CHECK(arena_alloc(&a, 100) == NULL);
    arena_free(&a);
}

TEST(msg_headers_set_add_remove)
{
    struct arena a;
    arena_init(&a, 0);
    struct http_msg m = {0};
    CHECK(http_hdr_add(&m, &a, HSTR_LIT("X-A"), HSTR_LIT("1")) == 0);
    CHECK(http_hdr_add(&m, &a, HSTR_LIT("x-a"), HSTR_LIT("2")) == 0);
    CHECK(http_hdr_add(&m, &a, HSTR_LIT("B"), HSTR_LIT("3")) == 0);
    for (int i = 0; i < 40; i++) /* grows the array past its first size */
        CHECK(http_hdr_add(&m, &a, HSTR_LIT("c"), HSTR_LIT("v")) == 0);
    CHECK(hstr_eq(http_hdr_get(&m, HSTR_LIT("X-a")), HSTR_LIT("1")));
    CHECK(http_hdr_set(&m, &a, HSTR_LIT("x-A"), HSTR_LIT("9")) == 0);
    CHECK_EQ_U64(http_hdr_remove(&m, HSTR_LIT("c")), 40);
    CHECK_EQ_U64(m.nhdrs, 2);
    CHECK(hstr_eq(m.hdrs[0].value, HSTR_LIT("9")) && hstr_eq(m.hdrs[1].name, HSTR_LIT("B")));
    arena_free(&a);
}

TEST(msg_cookie_and_query_lookup)
{
    struct arena a;
    arena_init(&a, 0);
    struct http_msg m = {0};
    http_hdr_add(&m, &a, HSTR_LIT("Cookie"), HSTR_LIT("a=1; sid=\"xyz\";b"));
    http_hdr_add(&m, &a, HSTR_LIT("cookie"), HSTR_LIT("later=2"));
    CHECK(hstr_eq(http_cookie_get(&m, HSTR_LIT("sid")), HSTR_LIT("xyz")));
    CHECK(hstr_eq(http_cookie_get(&m, HSTR_LIT("later")), HSTR_LIT("2")));
    CHECK(http_cookie_get(&m, HSTR_LIT("b")).p != NULL);
    CHECK(http_cookie_get(&m, HSTR_LIT("s")).p == NULL);
    m.query = HSTR_LIT("x=1&flag&y=");
    CHECK(hstr_eq(http_query_get(&m, HSTR_LIT("x")), HSTR_LIT("1")));
    CHECK(http_query_get(&m, HSTR_LIT("flag")).len == 0 && http_query_get(&m, HSTR_LIT("flag")).p);
    CHECK(http_query_get(&m, HSTR_LIT("z")).p == NULL);
    arena_free(&a);
}
