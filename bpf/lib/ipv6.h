/* SPDX-License-Identifier: Apache-2.0 */
/* IPv6 parsing into struct pktinfo (parallel to lib/ipv4.h), hop limit handling. */
#ifndef CILIUM_TS_IPV6_H
#define CILIUM_TS_IPV6_H

#include "lib/pkt.h"

#define ICMPV6_DEST_UNREACH 1
#define ICMPV6_PKT_TOOBIG 2
#define ICMPV6_TIME_EXCEED 3
#define ICMPV6_PARAMPROB 4
#define ICMPV6_ECHO_REQUEST 128
#define ICMPV6_ECHO_REPLY 129
#define ICMPV6_MLD_QUERY 130
#define ICMPV6_MLD_REPORT 131
#define ICMPV6_MLD_DONE 132
#define ICMPV6_ROUTER_SOLICIT 133
#define ICMPV6_NEIGH_SOLICIT 135
#define ICMPV6_NEIGH_ADVERT 136
#define ICMPV6_REDIRECT 137
#define ICMPV6_MLD2_REPORT 143

#define IPV6_HOPLIMIT_OFF (ETH_HLEN + 7)
#define IPV6_SADDR_OFF (ETH_HLEN + 8)
#define IPV6_MAX_EXT_HDRS 4
#define CIL_IPPROTO_AH 51

/* Neighbour discovery (133-137) and MLD (130-132, 143) message types. */
static __always_inline int icmp6_is_ndisc(__u8 type)
{
	return (type >= ICMPV6_MLD_QUERY && type <= ICMPV6_REDIRECT) ||
	       type == ICMPV6_MLD2_REPORT;
}

static __always_inline int icmp6_is_mld(__u8 type)
{
	return (type >= ICMPV6_MLD_QUERY && type <= ICMPV6_MLD_DONE) || type == ICMPV6_MLD2_REPORT;
}

/* fe80::/10 unicast, or a link-scope multicast group (ff02::/16: all-nodes, all-routers,
 * solicited-node ff02::1:ffXX:XXXX, MLDv2 routers). */
static __always_inline int ipv6_is_link_scope(const __u8 *a)
{
	return (a[0] == 0xfe && (a[1] & 0xc0) == 0x80) || (a[0] == 0xff && (a[1] & 0x0f) == 0x02);
}

/*
 * ND / MLD that cannot leave the link: a link-scope destination and the hop limit the protocol
 * requires (255 for neighbour discovery, RFC 4861 section 7.1.1; 1 for MLD, RFC 2710 / 3810).
 * Only these skip source validation and policy, as link-local control traffic between the pod
 * and the node; any other packet with an ND or MLD type is ordinary ICMPv6, policed like the rest.
 */
static __always_inline int icmp6_ndisc_on_link(struct __sk_buff *ctx, const struct pktinfo *p)
{
	__u8 hl;

	if (p->tuple.nexthdr != CIL_IPPROTO_ICMPV6 || !icmp6_is_ndisc(p->icmp_type))
		return 0;
	if (!ipv6_is_link_scope(p->tuple.daddr6))
		return 0;
	if (bpf_skb_load_bytes(ctx, IPV6_HOPLIMIT_OFF, &hl, 1) < 0)
		return 0;
	return hl == (icmp6_is_mld(p->icmp_type) ? 1 : 255);
}

static __always_inline int icmp6_is_error(__u8 type)
{
	return type >= ICMPV6_DEST_UNREACH && type <= ICMPV6_PARAMPROB;
}

/* Skip extension headers. In: *nexthdr after the fixed header, *off at its end.
 * Non-first fragments are refused. */
static __always_inline int ipv6_skip_exthdrs(struct __sk_buff *ctx, __u8 *nexthdr, __u32 *off)
{
	__u8 nh = *nexthdr;
	__u32 o = *off;

#pragma unroll
	for (int i = 0; i < IPV6_MAX_EXT_HDRS; i++) {
		__u8 hdr[4];

		if (nh != CIL_IPPROTO_HOPOPTS && nh != CIL_IPPROTO_ROUTING &&
		    nh != CIL_IPPROTO_DSTOPTS && nh != CIL_IPPROTO_FRAGMENT &&
		    nh != CIL_IPPROTO_AH)
			break;
		if (bpf_skb_load_bytes(ctx, o, hdr, sizeof(hdr)) < 0)
			return -DROP_INVALID_EXTHDR;
		if (nh == CIL_IPPROTO_FRAGMENT) {
			/* fragment offset: 13 high bits of bytes 2-3 */
			if (((hdr[2] << 8) | hdr[3]) & 0xfff8)
				return -DROP_FRAG_NOSUPPORT;
			o += 8;
		} else if (nh == CIL_IPPROTO_AH) {
			o += (hdr[1] + 2) * 4;
		} else {
			o += (hdr[1] + 1) * 8;
		}
		nh = hdr[0];
	}
	if (nh == CIL_IPPROTO_HOPOPTS || nh == CIL_IPPROTO_ROUTING || nh == CIL_IPPROTO_DSTOPTS ||
	    nh == CIL_IPPROTO_FRAGMENT || nh == CIL_IPPROTO_AH)
		return -DROP_INVALID_EXTHDR;
	*nexthdr = nh;
	*off = o;
	return 0;
}

