/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Connection tracking (cilium_ct4_global / cilium_ct6_global, LRU hash).
 *
 * Keys are stored in the ORIGINAL direction of the connection (saddr/sport =
 * initiator) plus a side flag in ct_key.flags:
 *   flags 0                 entry made at EGRESS of an endpoint (the endpoint,
 *                           or a peer it talks to, initiated; from-container)
 *   flags CT_KEY_F_INGRESS  entry made at INGRESS of an endpoint (a remote
 *                           initiated towards the endpoint; to-container, or the
 *                           destination check of a pod-to-pod redirect)
 * A pod-to-pod connection on one node therefore has two entries with the same
 * addresses: the source's egress entry and the destination's ingress entry.
 *
 * Lookup of a packet with wire tuple (s, d, sp, dp) at side X:
 *   key (s, d, sp, dp, X)          found -> CT_ESTABLISHED (original direction)
 *   key (d, s, dp, sp, other side) found -> CT_REPLY
 *   otherwise                              CT_NEW
 * e.g. the reply to a connection a pod opened (egress entry, flags 0) arrives at
 * its to-container (ingress side) and finds (pod, remote, ..., 0) reversed.
 *
 * ICMP echo: request (type 8 / 128) uses sport = echo id, dport = 0; reply
 * (type 0 / 129) uses sport = 0, dport = echo id, so that reversing a reply
 * gives the request's key. Other ICMP messages create no entries; errors
 * (dest unreachable, time exceeded, parameter problem, ...) are CT_RELATED when
 * the embedded packet's tuple belongs to a known connection.
 *
 * Service connections (per-packet load balancing, lib/lb.h) have one more entry, flags
 * CT_KEY_F_SERVICE, keyed by the tuple as the client sent it (to the service frontend); it holds
 * the backend chosen for the connection (backend_id) and the service (rev_nat_index), so later
 * packets go to the same backend. The endpoint entries of such a connection are keyed by the
 * translated tuple and carry rev_nat_index too, which tells the reply path to translate back.
 *
 * Counters: tx_* count the original direction, rx_* the reply direction. They are plain adds,
 * not atomic ones: one direction of one connection is sent from one CPU at a time in practice
 * (its socket serializes it), and a lock-prefixed add per counter costs more than the rest of
 * the update.
 * Lifetimes (lib/config/node.h): TCP CT_SYN_TIMEOUT until a packet without SYN was
 * seen, then CT_CONNECTION_LIFETIME_TCP; CT_CLOSE_TIMEOUT after an RST or
 * after a FIN in both directions; other protocols CT_CONNECTION_LIFETIME_NONTCP.
 * Deadlines are CLOCK_MONOTONIC ns read with bpf_ktime_get_coarse_ns (ct_now): the clock
 * the agent's GC compares with, at tick resolution, which is plenty for lifetimes in seconds
 * and much cheaper per packet than reading the clocksource.
 * Expired entries are ignored (and overwritten on re-creation); the LRU and the
 * agent's GC remove them.
 */
#ifndef CILIUM_TS_CONNTRACK_H
#define CILIUM_TS_CONNTRACK_H

#include "lib/common.h"
#include "lib/config/node.h"
#include "lib/config/sizes.h"

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

/* Same values as TRACE_REASON_*, so the CT state is the trace reason. */
#define CT_NEW TRACE_REASON_POLICY
#define CT_ESTABLISHED TRACE_REASON_CT_ESTABLISHED
#define CT_REPLY TRACE_REASON_CT_REPLY
#define CT_RELATED TRACE_REASON_CT_RELATED

#define CT_SIDE_EGRESS 0
#define CT_SIDE_INGRESS CT_KEY_F_INGRESS
/* ct_lookup's `side` may carry this: look for a reply first (the caller knows the packet is
 * one, e.g. from the other endpoint's entry of the same connection), which saves the missed
 * lookup of the original direction. Without it, a packet whose source port is below its
 * destination port is looked for as a reply first too: servers listen below the ephemeral
 * range their clients send from, so that is how replies usually look (ICMP echo replies have
 * source "port" 0). Either order finds the same entry; only a tuple live both ways round (not
 * something a connection makes) could tell them apart. */
#define CT_LOOKUP_REPLY_FIRST 0x80

