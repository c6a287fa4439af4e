// SPDX-License-Identifier: GPL-2.0
/* Emits `events_per_run` ring buffer records per invocation (for ring buffer tests and bench). */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

struct rb_sample {
	__u64 seq;
	__u32 cpu;
	__u32 len;
	__u8 payload[16];
};

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 24);
} samples SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__type(key, __u32);
	__type(value, __u64);
	__uint(max_entries, 1);
} lost SEC(".maps");

volatile const __u32 events_per_run = 1;
/* Every n-th reservation is discarded instead of submitted (0 = never). */
volatile const __u32 discard_every = 0;
__u64 seq = 0;

static int emit_one(__u64 index, void *ctx)
{
	struct rb_sample *s = bpf_ringbuf_reserve(&samples, sizeof(*s), 0);
	__u32 zero = 0;
	__u64 n;

	if (!s) {
		__u64 *l = bpf_map_lookup_elem(&lost, &zero);
		if (l)
			(*l)++;
		return 0;
	}
	n = __sync_fetch_and_add(&seq, 1);
	s->seq = n;
	s->cpu = bpf_get_smp_processor_id();
	s->len = sizeof(*s);
	__builtin_memset(s->payload, 0xab, sizeof(s->payload));
	if (discard_every && n % discard_every == 0)
		bpf_ringbuf_discard(s, 0);
	else
		bpf_ringbuf_submit(s, 0);
	return 0;
}

SEC("tc")
int emit(struct __sk_buff *skb)
{
	bpf_loop(events_per_run, emit_one, NULL, 0);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
