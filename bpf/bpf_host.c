/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The node's external-facing device (the interface traffic from outside the node arrives on),
 * attached with tcx:
 *   cil_from_netdev  tcx ingress: what arrives from outside
 * It is the north-south load balancer (lib/nodeport.h): a packet to a service frontend reachable
 * from outside (NodePort on a node address, LoadBalancer IP, external IP, or a NodePort / HostPort
 * wildcard entry for any address of this node) is translated to a backend and delivered: into a
 * local backend's pod after that endpoint's conntrack and ingress policy (against the client's
 * identity), or, SNATed, out of this device towards a backend on another node. Replies of such
 * connections from a remote backend (addressed to the SNAT address and port) are translated back
 * and sent to the client. Before all that, another node's VXLAN packet to this node: a small one
 * of an established connection is decapsulated and delivered into its pod here
 * (lib/overlay_decap.h), the rest goes to the kernel's VXLAN socket. Everything else goes to the
 * node's stack untouched. One load per device;
 * lib/config/host.h lists its constants. See bpf/README.md.
 */
#define EVENT_SOURCE_FILE DROP_FILE_HOST

#include "lib/common.h"
#include "lib/config/node.h"
#include "lib/config/host.h"
#include "lib/metrics.h"
#include "lib/events.h"
#include "lib/eth.h"
#include "lib/pkt.h"
#include "lib/ipv4.h"
#include "lib/conntrack.h"
#include "lib/endpoints.h"
#include "lib/ipcache.h"
#include "lib/policy.h"
#include "lib/lb.h"
#include "lib/lb_xlate.h"
#include "lib/nodeport.h"
#include "lib/overlay.h"
#include "lib/deliver.h"
#include "lib/overlay_decap.h"

char _license[] SEC("license") = "Dual BSD/GPL";

/* What the program edge needs to report a drop. */
struct host_verdict {
	__u32 src_label;  /* the client's identity */
	__u32 dst_label;
	__u16 dst_id;     /* local backend endpoint, 0 if none */
	__u16 drop_ep;    /* endpoint whose decision drops (metrics key, event source) */
	__u8 drop_dir;
	__u8 pad;
	__be16 rev_nat;   /* the service */
};

/* Report a drop (event + metric). Out of line: the cold path. */
__noinline int host_drop(struct __sk_buff *ctx, int ret, const struct host_verdict *v, __u32 len)
{
	__u8 reason = (__u8)-ret;

	if (!v)
		return TC_ACT_SHOT;
	send_drop_notify(ctx, v->drop_ep, reason, v->src_label, v->dst_label, v->dst_id, 0, ctx->ifindex, 0,
			 v->rev_nat);
	update_metrics(v->drop_ep, len, v->drop_dir, reason);
	return TC_ACT_SHOT;
}

/* Is `addr` an address of this node? A local endpoint's answer first (a hash lookup: traffic to
 * pods needs no more), else the ipcache's identity. */
static __always_inline int host_addr_is_node(__be32 addr)
{
	const struct endpoint_info *ep = lookup_endpoint4(addr);
	union lb_addr a = { .ip4 = addr };

	if (ep)
		return ep->flags & ENDPOINT_F_HOST;
	return lb_addr_is_host(0, &a);
}

/* A frontend the packet is addressed to, as a client outside the cluster sees it: the external
 * scope; only frontends reachable from outside (ROUTABLE), or a NodePort / HostPort wildcard
 * (address 0) when the destination is an address of this node. NULL: not a service. */
static __always_inline struct lb_service *host_lookup_service(const struct pktinfo *p,
							      struct lb_lookup_key *k)
{
	struct lb_service *svc;

	lb4_frontend_key(k, p);
	svc = lb_lookup_service(k, 0);
	if (svc)
		return (svc->flags & SVC_FLAG_ROUTABLE) ? svc : NULL;
	if (p->tuple.daddr4 != NODE_IPV4 && !host_addr_is_node(p->tuple.daddr4))
		return NULL;
	k->addr.ip4 = 0;
	k->proto = p->tuple.nexthdr;
	svc = lb_lookup_service(k, 0);
	if (svc && (svc->flags & (SVC_FLAG_NODEPORT | SVC_FLAG_HOSTPORT)))
		return svc;
	return NULL;
}

