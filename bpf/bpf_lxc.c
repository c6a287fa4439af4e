/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Per-endpoint datapath, attached with tcx to the HOST side of a pod's veth:
 *   cil_from_container  tcx ingress: packets the pod sends
 *   cil_to_container    tcx egress:  packets the node's stack sends to the pod
 * One object serves every endpoint; lib/config/endpoint.h lists the per-endpoint
 * constants the loader writes into .rodata. See bpf/README.md.
 */
#define EVENT_SOURCE_FILE DROP_FILE_LXC

#include "lib/common.h"
#include "lib/config/node.h"
#include "lib/config/endpoint.h"
#include "lib/metrics.h"
#include "lib/events.h"
#include "lib/eth.h"
#include "lib/pkt.h"
#include "lib/ipv4.h"
#include "lib/ipv6.h"
#include "lib/arp.h"
#include "lib/icmp6.h"
#include "lib/conntrack.h"
#include "lib/endpoints.h"
#include "lib/ipcache.h"
#include "lib/policy.h"
#include "lib/lb.h"
#include "lib/lb_xlate.h"
#include "lib/nodeport.h"

char _license[] SEC("license") = "Dual BSD/GPL";

/* What the program edge needs to report a drop. */
struct lxc_verdict {
	__u32 src_label;
	__u32 dst_label;
	__u16 dst_id;    /* destination endpoint ID, 0 if not local */
	__u16 drop_ep;   /* endpoint whose decision drops (metrics key, event source) */
	__u8 drop_dir;   /* METRIC_INGRESS / METRIC_EGRESS of drop_ep */
	__u8 ipv6;
	__be16 rev_nat;  /* the service of a translated connection, 0 if none */
};

/*
 * lxc_drop, lxc_egress and lxc_ingress are global BPF functions: the verifier checks each once,
 * on its own, instead of once per call site with every caller state (v4 and v6, from- and
 * to-container). That cuts a per-endpoint load from ~60k to ~14k verified instructions.
 * Global functions take pointers only to plain structs and must check them for NULL.
 */

/* Report a drop: event + metric. Kept out of line, it is the cold path. */
__noinline int lxc_drop(struct __sk_buff *ctx, int ret, const struct lxc_verdict *v, __u32 len)
{
	__u8 reason = (__u8)-ret;

	if (!v)
		return TC_ACT_SHOT;
	send_drop_notify(ctx, v->drop_ep, reason, v->src_label, v->dst_label, v->dst_id, v->ipv6,
			 ctx->ifindex, 0, v->rev_nat);
	update_metrics(v->drop_ep, len, v->drop_dir, reason);
	return TC_ACT_SHOT;
}

/* Convert an internal result into a tc verdict; drops are reported here only. */
static __always_inline int lxc_finish(struct __sk_buff *ctx, int ret, const struct lxc_verdict *v,
				      __u32 len)
{
	if (ret >= 0)
		return ret;
	return lxc_drop(ctx, ret, v, len);
}

/* CT state of a packet at `side` (`st`, may be NULL: the entry's service fields); ICMP errors are
 * looked up through the packet they quote, which travelled the other way (seen at the opposite
 * side). */
static __always_inline int lxc_ct_state(struct pktinfo *p, __u8 side, __u32 len, __u8 *seen,
					struct ct_state *st)
{
	struct ct_key key;

	if (p->kind == PKT_ICMP_ERROR) {
		key = p->inner;
		return ct_lookup_related(p->ipv6, &key, side ^ CT_KEY_F_INGRESS);
	}
	if (p->kind != PKT_TRACKED)
		return CT_NEW;
	key = p->tuple;
	return ct_lookup(p->ipv6, &key, side, p->tcp_flags, len, seen, st);
}

static __always_inline int lxc_ct_create(struct pktinfo *p, __u8 side, __u32 len, __u32 src_id,
					 const struct ct_state *st)
{
	struct ct_key key;

	if (p->kind != PKT_TRACKED)
		return 0;
	key = p->tuple;
	return ct_create(p->ipv6, &key, side, p->tcp_flags, len, src_id, st);
}

/* Identity of a peer address: the local endpoint's when it is one (`ep`), else what the
 * ipcache holds for it (*info, NULL when nothing), else ID_WORLD. */
