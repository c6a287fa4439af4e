/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ABI object: instantiates every layout of lib/defs.h so the compiled
 * object's BTF describes them all; src/ebpf generates the TypeScript codecs
 * from this BTF. The globals land in .bss and are never read; the program
 * only makes this a loadable object.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

#include "lib/defs.h"

#define ABI(type) struct type __abi_##type __attribute__((used))

ABI(ipcache_key);
ABI(remote_endpoint_info);
ABI(endpoint_key);
ABI(endpoint_info);
ABI(policy_key);
ABI(policy_entry);
ABI(ct_key);
ABI(ct_entry);
ABI(metrics_key);
ABI(metrics_value);
ABI(event_hdr);
ABI(trace_notify);
ABI(drop_notify);
ABI(policy_verdict_notify);
ABI(lb4_key);
ABI(lb6_key);
ABI(lb_service);
ABI(lb4_backend);
ABI(lb6_backend);
ABI(lb4_reverse_nat);
ABI(lb6_reverse_nat);
ABI(lb4_affinity_key);
ABI(lb6_affinity_key);
ABI(lb_affinity_val);
ABI(lb_affinity_match);
ABI(lb4_src_range_key);
ABI(lb6_src_range_key);
ABI(lb4_reverse_sk_key);
ABI(lb4_reverse_sk);
ABI(lb6_reverse_sk_key);
ABI(lb6_reverse_sk);
ABI(nodeport_nat_entry);
ABI(proxy_key);
ABI(proxy_value);

char _license[] SEC("license") = "Dual BSD/GPL";

SEC("tc")
int cil_abi(struct __sk_buff *ctx)
{
	return 0; /* TC_ACT_OK */
}
