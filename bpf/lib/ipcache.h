/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Resolving addresses to security identities and local endpoints.
 *
 * ipcache_key.prefixlen counts the bits after the prefixlen field:
 * cluster_id(16) + pad1(8) + family(8) = 32, plus the address prefix length;
 * a /24 IPv4 prefix is prefixlen 56, a host /32 is 64, an IPv6 /128 is 160.
 * Lookups use cluster_id 0.
 */
#ifndef CILIUM_TS_IPCACHE_H
#define CILIUM_TS_IPCACHE_H

#include "lib/maps.h"

#define IPCACHE_PREFIX_HDR_BITS 32

static __always_inline struct ipcache_value *ipcache_lookup4(__u32 addr)
{
	struct ipcache_key key = {
		.prefixlen = IPCACHE_PREFIX_HDR_BITS + 32,
		.family = ENDPOINT_KEY_IPV4,
		.ip4 = addr,
	};

	return bpf_map_lookup_elem(&cilium_ipcache, &key);
}

static __always_inline struct ipcache_value *ipcache_lookup6(const __u8 *addr)
{
	struct ipcache_key key = {
		.prefixlen = IPCACHE_PREFIX_HDR_BITS + 128,
		.family = ENDPOINT_KEY_IPV6,
	};

	__builtin_memcpy(key.ip6, addr, 16);
	return bpf_map_lookup_elem(&cilium_ipcache, &key);
}

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

/* Identity of a remote address: the local endpoint's if it is one, else the
 * longest ipcache prefix's, else ID_WORLD. */
static __always_inline __u32 resolve_identity(__u8 ipv6, const __u8 *addr,
					      const struct endpoint_info *ep)
{
	struct ipcache_value *v;

	if (ep)
		return ep->sec_identity;
	if (ipv6)
		v = ipcache_lookup6(addr);
	else
		v = ipcache_lookup4(*(const __u32 *)addr);
	if (v && v->sec_identity)
		return v->sec_identity;
	return ID_WORLD;
}

#endif
