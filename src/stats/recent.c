/* recent.c — see recent.h. */
#include "stats/recent.h"

#include <string.h>

#include "core/time.h"

static void copy_cut(char *dst, size_t size, const char *src, size_t len)
{
    if (!src)
        len = 0;
    if (len >= size)
        len = size - 1;
    memcpy(dst, src ? src : "", len);
    dst[len] = '\0';
}

void recent_add(struct recent_ring *r, uint16_t status, const char *where, const char *reason,
                const char *detail, const char *path, uint32_t path_len)
{
    uint32_t n = atomic_load_explicit(&r->next, memory_order_relaxed);
    struct recent_error *e = &r->e[n % RECENT_PER_WORKER];
    uint32_t seq = atomic_load_explicit(&e->seq, memory_order_relaxed);
    atomic_store_explicit(&e->seq, seq + 1, memory_order_relaxed);
    atomic_thread_fence(memory_order_release);
    e->unix_ms = real_ms();
    e->status = status;
    copy_cut(e->where, sizeof(e->where), where, where ? strlen(where) : 0);
    copy_cut(e->reason, sizeof(e->reason), reason, reason ? strlen(reason) : 0);
    copy_cut(e->detail, sizeof(e->detail), detail, detail ? strlen(detail) : 0);
    copy_cut(e->path, sizeof(e->path), path, path_len);
    atomic_store_explicit(&e->seq, seq + 2, memory_order_release);
    atomic_store_explicit(&r->next, n + 1, memory_order_release);
}

unsigned recent_read(const struct recent_ring *r, struct recent_error *out, unsigned max)
{
    unsigned n = 0;
    uint32_t written = atomic_load_explicit(&r->next, memory_order_acquire);
    for (unsigned i = 0; i < RECENT_PER_WORKER && i < written && n < max; i++) {
        const struct recent_error *e = &r->e[i];
        uint32_t before = atomic_load_explicit(&e->seq, memory_order_acquire);
        if (before & 1)
            continue;
        memcpy((char *)&out[n] + sizeof(out[n].seq), (const char *)e + sizeof(e->seq),
               sizeof(*e) - sizeof(e->seq));
        atomic_thread_fence(memory_order_acquire);
        if (atomic_load_explicit(&e->seq, memory_order_relaxed) != before)
            continue; /* rewritten while copied */
        atomic_init(&out[n].seq, 0);
        n++;
    }
    return n;
}
