/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Another node's VXLAN packet for a pod of this node, taken apart where it arrives: the node's
 * external device (bpf_host.c cil_from_netdev), before the node's stack. A packet of an
 * established connection that the pod's to-container program would only count (lib/deliver.h's
 * short way) loses its outer headers here (IPv4, UDP, VXLAN, inner Ethernet: bpf_skb_adjust_room)
 * and goes straight into the pod: no IP receive, UDP socket lookup, VXLAN receive (which
 * allocates a tunnel metadata dst per packet), GRO cell queue or overlay device. The sender's
 * identity is the VNI, checked as cil_from_overlay checks it.
 *
 * Everything else goes the kernel's way to the overlay device (cil_from_overlay decides there,
 * with its events and drops), untouched: a new connection (policy), a traced packet, ICMP, IPv6
 * inside, an ECN congestion mark on the outer header, a fragment, headers not in the linear
 * data, GSO packets and packets above OVERLAY_DECAP_MAX_LEN. GSO packets because this kernel's
 * bpf_skb_adjust_room leaves their tunnel offload state (skb->encapsulation, SKB_GSO_UDP_TUNNEL)
 * in place, which the VXLAN device clears (iptunnel_pull_offloads): the overlay device keeps a
 * GSO packet whole. Large packets because they are a bulk transfer's: the VXLAN device queues
 * what it receives (its GRO cells) before cil_from_overlay sees it, so a full-sized segment
 * taken here could overtake the GSO packet before it in the same connection and arrive out of
 * order; small ones (requests, answers, ACKs) are what waits on the way.
 */
#ifndef CILIUM_TS_OVERLAY_DECAP_H
#define CILIUM_TS_OVERLAY_DECAP_H

#include "lib/common.h"
#include "lib/config/node.h"
#include "lib/pkt.h"
#include "lib/ipv4.h"
#include "lib/endpoints.h"
#include "lib/overlay.h"
#include "lib/deliver.h"

/* Outer IPv4 20 + UDP 8 + VXLAN 8 + inner Ethernet 14: what decapsulation removes after the
 * outer Ethernet header (VXLAN_OVERHEAD less the outer Ethernet header, src/datapath/overlay.ts). */
#define OVERLAY_ENCAP_LEN 50
#define OVERLAY_UDP_OFF (ETH_HLEN + 20)
#define OVERLAY_VXLAN_OFF (OVERLAY_UDP_OFF + 8)
#define OVERLAY_INNER_ETH_OFF (OVERLAY_VXLAN_OFF + 8)
#define OVERLAY_INNER_IP_OFF (ETH_HLEN + OVERLAY_ENCAP_LEN)
/* VXLAN flags: the VNI is valid (RFC 7348 I flag) */
#define OVERLAY_VXLAN_F_VNI 0x08

/* The largest inner IPv4 packet (total length) decapsulated here; see above. */
#define OVERLAY_DECAP_MAX_LEN 512

/* overlay_decap's answer for what is not another node's VXLAN packet to this node. */
#define OVERLAY_NOT_TUNNEL 0x100

/*
 * Is the IPv4 frame another node's VXLAN packet to this node (UDP to OVERLAY_PORT on NODE_IPV4,
 * read in place)? 1, 0, or -1 when the headers are not in the linear data.
 */
static __always_inline int overlay_is_tunnel4(struct __sk_buff *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct iphdr *ip = data + ETH_HLEN;
	struct udphdr *udp = data + OVERLAY_UDP_OFF;

	if ((void *)(udp + 1) > data_end)
		return -1;
	return *(__u8 *)ip == 0x45 && ip->protocol == CIL_IPPROTO_UDP && ip->daddr == NODE_IPV4 &&
	       udp->dest == bpf_htons(OVERLAY_PORT);
}

