/* maglev.c — Maglev consistent hashing (Eisenbud et al., NSDI'16): a lookup table of prime
 * size maps hash(client IP) to a server, so a client sticks to its server and adding or
 * removing one of N servers remaps only about 1/N of the clients. The table is built once
 * at init and NOT rebuilt when health changes (see "Design" below for why).
 */
#include "lb.h"

#include <stdlib.h>
#include <string.h>

#include "core/hash.h"

#define MAGLEV_MIN_SIZE 65537u
#define MAGLEV_PROBES 8
#define MAGLEV_EMPTY UINT32_MAX

/* Design.
 * - Size M: 65537, or the next prime >= 100 * nservers (Maglev wants M >> N for balance).
 * - Each server fills slots along its own permutation (offset, skip) from two hashes of its
 *   NAME, servers taking turns in name order: the table is the same across restarts,
 *   instances and reorderings of the configuration.
 * - Weights: each round a server gains `weight` credits and takes one slot per `max weight`
 *   credits (as Katran's MaglevHashV2), so slot shares follow weights, large ones too.
 * - One table per tier (primaries, backups), built from ALL servers of the tier and NOT
 *   rebuilt on health changes: it stays read-only shared state, which every worker reads
 *   without lock, RCU or rebuild on the control thread. A pick whose slot holds an
 *   ineligible server probes other slots (rehash with seeds 1..MAGLEV_PROBES, then a scan
 *   of the servers): the probes are deterministic, so only the keys of a down server move,
 *   spread over the others in proportion to their slots, and they return when it is up.
 */
struct maglev {
    uint32_t m;         /* table size, prime */
    uint32_t *table[2]; /* [backup]: server indexes into b->servers, NULL if tier empty */
};

/* A server's walk over the table while filling it. */
struct mg_perm {
    const char *name;
    uint64_t offset, skip, next;
    uint32_t index; /* into b->servers */
    uint32_t weight;
    uint64_t credit;
};

static bool is_prime(uint32_t n)
{
    if (n < 2)
        return false;
    for (uint32_t d = 2; (uint64_t)d * d <= n; d++)
        if (n % d == 0)
            return false;
    return true;
}

static uint32_t table_size(uint32_t nservers)
{
    uint64_t want = (uint64_t)nservers * 100;
    if (want <= MAGLEV_MIN_SIZE)
        return MAGLEV_MIN_SIZE;
    uint32_t m = (uint32_t)want;
    while (!is_prime(m))
        m++;
    return m;
}

static void perm_init(struct mg_perm *p, const struct server *s, uint32_t index, uint32_t m)
{
    const char *name = s->name ? s->name : "";
    size_t len = strlen(name);
    p->name = name;
    p->offset = hash64(name, len, 0x4d41474c45563031ull) % m; /* "MAGLEV01" */
    p->skip = hash64(name, len, 0x4d41474c45563032ull) % (m - 1) + 1;
    p->next = 0;
    p->index = index;
    p->weight = lb_weight(s);
    p->credit = 0;
}

/* Takes the next free slot along p's permutation. Since m is prime and 0 < skip < m, the
 * walk visits every slot, so it ends while a free slot remains. */
static void take_slot(uint32_t *table, uint32_t m, struct mg_perm *p)
{
    uint64_t c;
    do {
        c = (p->offset + p->next * p->skip) % m;
        p->next++;
    } while (table[c] != MAGLEV_EMPTY);
    table[c] = p->index;
}

/* Fills a table of size m from the n permutations; m >= n >= 1. */
static void fill(uint32_t *table, uint32_t m, struct mg_perm *perm, uint32_t n)
{
    uint32_t max_weight = 0;
    for (uint32_t k = 0; k < n; k++)
        if (perm[k].weight > max_weight)
            max_weight = perm[k].weight;
    for (uint32_t i = 0; i < m; i++)
        table[i] = MAGLEV_EMPTY;
    uint32_t filled = 0;
    while (filled < m) {
        for (uint32_t k = 0; k < n && filled < m; k++) {
            perm[k].credit += perm[k].weight;
            if (perm[k].credit < max_weight)
                continue;
            perm[k].credit -= max_weight;
            take_slot(table, m, &perm[k]);
            filled++;
        }
    }
}