/* Now, for lifetimes: CLOCK_MONOTONIC at tick resolution (see above). */
static __always_inline __u64 ct_now(void)
{
	return bpf_ktime_get_coarse_ns();
}

/* What a lookup found besides the state, and what a new entry gets: the service fields and flags. */
struct ct_state {
	__u32 backend_id;
	__be16 rev_nat_index;
	__u8 flags; /* CT_F_* */
	__u8 pad;
	__u16 proxy_port; /* CT_F_PROXY_REDIRECT: the proxy's port (host order) */
};

static __always_inline void ct_state_of(struct ct_state *st, const struct ct_entry *e)
{
	if (!st)
		return;
	st->backend_id = e->backend_id;
	st->rev_nat_index = e->rev_nat_index;
	st->flags = e->flags;
	st->proxy_port = e->proxy_port;
}

/*
 * Each family's table is named at its own call: the verifier then knows the map of every lookup
 * and update and calls the map's own code (inlined for lookups). A call that may get either
 * table goes through the generic helper, an indirect call per packet.
 */
static __always_inline struct ct_entry *ct_map_lookup(__u8 ipv6, const struct ct_key *key)
{
	struct ct_entry *e;

	if (ipv6) {
		e = bpf_map_lookup_elem(&cilium_ct6_global, key);
		/* keeps the compiler from merging the two calls into one that takes either map */
		asm volatile("" : "+r"(e));
		return e;
	}
	return bpf_map_lookup_elem(&cilium_ct4_global, key);
}

static __always_inline long ct_map_update(__u8 ipv6, const struct ct_key *key, const struct ct_entry *e)
{
	long ret;

	if (ipv6) {
		ret = bpf_map_update_elem(&cilium_ct6_global, key, e, BPF_ANY);
		asm volatile("" : "+r"(ret)); /* as in ct_map_lookup */
		return ret;
	}
	return bpf_map_update_elem(&cilium_ct4_global, key, e, BPF_ANY);
}

static __always_inline void ct_key_reverse(struct ct_key *key)
{
	__u32 *s = (__u32 *)key->saddr6;
	__u32 *d = (__u32 *)key->daddr6;
	__u32 t;
	__u16 p;

#pragma unroll
	for (int i = 0; i < 4; i++) {
		t = s[i];
		s[i] = d[i];
		d[i] = t;
	}
	p = key->sport;
	key->sport = key->dport;
	key->dport = p;
}

static __always_inline __u64 ct_lifetime_sec(const struct ct_entry *e, __u8 nexthdr)
{
	if (nexthdr != CIL_IPPROTO_TCP)
		return CT_CONNECTION_LIFETIME_NONTCP;
	if (e->flags & CT_F_CLOSING)
		return CT_CLOSE_TIMEOUT;
	if (e->flags & CT_F_SEEN_NON_SYN)
		return CT_CONNECTION_LIFETIME_TCP;
	return CT_SYN_TIMEOUT;
}

/*
 * Monitor aggregation reports a live connection again when a direction has not been reported for
 * CT_REPORT_INTERVAL (5 s, as upstream), so a long transfer shows in Hubble while it runs, not only
 * at its SYN and FIN. Report times are ct_now() in units of 2^20 ns (~1 ms), wrapping every ~50 days.
 */
#define CT_REPORT_SHIFT 20
#define CT_REPORT_INTERVAL ((5ULL * NSEC_PER_SEC) >> CT_REPORT_SHIFT)

static __always_inline __u32 ct_report_time(__u64 now)
{
	return (__u32)(now >> CT_REPORT_SHIFT);
}

static __always_inline int ct_report_due(const struct ct_entry *e, int reply, __u64 now)
{
	__u32 last = reply ? e->last_rx_report : e->last_tx_report;

	return ct_report_time(now) - last >= CT_REPORT_INTERVAL;
}

/* An entry's deadline moves on at most once a second: lifetimes are tens of seconds at least. */
#define CT_LIFETIME_SLACK_NS NSEC_PER_SEC

/*
 * Account one packet on a live entry and move its TCP state along. Only what changes is written
 * (counters only with CT_ACCOUNTING, flags when a new one is seen, the deadline when it moves by
 * a second or more or shortens): the two directions of a connection usually run on two CPUs, and
 * an entry written by both at every packet has its cache lines pass between them each time.
 */
