/* jwks_fetch.c — the jwt filter's keyset holder (see jwt.h): the readers' grace period, and
 * the thread that fetches a JWKS URL with libcurl (blocking, with a timeout, on its own
 * thread: never on a worker), at start, every `refresh` and on a worker's kid miss.
 */
#include <curl/curl.h>
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "core/log.h"
#include "core/time.h"
#include "http/filters/jwt.h"

/* ---- readers ---- */

const struct jwks *jwt_keys_enter(struct jwt_keys *k, unsigned worker)
{
    if (k->readers && worker < k->nworkers)
        atomic_fetch_add(&k->readers[worker].seq, 1);
    return atomic_load(&k->current);
}

void jwt_keys_leave(struct jwt_keys *k, unsigned worker)
{
    if (k->readers && worker < k->nworkers)
        atomic_fetch_add_explicit(&k->readers[worker].seq, 1, memory_order_release);
}

void jwt_keys_want_refresh(struct jwt_keys *k)
{
    if (!k->started)
        return;
    /* one wake until the fetch it asks for; the fetcher keeps min_refresh between fetches */
    bool no = false;
    if (atomic_compare_exchange_strong(&k->want, &no, true)) {
        uint64_t one = 1;
        if (write(k->wake_fd, &one, sizeof(one)) < 0)
            atomic_store(&k->want, false); /* the counter is full: a wake is pending */
    }
}

/* Waits until no worker can still hold what `current` was before the exchange. */
static void grace_period(struct jwt_keys *k)
{
    struct timespec tick = {0, 100 * 1000};
    for (unsigned i = 0; k->readers && i < k->nworkers; i++) {
        uint64_t s = atomic_load(&k->readers[i].seq);
        while ((s & 1) && atomic_load(&k->readers[i].seq) == s)
            nanosleep(&tick, NULL);
    }
}

void jwt_keys_swap(struct jwt_keys *k, struct jwks *ks)
{
    struct jwks *old = atomic_exchange(&k->current, ks);
    atomic_fetch_add(&k->serial, 1); /* after: a worker that read the old serial may have
                                        read the old keyset, so its entry is not kept */
    grace_period(k);
    jwks_free(old);
}

/* ---- fetching ---- */

struct body {
    char *p;
    size_t len;
};

static size_t on_data(char *data, size_t size, size_t n, void *arg)
{
    struct body *b = arg;
    size_t len = size * n;
    if (b->len + len > JWKS_MAX_BYTES)
        return 0; /* too large: curl fails the transfer */
    char *p = realloc(b->p, b->len + len + 1);
    if (!p)
        return 0;
    memcpy(p + b->len, data, len);
    b->p = p;
    b->len += len;
    p[b->len] = '\0';
    return len;
}

/* One fetch; installs the keyset when it parses. */
static void fetch(struct jwt_keys *k)
{
    struct body b = {0};
    char why[256] = "";
    CURL *c = curl_easy_init();
    CURLcode rc = CURLE_OUT_OF_MEMORY;
    atomic_store(&k->last_fetch_ms, mono_ms());
    atomic_store(&k->want, false);
    if (c) {
        curl_easy_setopt(c, CURLOPT_URL, k->url);
        curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "https,http");
        curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)k->timeout_ms);
        curl_easy_setopt(c, CURLOPT_FAILONERROR, 1L);
        curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
        curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
        if (k->ca_file)
            curl_easy_setopt(c, CURLOPT_CAINFO, k->ca_file);
        rc = curl_easy_perform(c);
        curl_easy_cleanup(c);
    }
    struct jwks *ks = NULL;
    if (rc != CURLE_OK)
        snprintf(why, sizeof(why), "%s", curl_easy_strerror(rc));
    else
        ks = jwks_parse(b.p ? b.p : "", b.len, why, sizeof(why));
    free(b.p);
    if (!ks) {
        log_warn("jwt: fetching %s failed: %s (the keys already held are kept)", k->url, why);
        return;
    }
    log_info("jwt: %u key%s from %s", ks->nkeys, ks->nkeys == 1 ? "" : "s", k->url);
    jwt_keys_swap(k, ks);
}

/* Sleeps until min_refresh has passed since the last fetch (or until asked to stop). */
static void wait_min_refresh(struct jwt_keys *k)
{
    uint64_t next = atomic_load(&k->last_fetch_ms) + k->min_refresh_ms, now;
    while (!atomic_load(&k->stop) && (now = mono_ms()) < next) {
        struct pollfd p = {.fd = k->wake_fd, .events = POLLIN};
        uint64_t v;
        if (poll(&p, 1, (int)(next - now)) > 0 && read(k->wake_fd, &v, sizeof(v)) < 0 &&
            errno != EAGAIN)
            return;
    }
}

static void *fetcher_main(void *arg)
{
    struct jwt_keys *k = arg;
    fetch(k);
    while (!atomic_load(&k->stop)) {
        /* without keys, try again as soon as allowed */
        uint32_t wait = atomic_load(&k->current) ? k->refresh_ms : k->min_refresh_ms;
        struct pollfd p = {.fd = k->wake_fd, .events = POLLIN};
        int r = poll(&p, 1, (int)wait);
        if (atomic_load(&k->stop))
            break;
        if (r > 0) {
            uint64_t v;
            if (read(k->wake_fd, &v, sizeof(v)) < 0 && errno != EAGAIN)
                break;
        }
        wait_min_refresh(k);
        if (!atomic_load(&k->stop))
            fetch(k);
    }
    return NULL;
}

static void curl_init_once(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
}

int jwt_keys_start(struct jwt_keys *k, unsigned nworkers, char *err, size_t errlen)
{
    if (k->started)
        return 0;
    k->readers = calloc(nworkers ? nworkers : 1, sizeof(*k->readers));
    k->nworkers = nworkers;
    if (!k->readers) {
        snprintf(err, errlen, "jwt: out of memory");
        return -1;
    }
    if (!k->url)
        return 0;
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, curl_init_once);
    k->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (k->wake_fd < 0) {
        snprintf(err, errlen, "jwt: eventfd: %s", strerror(errno));
        return -1;
    }
    int rc = pthread_create(&k->thread, NULL, fetcher_main, k);
    if (rc) {
        close(k->wake_fd);
        snprintf(err, errlen, "jwt: cannot start the JWKS fetcher: %s", strerror(rc));
        return -1;
    }
    k->started = true;
    return 0;
}

void jwt_keys_stop(struct jwt_keys *k)
{
    if (k->started) {
        uint64_t one = 1;
        atomic_store(&k->stop, true);
        if (write(k->wake_fd, &one, sizeof(one)) < 0)
            log_warn("jwt: cannot wake the JWKS fetcher: %s", strerror(errno));
        pthread_join(k->thread, NULL);
        close(k->wake_fd);
        k->started = false;
    }
    jwks_free(atomic_exchange(&k->current, NULL));
    free(k->readers);
    free(k->url);
    free(k->ca_file);
    k->readers = NULL;
    k->url = k->ca_file = NULL;
}
