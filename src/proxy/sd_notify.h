/* sd_notify.h — telling systemd (Type=notify) where the process stands, by the documented
 * NOTIFY_SOCKET datagram protocol (sd_notify(3)): READY=1 once listening, RELOADING=1
 * with MONOTONIC_USEC then READY=1 around a reload, STOPPING=1, and a STATUS= line each
 * time. Without NOTIFY_SOCKET every call does nothing. Any thread.
 */
#ifndef STRATA_PROXY_SD_NOTIFY_H
#define STRATA_PROXY_SD_NOTIFY_H

#include "config/config-t.h"

/* Sends one message (lines "KEY=value"). 0, or -1 (no socket, or it failed). */
int sd_notify_send(const char *msg);

void sd_notify_ready(const struct config *cfg);
void sd_notify_reloading(void);
void sd_notify_stopping(void);

#endif
