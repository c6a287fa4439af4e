/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Maps of the per-endpoint datapath. Every map is node-wide (shared by all
 * endpoints' programs) and pinned by name, so the loader reuses the pinned
 * instance for each endpoint it loads and the agent can adopt them on restart.
 */
#ifndef CILIUM_TS_MAPS_H
#define CILIUM_TS_MAPS_H

#include "lib/common.h"
#include "lib/config.h"

/* prefix -> security identity; see struct ipcache_key for the prefixlen rule. */
struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__type(key, struct ipcache_key);
	__type(value, struct ipcache_value);
	__uint(max_entries, IPCACHE_MAP_SIZE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} cilium_ipcache SEC(".maps");

/* local endpoint address -> delivery info (host endpoint: ENDPOINT_F_HOST). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, struct endpoint_key);
	__type(value, struct endpoint_info);
	__uint(max_entries, ENDPOINTS_MAP_SIZE);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} cilium_lxc SEC(".maps");

/*
 * The inner map template: one LPM trie of policy entries per endpoint. Sizes,
 * not BTF types: clang emits only forward declarations for types behind a
 * nested map definition, which libbpf cannot size. The kernel checks an inner
 * map against this template by type, key/value size, flags and max_entries,
 * so every endpoint's trie must be LPM_TRIE, key 12 (struct policy_key),
 * value 8 (struct policy_entry), BPF_F_NO_PREALLOC, POLICY_MAP_SIZE entries.
 */
struct policy_inner_map {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(key_size, sizeof(struct policy_key));
	__uint(value_size, sizeof(struct policy_entry));
	__uint(max_entries, POLICY_MAP_SIZE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
};

/* endpoint ID -> that endpoint's policy trie. Absent = no policy enforced in
 * either direction (see lib/policy.h). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH_OF_MAPS);
	__type(key, __u32);
	__uint(max_entries, POLICY_MAPS_OUTER_SIZE);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
	__array(values, struct policy_inner_map);
} cilium_policy_maps SEC(".maps");

/* conntrack, one table per family, same key/value layout. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__type(key, struct ct_key);
	__type(value, struct ct_entry);
	__uint(max_entries, CT_MAP_SIZE_TCP);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} cilium_ct4_global SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__type(key, struct ct_key);
	__type(value, struct ct_entry);
	__uint(max_entries, CT_MAP_SIZE_TCP);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} cilium_ct6_global SEC(".maps");

/* (reason, dir, endpoint) -> packets/bytes, per CPU. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__type(key, struct metrics_key);
	__type(value, struct metrics_value);
	__uint(max_entries, METRICS_MAP_SIZE);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} cilium_metrics SEC(".maps");

/* trace / drop / policy-verdict events for the agent (Hubble, monitor). */
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, EVENTS_RINGBUF_SIZE);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} cilium_events SEC(".maps");

/* key 0 -> number of events that could not be reserved in cilium_events (per CPU). */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__type(key, __u32);
	__type(value, __u64);
	__uint(max_entries, 1);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} cilium_events_lost SEC(".maps");

#endif
