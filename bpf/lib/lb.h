/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Service load balancing: the LB maps (one set per family, pinned node-wide as upstream names them)
 * and the lookups every LB stage shares: service by frontend, backend slot, backend, session
 * affinity. Layouts and byte order are in lib/defs.h.
 *
 * A service is one master entry (backend_slot 0) per frontend address:port/protocol/scope plus one
 * entry per backend slot. The agent writes slots before raising the master's count and lowers the
 * count before deleting slots, so a reader that found the master finds every slot it may pick.
 */
#ifndef CILIUM_TS_LB_H
#define CILIUM_TS_LB_H

#include "lib/common.h"
#include "lib/config/sizes.h"

/* Maglev inner map: one entry, the whole lookup table of backend IDs. See config/sizes.h for M. */
struct lb_maglev_inner_map {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, sizeof(__u32) * LB_MAGLEV_LUT_SIZE);
	__uint(max_entries, 1);
};

/* One pinned LB map: `flags` is BPF_F_NO_PREALLOC for hash maps and tries (entries are allocated
 * as services come), 0 for LRU maps (the kernel preallocates those). */
#define LB_MAP_SIZED(name, map_type, key_type, value_type, flags, size)                            \
	struct {                                                                                   \
		__uint(type, map_type);                                                            \
		__type(key, key_type);                                                             \
		__type(value, value_type);                                                         \
		__uint(max_entries, size);                                                         \
		__uint(map_flags, flags);                                                          \
		__uint(pinning, LIBBPF_PIN_BY_NAME);                                               \
	} name SEC(".maps")
#define LB_MAP(name, map_type, key_type, value_type, flags)                                        \
	LB_MAP_SIZED(name, map_type, key_type, value_type, flags, LB_MAP_SIZE)

/* rev_nat_index (network order) -> that service's Maglev table */
#define LB_MAGLEV_MAP(name)                                                                        \
	struct {                                                                                   \
		__uint(type, BPF_MAP_TYPE_HASH_OF_MAPS);                                           \
		__type(key, __be16);                                                               \
		__uint(max_entries, LB_MAP_SIZE);                                                  \
		__uint(pinning, LIBBPF_PIN_BY_NAME);                                               \
		__array(values, struct lb_maglev_inner_map);                                       \
	} name SEC(".maps")

/* frontend (+ slot) -> master entry or backend slot */
LB_MAP_SIZED(cilium_lb4_services_v2, BPF_MAP_TYPE_HASH, struct lb4_key, struct lb_service, BPF_F_NO_PREALLOC,
	     LB_SERVICE_MAP_SIZE);
LB_MAP_SIZED(cilium_lb6_services_v2, BPF_MAP_TYPE_HASH, struct lb6_key, struct lb_service, BPF_F_NO_PREALLOC,
	     LB_SERVICE_MAP_SIZE);
/* backend ID -> backend */
LB_MAP_SIZED(cilium_lb4_backends_v3, BPF_MAP_TYPE_HASH, __u32, struct lb4_backend, BPF_F_NO_PREALLOC,
	     LB_BACKEND_MAP_SIZE);
LB_MAP_SIZED(cilium_lb6_backends_v3, BPF_MAP_TYPE_HASH, __u32, struct lb6_backend, BPF_F_NO_PREALLOC,
	     LB_BACKEND_MAP_SIZE);
