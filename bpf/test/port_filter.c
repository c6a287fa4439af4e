// SPDX-License-Identifier: GPL-2.0
/*
 * Test program for the eBPF library: drops TCP/UDP packets whose destination port is listed in
 * `blocked_ports`, counts verdicts, and reports each drop through the `events` ring buffer.
 * Exercises BTF maps, .rodata constants, .bss/.data globals and a bpf-to-bpf call.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define ETH_P_IP 0x0800
#define TC_ACT_OK 0
#define TC_ACT_SHOT 2

struct filter_event {
	__u32 saddr;
	__u32 daddr;
	__u16 sport;
	__u16 dport;
	__u8 protocol;
	__u8 verdict;
	__u16 pad;
	__u64 ktime_ns;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, __u16);   /* port, host order */
	__type(value, __u8);
	__uint(max_entries, 1024);
} blocked_ports SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__type(key, __u32);   /* 0 passed, 1 dropped */
	__type(value, __u64);
	__uint(max_entries, 2);
} verdicts SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 20);
} events SEC(".maps");

/* Set by the loader before load: only packets to this IPv4 destination are filtered (0 = all). */
volatile const __be32 filter_daddr = 0;
/* Set by the loader: emit an event for each drop. */
volatile const __u8 report_drops = 1;

__u64 lost_events = 0;       /* .bss */
__u32 generation = 7;        /* .data */

static __noinline int port_blocked(__u16 port)
{
	__u8 *v = bpf_map_lookup_elem(&blocked_ports, &port);
	return v && *v;
}

static __always_inline void count(__u32 idx)
{
	__u64 *c = bpf_map_lookup_elem(&verdicts, &idx);
	if (c)
		(*c)++;
}

static __always_inline void report(struct iphdr *ip, __u16 sport, __u16 dport)
{
	struct filter_event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e) {
		__sync_fetch_and_add(&lost_events, 1);
		return;
	}
	e->saddr = ip->saddr;
	e->daddr = ip->daddr;
	e->sport = sport;
	e->dport = dport;
	e->protocol = ip->protocol;
	e->verdict = 1;
	e->pad = generation;
	e->ktime_ns = bpf_ktime_get_ns();
	bpf_ringbuf_submit(e, 0);
}

SEC("tcx/ingress")
int filter_ingress(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = data + sizeof(*eth);
	__u16 *ports;

	if ((void *)(ip + 1) > end || eth->h_proto != bpf_htons(ETH_P_IP))
		goto pass;
	if (filter_daddr && ip->daddr != filter_daddr)
		goto pass;
	if (ip->protocol != IPPROTO_TCP && ip->protocol != IPPROTO_UDP)
		goto pass;
	ports = (void *)ip + ip->ihl * 4;
	if ((void *)(ports + 2) > end)
		goto pass;
	if (port_blocked(bpf_ntohs(ports[1]))) {
		count(1);
		if (report_drops)
			report(ip, bpf_ntohs(ports[0]), bpf_ntohs(ports[1]));
		return TC_ACT_SHOT;
	}
pass:
	count(0);
	return TC_ACT_OK;
}

/* Same filter for the egress hook; shares maps with the ingress program. */
SEC("tcx/egress")
int filter_egress(struct __sk_buff *skb)
{
	return filter_ingress(skb);
}

char LICENSE[] SEC("license") = "GPL";