/*
 * Delivery to a local backend `ep` of a translated packet: that endpoint's conntrack at its
 * ingress and, for a new connection, its ingress policy against the client's identity (policy
 * drops are the endpoint's); the entry is flagged CT_F_NODEPORT so that its replies are
 * translated back. Then straight into the pod, as a pod-to-pod packet goes. Global functions
 * (this one, host_nat, host_nodeport_lb) keep each stack frame within the verifier's limit.
 */
__noinline int host_deliver_local(struct __sk_buff *ctx, struct pktinfo *p, const struct endpoint_info *ep,
				  struct host_verdict *v, const struct lb_xlate *x)
{
	struct ct_state st = { .flags = CT_F_NODEPORT };
	struct trace_xlate tx;
	struct ct_key key;
	__u32 len = ctx->len;
	__u32 ifindex;
	__u8 seen = 0;
	int state, ret;
	__u16 id;

	if (!p || !ep || !v || !x)
		return -DROP_INVALID;
	st.rev_nat_index = x->rev_nat_index;
	ifindex = ep->ifindex;
	id = ep->lxc_id;

	v->dst_label = ep->sec_identity;
	v->dst_id = id;
	v->drop_ep = id;
	key = p->tuple;
	state = ct_lookup(0, &key, CT_SIDE_INGRESS, p->tcp_flags, len, &seen, NULL);
	if (state == CT_NEW) {
		/* audit mode is per endpoint and not known here: policed (never wider) */
		ret = policy_enforce(ctx, id, v->src_label, 0, p->tuple.nexthdr, p->policy_dport, 0, 0);
		if (ret < 0)
			return ret;
		key = p->tuple;
		ret = ct_create(0, &key, CT_SIDE_INGRESS, p->tcp_flags, len, v->src_label, &st);
		if (ret < 0)
			return ret;
	}
	ret = ipv4_dec_ttl(ctx);
	if (ret < 0)
		return ret;
	ret = eth_rewrite_macs(ctx, ep->mac, ep->node_mac);
	if (ret < 0)
		return ret;
	if (trace_wanted(state, p->tuple.nexthdr, p->tcp_flags, seen)) {
		lb_trace_xlate(&tx, x, 0);
		send_trace_xlate(ctx, id, TRACE_TO_LXC, v->src_label, v->dst_label, id, state, 0, ifindex, &tx);
	}
	update_metrics(id, len, METRIC_INGRESS, 0);
	return bpf_redirect_peer(ifindex, 0);
}

/* Monitor aggregation for packets no endpoint's conntrack sees (to or from a remote backend):
 * every packet with aggregation 0, else a connection's first and TCP packets with SYN/FIN/RST. */
static __always_inline int host_trace_wanted(int new_conn, __u8 tcp_flags)
{
	return MONITOR_AGGREGATION == 0 || new_conn ||
	       (tcp_flags & (TCP_FLAG_SYN | TCP_FLAG_FIN | TCP_FLAG_RST));
}

/* The source a translated packet leaves with (SNAT, or its own) and the NAT entries for it. */
struct host_nat_out {
	__be32 saddr;
	__be16 sport;
	__u8 local;  /* in: the backend is on this node */
	__u8 pad;
};

/*
 * SNAT to NODE_IPV4 for a backend on another node (its replies must come back through this node),
 * and for a local one with NODEPORT_SNAT_LOCAL; never for externalTrafficPolicy: Local (the
 * client's address is kept; its backends are all local).
 */
__noinline int host_nat(const struct pktinfo *p, const struct lb_xlate *x, __u32 ifindex,
			struct host_nat_out *out)
{
	__be32 snat_ip = 0;

	if (!p || !x || !out)
		return -DROP_INVALID;
	if (!(x->svc_flags & SVC_FLAG_EXT_LOCAL_SCOPE) && (!out->local || NODEPORT_SNAT_LOCAL)) {
		if (!NODE_IPV4)
			return -DROP_NAT_NO_MAPPING; /* no address to SNAT to */
		snat_ip = NODE_IPV4;
	}
	return nodeport_nat_fwd(p, x, snat_ip, ifindex, &out->saddr, &out->sport);
}

#define HOST_NOT_SERVICE 1

/* A backend on another node: out of this device towards it; SNAT brings its replies back (a
 * Local policy has no remote backends). */
