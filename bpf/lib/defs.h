/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Layouts shared between the datapath and the agent: the single source of truth.
 * TypeScript codecs are generated from the BTF of the compiled objects (bpf/abi.c
 * instantiates every struct here), never hand-copied.
 */
#ifndef CILIUM_TS_DEFS_H
#define CILIUM_TS_DEFS_H

#define ENDPOINT_KEY_IPV4 1
#define ENDPOINT_KEY_IPV6 2

/* Reserved security identities (numbering as upstream). */
#define ID_UNKNOWN 0
#define ID_HOST 1
#define ID_WORLD 2
#define ID_UNMANAGED 3
#define ID_HEALTH 4
#define ID_INIT 5
#define ID_REMOTE_NODE 6
#define ID_KUBE_APISERVER 7
#define ID_INGRESS 8

/* ipcache: LPM trie, remote prefix -> remote_endpoint_info (identity, tunnel endpoint, flags).
 * prefixlen = IPCACHE_PREFIX_HDR_BITS (cluster_id, pad1, family) + the address prefix length. */
#define IPCACHE_PREFIX_HDR_BITS 32
struct ipcache_key {
	__u32 prefixlen;   /* bits after this field: 32 (cluster_id, pad, family) + address prefix */
	__u16 cluster_id;
	__u8 pad1;
	__u8 family;       /* ENDPOINT_KEY_IPV4 / ENDPOINT_KEY_IPV6 */
	union {
		__u32 ip4;
		__u8 ip6[16];
	};
};

/* ipcache value: what the node knows about a remote address (upstream's name and role). */
struct remote_endpoint_info {
	__u32 sec_identity;
	__u32 tunnel_endpoint; /* IPv4 of the node hosting the prefix, network order; 0 = this node / none */
	__u8 encrypt_key;
	__u8 flags;
	__u16 pad;
};

/* endpoints: local endpoint address -> how to deliver to it. */
struct endpoint_key {
	union {
		__u32 ip4;
		__u8 ip6[16];
	};
	__u8 family;
	__u8 pad[3];
};

#define ENDPOINT_F_HOST 1

struct endpoint_info {
	__u32 ifindex;        /* host-side veth */
	__u16 lxc_id;         /* endpoint ID */
	__u16 flags;
	__u8 mac[6];          /* pod's MAC */
	__u8 node_mac[6];     /* host-side veth MAC (router MAC seen by the pod) */
	__u32 sec_identity;
};

/*
 * policy: one LPM trie per endpoint (inner maps of cilium_policy_maps, keyed by endpoint ID).
 * Data after prefixlen is 8 bytes: identity(32) + direction(8) + protocol(8) + dport(16).
 * Exact identity+direction = prefixlen 40; +protocol = 48; +port = 64; port ranges are
 * split into power-of-two aligned blocks (prefixlen 48..64). Identity 0 = any identity.
 */
struct policy_key {
	__u32 prefixlen;
	__u32 sec_label;   /* network order, so the LPM compares it most significant byte first */
	__u8 egress;       /* 0 ingress, 1 egress */
	__u8 protocol;     /* IPPROTO_*, 0 = any */
	__u16 dport;       /* network order */
};

#define POLICY_FULL_PREFIX 64
#define POLICY_IDENTITY_DIR_PREFIX 40 /* identity + direction, any protocol/port */
#define POLICY_PROTO_PREFIX 48        /* identity + direction + protocol, any port */
#define POLICY_F_DENY 1
/* The entry's key names a protocol (prefixlen > 40). Only used to report the
 * match type in policy verdict events; the control plane sets it. */
#define POLICY_F_L4 2

/* policy_verdict_notify.match_type */
#define POLICY_MATCH_NONE 0
#define POLICY_MATCH_L3_ONLY 1   /* identity-specific entry, any proto/port */
#define POLICY_MATCH_L3_L4 2     /* identity-specific entry with proto (and port) */
#define POLICY_MATCH_L4_ONLY 3   /* identity 0 (any) entry with proto (and port) */
#define POLICY_MATCH_ALL 4       /* identity 0, any proto: the "allow all" entry */

struct policy_entry {
	__u16 proxy_port;  /* host order; 0 = no L7 redirect */
	__u8 flags;        /* POLICY_F_* */
	__u8 auth_type;
	__u32 rule_cookie; /* which rule set produced the entry, for monitor/hubble */
};

