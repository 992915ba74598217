/* config.h — loading, validating and releasing configuration snapshots.
 *
 * config_load_file() parses YAML (libyaml), checks every key against the declaration
 * tables in config/schema.c, and builds an immutable `struct config` (config-t.h) with
 * refs == 1, per-worker counter blocks allocated and every backend's balancer initialised
 * (lb_backend_init). On any error it returns NULL and appends one line per problem to
 * `errs`, each "FILE:LINE:COL: error: KEY: what was expected" (up to a bounded number).
 */
#ifndef STRATA_CONFIG_CONFIG_H
#define STRATA_CONFIG_CONFIG_H

#include <stdbool.h>
#include <stddef.h>

#include "config-t.h"

struct config_errors {
    char *text; /* malloc'd, NUL-terminated, one error per line */
    size_t len, cap;
    unsigned count;
};

/* ncpu: what "workers: auto" resolves to. */
struct config *config_load_file(const char *path, unsigned ncpu, struct config_errors *errs);
/* Same, from an in-memory YAML document; `name` is used as FILE in error messages. */
struct config *config_load_string(const char *name, const char *yaml, unsigned ncpu,
                                  struct config_errors *errs);

void config_errors_free(struct config_errors *errs);

static inline struct config *config_ref(struct config *c)
{
    atomic_fetch_add_explicit(&c->refs, 1, memory_order_relaxed);
    return c;
}
/* Drops a reference; the last one frees the snapshot. */
void config_unref(struct config *c);

/* Sets s->sticky_id from the backend and server names (at load, and for a server the
 * runtime API adds). */
void config_server_sticky_id(struct server *s, const struct backend *b);

/* "tcp", "udp" or "http", as the configuration writes it. */
const char *config_mode_name(enum listener_mode m);

/* Sets the `fp` of every listener, backend and server of c from the YAML document it was
 * built from (fingerprint.c): equal names and fingerprints in two snapshots mean the same
 * text, so a reload keeps long-lived connections on them. */
struct ynode;
void config_fingerprint(struct config *c, const struct ynode *doc);

/* A later generation's listener of lc's name and mode, or NULL. */
struct listener_conf *config_listener_successor(const struct config *cur,
                                               const struct listener_conf *lc);
/* A later generation's server of s's backend and name, both written as before
 * (fingerprints), or NULL: a long-lived connection to s may stay across the reload. */
struct server *config_server_successor(const struct config *cur, const struct server *s);

/* A long-lived connection accepted on lc and relayed to srv (NULL: none yet) may stay
 * untouched across a reload to cur: its listener, backend and server are written as
 * before. Else its mode drains it (listener_mode.h `reload`). */
bool config_path_kept(const struct config *cur, const struct listener_conf *lc,
                      const struct server *srv);

/* Finds a backend / listener by name, or NULL. */
struct backend *config_backend(const struct config *c, const char *name);

#endif
