/* bot.c — the bot filter: user-agent rules, then a light challenge.
 *
 * In order: a User-Agent matching `allow` passes; matching `deny` is answered 403; a known
 * bot (the built-in list of scripted clients and scanners, or `known_bots_file`) is denied
 * or challenged as `known_bots` says; `challenge` patterns, an empty User-Agent
 * (`challenge_empty`) or `challenge_all` mark the client suspicious. A suspicious client
 * passes only with a valid challenge cookie: "<expiry>.<HMAC-SHA256 hex>" over the expiry,
 * the client's IP and its User-Agent, with the filter's secret. Without one, a GET or HEAD
 * is redirected (307) to the same URL with the cookie set, so a client that keeps cookies
 * and follows redirects (any browser) comes back and passes, and a plain script loops until
 * its redirect limit; other methods are answered 403.
 *
 * With `challenge_mode: javascript` a client without the cookie gets a page (403) whose
 * script must find a proof of work first: n such that SHA-256("<token>:<n>") starts with
 * `difficulty` zero bits, the token "<expiry>.<HMAC>" bound to the client as the cookie
 * is (and good for BOT_PROOF_TTL seconds). It stores "<token>.<n>" in the proof cookie
 * (`<cookie>_pow`) and reloads; the filter checks the proof and only then redirects with
 * the signed cookie, as above. A client that keeps cookies but runs no script never
 * gets one.
 */
#include <openssl/crypto.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "http/filters/auth.h"
#include "http/filters/deny.h"
#include "http/filters/util.h"
#include "http/msg.h"
#include "http/router.h"

const char *const bot_known_patterns[] = {
    "(?i)^(curl|wget|python-requests|python-urllib|python-httpx|aiohttp|go-http-client|"
    "libwww-perl|lwp-|scrapy|okhttp|apache-httpclient|java/|node-fetch|axios/|httpie|"
    "postmanruntime|guzzlehttp)",
    "(?i)(sqlmap|nikto|nmap|masscan|zgrab|nuclei|dirbuster|gobuster|wpscan|headlesschrome)",
    NULL,
};

static bool any_holds(const struct str_match *m, uint32_t n, struct hstr ua)
{
    for (uint32_t i = 0; i < n; i++)
        if (str_match_holds(&m[i], ua.p ? ua.p : "", ua.len))
            return true;
    return false;
}

#define BOT_PROOF_TTL 300 /* seconds a challenge page's token is good for */

/* The MAC for `expiry` and this client, as 64 hex digits into out: the cookie's
 * (purpose "") or a challenge token's ("pow|"), so one is never taken for the other. */
static void cookie_mac(const struct filter_bot_conf *c, const struct http_txn *t,
                       const char *purpose, long long expiry, struct hstr ua, char out[65])
{
    char ip[64], msg[1024];
    client_ip_text(&t->client, ip, sizeof(ip));
    /* a longer User-Agent is bound by its first 900 bytes */
    int n = snprintf(msg, sizeof(msg), "%s%lld|%s|%.*s", purpose, expiry, ip,
                     (int)(ua.len < 900 ? ua.len : 900), ua.p ? ua.p : "");
    unsigned char mac[32];
    unsigned int len = 0;
    if (!HMAC(EVP_sha256(), c->secret, sizeof(c->secret), (const unsigned char *)msg, (size_t)n,
              mac, &len))
        memset(mac, 0, sizeof(mac)); /* matches no cookie: a real MAC is never all zeros */
    for (unsigned i = 0; i < 32; i++)
        hex_put(out + 2 * i, mac[i], 2);
    out[64] = '\0';
}

/* Cookie `name` copied into buf (size bytes) when it begins "<expiry>." with an expiry
 * neither past nor more than `ahead` seconds (and a minute) away: the '.' after it, else
 * NULL. */
static char *cookie_after_expiry(const struct http_txn *t, const char *name, char *buf,
                                 size_t size, long long ahead, long long *expiry)
{
    struct hstr v = http_cookie_get(&t->req, hstr_c(name));
    if (!v.p || v.len >= size)
        return NULL;
    memcpy(buf, v.p, v.len);
    buf[v.len] = '\0';
    char *dot;
    long long now = (long long)time(NULL);
    *expiry = strtoll(buf, &dot, 10);
    return *dot == '.' && *expiry >= now && *expiry <= now + ahead + 60 ? dot : NULL;
}

/* The signed cookie "<expiry>.<MAC>", made for this client and not expired. */
static bool cookie_valid(const struct filter_bot_conf *c, const struct http_txn *t, struct hstr ua)
{
    char buf[96], mac[65];
    long long expiry;
    char *dot = cookie_after_expiry(t, c->cookie, buf, sizeof(buf), c->cookie_ttl_ms / 1000,
                                    &expiry);
    if (!dot || strlen(dot + 1) != 64)
        return false;
    cookie_mac(c, t, "", expiry, ua, mac);
    return CRYPTO_memcmp(mac, dot + 1, 64) == 0;
}

/* SHA-256(text) starts with `bits` zero bits. */
static bool enough_zeros(const char *text, size_t len, unsigned bits)
{
    unsigned char h[SHA256_DIGEST_LENGTH];
    SHA256((const unsigned char *)text, len, h);
    for (unsigned i = 0; i < bits; i++)
        if (h[i / 8] & (0x80 >> (i % 8)))
            return false;
    return true;
}

/* The proof cookie "<expiry>.<token MAC>.<n>": a token made for this client, not expired,
 * and n a proof of work over it. */