static __always_inline __u32 lxc_peer_identity(__u8 ipv6, const __u8 *addr,
					       const struct endpoint_info *ep,
					       const struct remote_endpoint_info **info)
{
	if (ep)
		return ep->sec_identity;
	*info = lookup_remote_endpoint(ipv6, addr);
	return remote_identity(*info);
}

/* What the stages of lxc_egress learn about a packet and hand to the next. */
struct lxc_egress_state {
	const struct endpoint_info *ep;           /* local destination endpoint, or NULL */
	const struct remote_endpoint_info *info;  /* ipcache entry of a non-local destination */
	int ct;                                   /* CT_* at this endpoint's egress */
	int trace;                                /* send trace events for this packet */
	struct ct_state st;                       /* what the CT entry says (replies: translated?) */
	struct lb_xlate x;                        /* the service translation of stage 1 */
	__u8 xlated;                              /* stage 1 translated the destination */
	__u8 pad[3];
};

/*
 * Stage 1, service translation (IPv4 TCP / UDP; connections whose packets conntrack does not know
 * yet: a service connection's entries are keyed by the translated tuple, so only its first
 * packet, or one of a connection the service entry alone knows, gets here): a packet to a service
 * frontend gets a backend (lib/lb_xlate.h) and its destination DNATed to it, so that conntrack,
 * policy and routing see the backend. A pod's own sockets are normally translated by socket-LB
 * (bpf_sock.c) before any packet exists; this is for what no socket hook sees.
 */
static __always_inline int lxc_egress_services(struct __sk_buff *ctx, struct pktinfo *p,
					       struct lxc_verdict *v, struct lxc_egress_state *s,
					       __u32 len)
{
	struct lb_lookup_key k;
	struct lb_service *svc;
	int ret;

	if (p->ipv6 || p->kind != PKT_TRACKED ||
	    (p->tuple.nexthdr != CIL_IPPROTO_TCP && p->tuple.nexthdr != CIL_IPPROTO_UDP))
		return 0;
	svc = lb_lookup_in_cluster(p, &k);
	if (!svc)
		return 0;
	v->rev_nat = svc->rev_nat_index;
	if (svc->count == 0)
		return -DROP_NO_SERVICE;
	ret = lb_xlate_backend(p, &k, svc, &s->x, len, SECLABEL);
	if (ret < 0)
		return ret;
	ret = lb4_xlate_dst(ctx, p, &s->x);
	if (ret < 0)
		return ret;
	s->xlated = 1;
	return 0;
}

/*
 * Stages 1 and 2, conntrack, services and destination: the CT state at this endpoint's egress
 * (a new connection meets stage 1 first and is looked up again if translated), then the
 * destination: a local endpoint (cilium_lxc), else the ipcache's remote endpoint info. The remote
 * identity is needed for policy (new connections) and events only: established traffic to a
 * non-local destination that is not traced skips the ipcache.
 */
static __always_inline int lxc_egress_lookup(struct __sk_buff *ctx, struct pktinfo *p,
					     struct lxc_verdict *v, struct lxc_egress_state *s, __u32 len)
{
	__u8 seen = 0;
	int ret;

	s->ct = lxc_ct_state(p, CT_SIDE_EGRESS, len, &seen, &s->st);
	if (s->ct == CT_NEW) {
		ret = lxc_egress_services(ctx, p, v, s, len);
		if (ret < 0)
			return ret;
		if (s->xlated)
			s->ct = lxc_ct_state(p, CT_SIDE_EGRESS, len, &seen, &s->st);
	}
	s->trace = trace_wanted(s->ct, p->tuple.nexthdr, p->tcp_flags, seen);
	s->ep = lookup_endpoint(p->ipv6, p->tuple.daddr6);
	if (s->ep || s->ct == CT_NEW || s->trace)
		v->dst_label = lxc_peer_identity(p->ipv6, p->tuple.daddr6, s->ep, &s->info);
	if (s->ep && (s->ep->flags & ENDPOINT_F_HOST))
		s->ep = NULL; /* the node itself: its stack delivers */
	if (s->ep)
		v->dst_id = s->ep->lxc_id;
	return 0;
}

/*
 * Stage 3, policy for a new connection: this endpoint's egress policy, then, for a local
 * destination, that endpoint's ingress policy with its own CT side (drops attributed to it);
 * the CT entries are created once both allow. A translated connection's entries carry its
 * service (rev_nat_index), which translates the replies back.
 */
