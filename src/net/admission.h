/* admission.h — the checks a new client connection passes before anything is read or
 * connected, shared by the L4 relay and the HTTP session: the listener's and the
 * process's connection caps, then, on the client address (the PROXY one when accepted),
 * the ACL, the per-source rate and the per-source concurrency. What a connection holds is
 * given back by admission_release, exactly once.
 */
#ifndef STRATA_NET_ADMISSION_H
#define STRATA_NET_ADMISSION_H

#include <stdint.h>

#include "config/config-t.h"

enum admit_result { ADMIT_OK, ADMIT_LIMIT, ADMIT_DENIED, ADMIT_RATE_LIMITED };

/* Units a connection holds and gives back when it closes. */
enum { ADMIT_HOLD_GLOBAL = 1 << 0, ADMIT_HOLD_SOURCE = 1 << 1, ADMIT_HOLD_LISTENER = 1 << 2 };

struct admission {
    uint32_t src_slot; /* per-source table slot, when ADMIT_HOLD_SOURCE */
    uint8_t holds;     /* ADMIT_HOLD_* */
};

/* Caps at accept (listener max_conns, the process max_conns); takes one unit of the
 * listener's active count in every case (released by admission_release). `why` gets a
 * detail for the log when the PROXY source is untrusted. */
enum admit_result admit_connection(struct config *cfg, struct listener_conf *lc,
                                   const struct sockaddr_any *client, struct admission *ad,
                                   const char **why);
/* ACL, per-source rate (at now_ms), per-source concurrency. */
enum admit_result admit_source(struct listener_conf *lc, const struct sockaddr_any *client,
                               uint64_t now_ms, struct admission *ad);
/* The ACL on the client's country (acl.allow_countries / deny_countries), looked up in
 * cfg's geo database: ADMIT_OK or ADMIT_DENIED. */
enum admit_result admit_country(const struct config *cfg, const struct listener_conf *lc,
                                const struct sockaddr_any *client);
/* Gives back every unit held. */
void admission_release(struct config *cfg, struct listener_conf *lc, struct admission *ad);

#endif
