/* SPDX-License-Identifier: Apache-2.0 */
/*
 * NodePort: connections from outside the node to a service (NodePort, LoadBalancer IP, external
 * IP), arriving at the node's external device (bpf_host.c), and the way back. IPv4.
 *
 * Forward: the packet gets a backend (lib/lb_xlate.h), its destination is DNATed to it and,
 * unless the service has SVC_FLAG_EXT_LOCAL_SCOPE (externalTrafficPolicy: Local: only node-local
 * backends, the client's address kept), its source is SNATed to the node's address on the device
 * (bpf_host.c's NODE_IPV4) and a port of NODEPORT_SNAT_PORT_MIN..MAX, so that replies come back
 * through this node.
 *
 * NAT entries (cilium_nodeport_nat4, lib/defs.h), written by the forward path:
 *   NAT_KEY_F_FWD  (client, frontend, cport, fport)           -> SNAT address and port (SNAT only)
 *   NAT_KEY_F_REV  (SNAT address or client, backend, sport, bport)
 *                  -> the client (to_*), the frontend (svc_*), the device the connection came in on
 * A reverse entry follows its connection's state as conntrack does (a closed TCP connection's port
 * is free again 10 s later); a forward entry counts while its reverse entry does. The map is an
 * LRU. The port pool is NODEPORT_SNAT_PORT_MIN..MAX (4536 ports) per SNAT address, backend address
 * and port, and protocol, outside the kernel's default ephemeral range so that the node's own
 * connections never meet a SNATed one.
 *
 * Replies: a local backend's reply is seen by bpf_lxc's from-container, whose conntrack entry for
 * the connection is flagged CT_F_NODEPORT; a remote backend's arrives at the device, addressed to
 * the SNAT address and port. Either way nodeport_rev_xlate() rewrites it to frontend -> client and
 * nodeport_redirect_out() sends it out of the device the connection came in on, with
 * bpf_redirect_neigh: the node's stack would refuse a packet carrying its own address as source.
 */
#ifndef CILIUM_TS_NODEPORT_H
#define CILIUM_TS_NODEPORT_H

#include "lib/common.h"
#include "lib/config/node.h"
#include "lib/config/sizes.h"
#include "lib/ipv4.h"
#include "lib/metrics.h"
#include "lib/lb_xlate.h"

/* see above and lib/defs.h */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__type(key, struct ct_key);
	__type(value, struct nodeport_nat_entry);
	__uint(max_entries, NODEPORT_NAT_MAP_SIZE);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} cilium_nodeport_nat4 SEC(".maps");

/* How long a reverse entry lives after a packet (the connection's state, as conntrack keeps it). */
static __always_inline __u64 nodeport_nat_lifetime(const struct nodeport_nat_entry *e, __u8 proto)
{
	__u8 fwd = e->tcp_flags_seen, rev = e->reply_tcp_flags_seen;
	__u64 s = CT_CONNECTION_LIFETIME_NONTCP;

	if (proto == CIL_IPPROTO_TCP) {
		if ((fwd & TCP_FLAG_FIN) && (rev & TCP_FLAG_FIN) && (e->nat_flags & NAT_F_BACKEND_CLOSED_FIRST))
			s = NODEPORT_TIME_WAIT;
		else if (((fwd | rev) & TCP_FLAG_RST) || ((fwd & TCP_FLAG_FIN) && (rev & TCP_FLAG_FIN)))
			s = CT_CLOSE_TIMEOUT;
		else if (rev & TCP_FLAG_ACK)
			s = CT_CONNECTION_LIFETIME_TCP;
		else
			s = CT_SYN_TIMEOUT;
	}
	return s * NSEC_PER_SEC;
}

/* A packet of the connection a reverse entry belongs to: its TCP flags, a new lifetime. A TCP SYN
 * from the client on a closed connection (the tuple used again) starts the state over. */
static __always_inline void nodeport_nat_seen(struct nodeport_nat_entry *e, __u8 proto, __u8 tcp_flags,
					      int reply, __u64 now)
{
	if (proto == CIL_IPPROTO_TCP) {
		if (reply) {
			if ((tcp_flags & TCP_FLAG_FIN) && !((e->tcp_flags_seen | e->reply_tcp_flags_seen) & TCP_FLAG_FIN))
				e->nat_flags |= NAT_F_BACKEND_CLOSED_FIRST;
			e->reply_tcp_flags_seen |= tcp_flags;
		} else if ((tcp_flags & (TCP_FLAG_SYN | TCP_FLAG_ACK)) == TCP_FLAG_SYN &&
			   ((e->tcp_flags_seen | e->reply_tcp_flags_seen) & (TCP_FLAG_FIN | TCP_FLAG_RST))) {
			e->tcp_flags_seen = tcp_flags;
			e->reply_tcp_flags_seen = 0;
			e->nat_flags = 0;
		} else {
			e->tcp_flags_seen |= tcp_flags;
		}
	}
	e->lifetime_ns = now + nodeport_nat_lifetime(e, proto);
}

