/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The node's VXLAN overlay device (cilium_vxlan, collect-metadata), attached with tcx:
 *   cil_from_overlay  tcx ingress: packets another node encapsulated, decapsulated by the kernel
 *   cil_to_overlay    tcx egress:  packets leaving through the device
 * The VNI is the sender's security identity (lib/overlay.h). A packet for a local pod goes to that
 * pod's host-side veth with the identity in its mark: the pod's own to-container program
 * (bpf_lxc.c) then runs its conntrack and ingress policy against that identity, exactly as for a
 * packet from this node, with no ipcache lookup for the source; a packet of a connection that
 * program would only count goes straight into the pod instead (lib/deliver.h). A packet for the
 * node itself goes to its stack. Pods' packets to other nodes arrive at the egress hook with their tunnel key set
 * by bpf_lxc.c and pass; what the node's stack routes to the device (the node's own traffic to a
 * remote pod) gets its key here: the remote node from the ipcache, the identity of its sender (a
 * local pod, else the host, sent as remote-node). One load per node; see bpf/README.md.
 */
#define EVENT_SOURCE_FILE DROP_FILE_OVERLAY

#include "lib/common.h"
#include "lib/config/node.h"
#include "lib/metrics.h"
#include "lib/events.h"
#include "lib/eth.h"
#include "lib/pkt.h"
#include "lib/ipv4.h"
#include "lib/ipv6.h"
#include "lib/endpoints.h"
#include "lib/ipcache.h"
#include "lib/overlay.h"
#include "lib/deliver.h"

char _license[] SEC("license") = "Dual BSD/GPL";

/* The addresses of an inner packet, in ct_key address form (IPv4 in the first 4 bytes). */
struct overlay_addrs {
	__u8 saddr[16];
	__u8 daddr[16];
	__u8 ipv6;
};

#define OVERLAY_NOT_IP 1

/* 0, OVERLAY_NOT_IP (not IPv4 / IPv6: left to the stack) or -DROP_INVALID. */
static __always_inline int overlay_addrs(struct __sk_buff *ctx, struct overlay_addrs *a)
{
	if (ctx->protocol == bpf_htons(ETH_P_IP)) {
		struct iphdr ip;

		if (bpf_skb_load_bytes(ctx, ETH_HLEN, &ip, sizeof(ip)) < 0 || ip.version != 4)
			return -DROP_INVALID;
		*(__be32 *)a->saddr = ip.saddr;
		*(__be32 *)a->daddr = ip.daddr;
		return 0;
	}
	if (ctx->protocol == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr ip6;

		if (bpf_skb_load_bytes(ctx, ETH_HLEN, &ip6, sizeof(ip6)) < 0 || ip6.version != 6)
			return -DROP_INVALID;
		__builtin_memcpy(a->saddr, &ip6.saddr, 16);
		__builtin_memcpy(a->daddr, &ip6.daddr, 16);
		a->ipv6 = 1;
		return 0;
	}
	return OVERLAY_NOT_IP;
}

/* Report a drop of the device's own (no endpoint decided it): event + metric. */
static __always_inline int overlay_drop(struct __sk_buff *ctx, int ret, __u32 src, __u32 dst, __u16 dst_id,
					__u8 ipv6, __u8 dir, __u32 len)
{
	__u8 reason = (__u8)-ret;

	send_drop_notify(ctx, 0, reason, src, dst, dst_id, ipv6, ctx->ifindex, 0, 0);
	update_metrics(0, len, dir, reason);
	return TC_ACT_SHOT;
}

/*
 * A packet for a local pod: TTL / hop limit - 1 (this node routes it), MACs the pod expects, the
 * sender's identity in the mark, and on to the pod's host-side veth, whose to-container program
 * decides (its CT, its ingress policy, its events). A packet that program would only count (an
 * established connection's, not traced) goes straight into the pod (deliver_to_pod); with
 * MONITOR_AGGREGATION 0 every packet is traced, so none does.
 */
static __always_inline int overlay_to_endpoint(struct __sk_buff *ctx, const struct endpoint_info *ep,
					       __u32 identity, __u8 ipv6)
{
	__u32 ifindex = ep->ifindex;
	struct pktinfo p = {};
	int ret;

	if (MONITOR_AGGREGATION != 0 && (ipv6 ? parse_ipv6(ctx, &p) : parse_ipv4(ctx, &p)) == 0) {
		ret = deliver_to_pod(ctx, &p, ep);
		if (ret != DELIVER_FULL_WAY)
			return ret;
	}
	ret = ipv6 ? ipv6_dec_hoplimit(ctx) : ipv4_dec_ttl(ctx);
	if (ret < 0)
		return ret;
	ret = eth_rewrite_macs(ctx, ep->mac, ep->node_mac);
	if (ret < 0)
		return ret;
	ctx->mark = overlay_identity_mark(identity);
	if (MONITOR_AGGREGATION == 0)
		send_trace_notify(ctx, 0, TRACE_FROM_OVERLAY, identity, ep->sec_identity, ep->lxc_id,
				  TRACE_REASON_UNKNOWN, ipv6, ctx->ifindex);
	return bpf_redirect(ifindex, 0);
}

