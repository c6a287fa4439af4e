/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Socket-LB: cgroup socket-address hooks, attached to a node's cgroup, that translate a service
 * address into a backend address in the system call itself. A process in the cgroup (the node and
 * its pods) then talks to the backend directly: no per-packet NAT for east-west traffic.
 *
 *   cil_sock4_connect / 6      cgroup/connect4|6    connect() of TCP and UDP sockets
 *   cil_sock4_sendmsg / 6      cgroup/sendmsg4|6    sendto() / sendmsg() of unconnected UDP
 *   cil_sock4_recvmsg / 6      cgroup/recvmsg4|6    the source address UDP recvfrom() reports
 *   cil_sock4_getpeername / 6  cgroup/getpeername4|6
 *   cil_sock_release           cgroup/sock_release  close(): frees the socket's slot
 *
 * Forward (connect, sendmsg): the destination address:port (+ protocol) is looked up as a service
 * frontend, else, for an address of this node (ipcache identity ID_HOST) or of another node
 * (ID_REMOTE_NODE, NodePort range only), as a NodePort / HostPort wildcard (address 0). A service
 * with no backend rejects the call with EHOSTUNREACH. An ExternalIP or HostPort service is not
 * translated unless its address is this node's. The backend: the session affinity entry of the
 * caller's network namespace, else slot 1..count picked by a random number (TCP) or by the socket
 * cookie (UDP: a socket keeps one backend). What the backend stands for is remembered (connect():
 * in a socket slot, cilium_lb_sock_slots / cilium_lb_sock_slot_rev, or else in the socket's own
 * storage, cilium_lb_sock_rev; UDP sendmsg(): (socket, backend) -> service in
 * cilium_lb{4,6}_reverse_sk), then the address is rewritten. cil_sock_release frees a socket's
 * slot when it is closed.
 * Reverse (recvmsg, getpeername): a backend address the socket was translated to is reported as the
 * service address again, unless the service is gone, changed its rev-NAT index or lost all its
 * backends (the entry is then deleted).
 *
 * An IPv4-mapped IPv6 destination (::ffff:a.b.c.d on a dual-stack socket) is handled as IPv4.
 */
#include "lib/common.h"
#include "lib/config/node.h"
#include "lib/ipcache.h"
#include "lib/lb.h"

char _license[] SEC("license") = "Dual BSD/GPL";

/*
 * What a connected socket's one peer (a backend) stands for: TCP, and UDP after connect().
 * sendto() on a UDP socket keeps the LRU entries of cilium_lb{4,6}_reverse_sk: an unconnected
 * socket talks to many peers. Either family, IPv4 in the first 4 bytes.
 */
struct lb_sock_rev {
	__u8 backend[16];
	__u8 address[16]; /* the service */
	__be16 backend_port;
	__be16 port;
	__be16 rev_nat_index;
	__u8 ipv6;
	__u8 pad;
};

/*
 * Where a connected socket keeps its lb_sock_rev: socket slot (cookie mod LB_SOCK_SLOTS) of two
 * preallocated arrays, the socket's cookie in cilium_lb_sock_slots (0: free) and the entry in
 * cilium_lb_sock_slot_rev. connect() claims the slot when it is free; cil_sock_release frees it
 * when the socket is closed (after close() nothing can ask for its peer). Cookies are handed out
 * in sequence, so a connection's slot is next to those of the connections made just before it:
 * claiming it touches lines in the cache, with no allocation, lock or hash bucket; the cookies
 * alone are in the array close() reads, 8 to a cache line, for the sockets that hold no slot
 * (most of those closed: every connection not made to a service). What this replaced: socket
 * local storage, an allocation per connect() (and a free through RCU at close) that made the
 * connect hook 0.5-0.8 us slower than for a pod IP; before that an entry of the node-wide LRU
 * cilium_lb4_reverse_sk, 1-1.5 us per connect().
 */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, __u64);
	__uint(max_entries, LB_SOCK_SLOTS);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} cilium_lb_sock_slots SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, struct lb_sock_rev);
	__uint(max_entries, LB_SOCK_SLOTS);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} cilium_lb_sock_slot_rev SEC(".maps");

