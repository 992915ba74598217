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

/* The `mode: udp` operations (net/listener_mode.h): a datagram mode. Per worker, when
 * w->cfg has a udp listener: the flow tables of its listeners, the flows' pool and the
 * datagram buffers (w->mode_state[MODE_UDP], else NULL). */
extern const struct listener_mode_ops udp_mode_ops;

/* The callback of a udp listen_sock (registered level-triggered for input): reads
 * datagrams in batches and relays each to its flow's server, opening flows as needed
 * (not once the worker drains: such datagrams are dropped and counted). */
void udp_listener_io(struct ev_loop *loop, struct ev_handler *h, uint32_t events);

#endif