/*
 * conntrack: LRU hash; key is always written in the original (forward) direction
 * (saddr/sport = initiator). flags says at which side of an endpoint the entry
 * was made; a reply finds it by swapping addresses and ports and flipping the
 * side (bpf/lib/conntrack.h). ICMP echo request: sport = id, dport = 0.
 */
struct ct_key {
	union {
		__u32 saddr4;
		__u8 saddr6[16];
	};
	union {
		__u32 daddr4;
		__u8 daddr6[16];
	};
	__u16 sport;      /* network order; ICMP: echo id */
	__u16 dport;      /* network order; ICMP: 0 */
	__u8 nexthdr;
	__u8 flags;       /* CT_KEY_F_* */
	__u16 pad;
};

#define CT_KEY_F_INGRESS 1  /* entry created by an ingress (to-endpoint) decision; 0 = egress */
/* a service connection: the tuple as the client sent it (to the frontend), holding the backend
 * chosen for it (ct_entry.backend_id, rev_nat_index); forward direction only */
#define CT_KEY_F_SERVICE 2

struct ct_entry {
	__u64 lifetime_ns;     /* CLOCK_MONOTONIC deadline (ct_now) */
	__u64 rx_packets;      /* rx_*: reply direction; tx_*: original direction */
	__u64 rx_bytes;
	__u64 tx_packets;
	__u64 tx_bytes;
	__u32 src_sec_id;      /* identity of the initiator */
	__be16 rev_nat_index;  /* service the connection was translated for (network order), 0 = none */
	__u8 tcp_flags_seen;   /* TCP flags seen in the original direction (OR) */
	__u8 flags;            /* CT_F_* */
	__u16 proxy_port;
	__u8 reply_tcp_flags_seen; /* TCP flags seen in the reply direction (OR) */
	__u8 pad;
	__u32 backend_id;      /* CT_KEY_F_SERVICE entries: the backend the connection goes to */
	/* when a packet of each direction was last reported under monitor aggregation (ct_now() >>
	 * CT_REPORT_SHIFT, wrapping: only differences are read) */
	__u32 last_tx_report;
	__u32 last_rx_report;
};

#define CT_F_SEEN_NON_SYN 1
#define CT_F_CLOSING 2
#define CT_F_REPLY_SEEN 4      /* at least one packet in the reply direction */
/* came in through the node's external device: replies are translated back with
 * cilium_nodeport_nat4 (lib/nodeport.h) */
#define CT_F_NODEPORT 8
/* the connection goes to the node's L7 proxy at ct_entry.proxy_port (lib/proxy.h): the entry of
 * the side that redirected it */
#define CT_F_PROXY_REDIRECT 16
/* the node's L7 proxy opened this connection (with the client's address): its replies go back to
 * the proxy's socket, not to the client */
#define CT_F_FROM_PROXY 32
/* the peer (the destination of an egress entry, the source of an ingress one) was a pod of
 * another node when the entry was made, a cluster identity in the ipcache: with native routing
 * its packets leave without another ipcache lookup (bpf_lxc.c lxc_route_native); the route is
 * still the FIB's */
#define CT_F_CLUSTER_PEER 64

/* ct_seen_flags / trace_wanted: a packet went this way before (in the TCP flags byte, the CWR
 * bit, which trace_wanted never looks at as a flag) */
#define CT_SEEN_ANY 0x80
/* ct_seen_flags / trace_wanted: the direction's last report is CT_REPORT_INTERVAL old (in the ECE
 * bit, which ct_seen_flags masks out of the flags seen) */
#define CT_REPORT_DUE 0x40

/*
 * cilium_proxy (lib/proxy.h): a connection redirected to an L7 proxy, by its client address and
 * port (IPv4 in the first 4 bytes, rest zero) -> where it was going and whose rules apply.
 */
/* skb->mark magic (upstream's values): MARK_MAGIC_TO_PROXY | port << 16 steers a packet to the
 * proxy (the node's ip rule fwmark 0x200/0xf00 routes it locally); the proxy's upstream sockets
 * carry PROXY_INGRESS / PROXY_EGRESS (SO_MARK) */
