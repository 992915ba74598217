/* reload_cli.c — see reload_cli.h. */
#include "proxy/reload_cli.h"

#include <errno.h>
#include <stdio.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "net/addr.h"

#define RELOAD_CLI_TIMEOUT_S 60 /* a reload reads the file and binds: seconds at most */
#define RELOAD_CLI_MAX 65536

/* The admin address to connect to: a wildcard one becomes loopback. */
static struct sockaddr_any admin_target(const struct config *cfg)
{
    struct sockaddr_any a = cfg->admin_addr;
    if (addr_is_wildcard(&a)) {
        if (a.u.sa.sa_family == AF_INET6)
            a.u.in6.sin6_addr = in6addr_loopback;
        else
            a.u.in.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    }
    return a;
}

/* Sends the request (with the admin token when the file sets one) and reads the whole
 * answer (the admin listener closes after it). */
static ssize_t ask(int fd, const char *token, char *buf, size_t cap)
{
    char req[1024];
    int rl = snprintf(req, sizeof(req),
                      "POST /reload HTTP/1.1\r\nHost: strata\r\nContent-Length: 0\r\n"
                      "%s%s%sConnection: close\r\n\r\n",
                      token ? "Authorization: Bearer " : "", token ? token : "",
                      token ? "\r\n" : "");
    if (rl < 0 || (size_t)rl >= sizeof(req) || send(fd, req, (size_t)rl, MSG_NOSIGNAL) != rl)
        return -1;
    size_t len = 0;
    for (;;) {
        ssize_t n = recv(fd, buf + len, cap - 1 - len, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -1;
        if (n == 0 || (len += (size_t)n) == cap - 1)
            break;
    }
    buf[len] = '\0';
    return (ssize_t)len;
}

int reload_cli(const struct config *cfg, FILE *out, FILE *err)
{
    if (!cfg->admin_enabled) {
        fprintf(err, "strata reload: %s has no admin listener (admin.listen); send SIGHUP to "
                     "the process instead\n", cfg->file);
        return 3;
    }
    struct sockaddr_any a = admin_target(cfg);
    struct timeval tv = {.tv_sec = RELOAD_CLI_TIMEOUT_S};
    static char buf[RELOAD_CLI_MAX];
    int fd = socket(a.u.sa.sa_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) < 0 ||
        connect(fd, &a.u.sa, a.len) < 0) {
        fprintf(err, "strata reload: cannot reach the admin listener at %s: %s\n",
                cfg->admin_text, strerror(errno));
        if (fd >= 0)
            close(fd);
        return 3;
    }
    ssize_t n = ask(fd, cfg->admin_token, buf, sizeof(buf));
    close(fd);
    const char *body = n > 0 ? strstr(buf, "\r\n\r\n") : NULL;
    int status = 0;
    if (!body || sscanf(buf, "HTTP/1.%*d %d", &status) != 1) {
        fprintf(err, "strata reload: no answer from the admin listener at %s\n", cfg->admin_text);
        return 3;
    }
    fputs(body + 4, status == 200 ? out : err);
    return status == 200 ? 0 : status == 422 ? 1 : 3;
}
