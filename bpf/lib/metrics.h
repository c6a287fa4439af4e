/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Per-endpoint packet/byte counters: key (reason, dir, lxc_id) where reason 0
 * counts forwarded packets and any other value is the drop reason code.
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

static __always_inline void update_metrics(__u16 ep_id, __u32 bytes, __u8 dir, __u8 reason)
{
	struct metrics_key key = {
		.reason = reason,
		.dir = dir,
		.lxc_id = ep_id,
	};
	struct metrics_value *val;

	val = bpf_map_lookup_elem(&cilium_metrics, &key);
	if (val) {
		/* per-CPU value: no other writer, plain adds are enough */
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
