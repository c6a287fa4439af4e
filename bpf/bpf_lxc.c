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
#include "lib/proxy.h"
#include "lib/overlay.h"

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

/* CT state of a packet at `side` (CT_SIDE_*, | CT_LOOKUP_REPLY_FIRST when it is known to be a
 * reply; `st`: the entry's service fields; `seen`: what its direction saw before, ct_seen_flags);
 * ICMP errors are looked up through the packet they quote, which travelled the other way (seen
 * at the opposite side). A global function: each call site sees an
 * int, and the verifier walks conntrack's TCP state machine once instead of once per caller
 * state. */
__noinline int lxc_ct_state(struct pktinfo *p, __u32 side, __u32 len, __u8 *seen, struct ct_state *st)
{
	struct ct_key key;

	if (!p || !seen || !st)
		return CT_NEW;
	if (p->kind == PKT_ICMP_ERROR) {
		key = p->inner;
		return ct_lookup_related(p->ipv6, &key, (side & CT_KEY_F_INGRESS) ^ CT_KEY_F_INGRESS);
	}
	if (p->kind != PKT_TRACKED)
		return CT_NEW;
	key = p->tuple;
	return ct_lookup(p->ipv6, &key, side, p->tcp_flags, len, seen, st);
}

__noinline int lxc_ct_create(struct pktinfo *p, __u32 side, __u32 len, __u32 src_id, const struct ct_state *st)
{
	struct ct_key key;

	if (!p || !st)
		return -DROP_INVALID;
	if (p->kind != PKT_TRACKED)
		return 0;
	key = p->tuple;
	return ct_create(p->ipv6, &key, side, p->tcp_flags, len, src_id, st);
}

/* policy_enforce's arguments for lxc_policy (a global function takes five at most). */
struct lxc_policy_query {
	__u32 remote_id;
	__u16 ep_id;
	__u16 dport_be;
	__u8 egress;
	__u8 proto;
	__u8 ipv6;
	__u8 pad;
};

/* policy_enforce for a new connection, with this endpoint's POLICY_AUDIT_MODE. A global
 * function: the verifier walks the policy lookup and its verdict event once, instead of at each
 * of the three call sites with every caller state (most of a copy's verification before). Only
 * new connections get here: established traffic pays nothing for the call. */
__noinline int lxc_policy(struct __sk_buff *ctx, const struct lxc_policy_query *q)
{
	if (!q)
		return -DROP_INVALID;
	return policy_enforce(ctx, q->ep_id, q->remote_id, q->egress, q->proto, q->dport_be, q->ipv6,
			      POLICY_AUDIT_MODE);
}

