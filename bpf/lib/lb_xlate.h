/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Per-packet service translation (tc), shared by the pods' programs (bpf_lxc.c: east-west traffic
 * whose sockets socket-LB did not see) and the external device's (bpf_host.c: NodePort,
 * LoadBalancer and external IPs from outside): which backend a packet to a frontend goes to, kept
 * in conntrack, and the IPv4 header rewrites.
 *
 * Backend of a connection (upstream's lb4_local):
 *   1. its CT_KEY_F_SERVICE entry (lib/conntrack.h), keyed by the tuple as the client sent it:
 *      the backend chosen for its first packet. Kept while that backend exists and either is
 *      active or the packet is not a SYN: an established connection keeps its backend when the
 *      backends change, a terminating backend keeps the connections it has;
 *   2. else (new connection, or its backend is gone): with session affinity, the backend the
 *      client address's affinity entry holds; else Maglev (the service's algorithm, or the node's
 *      LB_SELECTION for none, is LB_ALGORITHM_MAGLEV and the service has a table) or random
 *      (slot 1 + r % count); then the CT service entry (and the affinity entry) is written.
 * The Maglev flow hash is upstream's: jhash_3words(saddr, dport << 16 | sport, nexthdr,
 * HASH_INIT4_SEED), ports as they are on the wire, the client's port 0 with session affinity;
 * the destination address is left out, so a client's flow picks the same backend through any of
 * a service's frontends. src/datapath/flow-hash.ts computes the same.
 */
#ifndef CILIUM_TS_LB_XLATE_H
#define CILIUM_TS_LB_XLATE_H

#include "lib/common.h"
#include "lib/config/node.h"
#include "lib/pkt.h"
#include "lib/ipv4.h"
#include "lib/conntrack.h"
#include "lib/events.h"
#include "lib/ipcache.h"
#include "lib/jhash.h"
#include "lib/lb.h"

/* A packet's translation: the backend it goes to and the frontend it was sent to. */
struct lb_xlate {
	union lb_addr backend;
	union lb_addr frontend;
	__be16 backend_port;
	__be16 frontend_port;
	__be16 rev_nat_index;
	__u8 svc_flags;  /* SVC_FLAG_* of the frontend */
	__u8 new_conn;   /* the connection's CT service entry was made for this packet */
	__u32 backend_id;
};

/* The trace event fields of a translation: `orig` is the frontend (forward) or the backend
 * (a reply translated back). */
static __always_inline void lb_trace_xlate(struct trace_xlate *t, const struct lb_xlate *x, int reply)
{
	const union lb_addr *a = reply ? &x->backend : &x->frontend;

	t->orig_ip[0] = a->w[0];
	t->orig_ip[1] = a->w[1];
	t->orig_ip[2] = a->w[2];
	t->orig_ip[3] = a->w[3];
	t->orig_port = reply ? x->backend_port : x->frontend_port;
	t->rev_nat_index = x->rev_nat_index;
}

/* Is `addr` an address of this node (ipcache identity ID_HOST)? */
static __always_inline int lb_addr_is_host(__u8 ipv6, const union lb_addr *addr)
{
	const struct remote_endpoint_info *info = lookup_remote_endpoint(ipv6, addr->ip6);

	return info && info->sec_identity == ID_HOST;
}

/* The Maglev flow hash of an IPv4 tuple (see the top of this file). */
static __always_inline __u32 lb4_flow_hash(const struct ct_key *t, int affinity)
{
	__u32 sport = affinity ? 0 : t->sport;

	return jhash_3words(t->saddr4, ((__u32)t->dport << 16) | sport, t->nexthdr, HASH_INIT4_SEED);
}

/* The backend ID at `hash` in the service's Maglev table; 0 when it has none (or the node has no
 * table size). The bound check on MAGLEV_TABLE_SIZE, a load-time constant equal to the tables' M,
 * is what lets the verifier accept the index. */
static __always_inline __u32 lb_maglev_backend(__u8 ipv6, __be16 rev_nat, __u32 hash)
{
	__u32 zero = 0, idx, size = MAGLEV_TABLE_SIZE;
	__u32 *ids;
	void *table;

	if (size == 0)
		return 0;
	table = bpf_map_lookup_elem(ipv6 ? (void *)&cilium_lb6_maglev : (void *)&cilium_lb4_maglev,
				    &rev_nat);
	if (!table)
		return 0;
	ids = bpf_map_lookup_elem(table, &zero);
	if (!ids)
		return 0;
	idx = hash % size;
	if (idx >= MAGLEV_TABLE_SIZE)
		return 0;
	return ids[idx];
}

/* A backend for a new connection: Maglev when the service (or the node, for a service naming no
 * algorithm) selects it, else a random slot of 1..count. 0 when the slot is missing. */