/* A socket whose slot another live socket holds (a connection kept open while LB_SOCK_SLOTS
 * newer sockets got cookies) keeps its lb_sock_rev in its own storage instead, freed with it. */
struct {
	__uint(type, BPF_MAP_TYPE_SK_STORAGE);
	__type(key, int);
	__type(value, struct lb_sock_rev);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} cilium_lb_sock_rev SEC(".maps");

/* The holder of a socket cookie's slot (always found: the index is in range). */
static __always_inline __u64 *sock_slot(__u64 cookie, __u32 *slot)
{
	*slot = (__u32)cookie & (LB_SOCK_SLOTS - 1);
	return bpf_map_lookup_elem(&cilium_lb_sock_slots, slot);
}

/* The socket's lb_sock_rev to fill at connect(): in its slot when that is free (or its own
 * already), else in its socket storage, created; NULL when neither can be had. */
static __always_inline struct lb_sock_rev *sock_rev_claim(struct bpf_sock_addr *ctx)
{
	__u64 cookie = bpf_get_socket_cookie(ctx);
	__u32 slot;
	__u64 *holder = sock_slot(cookie, &slot);

	if (holder) {
		__u64 cur = *holder;

		/* compare-and-swap: two sockets whose cookies share the slot may connect at once */
		if (cur == cookie || (cur == 0 && __sync_val_compare_and_swap(holder, 0, cookie) == 0)) {
			struct lb_sock_rev *r = bpf_map_lookup_elem(&cilium_lb_sock_slot_rev, &slot);

			if (r)
				return r;
		}
	}
	return bpf_sk_storage_get(&cilium_lb_sock_rev, ctx->sk, 0, BPF_SK_STORAGE_GET_F_CREATE);
}

/* The socket's lb_sock_rev, if connect() wrote one; *holder is set when it is in a slot. */
static __always_inline struct lb_sock_rev *sock_rev_find(struct bpf_sock_addr *ctx, __u64 **holder)
{
	__u64 cookie = bpf_get_socket_cookie(ctx);
	__u32 slot;
	__u64 *h = sock_slot(cookie, &slot);

	*holder = NULL;
	if (h && *h == cookie) {
		struct lb_sock_rev *r = bpf_map_lookup_elem(&cilium_lb_sock_slot_rev, &slot);

		if (r) {
			*holder = h;
			return r;
		}
	}
	return bpf_sk_storage_get(&cilium_lb_sock_rev, ctx->sk, 0, 0);
}

/* cgroup sock_addr verdicts: 1 lets the call proceed, 0 rejects it with the errno the program set
 * with bpf_set_retval() (EPERM when it set none). recvmsg and getpeername must return 1. */
#define SYS_REJECT 0
#define SYS_PROCEED 1

/* errno values (uapi/asm-generic/errno*.h; vmlinux.h has no macros) */
#define SOCK_EPERM 1
#define SOCK_ENOENT 2
#define SOCK_ENXIO 6
#define SOCK_ENOMEM 12
#define SOCK_EHOSTUNREACH 113

#define IPV4_LOOPBACK_NET 0x7f000000 /* 127.0.0.0/8, host order */

/* A socket address as the hooks see it: family, address, port (network order) and protocol. */
struct sock_tuple {
	union lb_addr addr;
	__be16 port;
	__u8 proto;
	__u8 ipv6;
};

/* TCP or UDP, the only protocols translated; 0 for anything else (raw, ICMP, SCTP). */
static __always_inline __u8 sock_proto(const struct bpf_sock_addr *ctx)
{
	__u32 p = ctx->protocol;

	return p == CIL_IPPROTO_TCP || p == CIL_IPPROTO_UDP ? (__u8)p : 0;
}

static __always_inline const struct remote_endpoint_info *sock_ipcache(const struct sock_tuple *t)
{
	return lookup_remote_endpoint(t->ipv6, t->addr.ip6);
}

static __always_inline int sock_is_loopback(const struct sock_tuple *t)
{
	if (t->ipv6)
		return t->addr.w[0] == 0 && t->addr.w[1] == 0 && t->addr.w[2] == 0 &&
		       t->addr.w[3] == bpf_htonl(1);
	return (bpf_ntohl(t->addr.ip4) & 0xff000000) == IPV4_LOOPBACK_NET;
}

