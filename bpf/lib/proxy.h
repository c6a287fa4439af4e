/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Transparent redirect of connections to the node's L7 proxies (src/proxy), as upstream's BPF
 * TPROXY does. A new connection whose policy entry carries a proxy port (lib/policy.h), and every
 * later packet of it (its CT entry has CT_F_PROXY_REDIRECT), is handed to the node's stack with
 * skb->mark = MARK_MAGIC_TO_PROXY | port << 16 and the proxy's socket assigned with bpf_sk_assign:
 * the established socket of the tuple when there is one, else the proxy's listener on
 * 127.0.0.1:port (::1 for IPv6). The node namespace routes marked packets locally
 * (ip rule fwmark 0x200/0xf00 lookup 2004; table 2004: local 0.0.0.0/0 dev lo), so the accepted
 * socket's local address is the original destination. No listener: the packet is dropped
 * (DROP_PROXY_LOOKUP_FAILED): a redirected connection never bypasses a proxy that is down.
 *
 * bpf_sk_assign works at tc ingress only. cil_from_container (tc ingress of the pod's host-side
 * veth) assigns directly; cil_to_container (tc egress) sends the packet back into that veth's
 * ingress with the mark set (proxy_reinject), and cil_from_container assigns it there
 * (proxy_from_mark). A pod cannot forge the mark: crossing namespaces clears it.
 *
 * The proxy's upstream connection keeps the client's address (IP_TRANSPARENT) and marks its
 * packets MARK_MAGIC_PROXY_EGRESS / _INGRESS (SO_MARK): the server's to-container then knows the
 * ingress policy was already applied (ingress) or still applies (egress), and flags the server's
 * CT entry CT_F_FROM_PROXY, whose replies go to the stack marked MARK_MAGIC_TO_PROXY (port 0): the
 * stack delivers them to the proxy's socket by its tuple. Replies from another node reach the
 * client's to-container without a CT entry; a socket of the node bound to exactly that tuple
 * can only be the proxy's transparent one, so they are sent to it the same way (proxy_owns).
 *
 * cilium_proxy: the client address and port of each redirected connection -> the original
 * destination, the identities and the endpoint + direction whose L7 rules apply, read by the
 * proxy at accept (TCP) or per datagram (UDP, whose sockets show no original destination).
 */
#ifndef CILIUM_TS_PROXY_H
#define CILIUM_TS_PROXY_H

#include "lib/common.h"
#include "lib/pkt.h"

#ifndef PROXY_MAP_SIZE
#define PROXY_MAP_SIZE 65536
#endif

#define BPF_TCP_TIME_WAIT_STATE 6
#define BPF_TCP_LISTEN_STATE 10

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__type(key, struct proxy_key);
	__type(value, struct proxy_value);
	__uint(max_entries, PROXY_MAP_SIZE);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} cilium_proxy SEC(".maps");

/* Remember where a redirected connection was going and whose rules apply. */
static __always_inline int proxy_record(const struct pktinfo *p, __u16 ep_id, __u8 egress,
					__u32 src_id, __u32 dst_id)
{
	struct proxy_key k = {};
	struct proxy_value v = {};

	__builtin_memcpy(k.saddr6, p->tuple.saddr6, 16);
	k.sport = p->tuple.sport;
	k.nexthdr = p->tuple.nexthdr;
	k.family = p->ipv6 ? 6 : 4;
	__builtin_memcpy(v.daddr6, p->tuple.daddr6, 16);
	v.dport = p->tuple.dport;
	v.ep_id = ep_id;
	v.egress = egress;
	v.src_identity = src_id;
	v.dst_identity = dst_id;
	if (bpf_map_update_elem(&cilium_proxy, &k, &v, BPF_ANY) < 0)
		return -DROP_PROXYMAP_CREATE_FAILED;
	return 0;
}

static __always_inline __u32 proxy_tuple(const struct pktinfo *p, struct bpf_sock_tuple *t)
{
	if (p->ipv6) {
		__builtin_memcpy(t->ipv6.saddr, p->tuple.saddr6, 16);
		__builtin_memcpy(t->ipv6.daddr, p->tuple.daddr6, 16);
		t->ipv6.sport = p->tuple.sport;
		t->ipv6.dport = p->tuple.dport;
		return sizeof(t->ipv6);
	}
	t->ipv4.saddr = p->tuple.saddr4;
	t->ipv4.daddr = p->tuple.daddr4;
	t->ipv4.sport = p->tuple.sport;
	t->ipv4.dport = p->tuple.dport;
	return sizeof(t->ipv4);
}

/*
 * Assign the packet to the proxy at `port` (host order; 0 = only an established socket of the
 * tuple, for replies to the proxy's own connections) and mark it for local delivery. At tc
 * ingress only. TC_ACT_OK, or -DROP_PROXY_*. TCP and UDP sockets are read on separate paths: the
 * verifier wants one pointer type per load instruction.
 */
