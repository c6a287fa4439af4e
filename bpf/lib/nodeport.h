/* SPDX-License-Identifier: Apache-2.0 */
/*
 * NodePort: connections from outside the node to a service (NodePort, LoadBalancer IP, external
 * IP), arriving at the node's external device (bpf_host.c), and the way back. IPv4.
 *
 * Forward: the packet gets a backend (lib/lb_xlate.h), its destination is DNATed to it and,
 * unless the service has SVC_FLAG_EXT_LOCAL_SCOPE (externalTrafficPolicy: Local: only node-local
 * backends, the client's address kept), its source is SNATed to the node's address on the device
 * (bpf_host.c's NODE_IPV4) and a port of
 * NODEPORT_SNAT_PORT_MIN..MAX, so that replies come back through this node.
 *
 * NAT entries (cilium_nodeport_nat4, lib/defs.h), written by the forward path:
 *   NAT_KEY_F_FWD  (client, frontend, cport, fport)           -> SNAT address and port (SNAT only)
 *   NAT_KEY_F_REV  (SNAT address or client, backend, sport, bport)
 *                  -> the client (to_*), the frontend (svc_*), the device the connection came in on
 * Both are refreshed by the packets that use them, with conntrack's lifetimes (TCP 6 h, others
 * 60 s); the map is an LRU.
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
#include "lib/lb_xlate.h"

/* see above and lib/defs.h */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__type(key, struct ct_key);
	__type(value, struct nodeport_nat_entry);
	__uint(max_entries, NODEPORT_NAT_MAP_SIZE);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} cilium_nodeport_nat4 SEC(".maps");

