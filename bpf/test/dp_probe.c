/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A second datapath-shaped object for the multi-object tests (datapath objects tests, unit and privileged): it
 * includes only the features it uses (node config, metrics, events), so it shares cilium_metrics,
 * cilium_events and cilium_events_lost with bpf_lxc.o, and declares a pinned map bpf_lxc.o does
 * not have. Counts every packet on the device it is attached to and passes it on.
 */
#define EVENT_SOURCE_FILE 0 /* never drops */

#include "lib/common.h"
#include "lib/config/node.h"
#include "lib/metrics.h"
#include "lib/events.h"

/* Per-load constant: the ID its metrics and events carry. */
volatile const __u16 PROBE_ID;

/* key 0 -> packets seen by every probe of the node. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, __u64);
	__uint(max_entries, 1);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} cilium_probe_packets SEC(".maps");

char _license[] SEC("license") = "Dual BSD/GPL";

SEC("tc")
int cil_probe(struct __sk_buff *ctx)
{
	__u32 zero = 0;
	__u64 *n = bpf_map_lookup_elem(&cilium_probe_packets, &zero);

	if (n)
		__sync_fetch_and_add(n, 1);
	update_metrics(PROBE_ID, ctx->len, METRIC_INGRESS, 0);
	if (MONITOR_AGGREGATION == 0)
		send_trace_notify(ctx, PROBE_ID, TRACE_FROM_NETWORK, 0, 0, 0, TRACE_REASON_POLICY, 0,
				  ctx->ifindex);
	return TC_ACT_OK;
}
