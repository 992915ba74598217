/* admin_api.h — the runtime API on the admin listener (JSON, jansson): read listeners,
 * routes, backends, servers (state, weight, active connections, health history) and the
 * configuration in force; write a server's state (drain, enable, maintenance), its weight,
 * and add or remove servers of a backend until the next reload (lb/server_admin.h).
 *
 * Paths (all under /api/v1/):
 *   GET    config | listeners | routes | servers | backends | backends/B
 *   GET    backends/B/servers | backends/B/servers/S
 *   POST   backends/B/servers                  {"address": "...", "name"?, "weight"?, "backup"?}
 *   DELETE backends/B/servers/S
 *   POST   backends/B/servers/S/drain | enable | disable
 *   PUT    backends/B/servers/S/weight         {"weight": N}   (POST too)
 * With admin.token set, every request needs `Authorization: Bearer TOKEN` (401 without,
 * 403 with another). Every write is logged with the peer address and the token's name.
 * Errors answer {"error": "..."} with a 4xx status; nothing here can stop the proxy.
 */
#ifndef STRATA_ADMIN_ADMIN_API_H
#define STRATA_ADMIN_ADMIN_API_H

#include <stdbool.h>

#include "admin.h"
#include "http/msg-t.h"

/* True for the paths this file answers (the admin listener dispatches them here). */
bool admin_api_serves(struct hstr path);

/* With admin.token set: true when rq carries `Authorization: Bearer TOKEN`; else answers
 * 401 (no token) or 403 (another one) and returns false. Without a token: true. admin.c
 * asks it for the runtime API and POST /reload. */
bool admin_authorized(const struct admin_req *rq);

/* Logs a write made on the admin listener outside this file (POST /reload) the way the
 * runtime API logs its own: "admin: METHOD PATH by PEER (token NAME): what". */
void admin_log_write(const struct admin_req *rq, const char *what);

/* Answers one request on those paths (admin_int.h admin_reply); admin.c checked the token. */
void admin_api_serve(const struct admin_req *rq);

#endif
