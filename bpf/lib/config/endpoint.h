/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Per-endpoint settings of bpf_lxc.c. Unlike the node's (config/node.h, frozen .rodata), they live
 * in a writable data section of their own, `.data.ep`, which becomes a one-entry array map per
 * loaded copy: programs can be loaded and verified before their endpoint exists (with every value
 * zero) and get the endpoint's values written into that map before they are attached. The values
 * of a copy are written once, before its programs take traffic, and never while they do (a change
 * of identity loads another copy and swaps it in). One compiled object serves every endpoint.
 *
 * A copy whose settings were never written (LXC_ID 0) drops every packet: see EP_CONFIG_UNSET.
 *
 * Byte order: "be" fields are stored exactly as they appear on the wire.
 */
#ifndef CILIUM_TS_CONFIG_ENDPOINT_H
#define CILIUM_TS_CONFIG_ENDPOINT_H

#include "lib/config/node.h"

/* `volatile`: every use reads the map value (the compiler must not fold the ELF's zeros in). */
#define EP_CONFIG __attribute__((section(".data.ep"))) volatile

/* Endpoint ID (host order); key of this endpoint's inner policy map in
 * cilium_policy_maps, `source` of every event, lxc_id of its metrics. */
EP_CONFIG __u16 LXC_ID;
/* Security identity of the endpoint (host order). */
EP_CONFIG __u32 SECLABEL;
/* Endpoint IPv4 address, network order; 0 = endpoint has no IPv4 (all IPv4
 * from the pod is then dropped with DROP_INVALID_SIP). */
EP_CONFIG __u32 LXC_IPV4;
/* Endpoint IPv6 address (16 bytes, wire order); all-zero = no IPv6. */
EP_CONFIG __u8 LXC_IPV6[16];
/* The pod's MAC (eth0 inside the pod). */
EP_CONFIG __u8 LXC_MAC[6];
/* Host-side veth MAC: the router MAC the pod sees; ARP/NDP answers carry it. */
EP_CONFIG __u8 NODE_MAC[6];
/* Gateway IPv4 the pod uses as default route (network order), informational:
 * ARP requests for any address other than the pod's own are answered. */
EP_CONFIG __u32 ROUTER_IPV4;
/* Gateway IPv6 the pod uses (16 bytes, wire order); NS for it are answered. */
EP_CONFIG __u8 ROUTER_IPV6[16];
/* ifindex of the host-side veth this program is attached to. */
EP_CONFIG __u32 LXC_IFINDEX;
/* 1: policy denials (no allow entry, or a deny entry) are reported with
 * audited=1 in the verdict event but the packet is allowed. */
EP_CONFIG __u32 POLICY_AUDIT_MODE;

/* True while the copy's settings are unwritten: its programs drop everything (fail closed). */
#define EP_CONFIG_UNSET() (LXC_ID == 0)

#endif