/* Is `t` an address of this node? */
static __always_inline int sock_addr_is_host(const struct sock_tuple *t)
{
	const struct remote_endpoint_info *info = sock_ipcache(t);

	return info && info->sec_identity == ID_HOST;
}

/*
 * NodePort / HostPort through a node address: the service's surrogate frontend has address 0.
 * A NodePort (port in the NodePort range) answers on every node's addresses, a HostPort only on
 * this node's.
 */
static __always_inline struct lb_service *sock_wildcard_lookup(const struct sock_tuple *t,
							       struct lb_lookup_key *k)
{
	const struct remote_endpoint_info *info = sock_ipcache(t);
	__u16 port = bpf_ntohs(t->port);
	int nodeport = port >= NODEPORT_PORT_MIN && port <= NODEPORT_PORT_MAX;

	if (!info)
		return NULL;
	if (info->sec_identity != ID_HOST && !(nodeport && info->sec_identity == ID_REMOTE_NODE))
		return NULL;
	__builtin_memset(&k->addr, 0, sizeof(k->addr));
	k->proto = t->proto;
	return lb_lookup_service(k, 1);
}

static __always_inline struct lb_service *sock_lookup_service(const struct sock_tuple *t,
							      struct lb_lookup_key *k)
{
	struct lb_service *svc;

	__builtin_memset(k, 0, sizeof(*k));
	k->addr = t->addr;
	k->dport = t->port;
	k->proto = t->proto;
	k->ipv6 = t->ipv6;
	svc = lb_lookup_service(k, 1);
	if (!svc)
		svc = sock_wildcard_lookup(t, k);
	return svc;
}

/* CVE-2020-8554: an ExternalIP (or a HostPort) is translated only when the address is this node's,
 * so a service cannot capture traffic to addresses outside the cluster. */
static __always_inline int sock_skip_xlate(const struct lb_service *svc, const struct sock_tuple *t)
{
	if (svc->flags & SVC_FLAG_HOSTPORT && sock_is_loopback(t))
		return 0;
	if (svc->flags & (SVC_FLAG_EXTERNAL_IP | SVC_FLAG_HOSTPORT))
		return !sock_addr_is_host(t);
	return 0;
}

/* One backend per call for TCP, one per socket for UDP (datagrams of a socket stay together). */
static __always_inline __u32 sock_select_slot(struct bpf_sock_addr *ctx, const struct sock_tuple *t)
{
	if (t->proto == CIL_IPPROTO_TCP)
		return bpf_get_prandom_u32();
	return (__u32)bpf_get_socket_cookie(ctx);
}

/* Remember what the socket's backend stands for: at connect() (TCP, or UDP: a connected socket's
 * one peer) in its slot or storage, at sendmsg() in the reverse map (written only when it
 * changed). */
static __always_inline int sock_update_revnat(struct bpf_sock_addr *ctx, const struct sock_tuple *svc,
					      const struct sock_tuple *be, __be16 rev_nat, __u8 connect)
{
	__u64 cookie;

	if (connect) {
		struct lb_sock_rev *r = sock_rev_claim(ctx);

		if (!r)
			return -1;
		__builtin_memcpy(r->backend, be->addr.ip6, 16);
		__builtin_memcpy(r->address, svc->addr.ip6, 16);
		r->backend_port = be->port;
		r->port = svc->port;
		r->rev_nat_index = rev_nat;
		r->ipv6 = svc->ipv6;
		return 0;
	}
	cookie = bpf_get_socket_cookie(ctx);

	if (svc->ipv6) {
		struct lb6_reverse_sk_key key = { .cookie = cookie, .port = be->port };
		struct lb6_reverse_sk val = { .port = svc->port, .rev_nat_index = rev_nat };
		struct lb6_reverse_sk *cur;

		__builtin_memcpy(key.address, be->addr.ip6, 16);
		__builtin_memcpy(val.address, svc->addr.ip6, 16);
		cur = bpf_map_lookup_elem(&cilium_lb6_reverse_sk, &key);
		if (cur && cur->port == val.port && cur->rev_nat_index == val.rev_nat_index &&
		    ipv6_addr_eq(cur->address, val.address))
			return 0;
		return bpf_map_update_elem(&cilium_lb6_reverse_sk, &key, &val, BPF_ANY);
	}
	struct lb4_reverse_sk_key key = { .cookie = cookie, .address = be->addr.ip4, .port = be->port };
	struct lb4_reverse_sk val = {
		.address = svc->addr.ip4,
		.port = svc->port,
		.rev_nat_index = rev_nat,
	};
	struct lb4_reverse_sk *cur = bpf_map_lookup_elem(&cilium_lb4_reverse_sk, &key);

	if (cur && cur->address == val.address && cur->port == val.port &&
	    cur->rev_nat_index == val.rev_nat_index)
		return 0;
	return bpf_map_update_elem(&cilium_lb4_reverse_sk, &key, &val, BPF_ANY);
}

