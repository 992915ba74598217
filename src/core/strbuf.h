/* strbuf.h — a growable, always NUL-terminated string buffer with a size cap.
 *
 * Used to build text that is sent whole (Prometheus output, admin responses). Growth is
 * bounded by `max`; on ENOMEM or when the cap would be exceeded, the buffer keeps what it
 * had, sets `err`, and ignores every later append, so callers check once at the end.
 */
#ifndef STRATA_CORE_STRBUF_H
#define STRATA_CORE_STRBUF_H

#include <stdbool.h>
#include <stddef.h>

#define SB_DEFAULT_MAX (64u << 20) /* 64 MiB */

struct strbuf {
    char *buf;  /* NULL until the first append; else NUL-terminated */
    size_t len; /* bytes used, excluding the NUL */
    size_t cap; /* bytes allocated */
    size_t max; /* upper bound on len */
    bool err;   /* an append failed: content is truncated at that point */
};

/* max = 0 selects SB_DEFAULT_MAX. Allocates nothing. */
void sb_init(struct strbuf *sb, size_t max);
/* Releases the memory; the buffer is then as after sb_init (err cleared). */
void sb_free(struct strbuf *sb);
/* Empties the buffer but keeps its memory; clears err. */
void sb_reset(struct strbuf *sb);

/* Each returns 0, or -1 with sb->err set (nothing appended). */
int sb_append(struct strbuf *sb, const void *data, size_t n);
int sb_puts(struct strbuf *sb, const char *s);
int sb_putc(struct strbuf *sb, char c);
int sb_printf(struct strbuf *sb, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* The content as a C string; "" when nothing was appended. */
static inline const char *sb_str(const struct strbuf *sb)
{
    return sb->buf ? sb->buf : "";
}

#endif