/* Tuple of the IPv6 packet embedded in an ICMPv6 error at `off` (no ext headers). */
static __always_inline int parse_icmp6_inner(struct __sk_buff *ctx, __u32 off, struct ct_key *inner)
{
	struct ipv6hdr ip6;
	__u32 l4 = off + sizeof(ip6);

	if (bpf_skb_load_bytes(ctx, off, &ip6, sizeof(ip6)) < 0)
		return -1;
	__builtin_memcpy(inner->saddr6, &ip6.saddr, 16);
	__builtin_memcpy(inner->daddr6, &ip6.daddr, 16);
	inner->nexthdr = ip6.nexthdr;
	if (ip6.nexthdr == CIL_IPPROTO_ICMPV6) {
		struct icmp_echo_hdr e;

		if (bpf_skb_load_bytes(ctx, l4, &e, 6) < 0)
			return -1;
		if (e.type == ICMPV6_ECHO_REQUEST) {
			inner->sport = e.id;
			inner->dport = 0;
		} else if (e.type == ICMPV6_ECHO_REPLY) {
			inner->sport = 0;
			inner->dport = e.id;
		} else {
			return -1;
		}
		return 0;
	}
	if (parse_ports(ctx, l4, ip6.nexthdr, &inner->sport, &inner->dport, NULL) < 0)
		return -1;
	return 0;
}

static __always_inline int parse_icmp6(struct __sk_buff *ctx, struct pktinfo *p)
{
	struct icmp_echo_hdr e;

	if (bpf_skb_load_bytes(ctx, p->l4_off, &e, sizeof(e)) < 0)
		return -DROP_CT_INVALID_HDR;
	p->icmp_type = e.type;
	p->policy_dport = bpf_htons((__u16)e.type);
	if (e.type == ICMPV6_ECHO_REQUEST) {
		p->tuple.sport = e.id;
	} else if (e.type == ICMPV6_ECHO_REPLY) {
		p->tuple.dport = e.id;
	} else if (icmp6_is_error(e.type) &&
		   parse_icmp6_inner(ctx, p->l4_off + 8, &p->inner) == 0) {
		p->kind = PKT_ICMP_ERROR;
	} else {
		p->kind = PKT_ICMP_OTHER;
	}
	return 0;
}

/* Parse the IPv6 header at ETH_HLEN, its extension headers and L4 into *p. */
static __noinline int parse_ipv6(struct __sk_buff *ctx, struct pktinfo *p)
{
	struct ipv6hdr ip6;
	__u8 nexthdr;
	__u32 off = ETH_HLEN + sizeof(ip6);
	int ret;

	if (bpf_skb_load_bytes(ctx, ETH_HLEN, &ip6, sizeof(ip6)) < 0)
		return -DROP_INVALID;
	if (ip6.version != 6)
		return -DROP_INVALID;

	p->ipv6 = 1;
	__builtin_memcpy(p->tuple.saddr6, &ip6.saddr, 16);
	__builtin_memcpy(p->tuple.daddr6, &ip6.daddr, 16);
	nexthdr = ip6.nexthdr;
	ret = ipv6_skip_exthdrs(ctx, &nexthdr, &off);
	if (ret < 0)
		return ret;
	p->l4_off = off;
	p->tuple.nexthdr = nexthdr;

	if (nexthdr == CIL_IPPROTO_ICMPV6)
		return parse_icmp6(ctx, p);
	if (parse_ports(ctx, off, nexthdr, &p->tuple.sport, &p->tuple.dport, &p->tcp_flags) < 0)
		return -DROP_CT_INVALID_HDR;
	p->policy_dport = p->tuple.dport;
	return 0;
}

/* Routing step for a locally delivered packet: hop limit - 1 (no checksum in IPv6). */
static __always_inline int ipv6_dec_hoplimit(struct __sk_buff *ctx)
{
	__u8 hl;

	if (bpf_skb_load_bytes(ctx, IPV6_HOPLIMIT_OFF, &hl, 1) < 0)
		return -DROP_INVALID;
	if (hl <= 1)
		return -DROP_TTL_EXCEEDED;
	hl--;
	if (bpf_skb_store_bytes(ctx, IPV6_HOPLIMIT_OFF, &hl, 1, 0) < 0)
		return -DROP_WRITE_ERROR;
	return 0;
}

/* The Ethernet header and the IPv6 header up to its hop limit: what ipv6_l2_forward rewrites. */
struct eth_ip6_head {
	__u8 dst[ETH_ALEN];
	__u8 src[ETH_ALEN];
	__be16 proto;
	__u8 ip[8]; /* version .. hop limit (at 7) */
};

/* Routing step of a packet delivered straight to a local endpoint, in one write: MACs rewritten
 * (to `dst`, from `src`) and hop limit - 1 (IPv6 has no header checksum). */
static __always_inline int ipv6_l2_forward(struct __sk_buff *ctx, const __u8 *dst, const __u8 *src)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct eth_ip6_head h;

	if (data + sizeof(h) <= data_end)
		__builtin_memcpy(&h, data, sizeof(h));
	else if (bpf_skb_load_bytes(ctx, 0, &h, sizeof(h)) < 0)
		return -DROP_INVALID;
	if (h.ip[7] <= 1)
		return -DROP_TTL_EXCEEDED;
	h.ip[7]--;
	__builtin_memcpy(h.dst, dst, ETH_ALEN);
	__builtin_memcpy(h.src, src, ETH_ALEN);
	if (bpf_skb_store_bytes(ctx, 0, &h, sizeof(h), 0) < 0)
		return -DROP_WRITE_ERROR;
	return 0;
}

#endif
