// SPDX-License-Identifier: GPL-2.0
/* One map of each kind the library supports, plus programs for other hooks (ELF/BTF tests). */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

struct lpm_v4_key {
	__u32 prefixlen;
	__u32 addr;
};

struct inner_map {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, __u64);
	__uint(max_entries, 4);
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__type(key, __u64);
	__type(value, __u32);
	__uint(max_entries, 128);
} lru SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__type(key, __u32);
	__type(value, __u64);
	__uint(max_entries, 64);
} percpu_hash SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, __u32);
	__uint(max_entries, 16);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} pinned_array SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__type(key, struct lpm_v4_key);
	__type(value, __u32);
	__uint(max_entries, 256);
	__uint(map_flags, BPF_F_NO_PREALLOC);
} lpm SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(key_size, sizeof(__u32));
	__uint(max_entries, 8);
} jump_table SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH_OF_MAPS);
	__type(key, __u32);
	__uint(max_entries, 8);
	__array(values, struct inner_map);
} outer SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 4096 * 4);
} small_ring SEC(".maps");

volatile const __u32 magic = 0;

SEC("tc")
int tail_target(struct __sk_buff *skb)
{
	return 42 + magic;
}

/* Looks up the LPM trie with the packet mark as an address and tail-calls slot 0 when it matches. */
SEC("tc")
int lpm_then_tail(struct __sk_buff *skb)
{
	struct lpm_v4_key k = { .prefixlen = 32, .addr = skb->mark };
	__u32 *v = bpf_map_lookup_elem(&lpm, &k);
	__u32 idx = 0;
	__u32 *inner;

	inner = bpf_map_lookup_elem(&outer, &idx);
	if (inner) {
		__u64 *slot = bpf_map_lookup_elem(inner, &idx);
		if (slot)
			return (int)*slot;
	}
	if (v)
		bpf_tail_call(skb, &jump_table, 0);
	return 1;
}

SEC("xdp")
int xdp_pass(struct xdp_md *ctx)
{
	return XDP_PASS;
}

SEC("cgroup/connect4")
int connect4_allow(struct bpf_sock_addr *ctx)
{
	__u32 k = 0;
	__u32 *v = bpf_map_lookup_elem(&pinned_array, &k);
	if (v)
		__sync_fetch_and_add(v, 1);
	return 1;
}

char LICENSE[] SEC("license") = "GPL";
