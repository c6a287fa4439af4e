/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Load-time constants of the node's external-device programs (bpf_host.c), one load per device:
 * the loader rewrites them in .rodata (see config/node.h for the mechanism).
 *
 * Byte order: "be" fields are stored exactly as they appear on the wire.
 */
#ifndef CILIUM_TS_CONFIG_HOST_H
#define CILIUM_TS_CONFIG_HOST_H

#include "lib/config/node.h"

/* The node's IPv4 address on this device (network order): the source connections to a backend on
 * another node are SNATed to, so that its replies come back through this node; also a NodePort
 * address. 0: no SNAT (connections that need it are dropped with DROP_NAT_NO_MAPPING). */
volatile const __be32 NODE_IPV4;
/* 1: SNAT connections to a local backend too (kube-proxy's way: the backend sees the node's
 * address); 0 (upstream's way): a local backend sees the client, its replies come back through
 * this node anyway. Either way not for externalTrafficPolicy: Local. */
volatile const __u32 NODEPORT_SNAT_LOCAL;
/* Endpoint ID events and metrics of this device's decisions carry (the node's host endpoint);
 * 0 when the node has none. */
volatile const __u16 HOST_EP_ID;

#endif
