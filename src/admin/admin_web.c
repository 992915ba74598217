/* admin_web.c — the dashboard: GET / is web/index.html, and every other file of web/ by
 * its name; gzip-compressed when the client accepts it. The files are embedded at build
 * time (web_assets.h): nothing is read from disk or fetched at run time.
 */
#include "admin/admin_int.h"
#include "admin/web_assets.h"
#include "http/msg.h"

bool admin_serve_web(struct admin_conn *c, const struct http_msg *m, bool head)
{
    struct hstr path = hstr_eq(m->path, hstr_c("/")) ? hstr_c("/index.html") : m->path;
    for (unsigned i = 0; i < web_nassets; i++) {
        const struct web_asset *a = &web_assets[i];
        if (!hstr_eq(path, hstr_c(a->path)))
            continue;
        if (admin_accepts_gzip(m))
            admin_reply(c, 200, a->type, "Content-Encoding: gzip\r\nVary: Accept-Encoding\r\n",
                        (const char *)a->gz, a->gzlen, head);
        else
            admin_reply(c, 200, a->type, "Vary: Accept-Encoding\r\n", (const char *)a->data,
                        a->len, head);
        return true;
    }
    return false;
}