__noinline int proxy_assign(struct __sk_buff *ctx, struct pktinfo *p, __u32 port)
{
	struct bpf_sock_tuple t = {};
	struct bpf_sock *sk = NULL;
	__u32 len;
	long err;

	if (!p)
		return -DROP_INVALID;
	len = proxy_tuple(p, &t);
	if (p->tuple.nexthdr == CIL_IPPROTO_TCP) {
		sk = bpf_skc_lookup_tcp(ctx, &t, len, BPF_F_CURRENT_NETNS, 0);
		/* A listener of the node on the original port is not the proxy. For a redirected
		 * connection (port != 0), a TIME_WAIT socket is the proxy's side of an earlier
		 * connection with this tuple (the proxy closed first, the client's port is free
		 * again): the listener takes the new SYN, whose connection the kernel hashes ahead of
		 * the TIME_WAIT one. Given the TIME_WAIT socket, the SYN would get a stale ACK. */
		if (sk && (sk->state == BPF_TCP_LISTEN_STATE ||
			   (port != 0 && sk->state == BPF_TCP_TIME_WAIT_STATE))) {
			bpf_sk_release(sk);
			sk = NULL;
		}
	} else if (p->tuple.nexthdr == CIL_IPPROTO_UDP) {
		/* UDP: a redirected datagram goes to the proxy's listener (no per-flow socket);
		 * a reply to the proxy's own socket to that socket */
		if (port == 0)
			sk = bpf_sk_lookup_udp(ctx, &t, len, BPF_F_CURRENT_NETNS, 0);
	} else {
		return -DROP_PROXY_UNKNOWN_PROTO;
	}
	if (!sk && port != 0) {
		/* the proxy's listener: 127.0.0.1:port / [::1]:port */
		if (p->ipv6) {
			__builtin_memset(t.ipv6.daddr, 0, 16);
			t.ipv6.daddr[3] = bpf_htonl(1);
			t.ipv6.dport = bpf_htons((__u16)port);
		} else {
			t.ipv4.daddr = bpf_htonl(0x7f000001);
			t.ipv4.dport = bpf_htons((__u16)port);
		}
		if (p->tuple.nexthdr == CIL_IPPROTO_TCP)
			sk = bpf_skc_lookup_tcp(ctx, &t, len, BPF_F_CURRENT_NETNS, 0);
		else
			sk = bpf_sk_lookup_udp(ctx, &t, len, BPF_F_CURRENT_NETNS, 0);
	}
	if (!sk)
		return -DROP_PROXY_LOOKUP_FAILED;
	err = bpf_sk_assign(ctx, sk, 0);
	bpf_sk_release(sk);
	if (err != 0)
		return -DROP_PROXY_SET_FAILED;
	ctx->mark = MARK_MAGIC_TO_PROXY | (port << 16);
	return TC_ACT_OK;
}

/* A packet cil_to_container sent back in with the mark set (proxy_reinject): the port it carries. */
static __always_inline int proxy_marked(const struct __sk_buff *ctx)
{
	return (ctx->mark & MARK_MAGIC_HOST_MASK) == MARK_MAGIC_TO_PROXY;
}

/* Packets of the proxy's upstream connections (SO_MARK): whether the proxy applied ingress rules. */
static __always_inline int proxy_upstream_mark(const struct __sk_buff *ctx)
{
	__u32 m = ctx->mark & MARK_MAGIC_HOST_MASK;

	if (m == MARK_MAGIC_PROXY_INGRESS || m == MARK_MAGIC_PROXY_EGRESS)
		return (int)m;
	return 0;
}

/*
 * At tc egress of the pod's host-side veth: send the packet back into that veth's ingress, marked
 * for the proxy at `port` (0: a reply to the proxy's own socket). The MACs are swapped so that
 * the node's stack takes the frame as addressed to it.
 */
static __always_inline int proxy_reinject(struct __sk_buff *ctx, __u32 port)
{
	__u8 macs[12], swapped[12];

	if (bpf_skb_load_bytes(ctx, 0, macs, 12) < 0)
		return -DROP_INVALID;
	__builtin_memcpy(swapped, macs + 6, 6);
	__builtin_memcpy(swapped + 6, macs, 6);
	if (bpf_skb_store_bytes(ctx, 0, swapped, 12, 0) < 0)
		return -DROP_WRITE_ERROR;
	ctx->mark = MARK_MAGIC_TO_PROXY | (port << 16);
	return bpf_redirect(ctx->ifindex, BPF_F_INGRESS);
}

/*
 * Does a proxy socket of this node own the packet's tuple (a reply from another node to a
 * connection the proxy made with the pod's address)? Only a transparent socket can be bound to
 * the pod's address: a socket whose local address is the packet's destination and that is not a
 * listener.
 */
__noinline int proxy_owns(struct __sk_buff *ctx, struct pktinfo *p)
{
	struct bpf_sock_tuple t = {};
	struct bpf_sock *sk;
	__u32 a0, a1, a2, a3, len;
	int mine = 0;

	if (!p)
		return 0;
	len = proxy_tuple(p, &t);
	if (p->tuple.nexthdr == CIL_IPPROTO_TCP) {
		sk = bpf_skc_lookup_tcp(ctx, &t, len, BPF_F_CURRENT_NETNS, 0);
		if (!sk)
			return 0;
		/* anything but a listener matched the whole tuple: it is bound to the pod's address */
		mine = sk->state != BPF_TCP_LISTEN_STATE;
		bpf_sk_release(sk);
		return mine;
	} else if (p->tuple.nexthdr == CIL_IPPROTO_UDP) {
		sk = bpf_sk_lookup_udp(ctx, &t, len, BPF_F_CURRENT_NETNS, 0);
		if (!sk)
			return 0;
		a0 = sk->src_ip4;
		a1 = sk->src_ip6[1];
		a2 = sk->src_ip6[2];
		a3 = sk->src_ip6[3];
		if (p->ipv6)
			a0 = sk->src_ip6[0];
	} else {
		return 0;
	}
	/* a socket bound to exactly the packet's destination (not a wildcard one) */
	if (p->ipv6)
		mine = ((a0 ^ t.ipv6.daddr[0]) | (a1 ^ t.ipv6.daddr[1]) | (a2 ^ t.ipv6.daddr[2]) |
			(a3 ^ t.ipv6.daddr[3])) == 0;
	else
		mine = a0 == t.ipv4.daddr;
	bpf_sk_release(sk);
	return mine;
}

#endif
