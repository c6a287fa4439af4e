/* SPDX-License-Identifier: Apache-2.0 */
/* IPv4 parsing into struct pktinfo, ICMPv4 classification, TTL handling. */
#ifndef CILIUM_TS_IPV4_H
#define CILIUM_TS_IPV4_H

#include "lib/pkt.h"

#define IP_MF 0x2000
#define IP_OFFSET 0x1fff

#define ICMP_ECHOREPLY 0
#define ICMP_DEST_UNREACH 3
#define ICMP_SOURCE_QUENCH 4
#define ICMP_REDIRECT 5
#define ICMP_ECHO 8
#define ICMP_TIME_EXCEEDED 11
#define ICMP_PARAMETERPROB 12

#define IPV4_TTL_OFF (ETH_HLEN + 8)
#define IPV4_CSUM_OFF (ETH_HLEN + 10)

static __always_inline int icmp4_is_error(__u8 type)
{
	return type == ICMP_DEST_UNREACH || type == ICMP_SOURCE_QUENCH ||
	       type == ICMP_REDIRECT || type == ICMP_TIME_EXCEEDED ||
	       type == ICMP_PARAMETERPROB;
}

/* Tuple of the IPv4 packet embedded in an ICMP error at `off`. */
static __always_inline int parse_icmp4_inner(struct __sk_buff *ctx, __u32 off, struct ct_key *inner)
{
	struct iphdr ip;
	__u32 l4;

	if (bpf_skb_load_bytes(ctx, off, &ip, sizeof(ip)) < 0 || ip.ihl < 5)
		return -1;
	l4 = off + ip.ihl * 4;
	inner->saddr4 = ip.saddr;
	inner->daddr4 = ip.daddr;
	inner->nexthdr = ip.protocol;
	if (ip.protocol == CIL_IPPROTO_ICMP) {
		struct icmp_echo_hdr e;

		if (bpf_skb_load_bytes(ctx, l4, &e, 6) < 0)
			return -1;
		if (e.type == ICMP_ECHO) {
			inner->sport = e.id;
			inner->dport = 0;
		} else if (e.type == ICMP_ECHOREPLY) {
			inner->sport = 0;
			inner->dport = e.id;
		} else {
			return -1;
		}
		return 0;
	}
	/* ICMP errors quote at least 8 bytes of L4: the ports are there */
	if (parse_ports(ctx, l4, ip.protocol, &inner->sport, &inner->dport, NULL) < 0)
		return -1;
	return 0;
}

static __always_inline int parse_icmp4(struct __sk_buff *ctx, struct pktinfo *p)
{
	struct icmp_echo_hdr e;

	if (bpf_skb_load_bytes(ctx, p->l4_off, &e, sizeof(e)) < 0)
		return -DROP_CT_INVALID_HDR;
	p->icmp_type = e.type;
	p->policy_dport = bpf_htons((__u16)e.type);
	if (e.type == ICMP_ECHO) {
		p->tuple.sport = e.id;
	} else if (e.type == ICMP_ECHOREPLY) {
		p->tuple.dport = e.id;
	} else if (icmp4_is_error(e.type) &&
		   parse_icmp4_inner(ctx, p->l4_off + 8, &p->inner) == 0) {
		p->kind = PKT_ICMP_ERROR;
	} else {
		p->kind = PKT_ICMP_OTHER;
	}
	return 0;
}

/*
 * Parse the IPv4 header at ETH_HLEN and its L4 header into *p (zeroed by the
 * caller). Non-first fragments carry no L4 header and are refused.
 */
static __noinline int parse_ipv4(struct __sk_buff *ctx, struct pktinfo *p)
{
	struct iphdr ip;

	if (bpf_skb_load_bytes(ctx, ETH_HLEN, &ip, sizeof(ip)) < 0)
		return -DROP_INVALID;
	if (ip.version != 4 || ip.ihl < 5)
		return -DROP_INVALID;
	if (bpf_ntohs(ip.frag_off) & IP_OFFSET)
		return -DROP_FRAG_NOSUPPORT;

	p->ipv6 = 0;
	p->l4_off = ETH_HLEN + ip.ihl * 4;
	p->tuple.saddr4 = ip.saddr;
	p->tuple.daddr4 = ip.daddr;
	p->tuple.nexthdr = ip.protocol;

	if (ip.protocol == CIL_IPPROTO_ICMP)
		return parse_icmp4(ctx, p);
	if (parse_ports(ctx, p->l4_off, ip.protocol, &p->tuple.sport, &p->tuple.dport,
			&p->tcp_flags) < 0)
		return -DROP_CT_INVALID_HDR;
	p->policy_dport = p->tuple.dport;
	return 0;
}

/* Routing step for a locally delivered packet: TTL - 1 with checksum fix. */
static __always_inline int ipv4_dec_ttl(struct __sk_buff *ctx)
{
	__u8 ttl_proto[2];
	__u16 old_word, new_word;

	if (bpf_skb_load_bytes(ctx, IPV4_TTL_OFF, ttl_proto, 2) < 0)
		return -DROP_INVALID;
	if (ttl_proto[0] <= 1)
		return -DROP_TTL_EXCEEDED;
	__builtin_memcpy(&old_word, ttl_proto, 2);
	ttl_proto[0]--;
	__builtin_memcpy(&new_word, ttl_proto, 2);
	if (bpf_l3_csum_replace(ctx, IPV4_CSUM_OFF, old_word, new_word, 2) < 0)
		return -DROP_CSUM_L3;
	if (bpf_skb_store_bytes(ctx, IPV4_TTL_OFF, ttl_proto, 1, 0) < 0)
		return -DROP_WRITE_ERROR;
	return 0;
}

#endif