/* Fill order: by name (then position, for duplicate names), so the table depends on the
 * set of servers and weights, not on the order the configuration lists them in. */
static int perm_cmp(const void *a, const void *b)
{
    const struct mg_perm *pa = a, *pb = b;
    int c = strcmp(pa->name, pb->name);
    if (c)
        return c;
    return pa->index < pb->index ? -1 : pa->index > pb->index;
}

/* Builds the table of one tier, or leaves *out NULL when the tier has no server. */
static int build_tier(struct backend *b, bool backup, uint32_t m, uint32_t **out)
{
    uint32_t n = 0;
    for (uint32_t i = 0; i < b->nservers; i++)
        n += b->servers[i].backup == backup;
    *out = NULL;
    if (n == 0)
        return 0;
    struct mg_perm *perm = calloc(n, sizeof(*perm));
    uint32_t *table = malloc((size_t)m * sizeof(*table));
    if (!perm || !table)
        goto fail;
    n = 0;
    for (uint32_t i = 0; i < b->nservers; i++)
        if (b->servers[i].backup == backup)
            perm_init(&perm[n++], &b->servers[i], i, m);
    qsort(perm, n, sizeof(*perm), perm_cmp);
    fill(table, m, perm, n);
    free(perm);
    *out = table;
    return 0;
fail:
    free(perm);
    free(table);
    return -1;
}

static int mg_init(struct backend *b)
{
    struct maglev *mg = calloc(1, sizeof(*mg));
    if (!mg)
        return -1;
    b->lb_shared = mg;
    mg->m = table_size(b->nservers);
    if (build_tier(b, false, mg->m, &mg->table[0]) < 0 ||
        build_tier(b, true, mg->m, &mg->table[1]) < 0)
        return -1; /* lb_backend_init calls destroy */
    return 0;
}

static void mg_destroy(struct backend *b)
{
    struct maglev *mg = b->lb_shared;
    if (mg) {
        free(mg->table[0]);
        free(mg->table[1]);
        free(mg);
    }
    b->lb_shared = NULL;
}

static struct server *mg_pick(struct backend *b, struct lb_worker *w, const struct lb_req *req)
{
    if (!req->client && !req->key)
        return lb_round_robin.pick(b, w, req);
    const struct maglev *mg = b->lb_shared;
    const uint32_t *table = mg->table[req->backup];
    if (!table)
        return NULL;
    uint64_t key = lb_req_hash(req);
    uint32_t home = table[key % mg->m];
    if (lb_eligible(&b->servers[home], req))
        return &b->servers[home];
    /* Deterministic probes: a given key always lands on the same fallback server. */
    for (uint64_t seed = 1; seed <= MAGLEV_PROBES; seed++) {
        struct server *s =
            &b->servers[table[hash_mix64(key + seed * 0x9e3779b97f4a7c15ull) % mg->m]];
        if (lb_eligible(s, req))
            return s;
    }
    for (uint32_t i = 1; i < b->nservers; i++) {
        uint32_t idx = (uint32_t)(((uint64_t)home + i) % b->nservers);
        if (lb_eligible(&b->servers[idx], req))
            return &b->servers[idx];
    }
    return NULL;
}

const uint32_t *lb_maglev_table(const struct backend *b, bool backup, uint32_t *m)
{
    const struct maglev *mg = b->lb_ops == &lb_maglev ? b->lb_shared : NULL;
    if (!mg || !mg->table[backup])
        return NULL;
    *m = mg->m;
    return mg->table[backup];
}

const struct lb_ops lb_maglev = {
    .name = "maglev",
    .init = mg_init,
    .destroy = mg_destroy,
    .pick = mg_pick,
};