/*
 * Forward translation of `t` in place. 0: translated; -ENXIO: not a service; -EPERM: a service not
 * translated here; -EHOSTUNREACH: no backend; -ENOMEM: the reverse entry could not be written.
 */
static __always_inline int sock_xlate_fwd(struct bpf_sock_addr *ctx, struct sock_tuple *t, __u8 connect)
{
	struct sock_tuple be = { .proto = t->proto, .ipv6 = t->ipv6 };
	union lb_affinity_key akey;
	struct lb_lookup_key k;
	struct lb_service *svc;
	__u32 backend_id = 0;
	__be16 rev_nat;
	__u16 count;
	int affinity;

	svc = sock_lookup_service(t, &k);
	if (!svc)
		return -SOCK_ENXIO;
	count = svc->count;
	if (count == 0)
		return -SOCK_EHOSTUNREACH;
	if (sock_skip_xlate(svc, t))
		return -SOCK_EPERM;
	rev_nat = svc->rev_nat_index;
	affinity = svc->flags & SVC_FLAG_AFFINITY;

	if (affinity) {
		lb_affinity_netns_key(&akey, t->ipv6, bpf_get_netns_cookie(ctx), rev_nat);
		backend_id = lb_affinity_backend(t->ipv6, &akey, rev_nat, lb_affinity_timeout(svc));
		if (backend_id && lb_lookup_backend(t->ipv6, backend_id, &be.addr, &be.port, NULL) < 0) {
			/* the backend is gone: forget it, so that a service left without backends
			 * does not come back here */
			lb_affinity_delete(t->ipv6, &akey);
			backend_id = 0;
		}
	}
	if (!backend_id) {
		backend_id = lb_slot_backend(&k, sock_select_slot(ctx, t) % count + 1);
		if (!backend_id || lb_lookup_backend(t->ipv6, backend_id, &be.addr, &be.port, NULL) < 0)
			return -SOCK_EHOSTUNREACH;
		if (affinity)
			lb_affinity_update(t->ipv6, &akey, backend_id);
	}
	if (sock_update_revnat(ctx, t, &be, rev_nat, connect) < 0)
		return -SOCK_ENOMEM;
	t->addr = be.addr;
	t->port = be.port;
	return 0;
}

/* Is the service an entry names (address, port, rev-NAT index) still there with backends? */
static __always_inline int sock_rev_alive(struct sock_tuple *svc_addr, __be16 rev_nat)
{
	struct lb_lookup_key k;
	struct lb_service *svc = sock_lookup_service(svc_addr, &k);

	return svc && svc->rev_nat_index == rev_nat && svc->count != 0;
}

/* The connect() half of sock_xlate_rev: the socket's own entry, for its one peer. */
static __always_inline int sock_xlate_rev_connected(struct bpf_sock_addr *ctx, struct sock_tuple *t)
{
	struct sock_tuple svc_addr = { .proto = t->proto, .ipv6 = t->ipv6 };
	__u64 *holder;
	struct lb_sock_rev *r = sock_rev_find(ctx, &holder);
	union lb_addr be;

	if (!r)
		return -SOCK_ENXIO;
	__builtin_memcpy(be.ip6, r->backend, 16);
	if (r->ipv6 != t->ipv6 || r->backend_port != t->port || be.w[0] != t->addr.w[0] ||
	    be.w[1] != t->addr.w[1] || be.w[2] != t->addr.w[2] || be.w[3] != t->addr.w[3])
		return -SOCK_ENXIO;
	__builtin_memcpy(svc_addr.addr.ip6, r->address, 16);
	svc_addr.port = r->port;
	if (!sock_rev_alive(&svc_addr, r->rev_nat_index)) {
		if (holder)
			*holder = 0; /* the slot is free again */
		else
			bpf_sk_storage_delete(&cilium_lb_sock_rev, ctx->sk);
		return -SOCK_ENOENT;
	}
	t->addr = svc_addr.addr;
	t->port = svc_addr.port;
	return 0;
}

