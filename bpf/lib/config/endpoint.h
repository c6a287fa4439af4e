/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Per-endpoint load-time constants of bpf_lxc.c: the loader rewrites them in .rodata for each
 * endpoint it loads (see config/node.h for the mechanism). One compiled object serves every
 * endpoint.
 *
 * Byte order: "be" fields are stored exactly as they appear on the wire.
 */
#ifndef CILIUM_TS_CONFIG_ENDPOINT_H
#define CILIUM_TS_CONFIG_ENDPOINT_H

#include "lib/config/node.h"

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
/* 1: policy denials (no allow entry, or a deny entry) are reported with
 * audited=1 in the verdict event but the packet is allowed. */
volatile const __u32 POLICY_AUDIT_MODE;

#endif