static __always_inline void ct_update(struct ct_entry *e, __u8 nexthdr, __u8 tcp_flags,
				      __u32 len, int reply, __u64 now)
{
	__u64 deadline;

	if (CT_ACCOUNTING) {
		if (reply) {
			e->rx_packets += 1;
			e->rx_bytes += len;
		} else {
			e->tx_packets += 1;
			e->tx_bytes += len;
		}
	}
	/* a packet seen as due (ct_seen_flags) is the direction's report: the next is due later */
	if (ct_report_due(e, reply, now)) {
		if (reply)
			e->last_rx_report = ct_report_time(now);
		else
			e->last_tx_report = ct_report_time(now);
	}

	if (nexthdr == CIL_IPPROTO_TCP) {
		__u8 flags = e->flags;
		__u8 seen = reply ? e->reply_tcp_flags_seen : e->tcp_flags_seen;

		if ((seen | tcp_flags) != seen) {
			seen |= tcp_flags;
			if (reply)
				e->reply_tcp_flags_seen = seen;
			else
				e->tcp_flags_seen = seen;
		}
		if (reply)
			flags |= CT_F_REPLY_SEEN;
		if (!reply && (flags & CT_F_CLOSING) &&
		    (tcp_flags & (TCP_FLAG_SYN | TCP_FLAG_ACK)) == TCP_FLAG_SYN) {
			/* port reuse after close: start over (what the entry is stays: NodePort) */
			flags &= CT_F_NODEPORT | CT_F_PROXY_REDIRECT | CT_F_FROM_PROXY;
			e->tcp_flags_seen = tcp_flags;
			e->reply_tcp_flags_seen = 0;
		}
		if (!(tcp_flags & TCP_FLAG_SYN))
			flags |= CT_F_SEEN_NON_SYN;
		if ((tcp_flags & TCP_FLAG_RST) ||
		    ((e->tcp_flags_seen & TCP_FLAG_FIN) && (e->reply_tcp_flags_seen & TCP_FLAG_FIN)))
			flags |= CT_F_CLOSING;
		if (flags != e->flags)
			e->flags = flags;
	} else if (reply && !(e->flags & CT_F_REPLY_SEEN)) {
		e->flags |= CT_F_REPLY_SEEN;
	}
	deadline = now + ct_lifetime_sec(e, nexthdr) * NSEC_PER_SEC;
	if (deadline < e->lifetime_ns || deadline - e->lifetime_ns >= CT_LIFETIME_SLACK_NS)
		e->lifetime_ns = deadline;
}

/* The live entry of `key` with side flags `flags`, or NULL. */
static __always_inline struct ct_entry *ct_find(__u8 ipv6, struct ct_key *key, __u8 flags, __u64 now)
{
	struct ct_entry *e;

	key->flags = flags;
	key->pad = 0;
	e = ct_map_lookup(ipv6, key);
	if (e && e->lifetime_ns > now)
		return e;
	return NULL;
}

/*
 * The live entry of a packet with wire tuple `key` (flags ignored, clobbered) at `side`
 * (| CT_LOOKUP_REPLY_FIRST: try the reply direction first), or NULL; *reply says whether the
 * entry is the other direction's. Reads only: ct_lookup accounts the packet on it.
 */
static __always_inline struct ct_entry *ct_find_entry(__u8 ipv6, struct ct_key *key, __u8 side, __u64 now,
						     int *reply)
{
	int reply_first = (side & CT_LOOKUP_REPLY_FIRST) || bpf_ntohs(key->sport) < bpf_ntohs(key->dport);
	struct ct_entry *e;

	side &= CT_KEY_F_INGRESS;
	*reply = 0;
	if (!reply_first) {
		e = ct_find(ipv6, key, side, now);
		if (e)
			return e;
	}
	ct_key_reverse(key);
	e = ct_find(ipv6, key, side ^ CT_KEY_F_INGRESS, now);
	if (e) {
		*reply = 1;
		return e;
	}
	if (!reply_first)
		return NULL;
	ct_key_reverse(key);
	return ct_find(ipv6, key, side, now);
}

/* What entry `e` saw in a packet's direction before it (`reply`: the reply direction): the TCP
 * flags, CT_SEEN_ANY once any packet went that way (the original direction always has: the
 * entry's first packet), and CT_REPORT_DUE when the direction's last report is
 * CT_REPORT_INTERVAL old. Read before the packet is accounted (ct_update). */
