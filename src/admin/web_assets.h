/* web_assets.h — the dashboard's files (web/), embedded at build time by
 * scripts/embed-web.sh into a generated C file, each as it is and gzip-compressed. */
#ifndef STRATA_ADMIN_WEB_ASSETS_H
#define STRATA_ADMIN_WEB_ASSETS_H

#include <stddef.h>

struct web_asset {
    const char *path; /* "/index.html" */
    const char *type; /* Content-Type */
    const unsigned char *data;
    size_t len;
    const unsigned char *gz;
    size_t gzlen;
};

extern const struct web_asset web_assets[];
extern const unsigned web_nassets;

#endif
