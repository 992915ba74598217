/* auth-t.h — settings of the access filters basic_auth, cors, ip_access and bot (types
 * only; the jwt filter's are in jwt.h). Built by config/schema_auth.c, read-only afterwards
 * but for the per-worker state each filter's `start` hook allocates.
 */
#ifndef STRATA_HTTP_FILTERS_AUTH_T_H
#define STRATA_HTTP_FILTERS_AUTH_T_H

#include <stdbool.h>
#include <stdint.h>

#include "http/route-t.h"
#include "net/cidr.h"

/* basic_auth: users of an htpasswd file, sorted by name. */
struct htpasswd_user {
    char *name;
    char *hash; /* crypt(3) string: $2y$/$2b$/$2a$ (bcrypt), $5$ / $6$ (SHA-crypt) */
};

struct basic_cache; /* per worker (basic_auth.c) */

struct filter_basic_auth_conf {
    char *file;
    char *realm;
    char *user_header; /* NULL: the user is not passed on */
    bool forward_credentials;
    uint32_t cache_size; /* verified credentials remembered per worker; 0: none */
    uint32_t cache_ttl_ms;
    struct htpasswd_user *users;
    uint32_t nusers;
    struct basic_cache *caches; /* [nworkers] once started, else NULL */
    unsigned nworkers;
};

/* cors */
struct filter_cors_conf {
    char **origins; /* exact origins ("https://app.example.com"), or "*" */
    uint32_t norigins;
    struct str_match *patterns; /* SM_REGEX on the whole Origin value */
    uint32_t npatterns;
    bool any_origin; /* origins has "*" */
    char *methods;   /* comma-separated, for Access-Control-Allow-Methods */
    char **method_list;
    uint32_t nmethods;
    char *headers; /* comma-separated allowed request headers (lowercased), or NULL */
    char **header_list;
    uint32_t nheaders;
    char *expose; /* Access-Control-Expose-Headers, or NULL */
    bool credentials;
    uint32_t max_age_ms;
};

/* ip_access: an ACL (deny wins; with an allow list only its members pass). Countries
 * are in acl.countries; with any geo list (`geo`), the client passes when no deny list
 * has it and, if some allow list is given, one of them has it. */
struct filter_ip_access_conf {
    struct acl acl;
    char *allow_file, *deny_file;
    uint16_t status;
    struct geo_acl continents; /* by the client's continent */
    bool geo;                  /* a country or continent list is given */
};

enum bot_action { BOT_OFF, BOT_CHALLENGE, BOT_DENY };
/* How a suspicious client is challenged: a redirect that sets the signed cookie, or a
 * page whose script must find a proof of work first (bot.c). */
enum bot_mode { BOT_MODE_COOKIE, BOT_MODE_JS };

/* request_limits: a route's own bounds, below the listener's. */
struct filter_request_limits_conf {
    uint64_t max_body;    /* 0: the listener's max_request_body */
    uint32_t max_headers; /* 0: the listener's max_headers */
    uint32_t body_timeout_ms; /* 0: none (the listener's request_timeout) */
};

/* bot: user-agent rules, then the challenge cookie for suspicious clients. */
struct filter_bot_conf {
    struct str_match *allow, *deny, *challenge; /* SM_REGEX each */
    uint32_t nallow, ndeny, nchallenge;
    struct str_match *known; /* known bots: the built-in list or known_bots_file */
    uint32_t nknown;
    enum bot_action known_action;
    char *known_bots_file;
    bool challenge_empty; /* no User-Agent: challenged */
    bool challenge_all;
    char *cookie; /* the challenge cookie's name */
    uint32_t cookie_ttl_ms;
    int mode;            /* enum bot_mode */
    uint32_t difficulty; /* javascript: leading zero bits of the proof's SHA-256 */
    char *proof_cookie;  /* javascript: "<cookie>_pow", where the script puts its proof */
    unsigned char secret[32]; /* HMAC-SHA256 key: given (`secret`) or random at load */
    char *secret_text;
};

#endif