static __always_inline int lxc_egress_policy(struct __sk_buff *ctx, struct pktinfo *p,
					     struct lxc_verdict *v, const struct lxc_egress_state *s,
					     __u32 len)
{
	struct ct_state st = { .rev_nat_index = s->xlated ? s->x.rev_nat_index : 0 };
	const struct endpoint_info *ep = s->ep;
	__u8 proto = p->tuple.nexthdr;
	int ret;

	if (s->ct == CT_NEW) {
		ret = policy_enforce(ctx, LXC_ID, v->dst_label, 1, proto, p->policy_dport, p->ipv6,
				     POLICY_AUDIT_MODE);
		if (ret < 0)
			return ret;
	}

	if (ep) {
		int state_in = lxc_ct_state(p, CT_SIDE_INGRESS, len, NULL, NULL);

		if (state_in == CT_NEW) {
			v->drop_ep = ep->lxc_id;
			v->drop_dir = METRIC_INGRESS;
			ret = policy_enforce(ctx, ep->lxc_id, SECLABEL, 0, proto, p->policy_dport,
					     p->ipv6, POLICY_AUDIT_MODE);
			if (ret < 0)
				return ret;
			ret = lxc_ct_create(p, CT_SIDE_INGRESS, len, SECLABEL, &st);
			if (ret < 0)
				return ret;
			v->drop_ep = LXC_ID;
			v->drop_dir = METRIC_EGRESS;
		}
	}

	if (s->ct == CT_NEW) {
		ret = lxc_ct_create(p, CT_SIDE_EGRESS, len, SECLABEL, &st);
		if (ret < 0)
			return ret;
	}
	return 0;
}

/*
 * A reply of a connection that came in through the node's external device (its CT entry is
 * flagged CT_F_NODEPORT): translated back to frontend -> client and sent out of that device.
 * TC_ACT_OK when no NAT entry matches (the stack routes it as it is).
 */
static __always_inline int lxc_nodeport_reply(struct __sk_buff *ctx, struct pktinfo *p,
					      struct lxc_verdict *v, const struct lxc_egress_state *s,
					      __u32 len)
{
	struct trace_xlate tx;
	struct lb_xlate x;
	int ifindex;

	ifindex = nodeport_rev_xlate(ctx, p, &x);
	if (ifindex <= 0)
		return ifindex;
	v->rev_nat = x.rev_nat_index;
	if (s->trace) {
		v->dst_label = remote_identity(lookup_remote_endpoint(0, p->tuple.daddr6));
		lb_trace_xlate(&tx, &x, 1);
		send_trace_xlate(ctx, LXC_ID, TRACE_TO_NETWORK, SECLABEL, v->dst_label, 0, s->ct, 0,
				 (__u32)ifindex, &tx);
	}
	update_metrics(LXC_ID, len, METRIC_EGRESS, 0);
	return nodeport_redirect_out(ctx, (__u32)ifindex);
}

/*
 * Stage 4, routing: a local endpoint gets the packet straight into its pod (TTL / hop limit
 * - 1, MACs rewritten, redirect to the peer device); everything else goes to the node's stack,
 * which routes it. A reply of a translated connection gets its source translated back to the
 * service frontend first (the client pod is local: it translated the connection), and a reply
 * to a connection from outside the node goes back out of the device it came in on.
 * Tunnel: a destination whose remote endpoint info carries a tunnel_endpoint (a pod on another
 * node) would be encapsulated towards that node here, before the stack case. No overlay exists
 * yet, so the stack routes those too; an overlay must then look the ipcache up for established
 * traffic as well (stage 2 skips it).
 */