/*
 * Reverse translation of a peer address `t` in place: the service address when this socket was
 * translated to that backend and the service is still the same. 0: restored; -ENXIO: not one of
 * this socket's backends; -ENOENT: a stale entry (deleted).
 */
static __always_inline int sock_xlate_rev(struct bpf_sock_addr *ctx, struct sock_tuple *t)
{
	struct sock_tuple svc_addr = { .proto = t->proto, .ipv6 = t->ipv6 };
	struct lb4_reverse_sk_key key4 = {};
	struct lb6_reverse_sk_key key6 = {};
	struct bpf_sock *sk = ctx->sk;
	__u64 cookie;
	__be16 rev_nat;
	void *map, *key;
	int err;

	/* A connected UDP socket (state established) may have its entry from connect(); datagrams
	 * it sent with sendto() to other services have theirs in the reverse map. */
	if (t->proto == CIL_IPPROTO_TCP || sk->state == BPF_TCP_ESTABLISHED) {
		err = sock_xlate_rev_connected(ctx, t);
		if (err != -SOCK_ENXIO || t->proto == CIL_IPPROTO_TCP)
			return err;
	}
	cookie = bpf_get_socket_cookie(ctx);
	if (t->ipv6) {
		struct lb6_reverse_sk *val;

		key6.cookie = cookie;
		__builtin_memcpy(key6.address, t->addr.ip6, 16);
		key6.port = t->port;
		map = &cilium_lb6_reverse_sk;
		key = &key6;
		val = bpf_map_lookup_elem(map, key);
		if (!val)
			return -SOCK_ENXIO;
		__builtin_memcpy(svc_addr.addr.ip6, val->address, 16);
		svc_addr.port = val->port;
		rev_nat = val->rev_nat_index;
	} else {
		struct lb4_reverse_sk *val;

		key4.cookie = cookie;
		key4.address = t->addr.ip4;
		key4.port = t->port;
		map = &cilium_lb4_reverse_sk;
		key = &key4;
		val = bpf_map_lookup_elem(map, key);
		if (!val)
			return -SOCK_ENXIO;
		svc_addr.addr.ip4 = val->address;
		svc_addr.port = val->port;
		rev_nat = val->rev_nat_index;
	}
	if (!sock_rev_alive(&svc_addr, rev_nat)) {
		bpf_map_delete_elem(map, key);
		return -SOCK_ENOENT;
	}
	t->addr = svc_addr.addr;
	t->port = svc_addr.port;
	return 0;
}

/* ---- the hooks ---- */

/* The verifier refuses a context access through a pointer clang derived from another one (ctx +
 * 16, then an offset): a compiler barrier between the user_ip6 words keeps each a direct access. */
#define ctx_barrier() asm volatile("" ::: "memory")

/* The address of the call. A hook of the IPv6 family sees an IPv4-mapped address as IPv4. */
static __always_inline void sock_tuple_of(const struct bpf_sock_addr *ctx, __u8 hook6,
					  struct sock_tuple *t)
{
	__builtin_memset(t, 0, sizeof(*t));
	t->port = (__be16)ctx->user_port;
	t->proto = sock_proto(ctx);
	if (!hook6) {
		t->addr.ip4 = ctx->user_ip4;
		return;
	}
	t->addr.w[0] = ctx->user_ip6[0];
	ctx_barrier();
	t->addr.w[1] = ctx->user_ip6[1];
	ctx_barrier();
	t->addr.w[2] = ctx->user_ip6[2];
	ctx_barrier();
	t->addr.w[3] = ctx->user_ip6[3];
	if (t->addr.w[0] == 0 && t->addr.w[1] == 0 && t->addr.w[2] == bpf_htonl(0xffff)) {
		t->addr.ip4 = t->addr.w[3];
		t->addr.w[1] = t->addr.w[2] = t->addr.w[3] = 0;
		return;
	}
	t->ipv6 = 1;
}