static __always_inline __u32 lb_select_backend(struct lb_lookup_key *k, const struct lb_service *svc,
					       const struct ct_key *t, int affinity)
{
	__u32 alg = svc->affinity_timeout >> LB_ALGORITHM_SHIFT;
	__u32 id;

	if (alg == 0)
		alg = LB_SELECTION;
	if (alg == LB_ALGORITHM_MAGLEV && !k->ipv6) {
		id = lb_maglev_backend(k->ipv6, svc->rev_nat_index, lb4_flow_hash(t, affinity));
		if (id)
			return id;
	}
	return lb_slot_backend(k, bpf_get_prandom_u32() % svc->count + 1);
}

static __always_inline int lb_is_syn(const struct pktinfo *p)
{
	return p->tuple.nexthdr == CIL_IPPROTO_TCP &&
	       (p->tcp_flags & (TCP_FLAG_SYN | TCP_FLAG_ACK)) == TCP_FLAG_SYN;
}

/*
 * The backend of the IPv4 packet `p` (its wire tuple, to the frontend `k` names) for the service
 * `svc` (count > 0), in `x`; writes the connection's CT service entry. `src_id` is the client's
 * identity. 0, or -DROP_NO_SERVICE when no backend can be had. (The family is a constant here, so
 * the verifier does not walk the IPv6 branches of the helpers, which take it as an argument.)
 */
static __always_inline int lb4_xlate_backend(const struct pktinfo *p, struct lb_lookup_key *k,
					     const struct lb_service *svc, struct lb_xlate *x, __u32 len,
					     __u32 src_id)
{
	const __u8 ipv6 = 0;
	__u8 state = BE_STATE_ACTIVE;
	int affinity = svc->flags & SVC_FLAG_AFFINITY;
	union lb_affinity_key akey;
	struct ct_entry *e;
	struct ct_key key;
	__u32 id = 0;

	__builtin_memset(x, 0, sizeof(*x));
	__builtin_memcpy(x->frontend.ip6, p->tuple.daddr6, 16);
	x->frontend_port = p->tuple.dport;
	x->rev_nat_index = svc->rev_nat_index;
	x->svc_flags = svc->flags;

	key = p->tuple;
	e = ct_service_lookup(ipv6, &key, p->tcp_flags, len);
	if (e && e->rev_nat_index == svc->rev_nat_index) {
		id = e->backend_id;
		if (lb_lookup_backend(ipv6, id, &x->backend, &x->backend_port, &state) == 0 &&
		    (state == BE_STATE_ACTIVE || !lb_is_syn(p)))
			goto found;
		id = 0; /* gone, or a new connection on the tuple of one that ended */
	}

	if (affinity) {
		lb_affinity_client_key(&akey, ipv6, (const union lb_addr *)p->tuple.saddr6,
				       svc->rev_nat_index);
		id = lb_affinity_backend(ipv6, &akey, svc->rev_nat_index, lb_affinity_timeout(svc));
		if (id && lb_lookup_backend(ipv6, id, &x->backend, &x->backend_port, NULL) < 0) {
			lb_affinity_delete(ipv6, &akey);
			id = 0;
		}
	}
	if (!id) {
		id = lb_select_backend(k, svc, &p->tuple, affinity);
		if (!id || lb_lookup_backend(ipv6, id, &x->backend, &x->backend_port, NULL) < 0)
			return -DROP_NO_SERVICE;
		if (affinity)
			lb_affinity_update(ipv6, &akey, id);
	}
	if (e) {
		e->backend_id = id;
		e->rev_nat_index = svc->rev_nat_index;
	} else {
		struct ct_state st = { .backend_id = id, .rev_nat_index = svc->rev_nat_index };
		int ret;

		key = p->tuple;
		ret = ct_create(ipv6, &key, CT_KEY_F_SERVICE, p->tcp_flags, len, src_id, &st);
		if (ret < 0)
			return ret;
		x->new_conn = 1;
	}
found:
	x->backend_id = id;
	return 0;
}

/* The frontend key (address, port, protocol) of an IPv4 packet's destination. */
static __always_inline void lb4_frontend_key(struct lb_lookup_key *k, const struct pktinfo *p)
{
	__builtin_memset(k, 0, sizeof(*k));
	k->addr.ip4 = p->tuple.daddr4;
	k->dport = p->tuple.dport;
	k->proto = p->tuple.nexthdr;
}

/* Does the service's loadBalancerSourceRanges (cilium_lb4_source_range) hold the client? */
static __always_inline int lb4_src_range_allows(__be16 rev_nat, __be32 client)
{
	struct lb4_src_range_key key = {
		.prefixlen = LB_SRC_RANGE_PREFIX_HDR_BITS + 32,
		.rev_nat_id = rev_nat,
		.address = client,
	};

	return bpf_map_lookup_elem(&cilium_lb4_source_range, &key) != NULL;
}

