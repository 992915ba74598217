/* auth.h — what config/schema_auth.c calls in the access filters beyond their ops: the
 * htpasswd reader and the release of per-worker state and compiled patterns.
 */
#ifndef STRATA_HTTP_FILTERS_AUTH_H
#define STRATA_HTTP_FILTERS_AUTH_H

#include <stddef.h>

#include "http/filters/auth-t.h"

/* Parses htpasswd text ("user:hash" lines; blank lines and '#' comments skipped) into
 * c->users, sorted. Hashes must be bcrypt ($2y$, $2b$, $2a$) or SHA-crypt ($5$, $6$).
 * Returns 0, or -1 with the line and reason in why. */
int htpasswd_parse(struct filter_basic_auth_conf *c, char *text, char *why, size_t whylen);
void basic_auth_release(struct filter_basic_auth_conf *c);

/* The built-in known-bot patterns (scripted HTTP clients and crawlers), NULL-terminated. */
extern const char *const bot_known_patterns[];
/* The JavaScript challenge's page, a printf format (bot_page.c). */
extern const char bot_challenge_page[];
#endif
