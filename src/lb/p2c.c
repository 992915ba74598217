/* p2c.c — power of two choices: draw two distinct eligible servers at random (the
 * worker's own xorshift state) and keep the one with the lower active / weight. Cheap
 * (O(1) when most servers are eligible), and unlike least_conn it does not send every
 * worker to the same momentarily idle server. With one eligible server, that one.
 */
#include "lb.h"

#include "core/hash.h"

/* Random draws tried before falling back to a full pass over the servers. */
#define P2C_TRIES 4

/* Uniform over eligible servers except `other`, by rejection; NULL after P2C_TRIES. */
static struct server *draw(struct backend *b, struct lb_worker *w, const struct lb_req *req,
                           const struct server *other)
{
    for (int t = 0; t < P2C_TRIES; t++) {
        struct server *s = &b->servers[rng_next(&w->rng) % b->nservers];
        if (s != other && lb_eligible(s, req))
            return s;
    }
    return NULL;
}

/* Reservoir sample of two among all eligible servers: uniform, one pass. *two stays NULL
 * when only one server is eligible. */
static void sample_two(struct backend *b, struct lb_worker *w, const struct lb_req *req,
                       struct server **one, struct server **two)
{
    uint64_t seen = 0;
    *one = *two = NULL;
    for (uint32_t i = 0; i < b->nservers; i++) {
        struct server *s = &b->servers[i];
        if (!lb_eligible(s, req))
            continue;
        seen++;
        if (seen == 1) {
            *one = s;
        } else if (seen == 2) {
            *two = s;
        } else {
            uint64_t r = rng_next(&w->rng) % seen; /* keep s with probability 2 / seen */
            if (r == 0)
                *one = s;
            else if (r == 1)
                *two = s;
        }
    }
}

/* True when a carries less load per unit of weight than b. */
static bool lighter(const struct server *a, const struct server *b)
{
    uint64_t aa = atomic_load_explicit(&a->st.live->active, memory_order_relaxed);
    uint64_t ab = atomic_load_explicit(&b->st.live->active, memory_order_relaxed);
    return aa * lb_weight(b) < ab * lb_weight(a);
}

static struct server *p2c_pick(struct backend *b, struct lb_worker *w, const struct lb_req *req)
{
    if (b->nservers == 0)
        return NULL;
    struct server *one = draw(b, w, req, NULL), *two = NULL;
    if (one && b->nservers > 1)
        two = draw(b, w, req, one);
    if (!one || !two)
        sample_two(b, w, req, &one, &two);
    if (!two)
        return one;
    return lighter(two, one) ? two : one;
}

const struct lb_ops lb_p2c = {
    .name = "p2c",
    .pick = p2c_pick,
};