/* rev_nat_index (network order) -> service address */
LB_MAP(cilium_lb4_reverse_nat, BPF_MAP_TYPE_HASH, __be16, struct lb4_reverse_nat, BPF_F_NO_PREALLOC);
LB_MAP(cilium_lb6_reverse_nat, BPF_MAP_TYPE_HASH, __be16, struct lb6_reverse_nat, BPF_F_NO_PREALLOC);
/* session affinity: client + service -> backend, last use */
LB_MAP(cilium_lb4_affinity, BPF_MAP_TYPE_LRU_HASH, struct lb4_affinity_key, struct lb_affinity_val, 0);
LB_MAP(cilium_lb6_affinity, BPF_MAP_TYPE_LRU_HASH, struct lb6_affinity_key, struct lb_affinity_val, 0);
/* (backend, service) pairs whose affinity entries may be used: active backends only; both families */
LB_MAP(cilium_lb_affinity_match, BPF_MAP_TYPE_HASH, struct lb_affinity_match, __u8, BPF_F_NO_PREALLOC);
/* service + client prefix allowed by loadBalancerSourceRanges */
LB_MAP(cilium_lb4_source_range, BPF_MAP_TYPE_LPM_TRIE, struct lb4_src_range_key, __u8, BPF_F_NO_PREALLOC);
LB_MAP(cilium_lb6_source_range, BPF_MAP_TYPE_LPM_TRIE, struct lb6_src_range_key, __u8, BPF_F_NO_PREALLOC);
LB_MAGLEV_MAP(cilium_lb4_maglev);
LB_MAGLEV_MAP(cilium_lb6_maglev);
/* socket-LB: (socket, backend) -> the service it stands for, reported back to the socket */
LB_MAP(cilium_lb4_reverse_sk, BPF_MAP_TYPE_LRU_HASH, struct lb4_reverse_sk_key, struct lb4_reverse_sk, 0);
LB_MAP(cilium_lb6_reverse_sk, BPF_MAP_TYPE_LRU_HASH, struct lb6_reverse_sk_key, struct lb6_reverse_sk, 0);

/* ---- lookups, for either family ---- */

/* An address of either family: IPv4 in the first 4 bytes. */
union lb_addr {
	__be32 ip4;
	__u8 ip6[16];
	__u32 w[4];
};

/* A service map key of either family, turned into lb4_key / lb6_key at each lookup. */
struct lb_lookup_key {
	union lb_addr addr;
	__be16 dport;
	__u16 slot;
	__u8 proto;
	__u8 scope;
	__u8 ipv6;
};

static __always_inline struct lb_service *lb_service_entry(const struct lb_lookup_key *k)
{
	if (k->ipv6) {
		struct lb6_key key = {
			.dport = k->dport,
			.backend_slot = k->slot,
			.proto = k->proto,
			.scope = k->scope,
		};

		__builtin_memcpy(key.address, k->addr.ip6, 16);
		return bpf_map_lookup_elem(&cilium_lb6_services_v2, &key);
	}
	struct lb4_key key = {
		.address = k->addr.ip4,
		.dport = k->dport,
		.backend_slot = k->slot,
		.proto = k->proto,
		.scope = k->scope,
	};

	return bpf_map_lookup_elem(&cilium_lb4_services_v2, &key);
}

/*
 * The master entry of a frontend. East-west clients (socket-LB) pass scope_switch 1 and get the INT
 * scope entry of a service with two scopes. `k` needs addr, dport, proto and ipv6; an exact protocol
 * that misses is retried as LB_PROTO_ANY. On return `k` names the entry found (slot 0).
 */
static __always_inline struct lb_service *lb_lookup_service(struct lb_lookup_key *k, int scope_switch)
{
	struct lb_service *svc;

	k->slot = 0;
	k->scope = LB_LOOKUP_SCOPE_EXT;
	svc = lb_service_entry(k);
	if (!svc && k->proto != LB_PROTO_ANY) {
		k->proto = LB_PROTO_ANY;
		svc = lb_service_entry(k);
	}
	if (svc && scope_switch && (svc->flags2 & SVC_FLAG2_TWO_SCOPES)) {
		k->scope = LB_LOOKUP_SCOPE_INT;
		svc = lb_service_entry(k);
	}
	return svc;
}

/* Backend ID in `slot` of the service `k` names (as lb_lookup_service left it); 0 when missing. */
static __always_inline __u32 lb_slot_backend(struct lb_lookup_key *k, __u16 slot)
{
	struct lb_service *s;

	k->slot = slot;
	s = lb_service_entry(k);
	k->slot = 0;
	return s ? s->backend_id : 0;
}

/* A backend's address and port (network order) and, when `state` is not NULL, its BE_STATE_*;
 * -1 when the ID is unknown. */
