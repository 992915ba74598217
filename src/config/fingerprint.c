/* fingerprint.c — what a reload compares: a hash of the YAML a listener, a backend and a
 * server were built from (config_fingerprint, config.h).
 *
 * Two snapshots' objects with one name and one fingerprint were written alike, so a
 * long-lived connection on them can stay across a reload. A listener's fingerprint leaves
 * out its `routes` (a route change moves new requests, not an open tunnel) and a backend's
 * its `servers` (each server has its own); both take in the global `timeouts` they default
 * to (`connect`, `idle`; not `drain` and `reload_drain`, which concern no path).
 */
#include "config.h"

#include <string.h>

#include "core/hash.h"
#include "yaml_tree.h"

/* Kind, text and children in order; the keys `skip` (NULL-terminated) of the top mapping
 * are left out. */
static uint64_t node_hash(const struct ynode *n, uint64_t h, const char *const *skip)
{
    if (!n)
        return hash_mix64(h ^ 0x9e3779b97f4a7c15ull);
    h = hash64(&n->kind, sizeof(n->kind), h);
    if (n->text)
        h = hash64(n->text, n->len, h);
    for (size_t i = 0; i < n->nkids; i++) {
        const struct ynode *k = n->kids[i];
        if (skip && n->kind == YN_MAP && i % 2 == 0 && k->kind == YN_SCALAR) {
            bool skipped = false;
            for (const char *const *s = skip; *s && !skipped; s++)
                skipped = strcmp(k->text, *s) == 0;
            if (skipped) {
                i++; /* and its value */
                continue;
            }
        }
        h = node_hash(k, h, NULL);
    }
    return hash_mix64(h + n->nkids);
}

void config_fingerprint(struct config *c, const struct ynode *doc)
{
    static const char *const listener_skip[] = {"routes", NULL};
    static const char *const backend_skip[] = {"servers", NULL};
    const struct ynode *t = ymap_get(doc, "timeouts");
    uint64_t root = node_hash(t ? ymap_get(t, "connect") : NULL, 0, NULL);
    root = node_hash(t ? ymap_get(t, "idle") : NULL, root, NULL);

    const struct ynode *ls = ymap_get(doc, "listeners");
    for (uint32_t i = 0; ls && ls->kind == YN_SEQ && i < c->nlisteners && i < ls->n; i++)
        c->listeners[i].fp = node_hash(ls->kids[i], root, listener_skip);

    const struct ynode *bs = ymap_get(doc, "backends");
    for (size_t i = 0; bs && bs->kind == YN_MAP && i < bs->n; i++) {
        const struct ynode *key = bs->kids[2 * i], *val = bs->kids[2 * i + 1];
        struct backend *b = key->kind == YN_SCALAR ? config_backend(c, key->text) : NULL;
        if (!b)
            continue;
        b->fp = node_hash(val, root, backend_skip);
        const struct ynode *ss = ymap_get(val, "servers");
        for (uint32_t j = 0; ss && ss->kind == YN_SEQ && j < b->nservers && j < ss->n; j++)
            b->servers[j].fp = node_hash(ss->kids[j], b->fp, NULL);
    }
}