#define MARK_MAGIC_HOST_MASK 0x0F00
#define MARK_MAGIC_TO_PROXY 0x0200
#define MARK_MAGIC_PROXY_INGRESS 0x0A00
#define MARK_MAGIC_PROXY_EGRESS 0x0B00

struct proxy_key {
	__u8 saddr6[16];
	__u16 sport;       /* network order */
	__u8 nexthdr;
	__u8 family;       /* 4 or 6 */
};

struct proxy_value {
	__u8 daddr6[16];   /* original destination */
	__u16 dport;       /* network order */
	__u16 ep_id;       /* the endpoint whose policy redirected */
	__u32 src_identity;
	__u32 dst_identity;
	__u8 egress;       /* 1: ep_id's egress rules, 0: its ingress rules */
	__u8 pad[3];
};

/* per-endpoint, per-reason counters (per-CPU hash). */
struct metrics_key {
	__u8 reason;     /* 0 forwarded, else drop reason code */
	__u8 dir;        /* 1 ingress, 2 egress */
	__u16 lxc_id;
	__u32 pad;
};

struct metrics_value {
	__u64 packets;
	__u64 bytes;
};

/* ---- events (ring buffer "cilium_events"); first byte is the message type as upstream ---- */
#define CILIUM_NOTIFY_DROP 1
#define CILIUM_NOTIFY_DBG_MSG 2
#define CILIUM_NOTIFY_DBG_CAPTURE 3
#define CILIUM_NOTIFY_TRACE 4
#define CILIUM_NOTIFY_POLICY_VERDICT 5

/* trace observation points (upstream's TRACE_TO_* / TRACE_FROM_* numbering) */
#define TRACE_TO_LXC 0
#define TRACE_TO_PROXY 1
#define TRACE_TO_HOST 2
#define TRACE_TO_STACK 3
#define TRACE_TO_OVERLAY 4
#define TRACE_FROM_LXC 5
#define TRACE_FROM_PROXY 6
#define TRACE_FROM_HOST 7
#define TRACE_FROM_STACK 8
#define TRACE_FROM_OVERLAY 9
#define TRACE_FROM_NETWORK 10
#define TRACE_TO_NETWORK 11

/* drop_notify.file: the datapath source file whose code dropped */
#define DROP_FILE_LXC 1  /* bpf_lxc.c */
#define DROP_FILE_HOST 2 /* bpf_host.c */
#define DROP_FILE_OVERLAY 3 /* bpf_overlay.c */

#define EVENT_CAPTURE_LEN 128
#define CILIUM_TS_EVENT_VERSION 1 /* event_hdr.version of the layouts below */

/* common header of every event */
struct event_hdr {
	__u8 type;        /* CILIUM_NOTIFY_* */
	__u8 subtype;     /* drop: reason code; trace: observation point; verdict: direction */
	__u16 source;     /* endpoint ID that emitted the event */
	__u32 hash;
	__u32 len_orig;   /* original packet length */
	__u16 len_cap;    /* captured bytes following the struct */
	__u16 version;
};

struct trace_notify {
	struct event_hdr hdr;
	__u32 src_label;
	__u32 dst_label;
	__u16 dst_id;      /* destination endpoint ID, 0 if not local */
	__u8 reason;       /* TRACE_REASON_* (ct state: new, established, reply, related) */
	__u8 ipv6;
	__u32 ifindex;
	__u64 ktime_ns;
	__u8 data[EVENT_CAPTURE_LEN];
	/* Service translation (after the capture, so readers of the fields above are unaffected):
	 * rev_nat_index (network order) of the service whose frontend the connection addressed, 0 when
	 * the packet was not translated at this point. Forward (destination translated to a backend):
	 * orig_* = the frontend the packet was sent to. Reply (source translated back to the frontend):
	 * orig_* = the backend that sent it. data[] holds the packet after translation. */
	__be16 rev_nat_index;
	__be16 orig_port;
	__u32 pad;
	union {
		__be32 orig_ip4;
		__u8 orig_ip6[16];
	};
};

struct drop_notify {
	struct event_hdr hdr;
	__u32 src_label;
	__u32 dst_label;
	__u16 dst_id;
	__u8 file;
	__u8 ipv6;
	__u32 ifindex;
	__u64 ktime_ns;
	__s32 ext_error;
	__be16 rev_nat_index; /* service of a service drop (no backend, source range), network order */
	__u16 pad;
	__u8 data[EVENT_CAPTURE_LEN];
};

