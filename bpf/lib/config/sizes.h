/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Map sizes (max_entries). Part of each map's definition: the loader refuses an object whose maps
 * differ from the node's pinned ones, so changing a size means new pinned maps.
 */
#ifndef CILIUM_TS_CONFIG_SIZES_H
#define CILIUM_TS_CONFIG_SIZES_H

#define IPCACHE_MAP_SIZE 512000
#define ENDPOINTS_MAP_SIZE 65535
#define POLICY_MAP_SIZE 16384
#define POLICY_MAPS_OUTER_SIZE 65536
#define CT_MAP_SIZE_TCP 262144
#define METRICS_MAP_SIZE 65536
/* forwarded-packet counters by (endpoint ID, direction) for IDs below half of it (lib/metrics.h):
 * the agent's endpoint IDs are 1..4095 */
#define METRICS_FWD_MAP_SIZE 8192
#define EVENTS_RINGBUF_SIZE (1 << 20)

/* load balancing (lib/lb.h): every LB map holds up to this many entries (upstream's bpf.lbMapMax) */
#define LB_MAP_SIZE 65536
/* a frontend takes one services entry per backend slot (+1), and each backend one backends entry:
 * 10,000 services x 10 backends must fit; unpreallocated, so the size costs nothing until used */
#define LB_SERVICE_MAP_SIZE 262144
#define LB_BACKEND_MAP_SIZE 262144
/* socket-LB: slots of TCP sockets' reverse entries (bpf_sock.c), by socket cookie; a power of 2 */
#define LB_SOCK_SLOTS 65536
/* Maglev lookup table size M of the inner map template (a prime; upstream's default). The node's
 * maglev maps may be created with another M, the agent's setting (src/datapath/maps/lb.ts). */
#define LB_MAGLEV_LUT_SIZE 16381
/* NodePort NAT (lib/nodeport.h): one or two entries per connection from outside (LRU, preallocated) */
#define NODEPORT_NAT_MAP_SIZE 131072

#endif
