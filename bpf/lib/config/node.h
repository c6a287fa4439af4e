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

#endif