struct policy_verdict_notify {
	struct event_hdr hdr;
	__u32 remote_label;
	__s32 verdict;     /* 0 allowed, < 0 drop reason (negated) */
	__u16 dst_port;    /* host order */
	__u8 proto;
	__u8 dir;          /* 1 ingress, 2 egress */
	__u8 ipv6;
	__u8 match_type;   /* 0 none, 1 L3-only, 2 L3+L4, 3 L4-only, 4 all */
	__u8 audited;
	__u8 pad;
	__u32 rule_cookie;
	__u64 ktime_ns;
	__u8 data[EVENT_CAPTURE_LEN];
};

#define TRACE_REASON_POLICY 0     /* new connection */
#define TRACE_REASON_CT_ESTABLISHED 1
#define TRACE_REASON_CT_REPLY 2
#define TRACE_REASON_CT_RELATED 3
#define TRACE_REASON_UNKNOWN 5     /* the observation point knows no CT state (overlay device) */

/* Drop reason codes: upstream's numbering (flow.proto DropReason); the datapath returns them negated. */
#define DROP_INVALID_SIP 132
#define DROP_POLICY 133
#define DROP_INVALID 134
#define DROP_CT_INVALID_HDR 135
#define DROP_CT_MISSING_ACK 136
#define DROP_CT_UNKNOWN_PROTO 137
#define DROP_UNKNOWN_L3 139
#define DROP_MISSED_TAIL_CALL 140
#define DROP_WRITE_ERROR 141
#define DROP_UNKNOWN_L4 142
#define DROP_UNKNOWN_ICMP_CODE 143
#define DROP_UNKNOWN_ICMP_TYPE 144
#define DROP_UNKNOWN_ICMP6_CODE 145
#define DROP_UNKNOWN_ICMP6_TYPE 146
#define DROP_NO_TUNNEL_KEY 147
#define DROP_UNKNOWN_TARGET 150
#define DROP_UNROUTABLE 151
#define DROP_CSUM_L3 153
#define DROP_CSUM_L4 154
#define DROP_CT_CREATE_FAILED 155
#define DROP_INVALID_EXTHDR 156
#define DROP_FRAG_NOSUPPORT 157
#define DROP_NO_SERVICE 158
#define DROP_NO_TUNNEL_ENDPOINT 160
#define DROP_PROXYMAP_CREATE_FAILED 161
#define DROP_UNKNOWN_CT 163
#define DROP_HOST_UNREACHABLE 164
#define DROP_NO_CONFIG 165
#define DROP_UNSUPPORTED_L2 166
#define DROP_NAT_NO_MAPPING 167
#define DROP_NAT_UNSUPP_PROTO 168
#define DROP_NO_FIB 169
#define DROP_INVALID_IDENTITY 171
#define DROP_UNKNOWN_SENDER 172
#define DROP_FORBIDDEN_ICMP6 176
#define DROP_NOT_IN_SRC_RANGE 177
#define DROP_PROXY_LOOKUP_FAILED 178
#define DROP_PROXY_SET_FAILED 179
#define DROP_PROXY_UNKNOWN_PROTO 180
#define DROP_POLICY_DENY 181
#define DROP_INVALID_VNI 183
#define DROP_INVALID_TC_BUFFER 184
#define DROP_POLICY_AUTH_REQUIRED 189
#define DROP_CT_NO_MAP_FOUND 190
#define DROP_TTL_EXCEEDED 196
#define DROP_HOST_NOT_READY 202
#define DROP_EP_NOT_READY 203

/*
 * ---- load balancing: services (bpf/lib/lb.h; upstream's layouts, one map set per family) ----
 *
 * Byte order: addresses and ports are network order (__be* members: the generated codecs write
 * them big-endian). rev_nat_index / rev_nat_id is network order too, in the service value and in
 * every key that holds it (reverse NAT, affinity, affinity match, source range, maglev), as
 * upstream stores it; the datapath only compares and copies it. backend_id, count, qcount and
 * backend_slot are host order.
 */
#define LB_LOOKUP_SCOPE_EXT 0 /* all backends (the only scope of most services) */
#define LB_LOOKUP_SCOPE_INT 1 /* node-local backends of a service with SVC_FLAG2_TWO_SCOPES */

