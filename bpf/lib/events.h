/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Events to user space through the cilium_events ring buffer.
 *
 * Every record is exactly sizeof(struct trace_notify | drop_notify |
 * policy_verdict_notify); the first byte (hdr.type) says which.
 * `data[EVENT_CAPTURE_LEN]` holds the first hdr.len_cap bytes of the packet
 * (starting at the Ethernet header); the rest of data[] is zero. trace_notify
 * carries the service translation after data[]. hdr.len_orig
 * is the packet's full length. Records that cannot be reserved (ring full) are
 * counted in cilium_events_lost[0] (per CPU).
 *
 * The including object defines EVENT_SOURCE_FILE first: its DROP_FILE_* (lib/defs.h), reported
 * in drop_notify.file.
 */
#ifndef CILIUM_TS_EVENTS_H
#define CILIUM_TS_EVENTS_H

#include "lib/common.h"
#include "lib/config/node.h"
#include "lib/config/sizes.h"

#ifndef EVENT_SOURCE_FILE
#error "define EVENT_SOURCE_FILE (a DROP_FILE_* of lib/defs.h) before including lib/events.h"
#endif

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

static __always_inline void events_lost_inc(void)
{
	__u32 zero = 0;
	__u64 *cnt = bpf_map_lookup_elem(&cilium_events_lost, &zero);

	if (cnt)
		*cnt += 1;
}

static __always_inline void event_fill_hdr(struct __sk_buff *ctx, struct event_hdr *hdr,
					   __u8 type, __u8 subtype, __u16 source, __u8 *data)
{
	__u32 cap = ctx->len;

	if (cap > EVENT_CAPTURE_LEN)
		cap = EVENT_CAPTURE_LEN;

	hdr->type = type;
	hdr->subtype = subtype;
	hdr->source = source;
	hdr->hash = bpf_get_hash_recalc(ctx);
	hdr->len_orig = ctx->len;
	hdr->version = CILIUM_TS_EVENT_VERSION;

	__builtin_memset(data, 0, EVENT_CAPTURE_LEN);
	if (cap > 0 && bpf_skb_load_bytes(ctx, 0, data, cap) == 0)
		hdr->len_cap = cap;
	else
		hdr->len_cap = 0;
}

/*
 * The emitters are global (non-static) BPF functions: the verifier checks each once on its own
 * instead of again at every call site, which keeps per-endpoint program loads fast. A global
 * function takes at most five arguments and only scalars, the context or pointers to plain
 * structs, hence the argument structs; the inline wrappers below keep call sites readable.
 */
/* A service translation as a trace event reports it (trace_notify.rev_nat_index, orig_*). */
struct trace_xlate {
	__u32 orig_ip[4];  /* IPv4 in the first word */
	__be16 orig_port;
	__be16 rev_nat_index;
};

struct trace_args {
	__u32 src_label;
	__u32 dst_label;
	__u32 ifindex;
	__u16 dst_id;
	__u16 source;
	__u8 obs_point;
	__u8 reason;
	__u8 ipv6;
	__u8 pad;
	struct trace_xlate xlate; /* zero: not translated */
};

struct drop_args {
	__u32 src_label;
	__u32 dst_label;
	__u32 ifindex;
	__s32 ext_error;
	__u16 source;
	__u16 dst_id;
	__u8 reason;
	__u8 ipv6;
	__be16 rev_nat_index;
};

struct verdict_args {
	__u32 remote_label;
	__s32 verdict;
	__u32 rule_cookie;
	__u16 ep_id;
	__u16 dport_be;
	__u8 proto;
	__u8 dir;
	__u8 ipv6;
	__u8 match_type;
	__u8 audited;
	__u8 pad[3];
};

/* A forwarded packet, observed by endpoint `source` (hdr.source). obs_point: TRACE_TO_* /
 * TRACE_FROM_*; reason: TRACE_REASON_*. */
__noinline int emit_trace_notify(struct __sk_buff *ctx, const struct trace_args *a)
{
	struct trace_notify *e;

	if (!a)
		return 0;
	e = bpf_ringbuf_reserve(&cilium_events, sizeof(*e), 0);
	if (!e) {
		events_lost_inc();
		return 0;
	}
	event_fill_hdr(ctx, &e->hdr, CILIUM_NOTIFY_TRACE, a->obs_point, a->source, e->data);
	e->src_label = a->src_label;
	e->dst_label = a->dst_label;
	e->dst_id = a->dst_id;
	e->reason = a->reason;
	e->ipv6 = a->ipv6;
	e->ifindex = a->ifindex;
	e->ktime_ns = bpf_ktime_get_ns();
	e->rev_nat_index = a->xlate.rev_nat_index;
	e->orig_port = a->xlate.orig_port;
	e->pad = 0;
	__builtin_memcpy(e->orig_ip6, a->xlate.orig_ip, 16);
	bpf_ringbuf_submit(e, 0);
	return 0;
}

static __always_inline void send_trace_notify(struct __sk_buff *ctx, __u16 source, __u8 obs_point,
					      __u32 src_label, __u32 dst_label, __u16 dst_id,
					      __u8 reason, __u8 ipv6, __u32 ifindex)
{
	struct trace_args a = {
		.src_label = src_label,
		.dst_label = dst_label,
		.ifindex = ifindex,
		.dst_id = dst_id,
		.source = source,
		.obs_point = obs_point,
		.reason = reason,
		.ipv6 = ipv6,
	};

	emit_trace_notify(ctx, &a);
}

