/* sd_notify.c — see sd_notify.h. */
#include "proxy/sd_notify.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

static _Atomic bool take_main; /* the next READY=1 names this process MAINPID */
static _Atomic bool gave_up;   /* an upgrade made another process the main one */

void sd_notify_take_main(void)
{
    char msg[128];
    snprintf(msg, sizeof(msg), "MAINPID=%ld\nSTATUS=took the listening sockets over\n",
             (long)getpid());
    sd_notify_send(msg);
    atomic_store(&take_main, true);
}

void sd_notify_give_up_main(void)
{
    atomic_store(&gave_up, true);
}

int sd_notify_send(const char *msg)
{
    if (atomic_load(&gave_up))
        return -1;
    const char *path = getenv("NOTIFY_SOCKET");
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    size_t plen = path ? strlen(path) : 0;
    if (plen < 2 || plen >= sizeof(sun.sun_path) || (path[0] != '/' && path[0] != '@'))
        return -1;
    memcpy(sun.sun_path, path, plen);
    if (path[0] == '@') /* an abstract socket: its name starts with a NUL */
        sun.sun_path[0] = '\0';
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    socklen_t len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + plen);
    ssize_t n = sendto(fd, msg, strlen(msg), MSG_NOSIGNAL, (struct sockaddr *)&sun, len);
    close(fd);
    return n < 0 ? -1 : 0;
}

void sd_notify_ready(const struct config *cfg)
{
    char msg[512], pid[40] = "";
    if (atomic_exchange(&take_main, false))
        snprintf(pid, sizeof(pid), "MAINPID=%ld\n", (long)getpid());
    snprintf(msg, sizeof(msg),
             "%sREADY=1\nSTATUS=serving generation %llu of %s: %u listeners, %u backends\n",
             pid, (unsigned long long)cfg->generation, cfg->file, cfg->nlisteners,
             cfg->nbackends);
    sd_notify_send(msg);
}

/* systemd 253+ wants the CLOCK_MONOTONIC time of the reload's start with RELOADING=1
 * (Type=notify-reload); older versions ignore the field. */
void sd_notify_reloading(void)
{
    struct timespec ts;
    char msg[128];
    clock_gettime(CLOCK_MONOTONIC, &ts);
    snprintf(msg, sizeof(msg), "RELOADING=1\nMONOTONIC_USEC=%llu\nSTATUS=reloading\n",
             (unsigned long long)ts.tv_sec * 1000000ull + (unsigned long long)ts.tv_nsec / 1000);
    sd_notify_send(msg);
}

void sd_notify_stopping(void)
{
    sd_notify_send("STOPPING=1\nSTATUS=stopping: draining open connections\n");
}
