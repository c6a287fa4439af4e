/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Per-endpoint packet/byte counters: key (reason, dir, lxc_id) where reason 0
 * counts forwarded packets and any other value is the drop reason code.
 * Forwarded packets of endpoints below METRICS_FWD_ENDPOINTS, the per-packet case, are counted
 * in cilium_metrics_fwd, a per-CPU array indexed by (endpoint, direction): the JIT inlines its
 * lookup into a few instructions where the hash costs a key hash and a bucket walk per packet.
 * The agent reads both as one list (src/datapath/maps/metrics.ts).
 */
#ifndef CILIUM_TS_METRICS_H
#define CILIUM_TS_METRICS_H

#include "lib/common.h"
#include "lib/config/sizes.h"

/* (reason, dir, endpoint) -> packets/bytes, per CPU. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__type(key, struct metrics_key);
	__type(value, struct metrics_value);
	__uint(max_entries, METRICS_MAP_SIZE);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} cilium_metrics SEC(".maps");

/* endpoint * 2 + (dir == METRIC_EGRESS) -> forwarded packets/bytes, per CPU. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__type(key, __u32);
	__type(value, struct metrics_value);
	__uint(max_entries, METRICS_FWD_MAP_SIZE);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} cilium_metrics_fwd SEC(".maps");

#define METRICS_FWD_ENDPOINTS (METRICS_FWD_MAP_SIZE / 2)

static __always_inline void update_metrics(__u16 ep_id, __u32 bytes, __u8 dir, __u8 reason)
{
	struct metrics_key key = {
		.reason = reason,
		.dir = dir,
		.lxc_id = ep_id,
	};
	struct metrics_value *val;

	if (reason == 0 && ep_id < METRICS_FWD_ENDPOINTS) {
		__u32 idx = (__u32)ep_id * 2 + (dir == METRIC_EGRESS);

		val = bpf_map_lookup_elem(&cilium_metrics_fwd, &idx);
		if (val) {
			/* per-CPU value: no other writer, plain adds are enough */
			val->packets += 1;
			val->bytes += bytes;
		}
		return;
	}
	val = bpf_map_lookup_elem(&cilium_metrics, &key);
	if (val) {
		val->packets += 1;
		val->bytes += bytes;
	} else {
		struct metrics_value init = { .packets = 1, .bytes = bytes };

		/* another CPU may have created the key meanwhile: then add to ours */
		if (bpf_map_update_elem(&cilium_metrics, &key, &init, BPF_NOEXIST) < 0) {
			val = bpf_map_lookup_elem(&cilium_metrics, &key);
			if (val) {
				val->packets += 1;
				val->bytes += bytes;
			}
		}
	}
}

#endif
