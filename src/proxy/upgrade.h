/* upgrade.h — binary upgrades: a new `strata run FILE` takes the listening sockets of the
 * running process over (as HAProxy's seamless reload does), so no connection is refused,
 * and the old process then drains and exits.
 *
 * With `upgrade_socket: PATH` in the file, the running process listens on that Unix
 * socket (control thread). A new process started with a file naming the same PATH finds
 * it there at start: it says TAKEOVER, receives every listening socket (each worker's, by
 * mode and address, and the admin listener's) with SCM_RIGHTS, uses them instead of
 * binding (net/sock_inherit.h), starts its workers and says READY. The old process then
 * stops as on SIGTERM: its workers close their copies (the sockets, shared, stay open with
 * their queues in the new process) and drain. The new process takes the path over.
 */
#ifndef STRATA_PROXY_UPGRADE_H
#define STRATA_PROXY_UPGRADE_H

#include <stddef.h>

#include "config/config-t.h"

struct ev_loop;
struct worker;
struct admin;
struct upgrade_server;

/* New process, main thread, before its workers exist: takes the sockets of the process
 * listening on cfg->upgrade_socket, if any. Returns the connection to it (give it to
 * upgrade_finish), -2 when there is none to take over (no path, nobody listening), or -1
 * with a reason in err. */
int upgrade_takeover(const struct config *cfg, char *err, size_t errlen);
/* Tells the old process its sockets are in use here (it drains and exits); closes fd and
 * the inherited sockets nobody took. */
void upgrade_finish(int fd);
/* The new process cannot start after all: the old one keeps serving (fd < 0: nothing). */
void upgrade_abandon(int fd);

/* Old side: listens on cfg->upgrade_socket on the control loop and hands over the
 * sockets of ws[0..n) and of admin (may be NULL). NULL with a reason in err. */
struct upgrade_server *upgrade_listen(struct ev_loop *loop, const struct config *cfg,
                                      struct worker *ws, unsigned n, struct admin *admin,
                                      char *err, size_t errlen);
void upgrade_stop(struct upgrade_server *u);

#endif
