// SPDX-License-Identifier: GPL-2.0
/* A program the verifier must reject: it reads packet data without a bounds check. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

SEC("tc")
int unchecked_read(struct __sk_buff *skb)
{
	unsigned char *data = (void *)(long)skb->data;

	/* No comparison against data_end: out-of-bounds access. */
	return data[40];
}

char LICENSE[] SEC("license") = "GPL";
