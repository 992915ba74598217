/* test_h2_config.c — listeners[].http.h2: the defaults, every key, and the errors. */
#include <string.h>

#include "config/config.h"
#include "test.h"

static struct config *load(const char *yaml, struct config_errors *e)
{
    memset(e, 0, sizeof(*e));
    return config_load_string("strata.yaml", yaml, 2, e);
}

#define LISTENER                                                                                   \
    "listeners:\n"                                                                                 \
    "  - name: web\n"                                                                              \
    "    listen: 127.0.0.1:8080\n"                                                                 \
    "    mode: http\n"                                                                             \
    "    backend: app\n"
#define BACKENDS                                                                                   \
    "backends:\n"                                                                                  \
    "  app: { servers: [ 127.0.0.1:9000 ] }\n"

TEST(h2_config_defaults)
{
    struct config_errors e;
    struct config *c = load(LISTENER BACKENDS, &e);
    CHECK(c != NULL);
    if (!c)
        return;
    const struct http2_conf *h = &c->listeners[0].http.h2;
    CHECK(!h->enabled && !h->cleartext);
    CHECK_EQ_U64(h->max_streams, 100);
    CHECK_EQ_U64(h->window, 64 << 10);
    CHECK_EQ_U64(h->stream_buffer, 64 << 10);
    CHECK_EQ_U64(h->stall_ms, 30000);
    CHECK_EQ_U64(h->max_continuations, 8);
    CHECK_EQ_U64(h->resets_per_s, 100);
    CHECK_EQ_U64(h->glitches_per_s, 100);
    CHECK_EQ_U64(h->settings_per_s, 100);
    CHECK_EQ_U64(h->pings_per_s, 100);
    CHECK_EQ_U64(h->priority_per_s, 1000);
    CHECK_EQ_U64(h->empty_data_per_s, 100);
    CHECK_EQ_U64(h->window_update_per_s, 1000);
    config_unref(c);
    config_errors_free(&e);
}

TEST(h2_config_every_key)
{
    struct config_errors e;
    struct config *c = load(LISTENER "    http:\n"
                                     "      h2:\n"
                                     "        enabled: true\n"
                                     "        cleartext: true\n"
                                     "        max_concurrent_streams: 32\n"
                                     "        initial_window: 1m\n"
                                     "        stream_buffer: 256k\n"
                                     "        stream_stall_timeout: 5s\n"
                                     "        max_continuations: 4\n"
                                     "        max_resets_per_second: 10\n"
                                     "        max_glitches_per_second: 11\n"
                                     "        max_settings_per_second: 12\n"
                                     "        max_pings_per_second: 13\n"
                                     "        max_priority_per_second: 14\n"
                                     "        max_empty_data_per_second: 15\n"
                                     "        max_window_updates_per_second: 16\n" BACKENDS,
                            &e);
    CHECK(c != NULL);
    if (!c) {
        config_errors_free(&e);
        return;
    }
    const struct http2_conf *h = &c->listeners[0].http.h2;
    CHECK(h->enabled && h->cleartext);
    CHECK_EQ_U64(h->max_streams, 32);
    CHECK_EQ_U64(h->window, 1 << 20);
    CHECK_EQ_U64(h->stream_buffer, 256 << 10);
    CHECK_EQ_U64(h->stall_ms, 5000);
    CHECK_EQ_U64(h->max_continuations, 4);
    CHECK_EQ_U64(h->resets_per_s + h->glitches_per_s + h->settings_per_s + h->pings_per_s +
                     h->priority_per_s + h->empty_data_per_s + h->window_update_per_s,
                 10 + 11 + 12 + 13 + 14 + 15 + 16);
    config_unref(c);
    config_errors_free(&e);
}

TEST(h2_config_errors)
{
    static const struct {
        const char *yaml, *msg;
    } bad[] = {
        {"        max_concurrent_streams: 0\n", "h2.max_concurrent_streams"},
        {"        initial_window: 1k\n", "h2.initial_window"},
        {"        max_pings_per_second: -1\n", "h2.max_pings_per_second"},
        {"        clear_text: true\n", "h2.clear_text: unknown key"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char yaml[1024];
        snprintf(yaml, sizeof(yaml), "%s    http:\n      h2:\n%s%s", LISTENER, bad[i].yaml,
                 BACKENDS);
        struct config_errors e;
        struct config *c = load(yaml, &e);
        if (c || !e.text || !strstr(e.text, bad[i].msg))
            test_fail(__FILE__, __LINE__, "case %zu: expected \"%s\" in: %s", i, bad[i].msg,
                      e.text ? e.text : "(loaded)");
        if (c)
            config_unref(c);
        config_errors_free(&e);
    }
}