/* send_trace_notify for a packet a service translation rewrote (`x`: what it was). */
static __always_inline void send_trace_xlate(struct __sk_buff *ctx, __u16 source, __u8 obs_point,
					     __u32 src_label, __u32 dst_label, __u16 dst_id,
					     __u8 reason, __u8 ipv6, __u32 ifindex,
					     const struct trace_xlate *x)
{
	struct trace_args a = {
		.src_label = src_label,
		.dst_label = dst_label,
		.ifindex = ifindex,
		.dst_id = dst_id,
		.source = source,
		.obs_point = obs_point,
		.reason = reason,
		.ipv6 = ipv6,
		.xlate = *x,
	};

	emit_trace_notify(ctx, &a);
}

/* A dropped packet; reason is the positive DROP_* code, source the endpoint
 * whose decision dropped it; rev_nat_index the service of a service drop (else 0). */
__noinline int emit_drop_notify(struct __sk_buff *ctx, const struct drop_args *a)
{
	struct drop_notify *e;

	if (!a)
		return 0;
	e = bpf_ringbuf_reserve(&cilium_events, sizeof(*e), 0);
	if (!e) {
		events_lost_inc();
		return 0;
	}
	event_fill_hdr(ctx, &e->hdr, CILIUM_NOTIFY_DROP, a->reason, a->source, e->data);
	e->src_label = a->src_label;
	e->dst_label = a->dst_label;
	e->dst_id = a->dst_id;
	e->file = EVENT_SOURCE_FILE;
	e->ipv6 = a->ipv6;
	e->ifindex = a->ifindex;
	e->ktime_ns = bpf_ktime_get_ns();
	e->ext_error = a->ext_error;
	e->rev_nat_index = a->rev_nat_index;
	e->pad = 0;
	bpf_ringbuf_submit(e, 0);
	return 0;
}

static __always_inline void send_drop_notify(struct __sk_buff *ctx, __u16 source, __u8 reason,
					     __u32 src_label, __u32 dst_label, __u16 dst_id,
					     __u8 ipv6, __u32 ifindex, __s32 ext_error,
					     __be16 rev_nat_index)
{
	struct drop_args a = {
		.src_label = src_label,
		.dst_label = dst_label,
		.ifindex = ifindex,
		.ext_error = ext_error,
		.source = source,
		.dst_id = dst_id,
		.reason = reason,
		.ipv6 = ipv6,
		.rev_nat_index = rev_nat_index,
	};

	emit_drop_notify(ctx, &a);
}

/* One policy decision of endpoint ep_id (hdr.source) on a new connection. dir: METRIC_INGRESS / METRIC_EGRESS
 * (also in hdr.subtype); verdict 0 allowed, else -DROP_POLICY / -DROP_POLICY_DENY
 * (audit mode reports the would-be drop with audited=1). */
__noinline int emit_policy_verdict(struct __sk_buff *ctx, const struct verdict_args *a)
{
	struct policy_verdict_notify *e;

	if (!a)
		return 0;
	e = bpf_ringbuf_reserve(&cilium_events, sizeof(*e), 0);
	if (!e) {
		events_lost_inc();
		return 0;
	}
	event_fill_hdr(ctx, &e->hdr, CILIUM_NOTIFY_POLICY_VERDICT, a->dir, a->ep_id, e->data);
	e->remote_label = a->remote_label;
	e->verdict = a->verdict;
	e->dst_port = bpf_ntohs(a->dport_be);
	e->proto = a->proto;
	e->dir = a->dir;
	e->ipv6 = a->ipv6;
	e->match_type = a->match_type;
	e->audited = a->audited;
	e->pad = 0;
	e->rule_cookie = a->rule_cookie;
	e->ktime_ns = bpf_ktime_get_ns();
	bpf_ringbuf_submit(e, 0);
	return 0;
}

static __always_inline void send_policy_verdict(struct __sk_buff *ctx, __u16 ep_id,
						__u32 remote_label,
						__s32 verdict, __u16 dport_be, __u8 proto,
						__u8 dir, __u8 ipv6, __u8 match_type,
						__u8 audited, __u32 rule_cookie)
{
	struct verdict_args a = {
		.remote_label = remote_label,
		.verdict = verdict,
		.rule_cookie = rule_cookie,
		.ep_id = ep_id,
		.dport_be = dport_be,
		.proto = proto,
		.dir = dir,
		.ipv6 = ipv6,
		.match_type = match_type,
		.audited = audited,
	};

	emit_policy_verdict(ctx, &a);
}

/*
 * Monitor aggregation: should this forwarded packet produce a trace event?
 * state: CT_* of the packet; seen: TCP flags seen before in its direction, | CT_SEEN_ANY when a
 * packet went that way before (conntrack.h ct_seen_flags). Traced: new connections and related
 * ICMP errors, TCP packets with a SYN, FIN or RST not seen before in their direction, for
 * other protocols the first packet each way (a UDP answer, an ICMP echo reply), and the first
 * packet of a direction not reported for CT_REPORT_INTERVAL (CT_REPORT_DUE).
 */
static __always_inline int trace_wanted(int state, __u8 nexthdr, __u8 tcp_flags, __u8 seen)
{
	const __u8 interesting = 0x07; /* FIN | SYN | RST */

	if (MONITOR_AGGREGATION == 0)
		return 1;
	if (state == TRACE_REASON_POLICY || state == TRACE_REASON_CT_RELATED)
		return 1;
	if (seen & CT_REPORT_DUE)
		return 1;
	if (nexthdr == 6)
		return (tcp_flags & interesting & ~seen) != 0;
	return !(seen & CT_SEEN_ANY);
}

#endif
