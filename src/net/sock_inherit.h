/* sock_inherit.h — listening sockets a new process took over from the one it upgrades
 * (proxy/upgrade.c), waiting to be used in place of a bind: the workers' listeners and
 * the admin listener ask here first. Main thread, before the workers start.
 */
#ifndef STRATA_NET_SOCK_INHERIT_H
#define STRATA_NET_SOCK_INHERIT_H

#include "net/addr.h"

#define SOCK_INHERIT_ADMIN 100 /* kind of the admin listener; listeners: enum listener_mode */

/* Keeps fd for a later sock_inherit_take(kind, addr). -1 when full (fd not kept). */
int sock_inherit_add(int kind, const struct sockaddr_any *addr, int fd);
/* A kept fd of that kind and address (each given once), or -1. */
int sock_inherit_take(int kind, const struct sockaddr_any *addr);
/* For each socket kept, in the order they were added: map[i] = 1 when it was taken, else 0.
 * Returns how many (at most max). Before sock_inherit_close_rest. */
unsigned sock_inherit_taken_map(unsigned char *map, unsigned max);
/* Closes the fds nobody took (a listener the new file no longer has); returns how many. */
unsigned sock_inherit_close_rest(void);

#endif
