/* admin_gzip.c — gzip (zlib) for the admin listener's larger answers: /api/v1/stats runs to
 * hundreds of KiB with a thousand routes and the dashboard asks for it every second. */
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "admin/admin_int.h"
#include "http/msg.h"

#define GZIP_MIN 1024 /* smaller bodies are sent as they are */

bool admin_accepts_gzip(const struct http_msg *m)
{
    struct hstr ae = http_hdr_get(m, hstr_c("accept-encoding"));
    return ae.len && memmem(ae.p, ae.len, "gzip", 4);
}

/* body gzip-compressed (level 1: fast) into a new buffer; NULL when it cannot be. */
static unsigned char *gzip_body(const char *body, size_t len, size_t *out_len)
{
    z_stream z = {0};
    if (deflateInit2(&z, 1, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
        return NULL;
    uLong cap = deflateBound(&z, (uLong)len);
    unsigned char *out = malloc(cap);
    if (out) {
        z.next_in = (Bytef *)body;
        z.avail_in = (uInt)len;
        z.next_out = out;
        z.avail_out = (uInt)cap;
        if (deflate(&z, Z_FINISH) != Z_STREAM_END) {
            free(out);
            out = NULL;
        }
    }
    *out_len = z.total_out;
    deflateEnd(&z);
    return out;
}

void admin_reply_maybe_gzip(struct admin_conn *c, const struct http_msg *m, int status,
                            const char *ctype, const char *body, size_t len, bool head)
{
    size_t zlen;
    unsigned char *z = len >= GZIP_MIN && admin_accepts_gzip(m) ? gzip_body(body, len, &zlen)
                                                                : NULL;
    if (!z) {
        admin_reply(c, status, ctype, "Vary: Accept-Encoding\r\n", body, len, head);
        return;
    }
    admin_reply(c, status, ctype, "Content-Encoding: gzip\r\nVary: Accept-Encoding\r\n",
                (const char *)z, zlen, head);
    free(z);
}
