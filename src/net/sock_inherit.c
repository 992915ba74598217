/* sock_inherit.c — see sock_inherit.h. */
#include "net/sock_inherit.h"

#include <unistd.h>

#define SOCK_INHERIT_MAX 4096

static struct {
    int kind;
    struct sockaddr_any addr;
    int fd;
} kept[SOCK_INHERIT_MAX];
static unsigned nkept;

int sock_inherit_add(int kind, const struct sockaddr_any *addr, int fd)
{
    if (nkept == SOCK_INHERIT_MAX)
        return -1;
    kept[nkept].kind = kind;
    kept[nkept].addr = *addr;
    kept[nkept].fd = fd;
    nkept++;
    return 0;
}

int sock_inherit_take(int kind, const struct sockaddr_any *addr)
{
    for (unsigned i = 0; i < nkept; i++) {
        if (kept[i].fd >= 0 && kept[i].kind == kind && addr_equal(&kept[i].addr, addr)) {
            int fd = kept[i].fd;
            kept[i].fd = -1;
            return fd;
        }
    }
    return -1;
}

unsigned sock_inherit_taken_map(unsigned char *map, unsigned max)
{
    unsigned n = nkept < max ? nkept : max;
    for (unsigned i = 0; i < n; i++)
        map[i] = kept[i].fd < 0;
    return n;
}

unsigned sock_inherit_close_rest(void)
{
    unsigned n = 0;
    for (unsigned i = 0; i < nkept; i++) {
        if (kept[i].fd >= 0) {
            close(kept[i].fd);
            n++;
        }
    }
    nkept = 0;
    return n;
}
