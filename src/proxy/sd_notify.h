/* sd_notify.h — telling systemd (Type=notify) where the process stands, by the documented
 * NOTIFY_SOCKET datagram protocol (sd_notify(3)): READY=1 once listening, RELOADING=1
 * with MONOTONIC_USEC then READY=1 around a reload, STOPPING=1, and a STATUS= line each
 * time. Without NOTIFY_SOCKET every call does nothing. Any thread.
 *
 * A binary upgrade hands the service over: the new process's first READY=1 carries
 * MAINPID=<its pid> (sd_notify_take_main), and the old process says nothing more
 * (sd_notify_give_up_main), so that its STOPPING=1 cannot stop the unit. systemd accepts
 * MAINPID= from a process other than the main one only with NotifyAccess=all
 * (contrib/strata.service).
 */
#ifndef STRATA_PROXY_SD_NOTIFY_H
#define STRATA_PROXY_SD_NOTIFY_H

#include "config/config-t.h"

/* Sends one message (lines "KEY=value"). 0, or -1 (no socket, or it failed). */
int sd_notify_send(const char *msg);

void sd_notify_ready(const struct config *cfg);
void sd_notify_reloading(void);
void sd_notify_stopping(void);
/* This process took the sockets of the service's main process over (proxy/upgrade.c):
 * says MAINPID=getpid() now, before the old process is told to stop (systemd must not see
 * the main process exit first), and again with its next READY=1. */
void sd_notify_take_main(void);
/* This process handed its sockets to a new one, now the main process: no more messages. */
void sd_notify_give_up_main(void);

#endif
