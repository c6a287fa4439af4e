/* SPDX-License-Identifier: Apache-2.0 */
/* Ethernet header helpers. */
#ifndef CILIUM_TS_ETH_H
#define CILIUM_TS_ETH_H

#include "lib/common.h"

struct eth_addrs {
	__u8 dst[ETH_ALEN];
	__u8 src[ETH_ALEN];
};

/* Rewrite destination and source MAC (12 bytes at offset 0). */
static __always_inline int eth_rewrite_macs(struct __sk_buff *ctx, const __u8 *dst, const __u8 *src)
{
	struct eth_addrs a;

	__builtin_memcpy(a.dst, dst, ETH_ALEN);
	__builtin_memcpy(a.src, src, ETH_ALEN);
	if (bpf_skb_store_bytes(ctx, 0, &a, sizeof(a), 0) < 0)
		return -DROP_WRITE_ERROR;
	return 0;
}

#endif
