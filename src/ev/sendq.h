/* sendq.h — sends gathered during a loop turn and made together before the loop sleeps.
 *
 * Why: a proxy shares its CPU with the peers it writes to (an origin on the same core).
 * Each send(2) that wakes a peer lets the scheduler switch to that peer at the return from
 * the syscall, so a turn that writes 30 messages is preempted up to 30 times (counted on
 * an L4 keep-alive run: 0.24 involuntary switches per round trip, the switch and wake-up
 * code about a fifth of the proxy's CPU). Queued here, a turn's sends reach the kernel in
 * one io_uring_enter(2): each is non-blocking and done before the call returns, so the
 * peers run once per turn with all their work ready.
 *
 * Without io_uring (an old kernel, a seccomp policy, `tuning.io_uring: false`) the queue
 * is flushed with one send(2) each: the same semantics for the code above.
 *
 * Contract for a sender: the bytes stay untouched from ev_send_queue (or from prepare,
 * for a sender whose buffer still grows during the turn) until done is called, always
 * before the loop sleeps again; the sender writes nothing else to the fd meanwhile.
 * Cancel before closing the fd.
 */
#ifndef STRATA_EV_SENDQ_H
#define STRATA_EV_SENDQ_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "core/list.h"

struct ev_loop;

/* What a queued entry does: send bytes, or shut the socket's sending side (the FIN wakes
 * the peer as a send does, so it waits for the end of the turn too). */
enum ev_send_op { EV_SEND, EV_SHUT_WR };

struct ev_send {
    struct list link; /* the loop's queue, or the flush in progress; else self-linked */
    int fd;
    uint8_t op; /* enum ev_send_op */
    uint32_t len;
    const void *buf;
    ssize_t res;
    /* If set, called by the flush just before the send to set buf and len (len 0: nothing
     * to send, done gets 0). */
    void (*prepare)(struct ev_send *s);
    /* Called once per queued send, from the flush: res = bytes sent (1..len), or -errno
     * (-EAGAIN: the socket is full, nothing was sent). */
    void (*done)(struct ev_send *s, ssize_t res);
};

static inline void ev_send_init(struct ev_send *s, void (*prepare)(struct ev_send *s),
                                void (*done)(struct ev_send *s, ssize_t res))
{
    list_init(&s->link);
    s->prepare = prepare;
    s->done = done;
}

/* Queued and not yet reported done. */
static inline bool ev_send_queued(const struct ev_send *s)
{
    return !list_empty(&s->link);
}

/* Queues a send of len bytes (MSG_NOSIGNAL, non-blocking; with a prepare, buf and len are
 * set by it); s must not be queued. */
void ev_send_queue(struct ev_loop *loop, struct ev_send *s, int fd, const void *buf, uint32_t len);

/* Queues shutdown(fd, SHUT_WR), made after the turn's sends (queue it once the last
 * send has been reported done); s must not be queued. */
void ev_shut_queue(struct ev_loop *loop, struct ev_send *s, int fd);

/* Forgets s: its done is not called. Harmless if s is not queued. */
static inline void ev_send_cancel(struct ev_send *s)
{
    list_del(&s->link);
}

/* Makes s now if it is queued and not yet made (one send(2), whatever it takes), without
 * calling done; forgets it either way: for an owner about to close, so that bytes it had
 * accepted go out first as they would have without the queue. */
void ev_send_finish(struct ev_send *s);

/* Sets up io_uring for this loop's flushes. 0, or -1 with errno (the loop then uses
 * send(2)). */
int ev_sendq_uring(struct ev_loop *loop, unsigned entries);

/* Makes every queued send and calls their done, in queue order; sends queued by those
 * calls are made too, for a few rounds. Run by the loop before it polls. */
void ev_sends_flush(struct ev_loop *loop);

void ev_sendq_free(struct ev_loop *loop);

#endif