static __always_inline __u64 nodeport_nat_lifetime(__u8 proto)
{
	__u64 s = proto == CIL_IPPROTO_TCP ? CT_CONNECTION_LIFETIME_TCP : CT_CONNECTION_LIFETIME_NONTCP;

	return s * NSEC_PER_SEC;
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

static __always_inline __be16 nodeport_random_port(void)
{
	__u32 n = NODEPORT_SNAT_PORT_MAX - NODEPORT_SNAT_PORT_MIN + 1;

	return bpf_htons((__u16)(NODEPORT_SNAT_PORT_MIN + bpf_get_prandom_u32() % n));
}

/*
 * The SNAT port of connection `orig` (the tuple as the client sent it) towards `x`'s backend:
 * the one its forward entry holds while alive, else a port whose reverse key (node address, port,
 * backend) no live connection holds, claimed with a placeholder reverse entry and recorded in a
 * new forward entry. -DROP_NAT_NO_MAPPING when none was found in NODEPORT_SNAT_RETRIES tries.
 * `rkey` and `val` are the caller's scratch space (the stack is small).
 */
static __always_inline int nodeport_snat_port(const struct ct_key *orig, const struct lb_xlate *x,
					      __be32 node_ip, __u64 now, __be16 *port, struct ct_key *rkey,
					      struct nodeport_nat_entry *val)
{
	__u64 lifetime = nodeport_nat_lifetime(orig->nexthdr);
	struct ct_key key = *orig;
	struct nodeport_nat_entry *e;

	key.flags = NAT_KEY_F_FWD;
	key.pad = 0;
	e = bpf_map_lookup_elem(&cilium_nodeport_nat4, &key);
	if (e && e->lifetime_ns > now && e->to_addr4 == node_ip) {
		e->lifetime_ns = now + lifetime;
		*port = e->to_port;
		return 0;
	}
	__builtin_memset(val, 0, sizeof(*val));
	val->lifetime_ns = now + lifetime;
	val->to_addr4 = orig->saddr4;
	val->to_port = orig->sport;
	val->svc_addr4 = orig->daddr4;
	val->svc_port = orig->dport;
	val->rev_nat_index = x->rev_nat_index;
	for (int i = 0; i < NODEPORT_SNAT_RETRIES; i++) {
		__be16 p = nodeport_random_port();

		nodeport_rev_key(rkey, node_ip, p, x, orig->nexthdr);
		e = bpf_map_lookup_elem(&cilium_nodeport_nat4, rkey);
		if (e && e->lifetime_ns > now)
			continue; /* a live connection has it */
		if (bpf_map_update_elem(&cilium_nodeport_nat4, rkey, val, e ? BPF_EXIST : BPF_NOEXIST) < 0)
			continue; /* lost a race for it */
		val->to_addr4 = node_ip;
		val->to_port = p;
		if (bpf_map_update_elem(&cilium_nodeport_nat4, &key, val, BPF_ANY) < 0)
			return -DROP_NAT_NO_MAPPING;
		*port = p;
		return 0;
	}
	return -DROP_NAT_NO_MAPPING;
}

/*
 * The NAT of a forward packet `p` (wire tuple, as the client sent it) translated by `x`: the
 * source it leaves with (*saddr, *sport: `snat_ip` and a port, or its own when `snat_ip` is 0),
 * and the reverse entry its replies need, (re)written when it does not match, refreshed otherwise.
 */
static __always_inline int nodeport_nat_fwd(const struct pktinfo *p, const struct lb_xlate *x,
					    __be32 snat_ip, __u32 ifindex, __be32 *saddr, __be16 *sport)
{
	__u64 now = bpf_ktime_get_ns(), lifetime = nodeport_nat_lifetime(p->tuple.nexthdr);
	struct nodeport_nat_entry *r, rev;
	struct ct_key rkey;
	int ret;

	*saddr = p->tuple.saddr4;
	*sport = p->tuple.sport;
	if (snat_ip) {
		ret = nodeport_snat_port(&p->tuple, x, snat_ip, now, sport, &rkey, &rev);
		if (ret < 0)
			return ret;
		*saddr = snat_ip;
	}
	nodeport_rev_key(&rkey, *saddr, *sport, x, p->tuple.nexthdr);
	__builtin_memset(&rev, 0, sizeof(rev));
	r = bpf_map_lookup_elem(&cilium_nodeport_nat4, &rkey);
	if (r && r->to_addr4 == p->tuple.saddr4 && r->to_port == p->tuple.sport &&
	    r->svc_addr4 == x->frontend.ip4 && r->svc_port == x->frontend_port &&
	    r->rev_nat_index == x->rev_nat_index && r->ifindex == ifindex) {
		r->lifetime_ns = now + lifetime;
		return 0;
	}
	rev.lifetime_ns = now + lifetime;
	rev.to_addr4 = p->tuple.saddr4;
	rev.to_port = p->tuple.sport;
	rev.svc_addr4 = x->frontend.ip4;
	rev.svc_port = x->frontend_port;
	rev.rev_nat_index = x->rev_nat_index;
	rev.ifindex = ifindex;
	if (bpf_map_update_elem(&cilium_nodeport_nat4, &rkey, &rev, BPF_ANY) < 0)
		return -DROP_NAT_NO_MAPPING;
	return 0;
}

/*
 * A reply of a NodePort connection, `p` its wire tuple (backend -> SNAT address or client),
 * rewritten to frontend -> client; `x` gets what the trace event reports. Returns the ifindex of
 * the device to send it out of, 0 when no entry matches (the packet is left as it is), or -DROP_*.
 */
static __always_inline int nodeport_rev_xlate(struct __sk_buff *ctx, struct pktinfo *p, struct lb_xlate *x)
{
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
	if (!r || !r->ifindex)
		return 0;
	client = r->to_addr4;
	client_port = r->to_port;
	svc = r->svc_addr4;
	svc_port = r->svc_port;
	ifindex = r->ifindex;
	r->lifetime_ns = bpf_ktime_get_ns() + nodeport_nat_lifetime(p->tuple.nexthdr);

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

#endif
