// SPDX-License-Identifier: GPL-2.0
/*
 * A program the verifier takes a long time over: it walks the bounded loop iteration by iteration
 * (the counter stays exact, so no state is pruned), some hundreds of thousands of instructions.
 * Loading it while signals arrive shows whether a load survives them.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

SEC("tc")
int slow_verify(struct __sk_buff *skb)
{
	__u32 acc = skb->len;

	for (int i = 0; i < 20000; i++) {
		acc = acc * 31 + (__u32)i;
		if (acc == 7) /* data dependent: the loop is not folded away */
			break;
	}
	return acc & 1;
}

char LICENSE[] SEC("license") = "GPL";
