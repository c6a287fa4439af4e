/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The ipcache (cilium_ipcache): what the node knows about a remote address, by longest prefix:
 * its security identity, the node hosting it (tunnel endpoint) and flags, as one
 * struct remote_endpoint_info (lib/defs.h).
 *
 * ipcache_key.prefixlen counts the bits after the prefixlen field:
 * cluster_id(16) + pad1(8) + family(8) = 32, plus the address prefix length;
 * a /24 IPv4 prefix is prefixlen 56, a host /32 is 64, an IPv6 /128 is 160.
 * Lookups use cluster_id 0.
 */
#ifndef CILIUM_TS_IPCACHE_H
#define CILIUM_TS_IPCACHE_H

#include "lib/common.h"
#include "lib/config/sizes.h"

/* prefix -> remote endpoint info; see struct ipcache_key for the prefixlen rule. */
struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__type(key, struct ipcache_key);
	__type(value, struct remote_endpoint_info);
	__uint(max_entries, IPCACHE_MAP_SIZE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} cilium_ipcache SEC(".maps");

static __always_inline const struct remote_endpoint_info *lookup_ip4_remote_endpoint(__u32 addr)
{
	struct ipcache_key key = {
		.prefixlen = IPCACHE_PREFIX_HDR_BITS + 32,
		.family = ENDPOINT_KEY_IPV4,
		.ip4 = addr,
	};

	return bpf_map_lookup_elem(&cilium_ipcache, &key);
}

static __always_inline const struct remote_endpoint_info *lookup_ip6_remote_endpoint(const __u8 *addr)
{
	struct ipcache_key key = {
		.prefixlen = IPCACHE_PREFIX_HDR_BITS + 128,
		.family = ENDPOINT_KEY_IPV6,
	};

	__builtin_memcpy(key.ip6, addr, 16);
	return bpf_map_lookup_elem(&cilium_ipcache, &key);
}

/* The longest ipcache prefix holding `addr` (the ct_key address union: ip4 in the first
 * 4 bytes for IPv4), or NULL when no prefix does. */
static __always_inline const struct remote_endpoint_info *lookup_remote_endpoint(__u8 ipv6,
										    const __u8 *addr)
{
	if (ipv6)
		return lookup_ip6_remote_endpoint(addr);
	return lookup_ip4_remote_endpoint(*(const __u32 *)addr);
}

/* Identity of a looked-up remote address: nothing known (or identity 0) is the world. */
static __always_inline __u32 remote_identity(const struct remote_endpoint_info *info)
{
	if (info && info->sec_identity)
		return info->sec_identity;
	return ID_WORLD;
}

#endif