static __always_inline void sock_write(struct bpf_sock_addr *ctx, __u8 hook6, const struct sock_tuple *t)
{
	if (!hook6) {
		ctx->user_ip4 = t->addr.ip4;
	} else if (t->ipv6) {
		ctx->user_ip6[0] = t->addr.w[0];
		ctx_barrier();
		ctx->user_ip6[1] = t->addr.w[1];
		ctx_barrier();
		ctx->user_ip6[2] = t->addr.w[2];
		ctx_barrier();
		ctx->user_ip6[3] = t->addr.w[3];
	} else {
		ctx->user_ip6[3] = t->addr.ip4; /* stays IPv4-mapped */
	}
	ctx->user_port = t->port;
}

/* connect / sendmsg */
static __always_inline int sock_fwd(struct bpf_sock_addr *ctx, __u8 hook6, __u8 connect)
{
	struct sock_tuple t;
	int err;

	sock_tuple_of(ctx, hook6, &t);
	if (!t.proto)
		return SYS_PROCEED;
	err = sock_xlate_fwd(ctx, &t, connect);
	if (err == -SOCK_EHOSTUNREACH || err == -SOCK_ENOMEM) {
		bpf_set_retval(err);
		return SYS_REJECT;
	}
	if (err == 0)
		sock_write(ctx, hook6, &t);
	return SYS_PROCEED;
}

/* recvmsg / getpeername: never reject */
static __always_inline int sock_rev(struct bpf_sock_addr *ctx, __u8 hook6, __u8 connect)
{
	struct sock_tuple t;

	sock_tuple_of(ctx, hook6, &t);
	if (t.proto && sock_xlate_rev(ctx, &t) == 0)
		sock_write(ctx, hook6, &t);
	return SYS_PROCEED;
}

/* The programs: one per hook and family; the IPv6 ones also see IPv4-mapped addresses. */
#define SOCK_PROGRAM(name, section, handler, hook6, connect)                                       \
	SEC(section)                                                                               \
	int name(struct bpf_sock_addr *ctx)                                                        \
	{                                                                                          \
		return handler(ctx, hook6, connect);                                               \
	}

SOCK_PROGRAM(cil_sock4_connect, "cgroup/connect4", sock_fwd, 0, 1)
SOCK_PROGRAM(cil_sock4_sendmsg, "cgroup/sendmsg4", sock_fwd, 0, 0)
SOCK_PROGRAM(cil_sock4_recvmsg, "cgroup/recvmsg4", sock_rev, 0, 0)
SOCK_PROGRAM(cil_sock4_getpeername, "cgroup/getpeername4", sock_rev, 0, 0)
SOCK_PROGRAM(cil_sock6_connect, "cgroup/connect6", sock_fwd, 1, 1)
SOCK_PROGRAM(cil_sock6_sendmsg, "cgroup/sendmsg6", sock_fwd, 1, 0)
SOCK_PROGRAM(cil_sock6_recvmsg, "cgroup/recvmsg6", sock_rev, 1, 0)
SOCK_PROGRAM(cil_sock6_getpeername, "cgroup/getpeername6", sock_rev, 1, 0)

/* close(): a TCP or UDP socket gives its slot back (socket storage goes with the socket by
 * itself). Every UDP socket is checked, a disconnected one too (it may still hold its slot). */
SEC("cgroup/sock_release")
int cil_sock_release(struct bpf_sock *ctx)
{
	__u32 proto = ctx->protocol, slot;
	__u64 cookie, *holder;

	if (proto != CIL_IPPROTO_TCP && proto != CIL_IPPROTO_UDP)
		return SYS_PROCEED;
	cookie = bpf_get_socket_cookie(ctx);
	holder = sock_slot(cookie, &slot);
	if (holder && *holder == cookie)
		*holder = 0;
	return SYS_PROCEED;
}
