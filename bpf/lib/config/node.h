/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Node-wide settings: the same value in every object the agent loads on a node.
 *
 * Load-time constants are `volatile const` globals the loader rewrites in the object's .rodata
 * before loading it (they are zero in the ELF). `volatile` keeps clang from folding the
 * compile-time zero into the code; `const` puts them in .rodata, which the loader freezes, so the
 * verifier treats them as known scalars and prunes the branches they turn off.
 *
 * Every datapath object includes this header, plus the header of its own scope:
 *   config/endpoint.h  per-endpoint programs (bpf_lxc.c)
 *   config/host.h      the node's external-device programs (bpf_host.c)
 * An object whose scope has constants of its own gets its own header here with only those
 * (bpf_sock.c, the node's socket hooks, needs none beyond this one). Map sizes are in config/sizes.h.
 */
#ifndef CILIUM_TS_CONFIG_NODE_H
#define CILIUM_TS_CONFIG_NODE_H

#include "lib/common.h"

/* 0: a trace event for every forwarded packet. >= 1: trace only packets of new
 * connections, related ICMP errors and TCP packets that carry a SYN/FIN/RST not
 * seen before in their direction. Drops and policy verdicts are always sent. */
volatile const __u32 MONITOR_AGGREGATION;
/* 1: the node's own host (identity ID_HOST) opens connections to its local pods whatever their
 * ingress policy says, as kubelet health probes need (upstream's allow-localhost=always).
 * 0: host traffic is policed like any other (allow-localhost=policy). */
volatile const __u32 ALLOW_LOCALHOST;
/* Backend selection of per-packet service translation (tc) for a service whose master entry names
 * no algorithm: LB_ALGORITHM_RANDOM (1) or LB_ALGORITHM_MAGLEV (2); 0 is random. */
volatile const __u32 LB_SELECTION;
/* M, the number of backend IDs in each Maglev table of cilium_lb4_maglev (the node's maps are
 * made for one M); 0: no Maglev, random is used. */
volatile const __u32 MAGLEV_TABLE_SIZE;
/* Seed of the Maglev flow hash (upstream's HASH_INIT4_SEED): every node of a cluster uses the same,
 * so a flow picks the same backend wherever it arrives. */
volatile const __u32 HASH_INIT4_SEED;
/* 1: conntrack entries count each packet and its bytes per direction (tx_* / rx_*), as upstream's
 * --bpf-conntrack-accounting. 0 (the default, as upstream's): they keep the first packet's count,
 * and an established connection's packets mostly only read their entries (ct_update), so the two
 * CPUs carrying a connection's two directions do not pass the entry's cache lines back and forth
 * at every packet. */
volatile const __u32 CT_ACCOUNTING;
/* ifindex of the node's VXLAN overlay device (cilium_vxlan, lib/overlay.h): a pod's packet for a
 * destination whose ipcache entry names a tunnel endpoint (a pod on another node) is encapsulated
 * and sent there. 0: no overlay (native routing: the node's stack routes it). */
volatile const __u32 ENCAP_IFINDEX;

/* ---- compile-time tunables ---- */

/* conntrack lifetimes (seconds) */
#define CT_SYN_TIMEOUT 60          /* TCP until a non-SYN packet was seen in both directions */
#define CT_CONNECTION_LIFETIME_TCP 21600
#define CT_CONNECTION_LIFETIME_NONTCP 60
#define CT_CLOSE_TIMEOUT 10        /* TCP after FIN or RST */

/* NodePort range (Kubernetes' default): socket-LB tries a NodePort frontend on another node's
 * address only for ports in it, a HostPort one only outside it */
#define NODEPORT_PORT_MIN 30000
#define NODEPORT_PORT_MAX 32767
/* Source ports the node gives connections it SNATs towards a backend: above the kernel's default
 * ip_local_port_range (32768-60999), so they do not meet the node's own sockets' ports */
#define NODEPORT_SNAT_PORT_MIN 61000
#define NODEPORT_SNAT_PORT_MAX 65535
/* tries at a free SNAT port before the connection is dropped (DROP_NAT_NO_MAPPING) */
#define NODEPORT_SNAT_RETRIES 32
/* seconds a SNAT port stays taken after a connection the backend closed first: Linux keeps the
 * tuple in TIME_WAIT for 60 s, and a new connection on it from another client would meet that
 * state (its SYN refused by PAWS) */
#define NODEPORT_TIME_WAIT 65

#endif
