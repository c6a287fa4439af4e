/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ARP responder: the pod's neighbour resolution is always answered with
 * NODE_MAC (the host-side veth MAC), whatever address it asks for, except its
 * own address (duplicate address probes) and gratuitous ARP. Replies are
 * rewritten in place and bounced back out of the same veth.
 */
#ifndef CILIUM_TS_ARP_H
#define CILIUM_TS_ARP_H

#include "lib/common.h"
#include "lib/config/endpoint.h"

#define ARPHRD_ETHER 1
#define ARPOP_REQUEST 1
#define ARPOP_REPLY 2

struct arp_eth_ipv4 {
	/* ethernet */
	__u8 eth_dst[ETH_ALEN];
	__u8 eth_src[ETH_ALEN];
	__u16 eth_proto;
	/* arp */
	__u16 ar_hrd;
	__u16 ar_pro;
	__u8 ar_hln;
	__u8 ar_pln;
	__u16 ar_op;
	__u8 ar_sha[ETH_ALEN];
	__u8 ar_sip[4];
	__u8 ar_tha[ETH_ALEN];
	__u8 ar_tip[4];
} __attribute__((packed));

/*
 * Returns TC_ACT_REDIRECT after turning a request into the reply, TC_ACT_OK for
 * ARP the node's stack should see (replies from the pod, probes), or a drop.
 */
static __noinline int handle_arp(struct __sk_buff *ctx)
{
	struct arp_eth_ipv4 a;
	__u8 sha[ETH_ALEN];
	__u32 sip, tip;

	if (bpf_skb_load_bytes(ctx, 0, &a, sizeof(a)) < 0)
		return -DROP_INVALID;
	if (a.ar_hrd != bpf_htons(ARPHRD_ETHER) || a.ar_pro != bpf_htons(ETH_P_IP) ||
	    a.ar_hln != ETH_ALEN || a.ar_pln != 4)
		return -DROP_INVALID;
	if (a.ar_op != bpf_htons(ARPOP_REQUEST))
		return TC_ACT_OK;

	__builtin_memcpy(&sip, a.ar_sip, 4);
	__builtin_memcpy(&tip, a.ar_tip, 4);
	if (tip == LXC_IPV4 || tip == sip || sip == 0)
		return TC_ACT_OK;

	__builtin_memcpy(sha, a.ar_sha, ETH_ALEN);
	__builtin_memcpy(a.eth_dst, sha, ETH_ALEN);
	mac_copy(a.eth_src, NODE_MAC);
	a.ar_op = bpf_htons(ARPOP_REPLY);
	mac_copy(a.ar_sha, NODE_MAC);
	__builtin_memcpy(a.ar_sip, &tip, 4);
	__builtin_memcpy(a.ar_tha, sha, ETH_ALEN);
	__builtin_memcpy(a.ar_tip, &sip, 4);

	if (bpf_skb_store_bytes(ctx, 0, &a, sizeof(a), 0) < 0)
		return -DROP_WRITE_ERROR;
	return bpf_redirect(ctx->ifindex, 0);
}

#endif
