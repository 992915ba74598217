/* udp_proxy.h — the L4 UDP relay: a flow per client address and port, a socket connected
 * to the flow's server, replies sent back from the listener's socket, one log line when
 * the flow ends. The sibling of tcp_proxy.h; the flow table itself is udp_flow.h.
 *
 * Threads: a worker's flows, tables and buffers are used by that worker's thread only.
 */
#ifndef STRATA_L4_UDP_PROXY_H
#define STRATA_L4_UDP_PROXY_H

#include <stdint.h>

#include "ev/worker.h"

/* Largest datagram relayed: the slots datagrams are read into. */
#define UDP_DGRAM_MAX 65536
/* Datagrams read (recvmmsg) or replied (sendmmsg) by one system call. */
#define UDP_BATCH 32

/* Sets up w->udp (flow tables, datagram buffers) when w->cfg has a udp listener; leaves it
 * NULL otherwise. Call after the loop is initialised. Returns 0, or -1 when out of memory
 * (w->udp is then NULL, nothing to free). */
int udp_worker_init(struct worker *w);
/* Frees w->udp. Every flow must have been closed (udp_close_all). */
void udp_worker_free(struct worker *w);

/* The callback of a udp listen_sock (registered level-triggered for input): reads
 * datagrams in batches and relays each to its flow's server, opening flows as needed
 * (not once the worker drains: such datagrams are dropped and counted). */
void udp_listener_io(struct ev_loop *loop, struct ev_handler *h, uint32_t events);

/* Per-batch chores: deferred reads of busy flows, then frees the flows closed during the
 * batch. Does nothing without w->udp. */
void udp_after_events(struct worker *w);
/* Ends every flow now (end=shutdown). */
void udp_close_all(struct worker *w);
/* Flows open on this worker. */
uint32_t udp_flows(const struct worker *w);

#endif
