/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The parsed view of one packet shared by the IPv4 and IPv6 paths: the wire
 * tuple in conntrack-key form (IPv4 addresses in the first 4 bytes of the
 * address unions, rest zero) plus what policy and tracing need.
 */
#ifndef CILIUM_TS_PKT_H
#define CILIUM_TS_PKT_H

#include "lib/common.h"

/* pktinfo.kind */
#define PKT_TRACKED 0     /* TCP/UDP/SCTP/ICMP echo/other L4: has a CT tuple */
#define PKT_ICMP_ERROR 1  /* ICMP error; `inner` is the embedded packet's tuple */
#define PKT_ICMP_OTHER 2  /* other ICMP messages: policy only, no CT entry */

struct pktinfo {
	struct ct_key tuple;   /* wire tuple; flags unused */
	struct ct_key inner;   /* PKT_ICMP_ERROR only */
	__u32 l4_off;
	__u16 policy_dport;    /* network order: L4 dport, or ICMP type (see lib/policy.h) */
	__u8 ipv6;
	__u8 kind;             /* PKT_* */
	__u8 tcp_flags;
	__u8 icmp_type;
	__u8 pad[2];
};

struct l4_ports {
	__u16 sport;
	__u16 dport;
};

/* Ports of TCP/UDP/SCTP (first 4 bytes of the header); TCP flags too when
 * tcp_flags is not NULL. Other protocols: ports 0. */
static __always_inline int parse_ports(struct __sk_buff *ctx, __u32 off, __u8 proto,
				       __u16 *sport, __u16 *dport, __u8 *tcp_flags)
{
	struct l4_ports ports;

	if (proto == CIL_IPPROTO_TCP && tcp_flags) {
		__u8 hdr[14];

		if (bpf_skb_load_bytes(ctx, off, hdr, sizeof(hdr)) < 0)
			return -DROP_CT_INVALID_HDR;
		__builtin_memcpy(&ports, hdr, sizeof(ports));
		*tcp_flags = hdr[13];
	} else if (proto == CIL_IPPROTO_TCP || proto == CIL_IPPROTO_UDP ||
		   proto == CIL_IPPROTO_SCTP) {
		/* ICMP errors quote only 8 bytes of L4: read just the ports */
		if (bpf_skb_load_bytes(ctx, off, &ports, sizeof(ports)) < 0)
			return -DROP_CT_INVALID_HDR;
	} else {
		ports.sport = 0;
		ports.dport = 0;
	}
	*sport = ports.sport;
	*dport = ports.dport;
	return 0;
}

/* ICMP / ICMPv6 echo: request -> sport = id, reply -> dport = id (lib/conntrack.h). */
struct icmp_echo_hdr {
	__u8 type;
	__u8 code;
	__u16 csum;
	__u16 id;
	__u16 seq;
};

#endif