/* protocol of a service key: the frontend's L4 protocol, or any */
#define LB_PROTO_ANY 0

/* lb_service.flags */
#define SVC_FLAG_EXTERNAL_IP 1
#define SVC_FLAG_NODEPORT 2
#define SVC_FLAG_EXT_LOCAL_SCOPE 4  /* externalTrafficPolicy: Local */
#define SVC_FLAG_HOSTPORT 8
#define SVC_FLAG_AFFINITY 16        /* sessionAffinity: ClientIP */
#define SVC_FLAG_LOADBALANCER 32
#define SVC_FLAG_ROUTABLE 64        /* reachable from outside (not a ClusterIP / surrogate) */
#define SVC_FLAG_SOURCE_RANGE 128   /* loadBalancerSourceRanges are checked */
/* lb_service.flags2 (upstream's bits 0-3, local redirect, NAT46x64, L7 LB and loopback, are not
 * implemented: the agent's map wrapper refuses them) */
#define SVC_FLAG2_INT_LOCAL_SCOPE 16 /* internalTrafficPolicy: Local */
#define SVC_FLAG2_TWO_SCOPES 32      /* an INT scope entry exists next to the EXT one */

/* slot 0 (the master entry): affinity_timeout = algorithm << LB_ALGORITHM_SHIFT | timeout (s) */
#define LB_ALGORITHM_SHIFT 24
#define LB_AFFINITY_TIMEOUT_MASK 16777215 /* (1 << 24) - 1 */
#define LB_ALGORITHM_RANDOM 1
#define LB_ALGORITHM_MAGLEV 2

/* lb4_backend.flags / lb6_backend.flags: the backend's state */
#define BE_STATE_ACTIVE 0
#define BE_STATE_TERMINATING 1
#define BE_STATE_QUARANTINED 2
#define BE_STATE_MAINTENANCE 3

/* services: frontend (+ slot) -> master entry (slot 0) or one backend (slots 1..count+qcount).
 * Slots 1..count are the backends new connections may pick; count+1..count+qcount are
 * terminating / quarantined ones kept for lookups. */
struct lb4_key {
	__be32 address;      /* service IP */
	__be16 dport;        /* service port */
	__u16 backend_slot;  /* 0: master entry */
	__u8 proto;          /* IPPROTO_TCP / UDP, or LB_PROTO_ANY */
	__u8 scope;          /* LB_LOOKUP_SCOPE_* */
	__u8 pad[2];
};

struct lb6_key {
	__u8 address[16];
	__be16 dport;
	__u16 backend_slot;
	__u8 proto;
	__u8 scope;
	__u8 pad[2];
};

/* Service entry, both families (upstream: lb4_service / lb6_service, the same layout). */
struct lb_service {
	union {
		__u32 backend_id;       /* slots >= 1 */
		__u32 affinity_timeout; /* slot 0: LB_ALGORITHM_* << 24 | session affinity timeout (s) */
	};
	__u16 count;            /* slot 0: backends new connections pick from (slots 1..count) */
	__be16 rev_nat_index;   /* network order */
	__u8 flags;             /* SVC_FLAG_* */
	__u8 flags2;            /* SVC_FLAG2_* */
	__u16 qcount;           /* slot 0: terminating / quarantined backends after the count */
};

/* backends: backend ID -> address */
struct lb4_backend {
	__be32 address;
	__be16 port;
	__u8 proto;
	__u8 flags;       /* BE_STATE_* */
	__u16 cluster_id;
	__u8 zone;
	__u8 pad;
};

struct lb6_backend {
	__u8 address[16];
	__be16 port;
	__u8 proto;
	__u8 flags;       /* BE_STATE_* */
	__u16 cluster_id;
	__u8 zone;
	__u8 pad;
};

/* reverse NAT: rev_nat_index (network order) -> the service address replies must carry */
struct lb4_reverse_nat {
	__be32 address;
	__be16 port;
	__u16 pad;
};

struct lb6_reverse_nat {
	__u8 address[16];
	__be16 port;
	__u16 pad;
};

/* session affinity (LRU): client (IP, or netns cookie for socket-LB) + service -> backend */
struct lb4_affinity_key {
	union {
		__be32 client_ip;
		__u64 netns_cookie;
	};
	__be16 rev_nat_id;
	__u8 netns;       /* 1: the union holds a netns cookie, 0: a client IP */
	__u8 pad1;
	__u32 pad2;
};