static bool proof_valid(const struct filter_bot_conf *c, const struct http_txn *t, struct hstr ua)
{
    char buf[112], mac[65], *end;
    long long expiry;
    char *dot = cookie_after_expiry(t, c->proof_cookie, buf, sizeof(buf), BOT_PROOF_TTL, &expiry);
    size_t len = dot ? strlen(buf) : 0;
    if (!dot || (size_t)(dot - buf) + 67 > len || dot[65] != '.' || dot[66] < '0' || dot[66] > '9')
        return false;
    unsigned long long n = strtoull(dot + 66, &end, 10);
    if (*end || n > 0xffffffffull)
        return false;
    cookie_mac(c, t, "pow|", expiry, ua, mac);
    if (CRYPTO_memcmp(mac, dot + 1, 64) != 0)
        return false;
    dot[65] = ':'; /* the script hashed "<token>:<n>" */
    return enough_zeros(buf, len, c->difficulty);
}

/* The JavaScript challenge: a page whose script finds the proof (403: not the content). */
static enum filter_verdict challenge_page(struct http_txn *t, const struct filter_bot_conf *c,
                                          struct hstr ua)
{
    char mac[65];
    long long expiry = (long long)time(NULL) + BOT_PROOF_TTL;
    cookie_mac(c, t, "pow|", expiry, ua, mac);
    struct hstr token = arena_printf(&t->arena, "%lld.%s", expiry, mac);
    struct hstr page = token.p ? arena_printf(&t->arena, bot_challenge_page, token.p,
                                              c->difficulty, c->proof_cookie,
                                              t->tls ? "; Secure" : "")
                               : token;
    filter_count(t, HFE_BOT_CHALLENGED);
    t->filter_detail = "bot challenge (javascript)";
    if (!page.p || txn_answer(t, 403, "text/html; charset=utf-8", page.p, page.len) < 0 ||
        http_hdr_add(&t->resp, &t->arena, HSTR_LIT("Cache-Control"), HSTR_LIT("no-store")) < 0)
        return FILTER_ERROR;
    return FILTER_ANSWER;
}

static enum filter_verdict challenge(struct http_txn *t, const struct filter_bot_conf *c,
                                     struct hstr ua)
{
    if (t->req.method != HTTP_M_GET && t->req.method != HTTP_M_HEAD)
        return filter_deny(t, 403, "bot challenge required", HFE_BOT_DENIED);
    char mac[65];
    long long expiry = (long long)time(NULL) + c->cookie_ttl_ms / 1000;
    cookie_mac(c, t, "", expiry, ua, mac);
    struct hstr loc = txn_expand(t, "{request_uri}");
    struct hstr set =
        arena_printf(&t->arena,
                     "%s=%lld.%s; Path=/; Max-Age=%u; HttpOnly; "
                     "SameSite=Lax%s",
                     c->cookie, expiry, mac, c->cookie_ttl_ms / 1000, t->tls ? "; Secure" : "");
    filter_count(t, HFE_BOT_CHALLENGED);
    t->filter_detail = "bot challenge";
    if (!loc.p || !set.p || txn_answer(t, 307, "text/plain; charset=utf-8", "", 0) < 0 ||
        http_hdr_add(&t->resp, &t->arena, HSTR_LIT("Location"), loc) < 0 ||
        http_hdr_add(&t->resp, &t->arena, HSTR_LIT("Set-Cookie"), set) < 0 ||
        http_hdr_add(&t->resp, &t->arena, HSTR_LIT("Cache-Control"), HSTR_LIT("no-store")) < 0)
        return FILTER_ERROR;
    return FILTER_ANSWER;
}

static enum filter_verdict on_request(struct http_txn *t, const void *conf)
{
    const struct filter_bot_conf *c = conf;
    struct hstr ua = http_hdr_get(&t->req, HSTR_LIT("User-Agent"));
    if (any_holds(c->allow, c->nallow, ua))
        return FILTER_CONTINUE;
    if (any_holds(c->deny, c->ndeny, ua))
        return filter_deny(t, 403, "user agent denied", HFE_BOT_DENIED);
    bool known = c->known_action != BOT_OFF && any_holds(c->known, c->nknown, ua);
    if (known && c->known_action == BOT_DENY)
        return filter_deny(t, 403, "known bot denied", HFE_BOT_DENIED);
    bool suspicious = known || c->challenge_all || (c->challenge_empty && !ua.len) ||
                      any_holds(c->challenge, c->nchallenge, ua);
    if (!suspicious)
        return FILTER_CONTINUE;
    if (cookie_valid(c, t, ua)) {
        filter_count(t, HFE_BOT_PASSED);
        return FILTER_CONTINUE;
    }
    if (c->mode != BOT_MODE_JS)
        return challenge(t, c, ua);
    if (t->req.method != HTTP_M_GET && t->req.method != HTTP_M_HEAD)
        return filter_deny(t, 403, "bot challenge required", HFE_BOT_DENIED);
    if (!proof_valid(c, t, ua))
        return challenge_page(t, c, ua);
    /* the proof is done: the signed cookie, and the proof cookie dropped */
    enum filter_verdict v = challenge(t, c, ua);
    struct hstr drop = arena_printf(&t->arena, "%s=; Path=/; Max-Age=0", c->proof_cookie);
    if (v == FILTER_ANSWER &&
        (!drop.p || http_hdr_add(&t->resp, &t->arena, HSTR_LIT("Set-Cookie"), drop) < 0))
        return FILTER_ERROR;
    return v;
}

const struct filter_ops filter_bot = {
    .name = "bot",
    .on_request = on_request,
};
