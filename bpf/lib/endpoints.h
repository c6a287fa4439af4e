/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Local endpoints (cilium_lxc): is this address a pod of this node, and how to deliver to it.
 * The node's own addresses are in it too, with ENDPOINT_F_HOST (its stack delivers to them).
 */
#ifndef CILIUM_TS_ENDPOINTS_H
#define CILIUM_TS_ENDPOINTS_H

#include "lib/common.h"
#include "lib/config/sizes.h"

/* local endpoint address -> delivery info (host endpoint: ENDPOINT_F_HOST). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, struct endpoint_key);
	__type(value, struct endpoint_info);
	__uint(max_entries, ENDPOINTS_MAP_SIZE);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} cilium_lxc SEC(".maps");

static __always_inline struct endpoint_info *lookup_endpoint4(__u32 addr)
{
	struct endpoint_key key = { .ip4 = addr, .family = ENDPOINT_KEY_IPV4 };

	return bpf_map_lookup_elem(&cilium_lxc, &key);
}

static __always_inline struct endpoint_info *lookup_endpoint6(const __u8 *addr)
{
	struct endpoint_key key = { .family = ENDPOINT_KEY_IPV6 };

	__builtin_memcpy(key.ip6, addr, 16);
	return bpf_map_lookup_elem(&cilium_lxc, &key);
}

/* addr: the ct_key address union (ip4 in the first 4 bytes for IPv4). */
static __always_inline struct endpoint_info *lookup_endpoint(__u8 ipv6, const __u8 *addr)
{
	if (ipv6)
		return lookup_endpoint6(addr);
	return lookup_endpoint4(*(const __u32 *)addr);
}

#endif