/*
 * The frontend an IPv4 packet of a pod addresses, as an in-cluster client sees it (the internal
 * scope of a service with two), or NULL. An ExternalIP or HostPort frontend is one only when its
 * address is this node's (CVE-2020-8554, as socket-LB). `k` is left naming the master entry.
 */
static __always_inline struct lb_service *lb4_lookup_in_cluster(const struct pktinfo *p,
								struct lb_lookup_key *k)
{
	struct lb_service *svc;

	lb4_frontend_key(k, p);
	svc = lb_lookup_service(k, 1);
	if (svc && (svc->flags & (SVC_FLAG_EXTERNAL_IP | SVC_FLAG_HOSTPORT)) && !lb_addr_is_host(0, &k->addr))
		return NULL;
	return svc;
}

/* ---- IPv4 header rewrites ---- */

#define IPV4_SADDR_OFF (ETH_HLEN + 12)
#define IPV4_DADDR_OFF (ETH_HLEN + 16)

/*
 * Rewrites the source (dst 0) or destination (dst 1) address and port of a TCP / UDP packet, with
 * the IP and L4 checksums (the pseudo header included; a UDP checksum of 0, none, stays 0).
 */
static __always_inline int lb4_rewrite(struct __sk_buff *ctx, __u32 l4_off, __u8 proto, int dst,
				       __be32 from_ip, __be32 to_ip, __be16 from_port, __be16 to_port)
{
	__u32 csum_off = l4_off + (proto == CIL_IPPROTO_TCP ? 16 : 6);
	__u64 l4_flags = proto == CIL_IPPROTO_UDP ? BPF_F_MARK_MANGLED_0 : 0;

	if (from_ip != to_ip) {
		if (bpf_l4_csum_replace(ctx, csum_off, from_ip, to_ip, l4_flags | BPF_F_PSEUDO_HDR | 4) < 0)
			return -DROP_CSUM_L4;
		if (bpf_l3_csum_replace(ctx, IPV4_CSUM_OFF, from_ip, to_ip, 4) < 0)
			return -DROP_CSUM_L3;
		if (bpf_skb_store_bytes(ctx, dst ? IPV4_DADDR_OFF : IPV4_SADDR_OFF, &to_ip, 4, 0) < 0)
			return -DROP_WRITE_ERROR;
	}
	if (from_port != to_port) {
		if (bpf_l4_csum_replace(ctx, csum_off, from_port, to_port, l4_flags | 2) < 0)
			return -DROP_CSUM_L4;
		if (bpf_skb_store_bytes(ctx, l4_off + (dst ? 2 : 0), &to_port, 2, 0) < 0)
			return -DROP_WRITE_ERROR;
	}
	return 0;
}

/* DNAT of `p` to the translation's backend; `p` then describes the translated packet. */
static __always_inline int lb4_xlate_dst(struct __sk_buff *ctx, struct pktinfo *p, const struct lb_xlate *x)
{
	int ret = lb4_rewrite(ctx, p->l4_off, p->tuple.nexthdr, 1, p->tuple.daddr4, x->backend.ip4,
			      p->tuple.dport, x->backend_port);

	if (ret < 0)
		return ret;
	p->tuple.daddr4 = x->backend.ip4;
	p->tuple.dport = x->backend_port;
	p->policy_dport = x->backend_port;
	return 0;
}

/* A reply of a translated connection, from its backend: the source becomes the frontend named by
 * the rev-NAT entry of `rev_nat` (a wildcard frontend's address, 0, is left alone). `x` gets what
 * the trace event reports. 0 when translated, 1 when the service is gone (left as it is). */
static __always_inline int lb4_rev_nat(struct __sk_buff *ctx, struct pktinfo *p, __be16 rev_nat,
				       struct lb_xlate *x)
{
	struct lb4_reverse_nat *nat = bpf_map_lookup_elem(&cilium_lb4_reverse_nat, &rev_nat);
	__be32 addr;
	int ret;

	if (!nat)
		return 1;
	addr = nat->address ? nat->address : p->tuple.saddr4;
	__builtin_memset(x, 0, sizeof(*x));
	x->backend.ip4 = p->tuple.saddr4;
	x->backend_port = p->tuple.sport;
	x->frontend.ip4 = addr;
	x->frontend_port = nat->port;
	x->rev_nat_index = rev_nat;
	ret = lb4_rewrite(ctx, p->l4_off, p->tuple.nexthdr, 0, p->tuple.saddr4, addr, p->tuple.sport,
			  nat->port);
	if (ret < 0)
		return ret;
	p->tuple.saddr4 = addr;
	p->tuple.sport = nat->port;
	return 0;
}

#endif