static __always_inline int lxc_egress_route(struct __sk_buff *ctx, struct pktinfo *p,
					    struct lxc_verdict *v, struct lxc_egress_state *s,
					    __u32 len)
{
	const struct endpoint_info *ep = s->ep;
	struct trace_xlate tx = {};
	int ret;

	if (s->ct == CT_REPLY && s->st.rev_nat_index && !p->ipv6) {
		if (s->st.flags & CT_F_NODEPORT) {
			ret = lxc_nodeport_reply(ctx, p, v, s, len);
			if (ret != TC_ACT_OK)
				return ret;
		} else if (ep) {
			ret = lb4_rev_nat(ctx, p, s->st.rev_nat_index, &s->x);
			if (ret < 0)
				return ret;
			if (ret == 0)
				lb_trace_xlate(&tx, &s->x, 1);
		}
	} else if (s->xlated) {
		lb_trace_xlate(&tx, &s->x, 0);
	}

	if (ep) {
		__u32 ifindex = ep->ifindex;
		__u16 dst_id = ep->lxc_id;

		ret = p->ipv6 ? ipv6_dec_hoplimit(ctx) : ipv4_dec_ttl(ctx);
		if (ret < 0)
			return ret;
		ret = eth_rewrite_macs(ctx, ep->mac, ep->node_mac);
		if (ret < 0)
			return ret;
		/* Delivery into a pod is observed from that pod's side (as when its own program
		 * delivers it), so Hubble reads the direction as ingress to the destination. */
		if (s->trace)
			send_trace_xlate(ctx, dst_id, TRACE_TO_LXC, SECLABEL, v->dst_label, dst_id,
					 s->ct, p->ipv6, ifindex, &tx);
		update_metrics(LXC_ID, len, METRIC_EGRESS, 0);
		update_metrics(dst_id, len, METRIC_INGRESS, 0);
		return bpf_redirect_peer(ifindex, 0);
	}

	if (s->trace)
		send_trace_xlate(ctx, LXC_ID, TRACE_TO_STACK, SECLABEL, v->dst_label, 0, s->ct,
				 p->ipv6, ctx->ifindex, &tx);
	update_metrics(LXC_ID, len, METRIC_EGRESS, 0);
	return TC_ACT_OK;
}

/* A packet the pod sent (source already validated), through the stages above. */
__noinline int lxc_egress(struct __sk_buff *ctx, struct pktinfo *p, struct lxc_verdict *v,
			  __u32 len)
{
	struct lxc_egress_state s = {};
	int ret;

	if (!p || !v)
		return -DROP_INVALID;

	ret = lxc_egress_lookup(ctx, p, v, &s, len);
	if (ret < 0)
		return ret;
	if (MONITOR_AGGREGATION == 0)
		send_trace_notify(ctx, LXC_ID, TRACE_FROM_LXC, SECLABEL, v->dst_label, v->dst_id,
				  s.ct, p->ipv6, ctx->ifindex);
	ret = lxc_egress_policy(ctx, p, v, &s, len);
	if (ret < 0)
		return ret;
	return lxc_egress_route(ctx, p, v, &s, len);
}

static __always_inline int lxc_from_ipv4(struct __sk_buff *ctx, struct pktinfo *p,
					 struct lxc_verdict *v, __u32 len)
{
	int ret;

	v->ipv6 = 0;
	ret = parse_ipv4(ctx, p);
	if (ret < 0)
		return ret;
	if (LXC_IPV4 == 0 || p->tuple.saddr4 != LXC_IPV4)
		return -DROP_INVALID_SIP;
	return lxc_egress(ctx, p, v, len);
}

static __always_inline int lxc_from_ipv6(struct __sk_buff *ctx, struct pktinfo *p,
					 struct lxc_verdict *v, __u32 len)
{
	int ret;

	v->ipv6 = 1;
	ret = parse_ipv6(ctx, p);
	if (ret < 0)
		return ret;
	if (icmp6_ndisc_on_link(ctx, p)) {
		if (p->icmp_type == ICMPV6_NEIGH_SOLICIT)
			return handle_ipv6_ns(ctx, p);
		return TC_ACT_OK; /* link-local control traffic for the node */
	}
	if (!ipv6_addr_eq(p->tuple.saddr6, LXC_IPV6))
		return -DROP_INVALID_SIP;
	return lxc_egress(ctx, p, v, len);
}

SEC("tc")
int cil_from_container(struct __sk_buff *ctx)
{
	struct lxc_verdict v = {
		.src_label = SECLABEL,
		.drop_ep = LXC_ID,
		.drop_dir = METRIC_EGRESS,
	};
	struct pktinfo p = {};
	__u32 len = ctx->len;
	int ret;

	switch (bpf_ntohs(ctx->protocol)) {
	case ETH_P_IP:
		ret = lxc_from_ipv4(ctx, &p, &v, len);
		break;
	case ETH_P_IPV6:
		ret = lxc_from_ipv6(ctx, &p, &v, len);
		break;
	case ETH_P_ARP:
		ret = handle_arp(ctx);
		break;
	default:
		ret = -DROP_UNKNOWN_L3;
		break;
	}
	return lxc_finish(ctx, ret, &v, len);
}

