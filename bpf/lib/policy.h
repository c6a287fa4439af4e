/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Policy enforcement against an endpoint's trie in cilium_policy_maps.
 *
 * Encoding (the control plane's contract):
 * - No inner map for an endpoint ID: nothing is enforced for that endpoint in
 *   either direction; every connection is allowed and no verdict is reported.
 * - Once an inner map exists, each direction is default-deny. A direction that
 *   no rule selects is opened with ONE wildcard entry
 *       { prefixlen 40, sec_label 0, egress = dir, protocol 0, dport 0 }
 *   with flags POLICY_F_UNENFORCED (allowed, no verdict event). Without that
 *   flag the same entry is an ordinary "allow everything" rule
 *   (match type ALL, reported).
 * - Keys: sec_label in network order (0 = any identity), egress 0/1, protocol
 *   IPPROTO_* (0 = any, only with prefixlen 40), dport network order.
 *   prefixlen 40 = identity+dir, 48 = +protocol (any port), 64 = exact port;
 *   port ranges as power-of-two aligned blocks in between.
 * - ICMP / ICMPv6: the policy dport is the message TYPE (code ignored), encoded
 *   like a port: bpf_htons(type). E.g. echo request: proto 1, dport htons(8).
 * - Lookup for (remote identity R, dir, proto, dport): one LPM lookup with
 *   sec_label = R, one with sec_label = 0. A deny (POLICY_F_DENY) in either
 *   result wins (DROP_POLICY_DENY, 181); else an allow in either allows
 *   (the identity-specific one is reported); else DROP_POLICY (133).
 *   LPM returns only the longest match per lookup, so the control plane must
 *   not let a longer allow entry shadow a shorter deny entry of the same
 *   identity (write the narrower key as deny instead).
 * - Shared layers: a trie in cilium_policy_layers holds entries (same keys
 *   and values) that many endpoints share, written once instead of once per
 *   endpoint. cilium_policy_ep_layers lists, per endpoint ID, the layers it
 *   references (IDs packed first, 0 ends the list); they count only while the
 *   endpoint has a trie. A layer holds denies, and allows of one identity for
 *   a whole direction (prefixlen 40, never identity 0). A deny wins wherever it
 *   is found. An identity's allow in a layer is used only when the own trie
 *   has no entry for the identity that matches: the control plane never puts
 *   the same key in two places, so an own entry that matches is longer, and
 *   the longest match is what one trie holding everything would return.
 * - Audit mode (POLICY_AUDIT_MODE=1): a would-be drop is reported with
 *   audited=1 and the connection is allowed.
 */
#ifndef CILIUM_TS_POLICY_H
#define CILIUM_TS_POLICY_H

#include "lib/common.h"
#include "lib/config/sizes.h"
#include "lib/events.h"

#define POLICY_F_UNENFORCED 4

/*
 * The inner map template: one LPM trie of policy entries per endpoint. Sizes,
 * not BTF types: clang emits only forward declarations for types behind a
 * nested map definition, which libbpf cannot size. The kernel checks an inner
 * map against this template by type, key/value size, flags and max_entries,
 * so every endpoint's trie must be LPM_TRIE, key 12 (struct policy_key),
 * value 8 (struct policy_entry), BPF_F_NO_PREALLOC, POLICY_MAP_SIZE entries.
 */
struct policy_inner_map {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(key_size, sizeof(struct policy_key));
	__uint(value_size, sizeof(struct policy_entry));
	__uint(max_entries, POLICY_MAP_SIZE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
};

/* endpoint ID -> that endpoint's policy trie. Absent = no policy enforced in
 * either direction (see above). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH_OF_MAPS);
	__type(key, __u32);
	__uint(max_entries, POLICY_MAPS_OUTER_SIZE);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
	__array(values, struct policy_inner_map);
} cilium_policy_maps SEC(".maps");

/* Shared layers (see above). */
#define POLICY_MAX_LAYERS 4
#define POLICY_LAYERS_SIZE 4096

/* layer ID -> a trie of entries shared by the endpoints listing it. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH_OF_MAPS);
	__type(key, __u32);
	__uint(max_entries, POLICY_LAYERS_SIZE);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
	__array(values, struct policy_inner_map);
} cilium_policy_layers SEC(".maps");

struct policy_layers {
	__u32 id[POLICY_MAX_LAYERS]; /* layer IDs, packed first; 0 = end */
};

/* endpoint ID -> the shared layers it references. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, __u32);
	__type(value, struct policy_layers);
	__uint(max_entries, POLICY_MAPS_OUTER_SIZE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} cilium_policy_ep_layers SEC(".maps");

struct policy_result {
	__s32 verdict;    /* 0 allow, -DROP_POLICY, -DROP_POLICY_DENY (before audit) */
	__u32 rule_cookie;
	__u16 proxy_port;
	__u8 match_type;  /* POLICY_MATCH_* */
	__u8 report;      /* send a verdict event */
};

