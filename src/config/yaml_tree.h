/* yaml_tree.h — a YAML document as a tree of nodes that remember where they were written.
 *
 * ytree_parse() runs libyaml's event parser over a buffer and builds plain C nodes, each
 * with its 1-based line and column, so that every configuration error can name its
 * position. Aliases are expanded into copies (bounded, so an "alias bomb" is an error).
 */
#ifndef STRATA_CONFIG_YAML_TREE_H
#define STRATA_CONFIG_YAML_TREE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum ynode_kind {
    YN_NULL, /* empty value, "~" or "null" written plain */
    YN_SCALAR,
    YN_SEQ,
    YN_MAP,
};

/* Invariants: a YN_SCALAR/YN_NULL has `text` (NUL-terminated, no embedded NUL) and no
 * children; a YN_SEQ has `n` items in kids[0..n); a YN_MAP has n key/value pairs, the key
 * of pair i in kids[2i] and its value in kids[2i+1]. Keys may be any kind of node. */
struct ynode {
    enum ynode_kind kind;
    uint32_t line, col;  /* 1-based, where the node starts */
    bool quoted;         /* scalar written with quotes or as a block literal */
    char *text;          /* scalars and nulls */
    size_t len;          /* strlen(text) */
    struct ynode **kids; /* nkids children, see above */
    size_t n;            /* items, or pairs for a mapping */
    size_t nkids, cap;   /* children stored / slots allocated in kids */
};

struct ytree_error {
    uint32_t line, col; /* 1-based; 0 when the error has no position */
    char msg[256];
};

enum ytree_status {
    YT_OK,
    YT_EMPTY, /* no document (empty file, only comments) */
    YT_ERROR, /* syntax or limit error: see *err */
};

/* Limits on what one configuration document may contain. */
#define YTREE_MAX_DEPTH 64
#define YTREE_MAX_NODES 200000

/* Parses exactly one document from buf[0..len). On YT_OK *out is the root node, owned by
 * the caller (ytree_free). On YT_ERROR *err says what and where; *out is NULL. */
enum ytree_status ytree_parse(const char *buf, size_t len, struct ynode **out,
                              struct ytree_error *err);
void ytree_free(struct ynode *n);

/* The value of the first pair whose key is the scalar `key`, or NULL. */
const struct ynode *ymap_get(const struct ynode *map, const char *key);
/* The key node of the first pair whose key is the scalar `key`, or NULL. */
const struct ynode *ymap_key(const struct ynode *map, const char *key);

#endif