struct lb6_affinity_key {
	union {
		__u8 client_ip[16];
		__u64 netns_cookie;
	};
	__be16 rev_nat_id;
	__u8 netns;
	__u8 pad1;
	__u32 pad2;
};

struct lb_affinity_val {
	__u64 last_used;  /* CLOCK_MONOTONIC seconds of the last connection that used it */
	__u32 backend_id;
	__u32 pad;
};

/* affinity match (both families): the active backends of each service; an affinity entry
 * pointing at a pair missing here is not used. Value: a u8, presence only. */
struct lb_affinity_match {
	__u32 backend_id;
	__be16 rev_nat_id;
	__u16 pad;
};

/* source ranges (LPM): prefixlen = LB_SRC_RANGE_PREFIX_HDR_BITS (rev_nat_id, pad) + the
 * client prefix length. Value: a u8, presence only. */
#define LB_SRC_RANGE_PREFIX_HDR_BITS 32
struct lb4_src_range_key {
	__u32 prefixlen;
	__be16 rev_nat_id;
	__u16 pad;
	__be32 address;
};

struct lb6_src_range_key {
	__u32 prefixlen;
	__be16 rev_nat_id;
	__u16 pad;
	__u8 address[16];
};

/* socket-LB reverse translation (LRU): (socket cookie, backend) -> the service it stands for */
struct lb4_reverse_sk_key {
	__u64 cookie;
	__be32 address;   /* backend */
	__be16 port;
	__u16 pad;
};

struct lb4_reverse_sk {
	__be32 address;   /* service */
	__be16 port;
	__be16 rev_nat_index;
};

struct lb6_reverse_sk_key {
	__u64 cookie;
	__u8 address[16];
	__be16 port;
	__u16 pad;
	__u32 pad2;
};

struct lb6_reverse_sk {
	__u8 address[16];
	__be16 port;
	__be16 rev_nat_index;
};

/*
 * ---- NodePort NAT (bpf/lib/nodeport.h): connections from outside the node to a service ----
 *
 * cilium_nodeport_nat4 (LRU): key = struct ct_key, flags = NAT_KEY_F_*:
 *   NAT_KEY_F_FWD  the tuple as the client sent it (client -> frontend) -> the source the node
 *                  gives it (to_addr:to_port = the node's SNAT address and port); only when SNATed
 *   NAT_KEY_F_REV  the tuple the backend sees, in the forward direction (SNAT address or client ->
 *                  backend) -> what its replies become: destination to_addr:to_port (the client),
 *                  source svc_addr:svc_port (the frontend the client addressed), sent out of ifindex
 * Ports and addresses are network order. A reverse entry lives as conntrack would keep the
 * connection (TCP: 60 s until the backend answered, 6 h, 10 s after an RST or a FIN each way, or
 * NODEPORT_TIME_WAIT when the backend closed first; others 60 s), refreshed by its packets; a
 * forward entry counts only while its reverse entry is alive and still the same connection's.
 */
#define NAT_KEY_F_FWD 0
#define NAT_KEY_F_REV 1

struct nodeport_nat_entry {
	__u64 lifetime_ns;     /* bpf_ktime_get_ns() deadline, refreshed on use */
	union {
		__be32 to_addr4;
		__u8 to_addr6[16];
	};
	union {
		__be32 svc_addr4;
		__u8 svc_addr6[16];
	};
	__be16 to_port;
	__be16 svc_port;
	__be16 rev_nat_index;  /* the service (network order) */
	__u8 tcp_flags_seen;   /* NAT_KEY_F_REV: TCP flags seen from the client (OR) */
	__u8 reply_tcp_flags_seen; /* NAT_KEY_F_REV: TCP flags seen from the backend (OR) */
	__u32 ifindex;         /* NAT_KEY_F_REV: the device the connection came in on */
	__u8 nat_flags;        /* NAT_F_* */
	__u8 pad2[3];
};

/* nodeport_nat_entry.nat_flags: the backend sent the first FIN, so it holds the closed tuple in
 * TIME_WAIT for a while: its port is not given to another client before that is over */
#define NAT_F_BACKEND_CLOSED_FIRST 1

#endif