static __always_inline __u8 ct_seen_flags(const struct ct_entry *e, int reply, __u64 now)
{
	__u8 flags;

	if (reply && !(e->flags & CT_F_REPLY_SEEN))
		return 0;
	flags = reply ? e->reply_tcp_flags_seen : e->tcp_flags_seen;
	return (flags & ~CT_REPORT_DUE) | CT_SEEN_ANY | (ct_report_due(e, reply, now) ? CT_REPORT_DUE : 0);
}

/*
 * Look the packet up at `side` (| CT_LOOKUP_REPLY_FIRST: try the reply direction first).
 * `key` holds the wire tuple (flags ignored) and is clobbered. On CT_ESTABLISHED / CT_REPLY
 * the entry is updated and, if `seen_flags` is not NULL, *seen_flags receives the TCP flags
 * seen in the packet's direction BEFORE this packet (for monitor aggregation); `st`, if not
 * NULL, the entry's service fields and flags.
 */
static __always_inline int ct_lookup(__u8 ipv6, struct ct_key *key, __u8 side, __u8 tcp_flags,
				     __u32 len, __u8 *seen_flags, struct ct_state *st)
{
	__u64 now = ct_now();
	struct ct_entry *e;
	int reply;

	e = ct_find_entry(ipv6, key, side, now, &reply);
	if (!e)
		return CT_NEW;
	if (seen_flags)
		*seen_flags = ct_seen_flags(e, reply, now);
	ct_state_of(st, e);
	ct_update(e, key->nexthdr, tcp_flags, len, reply, now);
	return reply ? CT_REPLY : CT_ESTABLISHED;
}

/* Is the packet embedded in an ICMP error part of a known connection? `key` is
 * the embedded packet's tuple as it travelled, `side` where it was seen. */
static __always_inline int ct_lookup_related(__u8 ipv6, struct ct_key *key, __u8 side)
{
	__u64 now = ct_now();

	if (ct_find(ipv6, key, side, now))
		return CT_RELATED;
	ct_key_reverse(key);
	if (ct_find(ipv6, key, side ^ CT_KEY_F_INGRESS, now))
		return CT_RELATED;
	return CT_NEW;
}

/* Create (or overwrite an expired) entry for a new connection; `key` holds the
 * wire tuple of its first packet, `st` (may be NULL) its service fields and extra flags. */
static __always_inline int ct_create(__u8 ipv6, struct ct_key *key, __u8 side, __u8 tcp_flags,
				     __u32 len, __u32 src_sec_id, const struct ct_state *st)
{
	__u64 now = ct_now();
	struct ct_entry e = {};

	key->flags = side;
	key->pad = 0;
	e.tx_packets = 1;
	e.tx_bytes = len;
	e.src_sec_id = src_sec_id;
	if (st) {
		e.backend_id = st->backend_id;
		e.rev_nat_index = st->rev_nat_index;
		e.flags = st->flags;
		e.proxy_port = st->proxy_port;
	}
	if (key->nexthdr == CIL_IPPROTO_TCP) {
		e.tcp_flags_seen = tcp_flags;
		if (!(tcp_flags & TCP_FLAG_SYN))
			e.flags |= CT_F_SEEN_NON_SYN;
		if (tcp_flags & TCP_FLAG_RST)
			e.flags |= CT_F_CLOSING;
	}
	/* the first packet is reported (a new connection), and the first reply for being one */
	e.last_tx_report = ct_report_time(now);
	e.last_rx_report = e.last_tx_report;
	e.lifetime_ns = now + ct_lifetime_sec(&e, key->nexthdr) * NSEC_PER_SEC;
	if (ct_map_update(ipv6, key, &e) < 0)
		return -DROP_CT_CREATE_FAILED;
	return 0;
}

/* The live CT_KEY_F_SERVICE entry of a connection (`key`: the tuple as sent, clobbered), with the
 * packet counted; NULL when there is none. */
static __always_inline struct ct_entry *ct_service_lookup(__u8 ipv6, struct ct_key *key, __u8 tcp_flags,
							  __u32 len)
{
	__u64 now = ct_now();
	struct ct_entry *e = ct_find(ipv6, key, CT_KEY_F_SERVICE, now);

	if (!e)
		return NULL;
	ct_update(e, key->nexthdr, tcp_flags, len, 0, now);
	return e;
}

#endif
