/* util.h — helpers shared by the built-in filters (src/http/filters/) and by the checks
 * the configuration makes on their settings: field-name rules, value templates, random
 * ids, and the client address as text.
 */
#ifndef STRATA_HTTP_FILTERS_UTIL_H
#define STRATA_HTTP_FILTERS_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "net/addr.h"

/* RFC 9110 token (field names, methods, cookie names): 1+ tchar. */
bool http_token_valid(const char *s, size_t len);

/* Fields the codec consumes or regenerates (framing, hop-by-hop, Host): filters may not
 * set, add or remove them, and matches cannot see them. Case-insensitive. */
bool http_field_reserved(const char *name, size_t len);

/* Template variables of txn_expand(): "scheme", "host"... in enum order. */
enum tmpl_var {
    TV_SCHEME,
    TV_HOST,
    TV_AUTHORITY,
    TV_PATH,
    TV_QUERY,
    TV_REQUEST_URI,
    TV_CLIENT_IP,
    TV_REQUEST_ID,
    TV_METHOD,
    TV_TLS_VERSION, /* the client connection's TLS (empty on plain connections) */
    TV_TLS_CIPHER,
    TV_TLS_SNI,
    TV_TLS_CLIENT_SUBJECT, /* its verified client certificate (mTLS), or empty */
    TV_TLS_CLIENT_FINGERPRINT,
    TV_COUNT,
};
extern const char *const tmpl_var_names[TV_COUNT];

/* The variable named s[0..len), or -1. */
int tmpl_var_lookup(const char *s, size_t len);

/* Checks a template: no control character but HTAB, and every "{name}" (name of
 * lowercase letters and '_') a known variable. Returns 0, or -1 with a message in why. */
int tmpl_check(const char *tmpl, size_t len, char *why, size_t whylen);

/* A random 64-bit value from a per-thread xorshift generator seeded by getrandom(2).
 * Not for secrets; for request and trace ids. Never 0. */
uint64_t filter_rand64(void);

/* Writes v as `nhex` lowercase hex digits (its low nhex * 4 bits) into out (no NUL). */
void hex_put(char *out, uint64_t v, unsigned nhex);

/* The client's IP as text, without port or brackets ("192.0.2.1", "2001:db8::1"); an
 * IPv4-mapped IPv6 address is written as IPv4. "unknown" for other families. Returns
 * the length written (buf of at least 64 bytes). */
size_t client_ip_text(const struct sockaddr_any *a, char *buf, size_t len);
/* True when client_ip_text() writes an IPv6 address. */
bool client_ip_is_v6(const struct sockaddr_any *a);

#endif
