/* test_logbuf.c — the shared log machinery (core/logbuf.h): text and JSON lines built by
 * hand (time prefix, event, quoting and escaping, numbers, milliseconds), one buffer per
 * destination written by a flush, a file shared by path, and the `log:` and
 * `access_log:` configuration keys.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config/config.h"
#include "core/fmt.h"
#include "core/logbuf.h"
#include "test.h"

/* The line just built (without the 24-byte time), NUL-terminated in out. */
static void last_line(const struct log_bufs *b, int d, size_t skip, char *out, size_t cap)
{
    size_t len = b->len[d];
    size_t start = len - 1;
    while (start > 0 && b->buf[d][start - 1] != '\n')
        start--;
    size_t n = len - start - skip;
    if (n >= cap)
        n = cap - 1;
    memcpy(out, b->buf[d] + start + skip, n);
    out[n] = 0;
}

TEST(logbuf_text_and_json_lines)
{
    char path[] = "/tmp/strata-logbuf-XXXXXX";
    int tmp = mkstemp(path);
    CHECK(tmp >= 0);
    close(tmp);
    char err[128];
    int d = log_dest_open(path, LOG_DEST_STDERR, err, sizeof(err));
    CHECK(d > LOG_DEST_STDOUT);
    CHECK_EQ_U64(log_dest_open(path, LOG_DEST_STDERR, err, sizeof(err)), d); /* shared */
    CHECK_EQ_U64(log_dest_open(NULL, LOG_DEST_STDOUT, err, sizeof(err)), LOG_DEST_STDOUT);

    struct log_bufs b = {0};
    struct log_line l;
    char out[512];
    CHECK(log_begin(&l, &b, (struct log_target){(int16_t)d, LOG_FORMAT_TEXT}, "conn"));
    log_nword(&l, "listener", "pg");
    log_cword(&l, "server", NULL);
    log_name(&l, "route", "r#1");
    log_str(&l, "path", "/a b\"\x01", 6);
    log_u64(&l, "bytes_in", 18446744073709551615ull);
    log_ms(&l, "duration_ms", 1234567);
    log_ms(&l, "connect_ms", -1);
    log_ms(&l, "ttfb_ms", 5);
    log_end(&l);
    last_line(&b, d, 24, out, sizeof(out));
    CHECK_STR_CONTAINS(out, " info conn listener=pg server=- route=\"r#1\" path=\"/a b\\x22\\x01\" "
                            "bytes_in=18446744073709551615 duration_ms=1234.567 connect_ms=- "
                            "ttfb_ms=0.005\n");
    CHECK(b.buf[d][4] == '-' && b.buf[d][10] == 'T' && b.buf[d][19] == '.' && b.buf[d][23] == 'Z');

    CHECK(log_begin(&l, &b, (struct log_target){(int16_t)d, LOG_FORMAT_JSON}, "flow"));
    log_nword(&l, "client", "1.2.3.4:5");
    log_str(&l, "q", "a\"\\\n\xff", 5);
    log_ms(&l, "connect_ms", -1);
    log_u64(&l, "n", 0);
    log_end(&l);
    last_line(&b, d, 0, out, sizeof(out));
    CHECK(strncmp(out, "{\"time\":\"", 9) == 0);
    CHECK_STR_CONTAINS(out, "Z\",\"event\":\"flow\",\"client\":\"1.2.3.4:5\","
                            "\"q\":\"a\\\"\\\\\\u000a\\u00ff\",\"connect_ms\":null,\"n\":0}\n");

    /* off: nothing */
    uint32_t before = b.len[d];
    CHECK(!log_begin(&l, &b, (struct log_target){-1, LOG_FORMAT_OFF}, "conn"));
    CHECK_EQ_U64(b.len[d], before);

    /* a long value is cut, the line still ends */
    static char big[3 * LOG_LINE_MAX];
    memset(big, 'x', sizeof(big));
    CHECK(log_begin(&l, &b, (struct log_target){(int16_t)d, LOG_FORMAT_JSON}, NULL));
    log_str(&l, "big", big, sizeof(big));
    log_end(&l);
    CHECK(b.len[d] - before <= LOG_LINE_MAX);
    CHECK(b.buf[d][b.len[d] - 1] == '\n' && b.buf[d][b.len[d] - 2] == '}');

    size_t written = b.len[d];
    log_bufs_flush(&b);
    CHECK_EQ_U64(b.len[d], 0);
    CHECK_EQ_U64(b.dirty, 0);
    FILE *f = fopen(path, "r");
    CHECK(f != NULL);
    if (f) {
        fseek(f, 0, SEEK_END);
        CHECK_EQ_U64((uint64_t)ftell(f), written);
        fclose(f);
    }
    log_bufs_free(&b);
    log_dest_close(d);
    log_dest_close(d);
    unlink(path);
}

TEST(logbuf_fmt_u64)
{
    char d[20];
    CHECK_EQ_U64(fmt_u64(d, 0), 1);
    CHECK(d[0] == '0');
    CHECK_EQ_U64(fmt_u64(d, 1234567890), 10);
    CHECK(memcmp(d, "1234567890", 10) == 0);
}

TEST(logbuf_config_keys)
{
    struct config_errors e = {0};
    struct config *c = config_load_string(
        "strata.yaml",
        "listeners:\n"
        "  - { name: a, listen: 127.0.0.1:5432, backend: b }\n"
        "  - { name: u, listen: 127.0.0.1:53, mode: udp, backend: b,\n"
        "      log: { format: json, path: /tmp/flows.log } }\n"
        "  - { name: h, listen: 127.0.0.1:80, mode: http, backend: b, log: { format: off },\n"
        "      http: { access_log: { format: json } } }\n"
        "backends:\n  b:\n    servers: [127.0.0.1:1]\n",
        2, &e);
    CHECK(c != NULL);
    if (!c) {
        test_fail(__FILE__, __LINE__, "%s", e.text ? e.text : "?");
        config_errors_free(&e);
        return;
    }
    CHECK(c->listeners[0].log.format == LOG_FORMAT_TEXT && !c->listeners[0].log.path);
    CHECK(c->listeners[1].log.format == LOG_FORMAT_JSON);
    CHECK(c->listeners[1].log.path && strcmp(c->listeners[1].log.path, "/tmp/flows.log") == 0);
    CHECK(c->listeners[2].log.format == LOG_FORMAT_OFF);
    CHECK(c->listeners[2].http.access_log.format == LOG_FORMAT_JSON);
    config_unref(c);
    config_errors_free(&e);

    c = config_load_string(
        "strata.yaml",
        "listeners:\n"
        "  - { name: a, listen: 127.0.0.1:5432, backend: b, log: { format: xml } }\n"
        "backends:\n  b:\n    servers: [127.0.0.1:1]\n",
        2, &e);
    CHECK(c == NULL);
    CHECK_STR_CONTAINS(e.text, "listeners[0].log.format: unknown value \"xml\"");
    config_unref(c);
    config_errors_free(&e);
}
