/* strbuf.c — see strbuf.h. */
#include "strbuf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void sb_init(struct strbuf *sb, size_t max)
{
    *sb = (struct strbuf){.max = max ? max : SB_DEFAULT_MAX};
}

void sb_free(struct strbuf *sb)
{
    size_t max = sb->max;
    free(sb->buf);
    sb_init(sb, max);
}

void sb_reset(struct strbuf *sb)
{
    sb->len = 0;
    sb->err = false;
    if (sb->buf)
        sb->buf[0] = '\0';
}

/* Makes room for `extra` more bytes plus the NUL. Returns 0, or -1 with err set. */
static int sb_reserve(struct strbuf *sb, size_t extra)
{
    if (sb->err)
        return -1;
    if (extra > sb->max - sb->len) {
        sb->err = true;
        return -1;
    }
    size_t need = sb->len + extra + 1;
    if (need <= sb->cap)
        return 0;
    size_t cap = sb->cap ? sb->cap : 256;
    while (cap < need)
        cap *= 2;
    char *p = realloc(sb->buf, cap);
    if (!p) {
        sb->err = true;
        return -1;
    }
    sb->buf = p;
    sb->cap = cap;
    return 0;
}

int sb_append(struct strbuf *sb, const void *data, size_t n)
{
    if (sb_reserve(sb, n) < 0)
        return -1;
    if (n)
        memcpy(sb->buf + sb->len, data, n);
    sb->len += n;
    sb->buf[sb->len] = '\0';
    return 0;
}

int sb_puts(struct strbuf *sb, const char *s)
{
    return sb_append(sb, s, strlen(s));
}

int sb_putc(struct strbuf *sb, char c)
{
    return sb_append(sb, &c, 1);
}

int sb_printf(struct strbuf *sb, const char *fmt, ...)
{
    va_list ap;
    size_t room = sb->max - sb->len; /* a first guess that never trips the cap by itself */
    if (sb_reserve(sb, room < 64 ? room : 64) < 0)
        return -1;
    va_start(ap, fmt);
    int n = vsnprintf(sb->buf + sb->len, sb->cap - sb->len, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n > sb->max - sb->len) {
        sb->buf[sb->len] = '\0'; /* drop what vsnprintf wrote past the old end */
        sb->err = true;
        return -1;
    }
    if ((size_t)n >= sb->cap - sb->len) {
        sb->buf[sb->len] = '\0';
        if (sb_reserve(sb, (size_t)n) < 0)
            return -1;
        va_start(ap, fmt);
        vsnprintf(sb->buf + sb->len, sb->cap - sb->len, fmt, ap);
        va_end(ap);
    }
    sb->len += (size_t)n;
    return 0;
}