static __always_inline __u8 policy_match_type(const struct policy_entry *e, int wildcard)
{
	int l4 = e->flags & POLICY_F_L4;

	if (wildcard)
		return l4 ? POLICY_MATCH_L4_ONLY : POLICY_MATCH_ALL;
	return l4 ? POLICY_MATCH_L3_L4 : POLICY_MATCH_L3_ONLY;
}

#define POLICY_LAYER_EXACT_DENY 1
#define POLICY_LAYER_ANY_DENY 2
#define POLICY_LAYER_EXACT_ALLOW 3

/* The trie of an endpoint's i-th layer (NULL past its last one); `id` is scratch space. */
static __always_inline void *policy_layer_at(const struct policy_layers *layers, __u32 i, __u32 *id)
{
	*id = layers->id[i];
	return *id ? bpf_map_lookup_elem(&cilium_policy_layers, id) : NULL;
}

/*
 * Looks the packet's key up in an endpoint's shared layers (the caller found
 * no deny by identity in its own trie; `key` holds the packet's direction,
 * protocol and port). Returns what decides, in this order: a deny by identity, a deny
 * for any identity, an allow by identity (which the caller takes only when its
 * own trie has no entry for the identity), or 0 (also when the endpoint lists
 * no layer); the deciding entry's cookie, proxy port and match type are in
 * *res. A global function: the verifier checks it once, on its own, instead
 * of again on every path that reaches it (bpf_lxc verifies 2.5x fewer
 * instructions, which keeps an endpoint's first load short); it therefore
 * checks its pointers itself. Kept to one stack slot: its frame adds to the
 * deepest call chains of bpf_lxc and bpf_host, which are near the 512 B limit.
 */
__noinline int policy_layers_lookup(__u32 ep_id, __u32 remote_id, struct policy_key *key,
					   struct policy_result *res)
{
	struct policy_entry *e, *hit = NULL;
	struct policy_layers *layers;
	int ret = 0;
	__u32 i;

	if (!key || !res)
		return 0;
	key->sec_label = bpf_htonl(remote_id);
	layers = bpf_map_lookup_elem(&cilium_policy_ep_layers, &ep_id);
	if (!layers)
		return 0;
	/* By identity: a deny decides, the first allow is kept. ep_id now holds layer IDs. */
	for (i = 0; i < POLICY_MAX_LAYERS; i++) {
		void *layer = policy_layer_at(layers, i, &ep_id);

		if (!layer)
			continue;
		e = bpf_map_lookup_elem(layer, key);
		if (e && (e->flags & POLICY_F_DENY)) {
			hit = e;
			ret = POLICY_LAYER_EXACT_DENY;
			goto out;
		}
		if (e && !hit)
			hit = e;
	}
	if (hit)
		ret = POLICY_LAYER_EXACT_ALLOW;
	/* For any identity: denies only. */
	key->sec_label = 0;
	for (i = 0; i < POLICY_MAX_LAYERS; i++) {
		void *layer = policy_layer_at(layers, i, &ep_id);

		if (!layer)
			continue;
		e = bpf_map_lookup_elem(layer, key);
		if (e && (e->flags & POLICY_F_DENY)) {
			hit = e;
			ret = POLICY_LAYER_ANY_DENY;
			break;
		}
	}
out:
	if (hit) {
		res->rule_cookie = hit->rule_cookie;
		res->proxy_port = hit->proxy_port;
		res->match_type = policy_match_type(hit, ret == POLICY_LAYER_ANY_DENY);
	}
	return ret;
}

