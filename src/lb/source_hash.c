/* source_hash.c — client affinity by weighted rendezvous hashing (highest random weight):
 * each eligible server scores -weight / ln(u), u uniform in (0,1) from hash(client IP,
 * server seed), and the highest score wins. A server going down moves only its own
 * clients; shares follow weights. Seeds hash the server NAME (lb_shared, built at init),
 * so a client maps the same way across restarts and instances. No client: round robin.
 */
#include "lb.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/hash.h"

static uint64_t seed_of(const struct server *s, uint32_t i)
{
    return s->name ? hash64(s->name, strlen(s->name), 0x52454e44) : hash_mix64(i + 1);
}

/* Seeds of the servers present at load; sh_pick computes those of servers added at run
 * time on the fly (their names are not known yet). */
static int sh_init(struct backend *b)
{
    uint32_t n = b->nservers;
    uint64_t *seeds = calloc(n ? n : 1, sizeof(*seeds));
    if (!seeds)
        return -1;
    for (uint32_t i = 0; i < n; i++)
        seeds[i] = seed_of(&b->servers[i], i);
    b->lb_shared = seeds;
    return 0;
}

static void sh_destroy(struct backend *b)
{
    free(b->lb_shared);
    b->lb_shared = NULL;
}

/* -weight / ln(u): u in (0,1) from the top 53 bits, so ln(u) < 0 and never -inf. */
static double score(uint64_t key, uint64_t seed, uint32_t weight)
{
    uint64_t h = hash_mix64(key ^ seed);
    double u = ((double)(h >> 11) + 0.5) * (1.0 / 9007199254740992.0);
    return -(double)weight / log(u);
}

static struct server *sh_pick(struct backend *b, struct lb_worker *w, const struct lb_req *req)
{
    if (!req->client && !req->key)
        return lb_round_robin.pick(b, w, req);
    const uint64_t *seeds = b->lb_shared;
    uint64_t key = lb_req_hash(req);
    struct server *best = NULL;
    double best_score = 0;
    for (uint32_t i = 0; i < b->nservers; i++) {
        struct server *s = &b->servers[i];
        if (!lb_eligible(s, req))
            continue;
        uint64_t seed = i < b->nconfigured || !b->nconfigured ? seeds[i] : seed_of(s, i);
        double sc = score(key, seed, lb_weight(s));
        if (!best || sc > best_score) {
            best = s;
            best_score = sc;
        }
    }
    return best;
}

const struct lb_ops lb_source_hash = {
    .name = "source_hash",
    .init = sh_init,
    .destroy = sh_destroy,
    .pick = sh_pick,
};
