/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A packet from another node for a pod of this node, delivered straight into the pod
 * (bpf_redirect_peer from the device it arrived on: the overlay device, or the underlay device
 * with native routing) when the pod's own to-container program (bpf_lxc.c lxc_ingress) would
 * only count it: a packet of a connection the pod's ingress-side conntrack knows, not traced
 * (monitor aggregation), not the L7 proxy's and not to be translated back to a service. Such a
 * packet gets here exactly what lxc_ingress gives it (the CT entry's accounting, the endpoint's
 * forwarded metric) and skips the host-side veth's egress and the backlog queue of the veth
 * hop. Anything else (a new connection: policy; ICMP errors; traced packets; proxy and
 * translated replies) takes the full way through the to-container program, untouched: the
 * conntrack entry is only read until the packet is known to be delivered here.
 *
 * The trace decision uses the node's MONITOR_AGGREGATION: the agent gives every endpoint the
 * node's (src/agent/datapath.ts).
 */
#ifndef CILIUM_TS_DELIVER_H
#define CILIUM_TS_DELIVER_H

#include "lib/common.h"
#include "lib/pkt.h"
#include "lib/ipv4.h"
#include "lib/ipv6.h"
#include "lib/conntrack.h"
#include "lib/events.h"
#include "lib/metrics.h"

/* deliver_to_pod: not for the fast way; the caller hands the packet on as it did before. */
#define DELIVER_FULL_WAY 1

/*
 * The conntrack entry of a packet that may go the short way (deliver_to_pod's checks, nothing
 * written): NULL when it takes the full way. `key` gets the tuple the entry was found by.
 */
static __always_inline struct ct_entry *deliver_entry(const struct pktinfo *p, struct ct_key *key, __u64 now,
						      int *reply)
{
	struct ct_entry *e;

	if (p->kind != PKT_TRACKED)
		return NULL;
	*key = p->tuple;
	e = ct_find_entry(p->ipv6, key, CT_SIDE_INGRESS, now, reply);
	if (!e)
		return NULL; /* a new connection: the pod's ingress policy decides */
	/* the proxy's: its redirected connections, and its own upstream ones (whose packets come
	 * from this node, never from another: the tuple is another connection's now) */
	if (!*reply && (e->flags & (CT_F_PROXY_REDIRECT | CT_F_FROM_PROXY)))
		return NULL;
	if (*reply && e->rev_nat_index && !(e->flags & CT_F_NODEPORT) && !p->ipv6)
		return NULL;
	if (trace_wanted(*reply ? CT_REPLY : CT_ESTABLISHED, p->tuple.nexthdr, p->tcp_flags,
			 ct_seen_flags(e, *reply, now)))
		return NULL;
	return e;
}

/* The short way for a packet deliver_entry found `e` for: the routing step, the entry's and the
 * endpoint's accounting, into the pod. A redirect verdict or -DROP_*. */
static __always_inline int deliver_commit(struct __sk_buff *ctx, const struct pktinfo *p,
					  const struct endpoint_info *ep, struct ct_entry *e, int reply, __u64 now)
{
	__u32 len = ctx->len;
	int ret;

	ret = p->ipv6 ? ipv6_l2_forward(ctx, ep->mac, ep->node_mac) : ipv4_l2_forward(ctx, ep->mac, ep->node_mac);
	if (ret < 0)
		return ret;
	ct_update(e, p->tuple.nexthdr, p->tcp_flags, len, reply, now);
	update_metrics(ep->lxc_id, len, METRIC_INGRESS, 0);
	return bpf_redirect_peer(ep->ifindex, 0);
}

/*
 * `p`: the parsed packet (the wire tuple); `ep`: the local pod it is for (not the host). A
 * redirect verdict, DELIVER_FULL_WAY, or -DROP_* (TTL / hop limit exhausted: the packet is
 * unchanged, nothing accounted).
 */
static __always_inline int deliver_to_pod(struct __sk_buff *ctx, const struct pktinfo *p,
					  const struct endpoint_info *ep)
{
	__u64 now = ct_now();
	struct ct_entry *e;
	struct ct_key key;
	int reply;

	e = deliver_entry(p, &key, now, &reply);
	if (!e)
		return DELIVER_FULL_WAY;
	return deliver_commit(ctx, p, ep, e, reply, now);
}

#endif