__noinline int host_forward_remote(struct __sk_buff *ctx, const struct pktinfo *p, struct host_verdict *v,
				   const struct lb_xlate *x)
{
	struct trace_xlate tx;

	if (!p || !v || !x)
		return -DROP_INVALID;
	if (x->svc_flags & SVC_FLAG_EXT_LOCAL_SCOPE)
		return -DROP_UNROUTABLE;
	v->dst_label = remote_identity(lookup_remote_endpoint(0, p->tuple.daddr6));
	if (host_trace_wanted(x->new_conn, p->tcp_flags)) {
		lb_trace_xlate(&tx, x, 0);
		send_trace_xlate(ctx, HOST_EP_ID, TRACE_TO_NETWORK, v->src_label, v->dst_label, 0,
				 x->new_conn ? TRACE_REASON_POLICY : TRACE_REASON_CT_ESTABLISHED, 0, ctx->ifindex,
				 &tx);
	}
	update_metrics(HOST_EP_ID, ctx->len, METRIC_EGRESS, 0);
	return nodeport_redirect_out(ctx, ctx->ifindex);
}

/* The service and backend of a packet from outside (`x`): HOST_NOT_SERVICE when it is not to a
 * frontend reachable from outside, 0, or -DROP_*. */
__noinline int host_select(const struct pktinfo *p, struct host_verdict *v, struct lb_xlate *x, __u32 len)
{
	struct lb_lookup_key k;
	struct lb_service *svc;

	if (!p || !v || !x)
		return -DROP_INVALID;
	svc = host_lookup_service(p, &k);
	if (!svc)
		return HOST_NOT_SERVICE;
	v->rev_nat = svc->rev_nat_index;
	v->src_label = remote_identity(lookup_remote_endpoint(0, p->tuple.saddr6));
	if (svc->count == 0)
		return -DROP_NO_SERVICE;
	if ((svc->flags & SVC_FLAG_SOURCE_RANGE) && !lb4_src_range_allows(svc->rev_nat_index, p->tuple.saddr4))
		return -DROP_NOT_IN_SRC_RANGE;
	return lb4_xlate_backend(p, &k, svc, x, len, v->src_label);
}

/*
 * A packet from outside to a service frontend: backend, NAT, delivery. TC_ACT_OK when it is not
 * one (the stack's), a tc verdict, or -DROP_*. Its parts are global functions called one after
 * the other: each is verified once on its own, and the frames on the stack at any time stay within
 * the verifier's 512 bytes.
 */
__noinline int host_nodeport_lb(struct __sk_buff *ctx, struct pktinfo *p, struct host_verdict *v, __u32 len)
{
	struct host_nat_out nat = {};
	struct endpoint_info *ep;
	struct lb_xlate x;
	int ret;

	if (!p || !v)
		return -DROP_INVALID;
	ret = host_select(p, v, &x, len);
	if (ret == HOST_NOT_SERVICE)
		return TC_ACT_OK;
	if (ret < 0)
		return ret;
	ep = lookup_endpoint4(x.backend.ip4);
	if (ep && (ep->flags & ENDPOINT_F_HOST))
		ep = NULL;
	nat.local = ep != NULL;
	ret = host_nat(p, &x, ctx->ifindex, &nat);
	if (ret < 0)
		return ret;
	ret = lb4_xlate_dst(ctx, p, &x);
	if (ret < 0)
		return ret;
	ret = lb4_rewrite(ctx, p->l4_off, p->tuple.nexthdr, 0, p->tuple.saddr4, nat.saddr, p->tuple.sport,
			  nat.sport);
	if (ret < 0)
		return ret;
	p->tuple.saddr4 = nat.saddr;
	p->tuple.sport = nat.sport;

	if (ep)
		return host_deliver_local(ctx, p, ep, v, &x);
	return host_forward_remote(ctx, p, v, &x);
}

/* A remote backend's reply, addressed to the SNAT address and a SNAT port: back to the client.
 * TC_ACT_OK when no connection has that port (the stack's). */