/* proxy_record for a new connection the L7 proxy takes: global, verified once (cold path). */
__noinline int lxc_proxy_record(const struct pktinfo *p, __u32 ep_id, __u32 egress, __u32 src_id,
				__u32 dst_id)
{
	if (!p)
		return -DROP_INVALID;
	return proxy_record(p, (__u16)ep_id, (__u8)egress, src_id, dst_id);
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

/* CT_F_CLUSTER_PEER for a new connection's entry when its peer (`ep`: the peer's local endpoint,
 * NULL for one of another node) has a pod's identity `id`, else 0. */
static __always_inline __u8 lxc_cluster_peer_flag(const struct endpoint_info *ep, __u32 id)
{
	return !ep && overlay_is_cluster_identity(id) ? CT_F_CLUSTER_PEER : 0;
}

/* What the stages of lxc_egress learn about a packet and hand to the next. */
struct lxc_egress_state {
	const struct endpoint_info *ep;           /* local destination endpoint, or NULL */
	const struct remote_endpoint_info *info;  /* ipcache entry of a non-local destination */
	int ct;                                   /* CT_* at this endpoint's egress */
	int trace;                                /* send trace events for this packet */
	struct ct_state st;                       /* what the CT entry says (replies: translated?) */
	const struct lb_xlate *x;                 /* stage 1's translation: rev_nat_index 0 = none */
	__u16 proxy_port;                         /* stage 3: a new connection goes to this L7 proxy */
};

/* lxc_egress's `stage`: whether stage 1 ran for the packet (its result is in `x`) */
#define LXC_SVC_UNCHECKED 0
#define LXC_SVC_DONE 1
/* lxc_egress's answers that its caller completes (lxc_from_ip), so that the frames of lxc_egress
 * and of these global functions are never on the stack together:
 *   LXC_NEED_SERVICES       a new connection stage 1 has not seen: translate, then call again
 *   LXC_NODEPORT_REPLY | t  a reply to a connection from outside the node: lxc_nodeport_reply(t),
 *                           t = the CT state + 1 when traced, else 0 */
#define LXC_NEED_SERVICES 0x1000
#define LXC_NODEPORT_REPLY 0x2000
/* LXC_ROUTE_NATIVE [| LXC_ROUTE_CLUSTER_PEER]: native routing may send it from here
 * (lxc_route_native), else the stack's; with LXC_ROUTE_CLUSTER_PEER its connection's entry says
 * the peer is a pod (CT_F_CLUSTER_PEER) */
#define LXC_ROUTE_NATIVE 0x4000
#define LXC_ROUTE_CLUSTER_PEER 0x8000
/* LXC_TO_PROXY | port: hand the packet to the L7 proxy at port (0: to the proxy's own socket of
 * the tuple, a reply of a connection the proxy made), proxy_assign */
#define LXC_TO_PROXY 0x10000

/*
 * Stage 1, service translation (IPv4 TCP / UDP that conntrack does not know: a service
 * connection's entries are keyed by the translated tuple, so its packets to the frontend miss,
 * while established pod-to-pod traffic never gets here): a packet to a service frontend gets a
 * backend (lib/lb_xlate.h) and its destination DNATed to it, so that conntrack, policy and routing
 * see the backend. A pod's own sockets are normally translated by socket-LB (bpf_sock.c) before
 * any packet exists; this is for what no socket hook sees.
 * 1: translated (`x`); 0: not a service; -DROP_*, with x->rev_nat_index naming the service.
 * lxc_egress asks for it (LXC_NEED_SERVICES) and is called again after it, so that its frame and
 * this one are never on the stack together; it and the reverse translations below are global
 * functions, verified once on their own: inlined, they would multiply the states the verifier
 * walks in lxc_egress.
 */
__noinline int lxc_egress_services(struct __sk_buff *ctx, struct pktinfo *p, struct lb_xlate *x)
{
	struct lb_lookup_key k;
	struct lb_service *svc;
	int ret;

	if (!p || !x)
		return -DROP_INVALID;
	x->rev_nat_index = 0;
	if (p->ipv6 || p->kind != PKT_TRACKED ||
	    (p->tuple.nexthdr != CIL_IPPROTO_TCP && p->tuple.nexthdr != CIL_IPPROTO_UDP))
		return 0;
	svc = lb4_lookup_in_cluster(p, &k);
	if (!svc)
		return 0;
	if (svc->count == 0) {
		x->rev_nat_index = svc->rev_nat_index;
		return -DROP_NO_SERVICE;
	}
	ret = lb4_xlate_backend(p, &k, svc, x, ctx->len, SECLABEL);
	if (ret < 0)
		return ret;
	ret = lb4_xlate_dst(ctx, p, x);
	if (ret < 0)
		return ret;
	return 1;
}

/* A reply of a connection this pod's peer translated (its CT entry carries `rev_nat`): the source
 * becomes the service frontend; `tx` gets what the trace event reports. lb4_rev_nat's results. */
__noinline int lxc_rev_nat(struct __sk_buff *ctx, struct pktinfo *p, __u32 rev_nat, struct trace_xlate *tx)
{
	struct lb_xlate x;
	int ret;

	if (!p || !tx)
		return -DROP_INVALID;
	if (p->ipv6)
		return 1;
	ret = lb4_rev_nat(ctx, p, (__be16)rev_nat, &x);
	if (ret == 0)
		lb_trace_xlate(tx, &x, 1);
	return ret;
}

/*
 * Stages 1 and 2, conntrack, services and destination: the CT state at this endpoint's egress
 * (a new connection meets stage 1 first and is looked up again if translated), then the
 * destination: a local endpoint (cilium_lxc), else the ipcache's remote endpoint info. The remote
 * identity is needed for policy (new connections) and events only: established traffic to a
 * non-local destination that is not traced skips the ipcache.
 */
static __always_inline int lxc_egress_lookup(struct pktinfo *p, struct lxc_verdict *v,
					     struct lxc_egress_state *s, int stage, __u32 len)
{
	__u8 seen = 0;

	s->ct = lxc_ct_state(p, CT_SIDE_EGRESS, len, &seen, &s->st);
	if (s->ct == CT_NEW && stage == LXC_SVC_UNCHECKED)
		return LXC_NEED_SERVICES;
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
 * The proxy's upstream connections use the client's address with a port the kernel picks, so a
 * pod's own connection can come to use a tuple an upstream connection used (or still uses), and
 * the other way round. A new connection (a TCP SYN, any UDP datagram) whose pod-side ingress
 * entry is of the other kind (CT_F_FROM_PROXY against `from_proxy`, the packet's mark) is not that
 * entry's connection: it gets its own policy decision. Otherwise a pod's SYN would be delivered
 * past the L7 proxy, and its server's SYN-ACK sent to a proxy socket long closed (a connect()
 * that times out).
 */
static __always_inline int ct_other_origin(const struct pktinfo *p, const struct ct_state *st, int from_proxy)
{
	if (!(st->flags & CT_F_FROM_PROXY) == !from_proxy)
		return 0;
	if (p->tuple.nexthdr == CIL_IPPROTO_UDP)
		return 1;
	return p->tuple.nexthdr == CIL_IPPROTO_TCP &&
	       (p->tcp_flags & (TCP_FLAG_SYN | TCP_FLAG_ACK)) == TCP_FLAG_SYN;
}

/*
 * Stage 3, policy for a new connection: this endpoint's egress policy, then, for a local
 * destination, that endpoint's ingress policy with its own CT side (drops attributed to it);
 * the CT entries are created once both allow. A translated connection's entries carry its
 * service (rev_nat_index), which translates the replies back.
 * An allow with a proxy port (egress first, else the local destination's ingress) sends the
 * connection to that L7 proxy (s->proxy_port, lib/proxy.h): only this endpoint's entry is made,
 * flagged CT_F_PROXY_REDIRECT; the proxy's own connection to the destination meets the
 * destination's ingress policy at its to-container.
 */
static __always_inline int lxc_egress_policy(struct __sk_buff *ctx, struct pktinfo *p,
					     struct lxc_verdict *v, struct lxc_egress_state *s,
					     __u32 len)
{
	struct ct_state st = { .rev_nat_index = s->x->rev_nat_index };
	const struct endpoint_info *ep = s->ep;
	__u8 proto = p->tuple.nexthdr;
	int ret;

	if (s->ct == CT_NEW) {
		struct lxc_policy_query q = { .remote_id = v->dst_label, .ep_id = LXC_ID,
					      .dport_be = p->policy_dport, .egress = 1,
					      .proto = proto, .ipv6 = p->ipv6 };

		ret = lxc_policy(ctx, &q);
		if (ret < 0)
			return ret;
		if (ret > 0) {
			s->proxy_port = (__u16)ret;
			ret = lxc_proxy_record(p, LXC_ID, 1, SECLABEL, v->dst_label);
			if (ret < 0)
				return ret;
		}
	}

	if (ep && !s->proxy_port) {
		struct ct_state st_in;
		__u8 seen_in;
		/* a reply here is a reply there too: its entry is looked for first */
		int state_in = lxc_ct_state(p, CT_SIDE_INGRESS | (s->ct == CT_REPLY ? CT_LOOKUP_REPLY_FIRST : 0),
					    len, &seen_in, &st_in);

		if (state_in == CT_ESTABLISHED && ct_other_origin(p, &st_in, 0))
			state_in = CT_NEW;

		if (state_in == CT_NEW) {
			struct lxc_policy_query q = { .remote_id = SECLABEL, .ep_id = ep->lxc_id,
						      .dport_be = p->policy_dport, .proto = proto,
						      .ipv6 = p->ipv6 };

			v->drop_ep = ep->lxc_id;
			v->drop_dir = METRIC_INGRESS;
			ret = lxc_policy(ctx, &q);
			if (ret < 0)
				return ret;
			if (ret > 0 && s->ct == CT_NEW) {
				s->proxy_port = (__u16)ret;
				ret = lxc_proxy_record(p, ep->lxc_id, 0, SECLABEL, v->dst_label);
			} else {
				ret = lxc_ct_create(p, CT_SIDE_INGRESS, len, SECLABEL, &st);
			}
			if (ret < 0)
				return ret;
			v->drop_ep = LXC_ID;
			v->drop_dir = METRIC_EGRESS;
		}
	}

	if (s->ct == CT_NEW) {
		if (s->proxy_port) {
			st.flags |= CT_F_PROXY_REDIRECT;
			st.proxy_port = s->proxy_port;
		}
		st.flags |= lxc_cluster_peer_flag(ep, v->dst_label);
		ret = lxc_ct_create(p, CT_SIDE_EGRESS, len, SECLABEL, &st);
		if (ret < 0)
			return ret;
	}
	return 0;
}

/*
 * A reply of a connection that came in through the node's external device (its CT entry is
 * flagged CT_F_NODEPORT): translated back to frontend -> client and sent out of that device;
 * traced when `trace` (its CT state + 1; 0: not traced). TC_ACT_OK when no NAT entry matches (the
 * stack routes it as it is).
 */
__noinline int lxc_nodeport_reply(struct __sk_buff *ctx, struct pktinfo *p, struct lxc_verdict *v, int trace)
{
	struct lb_xlate x;
	int ifindex;

	if (!p || !v)
		return -DROP_INVALID;
	ifindex = nodeport_rev_xlate(ctx, p, &x);
	if (ifindex < 0)
		return ifindex;
	if (ifindex == 0) {
		update_metrics(LXC_ID, ctx->len, METRIC_EGRESS, 0);
		return TC_ACT_OK; /* no NAT entry: the stack routes it as it is */
	}
	v->rev_nat = x.rev_nat_index;
	return nodeport_reply_out(ctx, p, &x, (__u32)ifindex, LXC_ID, SECLABEL, trace);
}

#define LXC_TRACE_NO_XLATE 0
#define LXC_TRACE_XLATE_FWD 1  /* stage 1 translated the destination: report `x` */
#define LXC_TRACE_XLATE_DONE 2 /* the trace translation is filled in already (a reply's) */

static __always_inline void lxc_trace_xlate(struct trace_xlate *tx, const struct lb_xlate *x, int xlate)
{
	if (xlate == LXC_TRACE_XLATE_FWD)
		lb_trace_xlate(tx, x, 0);
	else if (xlate == LXC_TRACE_NO_XLATE)
		__builtin_memset(tx, 0, sizeof(*tx));
}

/*
 * Native routing (no ENCAP_IFINDEX): an IPv4 packet for a pod of another node (a cluster identity
 * in the ipcache; `cluster_peer`: its connection's CT entry says so already) leaves from here
 * through the device the node's routes name (bpf_fib_lookup: TTL - 1 and the next hop's MAC, as
 * the node's forwarding would), without the stack's forwarding path. TC_ACT_OK, the stack's as
 * before, whenever the stack has more to say: a TTL of 1 (its ICMP error), too big for the device,
 * no route, a neighbour not resolved yet (the stack resolves it).
 * lxc_egress asks for it (LXC_ROUTE_NATIVE) once its own frame is off the stack.
 */
__noinline int lxc_route_native(struct __sk_buff *ctx, struct pktinfo *p, int cluster_peer)
{
	struct bpf_fib_lookup fib = {};
	int ret;

	if (!p)
		return TC_ACT_OK;
	/* (an ipcache lookup walks the LPM trie's nodes: with the cache cold between a connection's
	 * packets, a few hundred ns of each one's time on the real path) */
	if (!cluster_peer &&
	    !overlay_is_cluster_identity(remote_identity(lookup_remote_endpoint(0, p->tuple.daddr6))))
		return TC_ACT_OK;
	fib.family = 2; /* AF_INET */
	fib.l4_protocol = p->tuple.nexthdr;
	fib.ipv4_src = p->tuple.saddr4;
	fib.ipv4_dst = p->tuple.daddr4;
	fib.ifindex = ctx->ifindex;
	/* tot_len 0: the helper checks the packet (GSO too) against the device's MTU */
	if (bpf_fib_lookup(ctx, &fib, sizeof(fib), 0) != BPF_FIB_LKUP_RET_SUCCESS)
		return TC_ACT_OK;
	ret = ipv4_l2_forward(ctx, fib.dmac, fib.smac);
	if (ret < 0)
		return ret == -DROP_TTL_EXCEEDED ? TC_ACT_OK : ret;
	return bpf_redirect(fib.ifindex, 0);
}

/*
 * Stage 4, routing: a local endpoint gets the packet straight into its pod (TTL / hop limit
 * - 1, MACs rewritten, redirect to the peer device); everything else goes to the node's stack,
 * which routes it. A reply of a translated connection gets its source translated back to the
 * service frontend first (the client pod is local: it translated the connection), and a reply
 * to a connection from outside the node goes back out of the device it came in on.
 * With the VXLAN overlay (ENCAP_IFINDEX), a destination whose ipcache entry names a tunnel
 * endpoint (a pod on another node) is encapsulated towards that node with this endpoint's identity
 * as the VNI (lib/overlay.h) and sent to the overlay device, before the stack case; established
 * traffic looks the ipcache up here (stage 2 skips it). With native routing, what would go to the
 * stack goes through lxc_route_native first (LXC_ROUTE_NATIVE).
 */
static __always_inline int lxc_egress_route(struct __sk_buff *ctx, struct pktinfo *p,
					    struct lxc_verdict *v, struct lxc_egress_state *s,
					    __u32 len)
{
	const struct endpoint_info *ep = s->ep;
	struct trace_xlate tx;
	int xlate = LXC_TRACE_NO_XLATE;
	int ret;

	if (s->ct == CT_REPLY && s->st.rev_nat_index && ep) {
		ret = lxc_rev_nat(ctx, p, s->st.rev_nat_index, &tx);
		if (ret < 0)
			return ret;
		if (ret == 0)
			xlate = LXC_TRACE_XLATE_DONE;
	} else if (s->x->rev_nat_index) {
		xlate = LXC_TRACE_XLATE_FWD;
	}
	if (s->trace)
		lxc_trace_xlate(&tx, s->x, xlate); /* filled only when traced: the common case pays nothing */

	if (ep) {
		__u32 ifindex = ep->ifindex;
		__u16 dst_id = ep->lxc_id;

		ret = p->ipv6 ? ipv6_l2_forward(ctx, ep->mac, ep->node_mac)
			      : ipv4_l2_forward(ctx, ep->mac, ep->node_mac);
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

	if (ENCAP_IFINDEX) {
		const struct remote_endpoint_info *info = s->info;

		if (!info)
			info = lookup_remote_endpoint(p->ipv6, p->tuple.daddr6);
		if (info && info->tunnel_endpoint) {
			ret = overlay_set_key(ctx, info->tunnel_endpoint, SECLABEL);
			if (ret < 0)
				return ret;
			if (s->trace)
				send_trace_xlate(ctx, LXC_ID, TRACE_TO_OVERLAY, SECLABEL, v->dst_label, 0,
						 s->ct, p->ipv6, ENCAP_IFINDEX, &tx);
			update_metrics(LXC_ID, len, METRIC_EGRESS, 0);
			return bpf_redirect(ENCAP_IFINDEX, 0);
		}
	}

	if (s->trace)
		send_trace_xlate(ctx, LXC_ID, TRACE_TO_STACK, SECLABEL, v->dst_label, 0, s->ct,
				 p->ipv6, ctx->ifindex, &tx);
	update_metrics(LXC_ID, len, METRIC_EGRESS, 0);
	if (ENCAP_IFINDEX || p->ipv6)
		return TC_ACT_OK;
	return s->st.flags & CT_F_CLUSTER_PEER ? LXC_ROUTE_NATIVE | LXC_ROUTE_CLUSTER_PEER : LXC_ROUTE_NATIVE;
}

/* Stage 4 for a packet the L7 proxy at `port` takes (lib/proxy.h): traced and counted here, the
 * socket assigned by lxc_from_ip (proxy_assign), outside this frame. */
static __always_inline int lxc_egress_to_proxy(struct __sk_buff *ctx, struct lxc_verdict *v,
					       const struct lxc_egress_state *s, __u32 port, __u32 len)
{
	if (s->trace)
		send_trace_notify(ctx, LXC_ID, TRACE_TO_PROXY, SECLABEL, v->dst_label, 0, s->ct,
				  v->ipv6, ctx->ifindex);
	update_metrics(LXC_ID, len, METRIC_EGRESS, 0);
	return LXC_TO_PROXY | port;
}

/* A packet the pod sent (source already validated), through the stages above. `stage`:
 * LXC_SVC_*; `x`: stage 1's translation, its rev_nat_index 0 when there is none (and nothing else
 * of it read then). Only the first check reads `stage`, and nothing branches on the translation
 * before the routing stage: the verifier walks the stages once, not once per case. */
__noinline int lxc_egress(struct __sk_buff *ctx, struct pktinfo *p, struct lxc_verdict *v,
			  const struct lb_xlate *x, int stage)
{
	struct lxc_egress_state s = {};
	__u32 len = ctx->len;
	int ret;

	if (!p || !v || !x)
		return -DROP_INVALID;

	s.x = x;
	ret = lxc_egress_lookup(p, v, &s, stage, len);
	if (ret != 0)
		return ret;
	if (MONITOR_AGGREGATION == 0)
		send_trace_notify(ctx, LXC_ID, TRACE_FROM_LXC, SECLABEL, v->dst_label, v->dst_id,
				  s.ct, p->ipv6, ctx->ifindex);
	/* (only IPv4 connections are translated: the flag and rev_nat_index are on IPv4 entries) */
	if (s.ct == CT_REPLY && (s.st.flags & CT_F_NODEPORT))
		return LXC_NODEPORT_REPLY | (s.trace ? s.ct + 1 : 0);
	/* L7 proxy: replies of the proxy's own connections go back to its socket; a redirected
	 * connection's packets, and a new one whose policy says so, go to the proxy */
	if (s.ct == CT_REPLY && (s.st.flags & CT_F_FROM_PROXY))
		return lxc_egress_to_proxy(ctx, v, &s, 0, len);
	if (s.ct == CT_ESTABLISHED && (s.st.flags & CT_F_PROXY_REDIRECT))
		return lxc_egress_to_proxy(ctx, v, &s, s.st.proxy_port, len);
	ret = lxc_egress_policy(ctx, p, v, &s, len);
	if (ret < 0)
		return ret;
	if (s.proxy_port)
		return lxc_egress_to_proxy(ctx, v, &s, s.proxy_port, len);
	return lxc_egress_route(ctx, p, v, &s, len);
}

/* lxc_egress, with stage 1 in between when it asks for it (a new IPv4 TCP / UDP connection), and
 * the reply of a connection from outside the node completed when it says so. */
static __always_inline int lxc_from_ip(struct __sk_buff *ctx, struct pktinfo *p, struct lxc_verdict *v)
{
	struct lb_xlate x;
	int ret;

	x.rev_nat_index = 0;
	ret = lxc_egress(ctx, p, v, &x,
			 !p->ipv6 && p->kind == PKT_TRACKED &&
					 (p->tuple.nexthdr == CIL_IPPROTO_TCP || p->tuple.nexthdr == CIL_IPPROTO_UDP)
				 ? LXC_SVC_UNCHECKED
				 : LXC_SVC_DONE);
	if (ret == LXC_NEED_SERVICES) {
		ret = lxc_egress_services(ctx, p, &x);
		v->rev_nat = x.rev_nat_index;
		if (ret < 0)
			return ret;
		ret = lxc_egress(ctx, p, v, &x, LXC_SVC_DONE);
	}
	if ((ret & ~0xffff) == LXC_TO_PROXY)
		return proxy_assign(ctx, p, ret & 0xffff);
	if ((ret & ~0xff) == LXC_NODEPORT_REPLY)
		return lxc_nodeport_reply(ctx, p, v, ret & 0xff);
	if ((ret & ~LXC_ROUTE_CLUSTER_PEER) == LXC_ROUTE_NATIVE)
		return lxc_route_native(ctx, p, ret & LXC_ROUTE_CLUSTER_PEER);
	return ret;
}

static __always_inline int lxc_from_ipv4(struct __sk_buff *ctx, struct pktinfo *p,
					 struct lxc_verdict *v, __u32 len)
{
	int ret;

	v->ipv6 = 0;
	ret = parse_ipv4(ctx, p);
	if (ret < 0)
		return ret;
	if (proxy_marked(ctx)) /* sent back in by cil_to_container for the L7 proxy */
		return proxy_assign(ctx, p, ctx->mark >> 16);
	if (LXC_IPV4 == 0 || p->tuple.saddr4 != LXC_IPV4)
		return -DROP_INVALID_SIP;
	return lxc_from_ip(ctx, p, v);
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
	if (proxy_marked(ctx)) /* sent back in by cil_to_container for the L7 proxy */
		return proxy_assign(ctx, p, ctx->mark >> 16);
	if (!ipv6_addr_eq(p->tuple.saddr6, LXC_IPV6))
		return -DROP_INVALID_SIP;
	return lxc_from_ip(ctx, p, v);
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

	if (EP_CONFIG_UNSET()) /* a pre-loaded copy not given its endpoint yet */
		return TC_ACT_SHOT;
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

/* To the L7 proxy from cil_to_container: back in through this veth (proxy_reinject). */
static __always_inline int lxc_ingress_to_proxy(struct __sk_buff *ctx, const struct lxc_verdict *v,
						int state, int trace, __u32 port, __u32 len)
{
	if (trace)
		send_trace_notify(ctx, LXC_ID, TRACE_TO_PROXY, v->src_label, SECLABEL, LXC_ID, state,
				  v->ipv6, ctx->ifindex);
	update_metrics(LXC_ID, len, METRIC_INGRESS, 0);
	return proxy_reinject(ctx, port);
}

/*
 * A packet the node's stack delivers to the pod: replies and related packets
 * pass, new connections need this endpoint's ingress policy. A reply of a
 * connection this pod made to a service (translated at its egress) gets its
 * source translated back to the service frontend.
 * L7 proxy (lib/proxy.h): an allow with a proxy port, and the later packets of such a connection,
 * go back in to the proxy (proxy_reinject); so do replies from another node to a connection the
 * proxy made with this pod's address (proxy_owns). The proxy's own connections (marked) meet the
 * ingress policy unless the proxy applied this endpoint's ingress rules already, and their
 * replies go back to the proxy (CT_F_FROM_PROXY).
 */
__noinline int lxc_ingress(struct __sk_buff *ctx, struct pktinfo *p, struct lxc_verdict *v,
			   __u32 len)
{
	struct trace_xlate tx = {};
	struct endpoint_info *ep;
	struct ct_state st = {};
	__u8 proto;
	__u8 seen = 0;
	int state, trace, ret;

	if (!p || !v)
		return -DROP_INVALID;
	proto = p->tuple.nexthdr;

	state = lxc_ct_state(p, CT_SIDE_INGRESS, len, &seen, &st);
	if (state == CT_ESTABLISHED && ct_other_origin(p, &st, proxy_upstream_mark(ctx))) {
		/* nothing of the other connection's entry (its flags, proxy port) is this one's */
		state = CT_NEW;
		__builtin_memset(&st, 0, sizeof(st));
	}
	trace = trace_wanted(state, proto, p->tcp_flags, seen);
	if (state == CT_ESTABLISHED && (st.flags & CT_F_PROXY_REDIRECT))
		return lxc_ingress_to_proxy(ctx, v, state, trace, st.proxy_port, len);
	if (state == CT_NEW && !proxy_upstream_mark(ctx) && proxy_owns(ctx, p))
		return lxc_ingress_to_proxy(ctx, v, state, trace, 0, len);

	if (state == CT_NEW || trace) {
		const struct remote_endpoint_info *info = NULL;
		/* from another node through the overlay: the sender's identity is the VNI */
		__u32 tunnel_id = ENCAP_IFINDEX ? overlay_mark_identity(ctx->mark) : 0;

		ep = tunnel_id ? NULL : lookup_endpoint(p->ipv6, p->tuple.saddr6);
		v->src_label = tunnel_id ? tunnel_id : lxc_peer_identity(p->ipv6, p->tuple.saddr6, ep, &info);
	}

	if (state == CT_NEW) {
		int upstream = proxy_upstream_mark(ctx);
		__u32 proxy_port = 0;

		/* The node itself reaches its pods whatever their ingress policy says (kubelet
		 * probes), unless ALLOW_LOCALHOST is 0 (--allow-localhost=policy). */
		if (!(ALLOW_LOCALHOST && v->src_label == ID_HOST) &&
		    upstream != MARK_MAGIC_PROXY_INGRESS) {
			struct lxc_policy_query q = { .remote_id = v->src_label, .ep_id = LXC_ID,
						      .dport_be = p->policy_dport, .proto = proto,
						      .ipv6 = p->ipv6 };

			ret = lxc_policy(ctx, &q);
			if (ret < 0)
				return ret;
			proxy_port = ret;
		}
		if (upstream)
			st.flags |= CT_F_FROM_PROXY;
		st.flags |= lxc_cluster_peer_flag(ep, v->src_label);
		if (proxy_port) {
			ret = lxc_proxy_record(p, LXC_ID, 0, v->src_label, SECLABEL);
			if (ret < 0)
				return ret;
			st.flags |= CT_F_PROXY_REDIRECT;
			st.proxy_port = proxy_port;
		}
		ret = lxc_ct_create(p, CT_SIDE_INGRESS, len, v->src_label, &st);
		if (ret < 0)
			return ret;
		if (proxy_port)
			return lxc_ingress_to_proxy(ctx, v, state, trace, proxy_port, len);
	}

	if (state == CT_REPLY && st.rev_nat_index && !(st.flags & CT_F_NODEPORT) && !p->ipv6) {
		ret = lxc_rev_nat(ctx, p, st.rev_nat_index, &tx);
		if (ret < 0)
			return ret;
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

	if (EP_CONFIG_UNSET())
		return TC_ACT_SHOT;
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
