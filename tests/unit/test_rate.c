/* test_rate.c — the rate algorithms of src/core/rate.c: token-bucket refill for rates that
 * are not whole per millisecond, the burst, the retry and reset times; the sliding window
 * at its edges (the previous window's weight, a skipped window, a clock a window ahead),
 * and many threads never taking more than the budget.
 */
#include <pthread.h>

#include "core/rate.h"
#include "test.h"

TEST(rate_bucket_refill)
{
    struct rate_bucket b;
    CHECK(rate_bucket_init(&b, 100, 60000, 5) == 0); /* 100 a minute: one per 600 ms */
    CHECK_EQ_U64(b.cost, 600);
    CHECK_EQ_U64(b.refill, 1);
    _Atomic uint64_t w = 0;
    struct rate_state st;
    uint64_t t0 = 1000000;
    for (int i = 0; i < 5; i++)
        CHECK(rate_bucket_take(&w, t0, &b, &st));
    CHECK_EQ_U64(st.remaining, 0);
    CHECK_EQ_U64(st.retry_ms, 600);
    CHECK_EQ_U64(st.reset_ms, 3000);
    CHECK(!rate_bucket_take(&w, t0 + 599, &b, &st));
    CHECK_EQ_U64(st.retry_ms, 1);
    CHECK(rate_bucket_take(&w, t0 + 600, &b, &st));
    CHECK(!rate_bucket_take(&w, t0 + 600, &b, &st));
    /* a long pause refills the burst, never more */
    for (int i = 0; i < 5; i++)
        CHECK(rate_bucket_take(&w, t0 + 100000, &b, NULL));
    CHECK(!rate_bucket_take(&w, t0 + 100000, &b, NULL));
    /* a clock behind the word's stamp refills nothing */
    CHECK(!rate_bucket_take(&w, t0 + 50000, &b, NULL));
}

TEST(rate_bucket_exact_rate)
{
    struct rate_bucket b;
    CHECK(rate_bucket_init(&b, 3, 1000, 1) == 0); /* 3 a second: a token every 333.3 ms */
    _Atomic uint64_t w = 0;
    uint64_t t = 5000, allowed = 0;
    for (int ms = 0; ms < 10000; ms++) /* 10 s, asking every ms */
        allowed += rate_bucket_take(&w, t + (uint64_t)ms, &b, NULL);
    CHECK_EQ_U64(allowed, 30); /* 1 at once, then 29 more in 9.999 s (3/s exactly) */
    /* too fine a rate for so large a burst does not fit the word */
    CHECK(rate_bucket_init(&b, 7, 3600000, 10000) < 0);
    CHECK(rate_bucket_init(&b, 0, 1000, 1) < 0);
}

TEST(rate_window_edges)
{
    struct rate_window rw = {10, 1000};
    _Atomic uint64_t w = 0;
    struct rate_state st;
    uint64_t t0 = 7000; /* the start of a window */
    for (int i = 0; i < 10; i++)
        CHECK(rate_window_take(&w, t0 + 900, &rw, &st));
    CHECK_EQ_U64(st.remaining, 0);
    CHECK(!rate_window_take(&w, t0 + 999, &rw, &st));
    /* next window: the 10 weigh (1000 - e) / 1000; at e = 0 all of them still count */
    CHECK(!rate_window_take(&w, t0 + 1000, &rw, &st));
    CHECK_EQ_U64(st.retry_ms, 100); /* ceil(10 * 900 / 1000) = 9 < 10 at e = 100 */
    CHECK(!rate_window_take(&w, t0 + 1099, &rw, NULL));
    CHECK(rate_window_take(&w, t0 + 1100, &rw, &st)); /* 9 + 1 */
    CHECK(!rate_window_take(&w, t0 + 1100, &rw, NULL));
    /* half way through: 5 of the previous ten + 1 */
    for (int i = 0; i < 4; i++)
        CHECK(rate_window_take(&w, t0 + 1500, &rw, NULL));
    CHECK(!rate_window_take(&w, t0 + 1500, &rw, NULL));
    /* a window skipped entirely forgets everything */
    for (int i = 0; i < 10; i++)
        CHECK(rate_window_take(&w, t0 + 3000, &rw, NULL));
    CHECK(!rate_window_take(&w, t0 + 3000, &rw, NULL));
    /* a caller whose clock is a window behind the word counts into the later window */
    uint32_t prev, cur;
    CHECK(!rate_window_take(&w, t0 + 2999, &rw, NULL));
    rate_window_counts(atomic_load(&w), t0 + 3000, 1000, &prev, &cur);
    CHECK_EQ_U64(cur, 10);
    CHECK_EQ_U64(prev, 0);
}

TEST(rate_window_fits_pending)
{
    struct rate_window rw = {100, 10000};
    struct rate_state st;
    /* 40 counted elsewhere, 59 pending here: one more fits, then none */
    CHECK(rate_window_fits(&rw, 0, 40, 59, 5000, &st));
    CHECK_EQ_U64(st.remaining, 0);
    CHECK(!rate_window_fits(&rw, 0, 40, 60, 5000, &st));
    CHECK_EQ_U64(st.retry_ms, 5000 + 100); /* ceil(100 * 9900 / 10000) = 99 fits */
    CHECK(rate_window_fits(&rw, 0, 0, 0, 5000, &st));
    CHECK_EQ_U64(st.remaining, 99);
    CHECK_EQ_U64(rate_window_estimate(100, 0, 15000, 10000), 50);
    CHECK_EQ_U64(rate_window_estimate(100, 1, 15001, 10000), 51); /* 49.99 rounds up */
}

struct hammer {
    _Atomic uint64_t *w;
    int bucket;
    unsigned allowed;
};

static void *hammer_run(void *arg)
{
    struct hammer *h = arg;
    struct rate_bucket b;
    rate_bucket_init(&b, 1, 100000, 100); /* no refill to speak of */
    struct rate_window rw = {1000, 3600000};
    for (int i = 0; i < 20000; i++)
        h->allowed += h->bucket ? rate_bucket_take(h->w, 1000, &b, NULL)
                                : rate_window_take(h->w, 1000, &rw, NULL);
    return NULL;
}

TEST(rate_threads_never_exceed)
{
    for (int bucket = 0; bucket < 2; bucket++) {
        _Atomic uint64_t w = 0;
        struct hammer h[4];
        pthread_t th[4];
        for (int i = 0; i < 4; i++) {
            h[i] = (struct hammer){&w, bucket, 0};
            CHECK(pthread_create(&th[i], NULL, hammer_run, &h[i]) == 0);
        }
        unsigned total = 0;
        for (int i = 0; i < 4; i++) {
            pthread_join(th[i], NULL);
            total += h[i].allowed;
        }
        CHECK_EQ_U64(total, bucket ? 100 : 1000);
    }
}
