/* SPDX-License-Identifier: Apache-2.0 */
/*
 * IPv6 neighbour discovery responder, the IPv6 counterpart of lib/arp.h: a
 * neighbour solicitation from the pod for any address but its own is answered
 * with a router neighbour advertisement carrying NODE_MAC. DAD probes
 * (unspecified source) and other ND/MLD messages go to the node's stack.
 */
#ifndef CILIUM_TS_ICMP6_H
#define CILIUM_TS_ICMP6_H

#include "lib/ipv6.h"
#include "lib/config/endpoint.h"

#define ND_OPT_TARGET_LL_ADDR 2
#define NA_FLAGS_ROUTER_SOLICITED_OVERRIDE 0xe0

struct nd_advert {
	__u8 type;
	__u8 code;
	__u16 csum;
	__u8 flags;
	__u8 reserved[3];
	__u8 target[16];
	__u8 opt_type;
	__u8 opt_len;        /* units of 8 bytes */
	__u8 opt_mac[ETH_ALEN];
};

struct ipv6_pseudo_hdr {
	__u8 saddr[16];
	__u8 daddr[16];
	__u32 len;           /* network order */
	__u8 zero[3];
	__u8 nexthdr;
};

struct nd_reply {
	__u8 eth_dst[ETH_ALEN];
	__u8 eth_src[ETH_ALEN];
	__u16 eth_proto;
	struct ipv6hdr ip6;
	struct nd_advert na;
} __attribute__((packed));

static __always_inline __u16 csum_fold32(__u32 sum)
{
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	return (__u16)~sum;
}

static __noinline int handle_ipv6_ns(struct __sk_buff *ctx, const struct pktinfo *p)
{
	struct ipv6_pseudo_hdr ph = {};
	struct nd_reply r = {};
	struct nd_advert na = {};
	__u8 target[16];
	__s64 sum;
	const __u32 *src = (const __u32 *)p->tuple.saddr6;

	if (bpf_skb_load_bytes(ctx, p->l4_off + 8, target, sizeof(target)) < 0)
		return -DROP_INVALID;
	/* DAD (unspecified source) or the pod asking for itself: not ours */
	if ((src[0] | src[1] | src[2] | src[3]) == 0 || ipv6_addr_eq(target, LXC_IPV6))
		return TC_ACT_OK;
	/* multicast targets are invalid in NS */
	if (target[0] == 0xff)
		return -DROP_INVALID;

	na.type = ICMPV6_NEIGH_ADVERT;
	na.flags = NA_FLAGS_ROUTER_SOLICITED_OVERRIDE;
	__builtin_memcpy(na.target, target, 16);
	na.opt_type = ND_OPT_TARGET_LL_ADDR;
	na.opt_len = 1;
	mac_copy(na.opt_mac, NODE_MAC);

	__builtin_memcpy(ph.saddr, target, 16);
	__builtin_memcpy(ph.daddr, p->tuple.saddr6, 16);
	ph.len = bpf_htonl(sizeof(struct nd_advert));
	ph.nexthdr = CIL_IPPROTO_ICMPV6;
	sum = bpf_csum_diff(NULL, 0, (__be32 *)&ph, sizeof(ph), 0);
	if (sum < 0)
		return -DROP_CSUM_L4;
	sum = bpf_csum_diff(NULL, 0, (__be32 *)&na, sizeof(na), (__u32)sum);
	if (sum < 0)
		return -DROP_CSUM_L4;
	na.csum = csum_fold32((__u32)sum);
	__builtin_memcpy(&r.na, &na, sizeof(na));

	/* Ethernet: back to the pod's MAC, from the router MAC */
	if (bpf_skb_load_bytes(ctx, ETH_ALEN, r.eth_dst, ETH_ALEN) < 0)
		return -DROP_INVALID;
	mac_copy(r.eth_src, NODE_MAC);
	r.eth_proto = bpf_htons(ETH_P_IPV6);
	r.ip6.version = 6;
	r.ip6.payload_len = bpf_htons(sizeof(struct nd_advert));
	r.ip6.nexthdr = CIL_IPPROTO_ICMPV6;
	r.ip6.hop_limit = 255;
	__builtin_memcpy(&r.ip6.saddr, target, 16);
	__builtin_memcpy(&r.ip6.daddr, p->tuple.saddr6, 16);

	if (ctx->len != sizeof(r) && bpf_skb_change_tail(ctx, sizeof(r), 0) < 0)
		return -DROP_WRITE_ERROR;
	if (bpf_skb_store_bytes(ctx, 0, &r, sizeof(r), 0) < 0)
		return -DROP_WRITE_ERROR;
	return bpf_redirect(ctx->ifindex, 0);
}

#endif
