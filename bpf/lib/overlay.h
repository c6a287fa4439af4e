/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The VXLAN overlay: a packet for a pod on another node leaves through the node's collect-metadata
 * VXLAN device (cilium_vxlan, ENCAP_IFINDEX) with a tunnel key whose VNI is the SOURCE security
 * identity, so the receiving node knows who sent it without asking its ipcache. bpf_overlay.c
 * receives; bpf_lxc.c (its routing stage) and bpf_overlay.c's egress program send.
 *
 * Between the overlay's receive program and the destination pod's to-container program (which
 * enforces that pod's ingress policy), the identity travels in skb->mark (upstream's
 * MARK_MAGIC_IDENTITY encoding); the mark is scrubbed when the packet enters the pod's namespace.
 */
#ifndef CILIUM_TS_OVERLAY_H
#define CILIUM_TS_OVERLAY_H

#include "lib/common.h"

/* The overlay's UDP port: upstream's 8472 (src/datapath/overlay.ts VXLAN_PORT). */
#define OVERLAY_PORT 8472
/* VXLAN carries 24 bits of VNI: identities above are not sent. */
#define OVERLAY_VNI_MAX 0xffffff
#define OVERLAY_TTL 64
/* skb->pkt_type of a frame for this host (uapi/linux/if_packet.h) */
#define PACKET_HOST 0

/* skb->mark: an identity learnt from the tunnel key (bits 8-11 = 0xF, identity bits 0-15 in
 * 16-31, bits 16-23 in 0-7). */
#define MARK_MAGIC_IDENTITY 0x0F00
#define MARK_MAGIC_MASK 0x0F00

static __always_inline __u32 overlay_identity_mark(__u32 identity)
{
	return ((identity & 0xFFFF) << 16) | MARK_MAGIC_IDENTITY | ((identity >> 16) & 0xFF);
}

/* The identity a packet's mark carries, 0 when it carries none. */
static __always_inline __u32 overlay_mark_identity(__u32 mark)
{
	if ((mark & MARK_MAGIC_MASK) != MARK_MAGIC_IDENTITY)
		return 0;
	return ((mark >> 16) & 0xFFFF) | ((mark & 0xFF) << 16);
}

/* Identities allocated for label sets cluster-wide (upstream's MinimalNumericIdentity up to the
 * cluster scope's end): pods, never world, CIDRs (local scope) or reserved ones. */
#define ID_CLUSTER_MIN 256

static __always_inline int overlay_is_cluster_identity(__u32 identity)
{
	return identity >= ID_CLUSTER_MIN && identity <= OVERLAY_VNI_MAX;
}

/* What the VNI says of a sender: a node's own traffic is sent as remote-node (the receiver never
 * sees another node as its own host). */
static __always_inline __u32 overlay_tunnel_id(__u32 identity)
{
	return identity == ID_HOST ? ID_REMOTE_NODE : identity;
}

/* Sets the tunnel key of a packet going to node `remote` (IPv4, network order) from `identity`;
 * the caller sends it to the VXLAN device. 0 or -DROP_*. */
static __always_inline int overlay_set_key(struct __sk_buff *ctx, __be32 remote, __u32 identity)
{
	struct bpf_tunnel_key key = {};
	__u32 id = overlay_tunnel_id(identity);

	if (!remote)
		return -DROP_NO_TUNNEL_ENDPOINT;
	if (id == ID_UNKNOWN || id > OVERLAY_VNI_MAX)
		return -DROP_INVALID_VNI;
	key.tunnel_id = id;
	key.remote_ipv4 = bpf_ntohl(remote); /* the helper takes host order */
	key.tunnel_ttl = OVERLAY_TTL;
	if (bpf_skb_set_tunnel_key(ctx, &key, sizeof(key), BPF_F_ZERO_CSUM_TX) < 0)
		return -DROP_WRITE_ERROR;
	return 0;
}

#endif
