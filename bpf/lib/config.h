/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Per-endpoint load-time constants and datapath tunables.
 *
 * One compiled object serves every endpoint: the loader rewrites these
 * `volatile const` globals in the object's .rodata before loading it for a
 * given endpoint (they are zero in the ELF). `volatile` keeps clang from
 * folding the compile-time zero into the code; `const` puts them in .rodata,
 * which the loader freezes, so the verifier treats them as known scalars and
 * prunes dead branches (e.g. MONITOR_AGGREGATION) per endpoint.
 *
 * Byte order: "be" fields are stored exactly as they appear on the wire.
 */
#ifndef CILIUM_TS_CONFIG_H
#define CILIUM_TS_CONFIG_H

#include "lib/common.h"

/* Endpoint ID (host order); key of this endpoint's inner policy map in
 * cilium_policy_maps, `source` of every event, lxc_id of its metrics. */
volatile const __u16 LXC_ID;
/* Security identity of the endpoint (host order). */
volatile const __u32 SECLABEL;
/* Endpoint IPv4 address, network order; 0 = endpoint has no IPv4 (all IPv4
 * from the pod is then dropped with DROP_INVALID_SIP). */
volatile const __u32 LXC_IPV4;
/* Endpoint IPv6 address (16 bytes, wire order); all-zero = no IPv6. */
volatile const __u8 LXC_IPV6[16];
/* The pod's MAC (eth0 inside the pod). */
volatile const __u8 LXC_MAC[6];
/* Host-side veth MAC: the router MAC the pod sees; ARP/NDP answers carry it. */
volatile const __u8 NODE_MAC[6];
/* Gateway IPv4 the pod uses as default route (network order), informational:
 * ARP requests for any address other than the pod's own are answered. */
volatile const __u32 ROUTER_IPV4;
/* Gateway IPv6 the pod uses (16 bytes, wire order); NS for it are answered. */
volatile const __u8 ROUTER_IPV6[16];
/* ifindex of the host-side veth this program is attached to. */
volatile const __u32 LXC_IFINDEX;
/* 0: a trace event for every forwarded packet. >= 1: trace only packets of new
 * connections, related ICMP errors and TCP packets that carry a SYN/FIN/RST not
 * seen before in their direction. Drops and policy verdicts are always sent. */
volatile const __u32 MONITOR_AGGREGATION;
/* 1: policy denials (no allow entry, or a deny entry) are reported with
 * audited=1 in the verdict event but the packet is allowed. */
volatile const __u32 POLICY_AUDIT_MODE;

/* ---- conntrack lifetimes (seconds) ---- */
#define CT_SYN_TIMEOUT 60          /* TCP until a non-SYN packet was seen in both directions */
#define CT_CONNECTION_LIFETIME_TCP 21600
#define CT_CONNECTION_LIFETIME_NONTCP 60
#define CT_CLOSE_TIMEOUT 10        /* TCP after FIN or RST */

#define NSEC_PER_SEC 1000000000ULL

/* ---- map sizes ---- */
#define IPCACHE_MAP_SIZE 512000
#define ENDPOINTS_MAP_SIZE 65535
#define POLICY_MAP_SIZE 16384
#define POLICY_MAPS_OUTER_SIZE 65536
#define CT_MAP_SIZE_TCP 262144
#define METRICS_MAP_SIZE 65536
#define EVENTS_RINGBUF_SIZE (1 << 20)

#endif
