/* test_basic_auth.c — the htpasswd reader (hash kinds, comments, duplicates, errors) and the
 * basic_auth filter on transactions built by hand (right, wrong, unknown, malformed). The
 * per-worker cache and the e2e flows are in tests/e2e/test_auth_filters.py.
 */
#include <stdlib.h>
#include <string.h>

#include "http/filter.h"
#include "http/filters/auth.h"
#include "http/msg.h"
#include "test.h"

/* alice:pw (bcrypt, cost 4) and bob:pw (SHA-512-crypt), made by htpasswd and openssl passwd. */
#define ALICE "alice:$2y$04$XZSiIuYwH10Ai1VNRiFXAe3CTxU3WlrY/kgVCooaZMQWrD0NfxVvi"
#define BOB                                                                                        \
    "bob:$6$abc$MtSdWSZbhct2oe.SOqOUM2M/GA/uj5.vyVtJgRHgKi9uqXuWuJqOYE7H/YlsYGVg/"                 \
    "YYzDV0xt3fEIwYt580.5."

static int parse(struct filter_basic_auth_conf *c, const char *text, char *why, size_t len)
{
    char *copy = strdup(text);
    memset(c, 0, sizeof(*c));
    int rc = htpasswd_parse(c, copy, why, len);
    free(copy);
    return rc;
}

TEST(htpasswd_reads_users_and_refuses_bad_files)
{
    struct filter_basic_auth_conf c;
    char why[256] = "";
    CHECK(parse(&c, "# staff\n" BOB "\r\n\n" ALICE "\n", why, sizeof(why)) == 0);
    CHECK(c.nusers == 2 && strcmp(c.users[0].name, "alice") == 0);
    basic_auth_release(&c);
    CHECK(parse(&c, "carol:$apr1$x$y\n", why, sizeof(why)) < 0);
    CHECK_STR_CONTAINS(why, "line 1 (user carol): unsupported hash");
    basic_auth_release(&c);
    CHECK(parse(&c, BOB "\n" BOB "\n", why, sizeof(why)) < 0);
    CHECK_STR_CONTAINS(why, "user bob is listed twice");
    basic_auth_release(&c);
    CHECK(parse(&c, "# nobody\n", why, sizeof(why)) < 0);
    CHECK_STR_CONTAINS(why, "no users");
    basic_auth_release(&c);
    CHECK(parse(&c, "\n:hash\n", why, sizeof(why)) < 0);
    CHECK_STR_CONTAINS(why, "line 2: expected user:hash");
    basic_auth_release(&c);
}

static unsigned status_for(struct filter_basic_auth_conf *c, const char *authorization)
{
    struct http_txn t;
    memset(&t, 0, sizeof(t));
    arena_init(&t.arena, 0);
    t.req.is_request = true;
    if (authorization)
        CHECK(http_hdr_add(&t.req, &t.arena, HSTR_LIT("Authorization"), hstr_c(authorization)) ==
              0);
    enum filter_verdict v = filter_basic_auth.on_request(&t, c);
    unsigned status = v == FILTER_CONTINUE ? 200 : v == FILTER_ANSWER ? t.resp.status : 500;
    if (v == FILTER_ANSWER)
        CHECK(http_hdr_get(&t.resp, HSTR_LIT("WWW-Authenticate")).p != NULL);
    arena_free(&t.arena);
    return status;
}

TEST(basic_auth_checks_credentials)
{
    struct filter_basic_auth_conf c;
    char why[256];
    CHECK(parse(&c, ALICE "\n" BOB "\n", why, sizeof(why)) == 0);
    c.realm = "r";
    c.forward_credentials = true;
    CHECK_EQ_U64(status_for(&c, "Basic YWxpY2U6cHc="), 200); /* alice:pw */
    CHECK_EQ_U64(status_for(&c, "basic Ym9iOnB3"), 200);     /* bob:pw */
    CHECK_EQ_U64(status_for(&c, "Basic YWxpY2U6cHg="), 401); /* alice:px */
    CHECK_EQ_U64(status_for(&c, "Basic ZXZlOnB3"), 401);     /* eve:pw */
    CHECK_EQ_U64(status_for(&c, "Basic YWxpY2U="), 401);     /* no colon */
    CHECK_EQ_U64(status_for(&c, "Basic !!!!"), 401);
    CHECK_EQ_U64(status_for(&c, "Bearer x"), 401);
    CHECK_EQ_U64(status_for(&c, NULL), 401);
    basic_auth_release(&c);
}