__noinline int host_nodeport_reply(struct __sk_buff *ctx, struct pktinfo *p, struct host_verdict *v)
{
	struct lb_xlate x;
	int ifindex;

	if (!p || !v)
		return -DROP_INVALID;
	ifindex = nodeport_rev_xlate(ctx, p, &x);
	if (ifindex <= 0)
		return ifindex == 0 ? TC_ACT_OK : ifindex;
	v->rev_nat = x.rev_nat_index;
	return nodeport_reply_out(ctx, p, &x, (__u32)ifindex, HOST_EP_ID,
				  remote_identity(lookup_remote_endpoint(0, x.backend.ip6)),
				  host_trace_wanted(0, p->tcp_flags) ? TRACE_REASON_CT_REPLY + 1 : 0);
}

static __always_inline int host_is_snat_reply(const struct pktinfo *p)
{
	__u16 port = bpf_ntohs(p->tuple.dport);

	return NODE_IPV4 && p->tuple.daddr4 == NODE_IPV4 && port >= NODEPORT_SNAT_PORT_MIN &&
	       port <= NODEPORT_SNAT_PORT_MAX;
}

/*
 * A packet for a pod of this node (from another node with native routing, or from outside) of a
 * connection the pod's to-container would only count goes straight into the pod
 * (lib/deliver.h); anything else is TC_ACT_OK: the load balancer's to look at, then the node's
 * stack, which routes it to the pod's veth as before (a TTL of 1 included: the stack answers it
 * with an ICMP error). A global function: its frame is never on the stack with the load
 * balancer's.
 */
__noinline int host_to_pod(struct __sk_buff *ctx, struct pktinfo *p)
{
	const struct endpoint_info *ep;
	int ret;

	/* the node's own address (NodePort, SNAT replies) is no pod's: no lookup on their way */
	if (!p || (NODE_IPV4 && p->tuple.daddr4 == NODE_IPV4))
		return TC_ACT_OK;
	ep = lookup_endpoint4(p->tuple.daddr4);
	if (!ep || (ep->flags & ENDPOINT_F_HOST))
		return TC_ACT_OK;
	ret = deliver_to_pod(ctx, p, ep);
	return ret == DELIVER_FULL_WAY || ret < 0 ? TC_ACT_OK : ret;
}

SEC("tc")
int cil_from_netdev(struct __sk_buff *ctx)
{
	struct host_verdict v = {
		.drop_ep = HOST_EP_ID,
		.drop_dir = METRIC_INGRESS,
	};
	struct pktinfo p = {};
	__u32 len = ctx->len;
	int ret;

	if (ctx->protocol != bpf_htons(ETH_P_IP))
		return TC_ACT_OK;
	/* another node's VXLAN packet for this node's overlay: straight into the pod, or to the
	 * kernel's VXLAN socket (it owns the port, no service can be behind it) */
	if (ENCAP_IFINDEX) {
		ret = overlay_decap(ctx);
		if (ret != OVERLAY_NOT_TUNNEL)
			return ret >= 0 ? ret : host_drop(ctx, ret, &v, len);
	}
	/* what cannot be parsed (a fragment, say) is not translated: the stack's */
	if (parse_ipv4(ctx, &p) < 0 || p.kind != PKT_TRACKED)
		return TC_ACT_OK;
	if (p.tuple.nexthdr != CIL_IPPROTO_TCP && p.tuple.nexthdr != CIL_IPPROTO_UDP)
		return TC_ACT_OK;
	/* a VXLAN packet whose headers were not all in the linear data (overlay_decap did not see it):
	 * the kernel's VXLAN socket's */
	if (ENCAP_IFINDEX && p.tuple.nexthdr == CIL_IPPROTO_UDP && p.tuple.dport == bpf_htons(OVERLAY_PORT) &&
	    NODE_IPV4 && p.tuple.daddr4 == NODE_IPV4)
		return TC_ACT_OK;
	/* a packet for a pod of this node that its conntrack knows goes in before any service lookup
	 * (a pod's address is no frontend; a service's packets are addressed to the frontend): the
	 * service and node-address lookups were two more hash lookups per packet, cold between a
	 * connection's packets */
	ret = host_to_pod(ctx, &p);
	if (ret == TC_ACT_OK)
		ret = host_is_snat_reply(&p) ? host_nodeport_reply(ctx, &p, &v) : host_nodeport_lb(ctx, &p, &v, len);
	if (ret >= 0)
		return ret;
	return host_drop(ctx, ret, &v, len);
}