/* Decide whether endpoint `ep_id` accepts a new connection with `remote_id`
 * in direction `egress` (0 ingress, 1 egress). */
static __always_inline void policy_lookup(__u16 ep_id, __u32 remote_id, __u8 egress,
					  __u8 proto, __u16 dport_be, struct policy_result *res)
{
	__u32 outer_key = ep_id;
	struct policy_entry *exact, *any, *hit;
	struct policy_key key;
	int in_layer;
	void *inner;

	res->verdict = 0;
	res->rule_cookie = 0;
	res->proxy_port = 0;
	res->match_type = POLICY_MATCH_NONE;
	res->report = 0;

	inner = bpf_map_lookup_elem(&cilium_policy_maps, &outer_key);
	if (!inner)
		return; /* no policy for this endpoint: allow, nothing to report */

	key.prefixlen = POLICY_FULL_PREFIX;
	key.sec_label = bpf_htonl(remote_id);
	key.egress = egress;
	key.protocol = proto;
	key.dport = dport_be;
	exact = bpf_map_lookup_elem(inner, &key);
	key.sec_label = 0;
	any = bpf_map_lookup_elem(inner, &key);

	res->report = 1;
	if (exact && (exact->flags & POLICY_F_DENY)) {
		hit = exact;
		res->verdict = -DROP_POLICY_DENY;
		res->match_type = policy_match_type(hit, 0);
		goto found;
	}
	in_layer = policy_layers_lookup(ep_id, remote_id, &key, res);
	if (in_layer == POLICY_LAYER_EXACT_DENY) {
		res->verdict = -DROP_POLICY_DENY;
		return;
	} else if (any && (any->flags & POLICY_F_DENY)) {
		hit = any;
		res->verdict = -DROP_POLICY_DENY;
		res->match_type = policy_match_type(hit, 1);
	} else if (in_layer == POLICY_LAYER_ANY_DENY) {
		res->verdict = -DROP_POLICY_DENY;
		return;
	} else if (exact) {
		hit = exact;
		res->match_type = policy_match_type(hit, 0);
	} else if (in_layer == POLICY_LAYER_EXACT_ALLOW) {
		return;
	} else if (any) {
		hit = any;
		res->match_type = policy_match_type(hit, 1);
		if (hit->flags & POLICY_F_UNENFORCED)
			res->report = 0;
	} else {
		res->verdict = -DROP_POLICY;
		return;
	}
found:
	res->rule_cookie = hit->rule_cookie;
	res->proxy_port = hit->proxy_port;
}

/*
 * Full policy step for a new connection: lookup, verdict event, audit mode (`audit`: the
 * deciding program's POLICY_AUDIT_MODE). Returns 0 to allow, the proxy port (> 0, host order) to
 * allow through the L7 proxy (lib/proxy.h), or -DROP_POLICY / -DROP_POLICY_DENY.
 */
static __always_inline int policy_enforce(struct __sk_buff *ctx, __u16 ep_id, __u32 remote_id,
					  __u8 egress, __u8 proto, __u16 dport_be, __u8 ipv6, __u32 audit)
{
	struct policy_result res;
	__u8 audited = 0;
	int ret;

	policy_lookup(ep_id, remote_id, egress, proto, dport_be, &res);
	ret = res.verdict;
	if (ret < 0 && audit) {
		audited = 1;
		ret = 0;
	}
	if (res.report) {
		send_policy_verdict(ctx, ep_id, remote_id, res.verdict, dport_be, proto,
				    egress ? METRIC_EGRESS : METRIC_INGRESS, ipv6,
				    res.match_type, audited, res.rule_cookie);
	}
	if (res.verdict == 0 && res.proxy_port)
		return res.proxy_port;
	return ret;
}

#endif