static __always_inline int lb_lookup_backend(__u8 ipv6, __u32 id, union lb_addr *addr, __be16 *port,
					     __u8 *state)
{
	if (ipv6) {
		struct lb6_backend *b = bpf_map_lookup_elem(&cilium_lb6_backends_v3, &id);

		if (!b)
			return -1;
		__builtin_memcpy(addr->ip6, b->address, 16);
		*port = b->port;
		if (state)
			*state = b->flags;
		return 0;
	}
	struct lb4_backend *b = bpf_map_lookup_elem(&cilium_lb4_backends_v3, &id);

	if (!b)
		return -1;
	addr->ip4 = b->address;
	*port = b->port;
	if (state)
		*state = b->flags;
	return 0;
}

static __always_inline __u32 lb_affinity_timeout(const struct lb_service *svc)
{
	return svc->affinity_timeout & LB_AFFINITY_TIMEOUT_MASK;
}

static __always_inline __u64 lb_now_sec(void)
{
	return bpf_ktime_get_ns() / NSEC_PER_SEC;
}

/* The affinity key of a network namespace (socket-LB's client) for a service. */
union lb_affinity_key {
	struct lb4_affinity_key k4;
	struct lb6_affinity_key k6;
};

static __always_inline void *lb_affinity_map(__u8 ipv6)
{
	return ipv6 ? (void *)&cilium_lb6_affinity : (void *)&cilium_lb4_affinity;
}

static __always_inline void lb_affinity_netns_key(union lb_affinity_key *key, __u8 ipv6, __u64 cookie,
						  __be16 rev_nat)
{
	__builtin_memset(key, 0, sizeof(*key));
	if (ipv6) {
		key->k6.netns_cookie = cookie;
		key->k6.rev_nat_id = rev_nat;
		key->k6.netns = 1;
	} else {
		key->k4.netns_cookie = cookie;
		key->k4.rev_nat_id = rev_nat;
		key->k4.netns = 1;
	}
}

/* The affinity key of a client address (per-packet load balancing's client) for a service. */
static __always_inline void lb_affinity_client_key(union lb_affinity_key *key, __u8 ipv6,
						   const union lb_addr *client, __be16 rev_nat)
{
	__builtin_memset(key, 0, sizeof(*key));
	if (ipv6) {
		__builtin_memcpy(key->k6.client_ip, client->ip6, 16);
		key->k6.rev_nat_id = rev_nat;
	} else {
		key->k4.client_ip = client->ip4;
		key->k4.rev_nat_id = rev_nat;
	}
}

/*
 * Session affinity: the backend the client's entry holds for the service when the entry has not
 * timed out (refreshed on use) and the pair is still in cilium_lb_affinity_match (an active backend
 * of the service); 0 otherwise. A stale entry is deleted.
 */
static __always_inline __u32 lb_affinity_backend(__u8 ipv6, const union lb_affinity_key *key,
						 __be16 rev_nat, __u32 timeout)
{
	struct lb_affinity_match match = { .rev_nat_id = rev_nat };
	struct lb_affinity_val *val;
	__u64 now = lb_now_sec();

	val = bpf_map_lookup_elem(lb_affinity_map(ipv6), key);
	if (!val)
		return 0;
	match.backend_id = val->backend_id;
	if (val->last_used + timeout <= now ||
	    !bpf_map_lookup_elem(&cilium_lb_affinity_match, &match)) {
		bpf_map_delete_elem(lb_affinity_map(ipv6), key);
		return 0;
	}
	val->last_used = now;
	return match.backend_id;
}

static __always_inline void lb_affinity_update(__u8 ipv6, const union lb_affinity_key *key,
					       __u32 backend_id)
{
	struct lb_affinity_val val = { .last_used = lb_now_sec(), .backend_id = backend_id };

	bpf_map_update_elem(lb_affinity_map(ipv6), key, &val, BPF_ANY);
}

static __always_inline void lb_affinity_delete(__u8 ipv6, const union lb_affinity_key *key)
{
	bpf_map_delete_elem(lb_affinity_map(ipv6), key);
}

#endif