/*
 * The inner packet of a tunnel packet (read in place) when it may take the short way: a whole,
 * small IPv4 TCP / UDP packet from a pod (a cluster identity in the VNI), the outer header without
 * fragmentation or congestion mark and matching the frame's length. 0 with `p` filled, else -1.
 */
static __always_inline int overlay_inner4(struct __sk_buff *ctx, struct pktinfo *p)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct iphdr *outer = data + ETH_HLEN;
	__u8 *vx = data + OVERLAY_VXLAN_OFF;
	struct ethhdr *eth = data + OVERLAY_INNER_ETH_OFF;
	struct iphdr *ip = data + OVERLAY_INNER_IP_OFF;
	__u8 *l4 = (__u8 *)(ip + 1);
	__u32 vni;

	if (l4 + 14 > (__u8 *)data_end)
		return -1;
	if ((bpf_ntohs(outer->frag_off) & (IP_MF | IP_OFFSET)) || (outer->tos & 3) == 3 ||
	    bpf_ntohs(outer->tot_len) != ctx->len - ETH_HLEN)
		return -1;
	if (vx[0] != OVERLAY_VXLAN_F_VNI || eth->h_proto != bpf_htons(ETH_P_IP))
		return -1;
	vni = ((__u32)vx[4] << 16) | ((__u32)vx[5] << 8) | vx[6];
	/* a pod's identity; the rest (nodes' own traffic, and what cil_from_overlay drops with its
	 * events: no identity, the host) goes the kernel's way */
	if (!overlay_is_cluster_identity(vni))
		return -1;
	if (*(__u8 *)ip != 0x45 || bpf_ntohs(ip->tot_len) > OVERLAY_DECAP_MAX_LEN ||
	    (ip->protocol != CIL_IPPROTO_TCP && ip->protocol != CIL_IPPROTO_UDP) ||
	    (bpf_ntohs(ip->frag_off) & IP_OFFSET) || ip->ttl <= 1)
		return -1;
	pkt_tuple4_direct(p, ip, l4); /* its offsets as after decapsulation */
	return 0;
}

/*
 * An IPv4 frame arriving on the node's external device: OVERLAY_NOT_TUNNEL when it is not a VXLAN
 * packet to this node, TC_ACT_OK (the kernel's VXLAN receive and cil_from_overlay) or a redirect
 * into the pod after decapsulation, -DROP_* when the decapsulated packet could not be delivered.
 * A global function: its frame is never on the stack with the load balancer's.
 */
__noinline int overlay_decap(struct __sk_buff *ctx)
{
	const struct endpoint_info *ep;
	struct pktinfo p = {};
	struct ct_entry *e;
	struct ct_key key;
	__u64 now;
	int reply;

	if (!ENCAP_IFINDEX || !NODE_IPV4)
		return OVERLAY_NOT_TUNNEL;
	/* (headers out of the linear data: cil_from_netdev tells by its own parse) */
	if (overlay_is_tunnel4(ctx) <= 0)
		return OVERLAY_NOT_TUNNEL;
	/* with monitor aggregation 0 every packet is traced: cil_from_overlay's */
	if (MONITOR_AGGREGATION == 0 || ctx->gso_size || overlay_inner4(ctx, &p) < 0)
		return TC_ACT_OK;
	ep = lookup_endpoint4(p.tuple.daddr4);
	if (!ep || (ep->flags & ENDPOINT_F_HOST))
		return TC_ACT_OK;
	now = ct_now();
	e = deliver_entry(&p, &key, now, &reply);
	if (!e)
		return TC_ACT_OK;
	/* the outer headers and the inner Ethernet header go; gso_size stays (not a GSO packet) */
	if (bpf_skb_adjust_room(ctx, -OVERLAY_ENCAP_LEN, BPF_ADJ_ROOM_MAC, BPF_F_ADJ_ROOM_FIXED_GSO) < 0)
		return TC_ACT_OK;
	return deliver_commit(ctx, &p, ep, e, reply, now);
}

#endif
