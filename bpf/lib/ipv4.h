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
 * `p` for an IPv4 TCP / UDP header without options right after the Ethernet header, its L4
 * header's first 14 bytes readable at `l4` (the caller checked both against data_end).
 */
static __always_inline void pkt_tuple4_direct(struct pktinfo *p, const struct iphdr *ip, const __u8 *l4)
{
	p->ipv6 = 0;
	p->l4_off = ETH_HLEN + sizeof(struct iphdr);
	p->tuple.saddr4 = ip->saddr;
	p->tuple.daddr4 = ip->daddr;
	p->tuple.nexthdr = ip->protocol;
	p->tuple.sport = *(const __u16 *)l4;
	p->tuple.dport = *(const __u16 *)(l4 + 2);
	if (ip->protocol == CIL_IPPROTO_TCP)
		p->tcp_flags = l4[13];
	p->policy_dport = p->tuple.dport;
}

/*
 * parse_ipv4's common case read in place: an unfragmented TCP or UDP packet without IP options
 * whose headers are in the linear data. 0 when done, else nothing was written and the caller
 * reads the headers with bpf_skb_load_bytes (two helper calls and copies).
 */
static __always_inline int parse_ipv4_direct(struct __sk_buff *ctx, struct pktinfo *p)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct iphdr *ip = data + ETH_HLEN;
	__u8 *l4 = (__u8 *)(ip + 1);

	if (l4 + 14 > (__u8 *)data_end)
		return -1;
	if (*(__u8 *)ip != 0x45 || (ip->protocol != CIL_IPPROTO_TCP && ip->protocol != CIL_IPPROTO_UDP) ||
	    (bpf_ntohs(ip->frag_off) & IP_OFFSET))
		return -1;
	pkt_tuple4_direct(p, ip, l4);
	return 0;
}

/*
 * Parse the IPv4 header at ETH_HLEN and its L4 header into *p (zeroed by the
 * caller). Non-first fragments carry no L4 header and are refused.
 */
static __noinline int parse_ipv4(struct __sk_buff *ctx, struct pktinfo *p)
{
	struct iphdr ip;

	if (parse_ipv4_direct(ctx, p) == 0)
		return 0;

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

/* The Ethernet header and the IPv4 header up to its checksum: what ipv4_l2_forward rewrites. */
struct eth_ip4_head {
	__u8 dst[ETH_ALEN];
	__u8 src[ETH_ALEN];
	__be16 proto;
	__u8 ip[12]; /* version .. header checksum: TTL at 8, checksum at 10 */
};

/* RFC 1624 incremental update of a ones' complement checksum for one 16-bit word. Byte order
 * does not matter as long as all three are read the same way. */
static __always_inline __u16 csum_replace_word(__u16 check, __u16 old_word, __u16 new_word)
{
	__u32 sum = (__u16)~check + (__u16)~old_word + (__u32)new_word;

	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	return (__u16)~sum;
}

/*
 * Routing step of a packet delivered straight to a local endpoint, in one write: MACs rewritten
 * (to `dst`, from `src`), TTL - 1 with the header checksum adjusted. The headers are read in
 * place when linear (parse_ipv4 made sure for the common case).
 */
static __always_inline int ipv4_l2_forward(struct __sk_buff *ctx, const __u8 *dst, const __u8 *src)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct eth_ip4_head h;
	__u16 old_word, new_word, check;

	if (data + sizeof(h) <= data_end)
		__builtin_memcpy(&h, data, sizeof(h));
	else if (bpf_skb_load_bytes(ctx, 0, &h, sizeof(h)) < 0)
		return -DROP_INVALID;
	if (h.ip[8] <= 1)
		return -DROP_TTL_EXCEEDED;
	__builtin_memcpy(&old_word, &h.ip[8], 2);
	h.ip[8]--;
	__builtin_memcpy(&new_word, &h.ip[8], 2);
	__builtin_memcpy(&check, &h.ip[10], 2);
	check = csum_replace_word(check, old_word, new_word);
	__builtin_memcpy(&h.ip[10], &check, 2);
	__builtin_memcpy(h.dst, dst, ETH_ALEN);
	__builtin_memcpy(h.src, src, ETH_ALEN);
	if (bpf_skb_store_bytes(ctx, 0, &h, sizeof(h), 0) < 0)
		return -DROP_WRITE_ERROR;
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