SEC("tc")
int cil_from_overlay(struct __sk_buff *ctx)
{
	struct bpf_tunnel_key key = {};
	struct overlay_addrs a = {};
	const struct endpoint_info *ep;
	__u32 identity = 0, dst = 0, len = ctx->len;
	__u16 dst_id = 0;
	int ret;

	ret = overlay_addrs(ctx, &a);
	if (ret == OVERLAY_NOT_IP)
		return TC_ACT_OK;
	if (ret < 0)
		goto drop;
	if (bpf_skb_get_tunnel_key(ctx, &key, sizeof(key), 0) < 0) {
		ret = -DROP_NO_TUNNEL_KEY;
		goto drop;
	}
	identity = key.tunnel_id;
	if (identity == ID_UNKNOWN || identity > OVERLAY_VNI_MAX) {
		ret = -DROP_INVALID_VNI;
		goto drop;
	}
	/* a node sends its own traffic as remote-node: no other node speaks as this one's host */
	if (identity == ID_HOST) {
		ret = -DROP_INVALID_IDENTITY;
		goto drop;
	}
	ep = lookup_endpoint(a.ipv6, a.daddr);
	if (ep) {
		dst = ep->sec_identity;
		dst_id = ep->lxc_id;
	} else {
		/* the node's other addresses (its router IP) are host in the ipcache */
		dst = remote_identity(lookup_remote_endpoint(a.ipv6, a.daddr));
		if (dst != ID_HOST) {
			/* not for this node: the overlay forwards nothing further */
			ret = -DROP_UNROUTABLE;
			goto drop;
		}
	}
	if (!ep || (ep->flags & ENDPOINT_F_HOST)) {
		/* The inner frame was addressed to the sender's gateway: it is this node's now. */
		bpf_skb_change_type(ctx, PACKET_HOST);
		if (MONITOR_AGGREGATION == 0)
			send_trace_notify(ctx, 0, TRACE_FROM_OVERLAY, identity, dst, 0, TRACE_REASON_UNKNOWN,
					  a.ipv6, ctx->ifindex);
		return TC_ACT_OK;
	}
	ret = overlay_to_endpoint(ctx, ep, identity, a.ipv6);
	if (ret >= 0)
		return ret;
drop:
	return overlay_drop(ctx, ret, identity, dst, dst_id, a.ipv6, METRIC_INGRESS, len);
}

SEC("tc")
int cil_to_overlay(struct __sk_buff *ctx)
{
	const struct remote_endpoint_info *info;
	struct bpf_tunnel_key key = {};
	struct overlay_addrs a = {};
	const struct endpoint_info *ep;
	__u32 identity = ID_HOST, len = ctx->len;
	int ret;

	/* a pod's packet, its key set by its bpf_lxc */
	if (bpf_skb_get_tunnel_key(ctx, &key, sizeof(key), 0) == 0)
		return TC_ACT_OK;
	ret = overlay_addrs(ctx, &a);
	if (ret == OVERLAY_NOT_IP)
		return TC_ACT_SHOT; /* nothing else has anywhere to go */
	if (ret < 0)
		goto drop;
	/* The node's link-local housekeeping (MLD reports, IGMP) has no tunnel endpoint to go to and is
	 * nobody's traffic: dropped without an event. */
	if (a.ipv6 ? a.daddr[0] == 0xff : (a.daddr[0] & 0xf0) == 0xe0 || *(__u32 *)a.daddr == 0xffffffff)
		return TC_ACT_SHOT;
	ep = lookup_endpoint(a.ipv6, a.saddr);
	if (ep && !(ep->flags & ENDPOINT_F_HOST))
		identity = ep->sec_identity;
	info = lookup_remote_endpoint(a.ipv6, a.daddr);
	ret = overlay_set_key(ctx, info ? info->tunnel_endpoint : 0, identity);
	if (ret < 0)
		goto drop;
	if (MONITOR_AGGREGATION == 0)
		send_trace_notify(ctx, 0, TRACE_TO_OVERLAY, identity, remote_identity(info), 0,
				  TRACE_REASON_UNKNOWN, a.ipv6, ctx->ifindex);
	return TC_ACT_OK;
drop:
	return overlay_drop(ctx, ret, identity, 0, 0, a.ipv6, METRIC_EGRESS, len);
}