/*
 * A packet the node's stack delivers to the pod: replies and related packets
 * pass, new connections need this endpoint's ingress policy. A reply of a
 * connection this pod made to a service (translated at its egress) gets its
 * source translated back to the service frontend.
 */
__noinline int lxc_ingress(struct __sk_buff *ctx, struct pktinfo *p, struct lxc_verdict *v,
			   __u32 len)
{
	struct trace_xlate tx = {};
	struct endpoint_info *ep;
	struct ct_state st = {};
	struct lb_xlate x;
	__u8 proto;
	__u8 seen = 0;
	int state, trace, ret;

	if (!p || !v)
		return -DROP_INVALID;
	proto = p->tuple.nexthdr;

	state = lxc_ct_state(p, CT_SIDE_INGRESS, len, &seen, &st);
	trace = trace_wanted(state, proto, p->tcp_flags, seen);

	if (state == CT_NEW || trace) {
		const struct remote_endpoint_info *info = NULL;

		ep = lookup_endpoint(p->ipv6, p->tuple.saddr6);
		v->src_label = lxc_peer_identity(p->ipv6, p->tuple.saddr6, ep, &info);
	}

	if (state == CT_NEW) {
		/* The node itself reaches its pods whatever their ingress policy says (kubelet
		 * probes), unless ALLOW_LOCALHOST is 0 (--allow-localhost=policy). */
		if (!(ALLOW_LOCALHOST && v->src_label == ID_HOST)) {
			ret = policy_enforce(ctx, LXC_ID, v->src_label, 0, proto, p->policy_dport,
					     p->ipv6, POLICY_AUDIT_MODE);
			if (ret < 0)
				return ret;
		}
		ret = lxc_ct_create(p, CT_SIDE_INGRESS, len, v->src_label, NULL);
		if (ret < 0)
			return ret;
	}

	if (state == CT_REPLY && st.rev_nat_index && !(st.flags & CT_F_NODEPORT) && !p->ipv6) {
		ret = lb4_rev_nat(ctx, p, st.rev_nat_index, &x);
		if (ret < 0)
			return ret;
		if (ret == 0)
			lb_trace_xlate(&tx, &x, 1);
	}

	if (trace)
		send_trace_xlate(ctx, LXC_ID, TRACE_TO_LXC, v->src_label, SECLABEL, LXC_ID, state,
				 p->ipv6, ctx->ifindex, &tx);
	update_metrics(LXC_ID, len, METRIC_INGRESS, 0);
	return TC_ACT_OK;
}

static __always_inline int lxc_to_ipv4(struct __sk_buff *ctx, struct pktinfo *p,
					 struct lxc_verdict *v, __u32 len)
{
	int ret;

	v->ipv6 = 0;
	ret = parse_ipv4(ctx, p);
	if (ret < 0)
		return ret;
	return lxc_ingress(ctx, p, v, len);
}

static __always_inline int lxc_to_ipv6(struct __sk_buff *ctx, struct pktinfo *p,
					 struct lxc_verdict *v, __u32 len)
{
	int ret;

	v->ipv6 = 1;
	ret = parse_ipv6(ctx, p);
	if (ret < 0)
		return ret;
	if (icmp6_ndisc_on_link(ctx, p))
		return TC_ACT_OK; /* the node resolving / querying the pod */
	return lxc_ingress(ctx, p, v, len);
}

SEC("tc")
int cil_to_container(struct __sk_buff *ctx)
{
	struct lxc_verdict v = {
		.dst_label = SECLABEL,
		.dst_id = LXC_ID,
		.drop_ep = LXC_ID,
		.drop_dir = METRIC_INGRESS,
	};
	struct pktinfo p = {};
	__u32 len = ctx->len;
	int ret;

	switch (bpf_ntohs(ctx->protocol)) {
	case ETH_P_IP:
		ret = lxc_to_ipv4(ctx, &p, &v, len);
		break;
	case ETH_P_IPV6:
		ret = lxc_to_ipv6(ctx, &p, &v, len);
		break;
	default:
		ret = TC_ACT_OK; /* ARP and other L2 from the node: the pod answers itself */
		break;
	}
	return lxc_finish(ctx, ret, &v, len);
}
