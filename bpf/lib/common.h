/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Basics every datapath program needs: vmlinux types, libbpf helpers, and the
 * uapi macros that vmlinux.h (types only) does not carry.
 */
#ifndef CILIUM_TS_COMMON_H
#define CILIUM_TS_COMMON_H

#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "lib/defs.h"

#ifndef __always_inline
#define __always_inline inline __attribute__((always_inline))
#endif

#define likely(x) __builtin_expect(!!(x), 1)
#define unlikely(x) __builtin_expect(!!(x), 0)

/* tc verdicts (uapi/linux/pkt_cls.h) */
#define TC_ACT_UNSPEC (-1)
#define TC_ACT_OK 0
#define TC_ACT_SHOT 2
#define TC_ACT_REDIRECT 7

/* ethertypes (uapi/linux/if_ether.h) */
#define ETH_ALEN 6
#define ETH_HLEN 14
#define ETH_P_IP 0x0800
#define ETH_P_ARP 0x0806
#define ETH_P_IPV6 0x86DD

/* IP protocol numbers (vmlinux.h has IPPROTO_* as enum values for v4, but not
 * the IPv6 extension headers: define what we use, guarded). */
#define CIL_IPPROTO_HOPOPTS 0
#define CIL_IPPROTO_ICMP 1
#define CIL_IPPROTO_TCP 6
#define CIL_IPPROTO_UDP 17
#define CIL_IPPROTO_ROUTING 43
#define CIL_IPPROTO_FRAGMENT 44
#define CIL_IPPROTO_ICMPV6 58
#define CIL_IPPROTO_NONE 59
#define CIL_IPPROTO_DSTOPTS 60
#define CIL_IPPROTO_SCTP 132

/* TCP flag bits as in the 14th byte of the TCP header */
#define TCP_FLAG_FIN 0x01
#define TCP_FLAG_SYN 0x02
#define TCP_FLAG_RST 0x04
#define TCP_FLAG_PSH 0x08
#define TCP_FLAG_ACK 0x10

/* metrics / event direction codes */
#define METRIC_INGRESS 1
#define METRIC_EGRESS 2

#define NSEC_PER_SEC 1000000000ULL

/* Datapath functions return >= 0 (a tc verdict) or -DROP_* (a drop reason). */
#define IS_ERR(x) ((x) < 0)

/* Make sure [data + off, data + off + len) is readable with direct packet access;
 * pulls non-linear data in when needed. Returns 0 or -1. */
static __always_inline int ctx_ensure(struct __sk_buff *ctx, __u32 len)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;

	if (data + len <= data_end)
		return 0;
	if (len > ctx->len)
		return -1;
	if (bpf_skb_pull_data(ctx, len) < 0)
		return -1;
	data = (void *)(long)ctx->data;
	data_end = (void *)(long)ctx->data_end;
	return data + len <= data_end ? 0 : -1;
}

static __always_inline int ipv6_addr_eq(const __u8 *a, const volatile __u8 *b)
{
	const __u32 *x = (const __u32 *)a;
	const volatile __u32 *y = (const volatile __u32 *)b;

	return x[0] == y[0] && x[1] == y[1] && x[2] == y[2] && x[3] == y[3];
}

static __always_inline void ipv6_addr_copy(__u8 *dst, const volatile __u8 *src)
{
	__u32 *d = (__u32 *)dst;
	const volatile __u32 *s = (const volatile __u32 *)src;

	d[0] = s[0];
	d[1] = s[1];
	d[2] = s[2];
	d[3] = s[3];
}

/* Copy a MAC out of a `volatile const` config array. Every read must stay
 * volatile: a plain memcpy lets clang fold the ELF's zero initializer. */
static __always_inline void mac_copy(__u8 *dst, const volatile __u8 *src)
{
#pragma unroll
	for (int i = 0; i < ETH_ALEN; i++)
		dst[i] = src[i];
}

#endif