/* The reverse entry's key: the tuple the backend sees, forward direction. */
static __always_inline void nodeport_rev_key(struct ct_key *k, __be32 saddr, __be16 sport,
					     const struct lb_xlate *x, __u8 proto)
{
	__builtin_memset(k, 0, sizeof(*k));
	k->saddr4 = saddr;
	k->daddr4 = x->backend.ip4;
	k->sport = sport;
	k->dport = x->backend_port;
	k->nexthdr = proto;
	k->flags = NAT_KEY_F_REV;
}

/* Is `r` (a reverse entry) the one of the client tuple `orig` through `x`? */
static __always_inline int nodeport_rev_matches(const struct nodeport_nat_entry *r, const struct ct_key *orig,
						const struct lb_xlate *x, __u32 ifindex)
{
	return r->to_addr4 == orig->saddr4 && r->to_port == orig->sport && r->svc_addr4 == x->frontend.ip4 &&
	       r->svc_port == x->frontend_port && r->rev_nat_index == x->rev_nat_index && r->ifindex == ifindex;
}

static __always_inline __be16 nodeport_random_port(void)
{
	__u32 n = NODEPORT_SNAT_PORT_MAX - NODEPORT_SNAT_PORT_MIN + 1;

	return bpf_htons((__u16)(NODEPORT_SNAT_PORT_MIN + bpf_get_prandom_u32() % n));
}

/*
 * The NAT of a forward packet `p` (wire tuple, as the client sent it) translated by `x`: the
 * source it leaves with (*saddr, *sport), and the reverse entry its replies need.
 *
 * Without SNAT (`snat_ip` 0) the source stays and the reverse entry is keyed by the client. With
 * SNAT the source is `snat_ip` and the port the forward entry names, as long as that port's
 * reverse entry is alive and still this connection's; otherwise a new port: one whose reverse key
 * (snat_ip, port, backend) no live connection holds, claimed by writing this connection's reverse
 * entry there (NODEPORT_SNAT_RETRIES random tries, then -DROP_NAT_NO_MAPPING), then the forward
 * entry. The reverse entry sees the packet's TCP flags and gets its new lifetime.
 */
static __always_inline int nodeport_nat_fwd(const struct pktinfo *p, const struct lb_xlate *x,
					    __be32 snat_ip, __u32 ifindex, __be32 *saddr, __be16 *sport)
{
	const struct ct_key *orig = &p->tuple;
	__u8 proto = orig->nexthdr;
	__u64 now = bpf_ktime_get_ns();
	struct nodeport_nat_entry *e, *r, val;
	struct ct_key key, rkey;

	*saddr = snat_ip ? snat_ip : orig->saddr4;
	*sport = orig->sport;
	__builtin_memset(&val, 0, sizeof(val));
	val.to_addr4 = orig->saddr4;
	val.to_port = orig->sport;
	val.svc_addr4 = x->frontend.ip4;
	val.svc_port = x->frontend_port;
	val.rev_nat_index = x->rev_nat_index;
	val.ifindex = ifindex;
	nodeport_nat_seen(&val, proto, p->tcp_flags, 0, now);

	if (snat_ip) {
		key = *orig;
		key.flags = NAT_KEY_F_FWD;
		key.pad = 0;
		e = bpf_map_lookup_elem(&cilium_nodeport_nat4, &key);
		if (!e || e->to_addr4 != snat_ip)
			goto new_port;
		*sport = e->to_port;
	}
	nodeport_rev_key(&rkey, *saddr, *sport, x, proto);
	r = bpf_map_lookup_elem(&cilium_nodeport_nat4, &rkey);
	if (r && r->lifetime_ns > now && nodeport_rev_matches(r, orig, x, ifindex)) {
		nodeport_nat_seen(r, proto, p->tcp_flags, 0, now);
		if (snat_ip)
			e->lifetime_ns = r->lifetime_ns;
		return 0;
	}
	if (!snat_ip) {
		/* the client's own tuple: nobody else can hold it */
		if (bpf_map_update_elem(&cilium_nodeport_nat4, &rkey, &val, BPF_ANY) < 0)
			return -DROP_NAT_NO_MAPPING;
		return 0;
	}
new_port:
	for (int i = 0; i < NODEPORT_SNAT_RETRIES; i++) {
		__be16 port = nodeport_random_port();

		nodeport_rev_key(&rkey, snat_ip, port, x, proto);
		r = bpf_map_lookup_elem(&cilium_nodeport_nat4, &rkey);
		if (r && r->lifetime_ns > now)
			continue; /* a live connection has it */
		if (bpf_map_update_elem(&cilium_nodeport_nat4, &rkey, &val, r ? BPF_EXIST : BPF_NOEXIST) < 0)
			continue; /* lost a race for it */
		key = *orig;
		key.flags = NAT_KEY_F_FWD;
		key.pad = 0;
		val.to_addr4 = snat_ip;
		val.to_port = port;
		if (bpf_map_update_elem(&cilium_nodeport_nat4, &key, &val, BPF_ANY) < 0)
			return -DROP_NAT_NO_MAPPING;
		*sport = port;
		return 0;
	}
	return -DROP_NAT_NO_MAPPING;
}

/*
 * A reply of a NodePort connection, `p` its wire tuple (backend -> SNAT address or client),
 * rewritten to frontend -> client; `x` gets what the trace event reports. Returns the ifindex of
 * the device to send it out of, 0 when no live entry matches (the packet is left as it is), or
 * -DROP_*.
 */
static __always_inline int nodeport_rev_xlate(struct __sk_buff *ctx, struct pktinfo *p, struct lb_xlate *x)
{
	__u64 now = bpf_ktime_get_ns();
	struct nodeport_nat_entry *r;
	struct ct_key rkey = p->tuple;
	__be32 client, svc;
	__be16 client_port, svc_port;
	__u32 ifindex;
	int ret;

	ct_key_reverse(&rkey);
	rkey.flags = NAT_KEY_F_REV;
	rkey.pad = 0;
	r = bpf_map_lookup_elem(&cilium_nodeport_nat4, &rkey);
	if (!r || !r->ifindex || r->lifetime_ns <= now)
		return 0;
	client = r->to_addr4;
	client_port = r->to_port;
	svc = r->svc_addr4;
	svc_port = r->svc_port;
	ifindex = r->ifindex;
	nodeport_nat_seen(r, p->tuple.nexthdr, p->tcp_flags, 1, now);

	__builtin_memset(x, 0, sizeof(*x));
	x->backend.ip4 = p->tuple.saddr4;
	x->backend_port = p->tuple.sport;
	x->frontend.ip4 = svc;
	x->frontend_port = svc_port;
	x->rev_nat_index = r->rev_nat_index;
	ret = lb4_rewrite(ctx, p->l4_off, p->tuple.nexthdr, 0, p->tuple.saddr4, svc, p->tuple.sport, svc_port);
	if (ret < 0)
		return ret;
	ret = lb4_rewrite(ctx, p->l4_off, p->tuple.nexthdr, 1, p->tuple.daddr4, client, p->tuple.dport,
			  client_port);
	if (ret < 0)
		return ret;
	p->tuple.saddr4 = svc;
	p->tuple.sport = svc_port;
	p->tuple.daddr4 = client;
	p->tuple.dport = client_port;
	return (int)ifindex;
}

/* Sends a translated packet out of the external device `ifindex` (a router's hop: TTL - 1), the
 * next hop's MAC from the neighbour table. */
static __always_inline int nodeport_redirect_out(struct __sk_buff *ctx, __u32 ifindex)
{
	int ret = ipv4_dec_ttl(ctx);

	if (ret < 0)
		return ret;
	return bpf_redirect_neigh(ifindex, NULL, 0, 0);
}

/* A reply translated back (`x`) on its way out of `ifindex`: traced as TRACE_TO_NETWORK by
 * `source` when `trace` (the trace reason + 1; 0: not traced), counted as its egress, sent. */
static __always_inline int nodeport_reply_out(struct __sk_buff *ctx, const struct pktinfo *p,
					      const struct lb_xlate *x, __u32 ifindex, __u16 source,
					      __u32 src_label, int trace)
{
	struct trace_xlate tx;

	if (trace) {
		lb_trace_xlate(&tx, x, 1);
		send_trace_xlate(ctx, source, TRACE_TO_NETWORK, src_label,
				 remote_identity(lookup_remote_endpoint(0, p->tuple.daddr6)), 0, (__u8)(trace - 1),
				 0, ifindex, &tx);
	}
	update_metrics(source, ctx->len, METRIC_EGRESS, 0);
	return nodeport_redirect_out(ctx, ifindex);
}

#endif
