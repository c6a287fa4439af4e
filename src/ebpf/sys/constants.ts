/**
 * bpf(2) ABI numbers. Values are the kernel's (include/uapi/linux/bpf.h); the installed uapi headers
 * are older than the running kernel, so tcx values were read from the kernel's BTF. A privileged test
 * checks every enum here against /sys/kernel/btf/vmlinux.
 */
export const Cmd = {
  MAP_CREATE: 0,
  MAP_LOOKUP_ELEM: 1,
  MAP_UPDATE_ELEM: 2,
  MAP_DELETE_ELEM: 3,
  MAP_GET_NEXT_KEY: 4,
  PROG_LOAD: 5,
  OBJ_PIN: 6,
  OBJ_GET: 7,
  PROG_ATTACH: 8,
  PROG_DETACH: 9,
  PROG_TEST_RUN: 10,
  PROG_GET_NEXT_ID: 11,
  MAP_GET_NEXT_ID: 12,
  PROG_GET_FD_BY_ID: 13,
  MAP_GET_FD_BY_ID: 14,
  OBJ_GET_INFO_BY_FD: 15,
  PROG_QUERY: 16,
  BTF_LOAD: 18,
  MAP_LOOKUP_AND_DELETE_ELEM: 21,
  MAP_FREEZE: 22,
  MAP_LOOKUP_BATCH: 24,
  MAP_LOOKUP_AND_DELETE_BATCH: 25,
  MAP_UPDATE_BATCH: 26,
  MAP_DELETE_BATCH: 27,
  LINK_CREATE: 28,
  LINK_UPDATE: 29,
  LINK_GET_FD_BY_ID: 30,
  LINK_GET_NEXT_ID: 31,
  LINK_DETACH: 34,
} as const;

export const MapType = {
  UNSPEC: 0,
  HASH: 1,
  ARRAY: 2,
  PROG_ARRAY: 3,
  PERF_EVENT_ARRAY: 4,
  PERCPU_HASH: 5,
  PERCPU_ARRAY: 6,
  STACK_TRACE: 7,
  CGROUP_ARRAY: 8,
  LRU_HASH: 9,
  LRU_PERCPU_HASH: 10,
  LPM_TRIE: 11,
  ARRAY_OF_MAPS: 12,
  HASH_OF_MAPS: 13,
  DEVMAP: 14,
  SOCKMAP: 15,
  CPUMAP: 16,
  XSKMAP: 17,
  SOCKHASH: 18,
  CGROUP_STORAGE: 19,
  REUSEPORT_SOCKARRAY: 20,
  PERCPU_CGROUP_STORAGE: 21,
  QUEUE: 22,
  STACK: 23,
  SK_STORAGE: 24,
  DEVMAP_HASH: 25,
  STRUCT_OPS: 26,
  RINGBUF: 27,
  INODE_STORAGE: 28,
  TASK_STORAGE: 29,
  BLOOM_FILTER: 30,
} as const;
export type MapTypeValue = (typeof MapType)[keyof typeof MapType];

export const ProgType = {
  UNSPEC: 0,
  SOCKET_FILTER: 1,
  KPROBE: 2,
  SCHED_CLS: 3,
  SCHED_ACT: 4,
  TRACEPOINT: 5,
  XDP: 6,
  PERF_EVENT: 7,
  CGROUP_SKB: 8,
  CGROUP_SOCK: 9,
  LWT_IN: 10,
  LWT_OUT: 11,
  LWT_XMIT: 12,
  SOCK_OPS: 13,
  SK_SKB: 14,
  CGROUP_DEVICE: 15,
  SK_MSG: 16,
  RAW_TRACEPOINT: 17,
  CGROUP_SOCK_ADDR: 18,
  SK_LOOKUP: 30,
  SYSCALL: 31,
} as const;
export type ProgTypeValue = (typeof ProgType)[keyof typeof ProgType];

export const AttachType = {
  CGROUP_INET_INGRESS: 0,
  CGROUP_INET_EGRESS: 1,
  CGROUP_INET_SOCK_CREATE: 2,
  CGROUP_SOCK_OPS: 3,
  CGROUP_INET4_BIND: 8,
  CGROUP_INET6_BIND: 9,
  CGROUP_INET4_CONNECT: 10,
  CGROUP_INET6_CONNECT: 11,
  CGROUP_INET4_POST_BIND: 12,
  CGROUP_INET6_POST_BIND: 13,
  CGROUP_UDP4_SENDMSG: 14,
  CGROUP_UDP6_SENDMSG: 15,
  CGROUP_UDP4_RECVMSG: 19,
  CGROUP_UDP6_RECVMSG: 20,
  CGROUP_INET4_GETPEERNAME: 29,
  CGROUP_INET6_GETPEERNAME: 30,
  CGROUP_INET4_GETSOCKNAME: 31,
  CGROUP_INET6_GETSOCKNAME: 32,
  CGROUP_INET_SOCK_RELEASE: 34,
  XDP: 37,
  TCX_INGRESS: 46,
  TCX_EGRESS: 47,
} as const;
export type AttachTypeValue = (typeof AttachType)[keyof typeof AttachType];

export const LinkType = {
  UNSPEC: 0,
  RAW_TRACEPOINT: 1,
  TRACING: 2,
  CGROUP: 3,
  ITER: 4,
  NETNS: 5,
  XDP: 6,
  PERF_EVENT: 7,
  KPROBE_MULTI: 8,
  STRUCT_OPS: 9,
  NETFILTER: 10,
  TCX: 11,
  UPROBE_MULTI: 12,
  NETKIT: 13,
} as const;

/** Map update flags. */
export const UpdateFlag = { ANY: 0, NOEXIST: 1, EXIST: 2, LOCK: 4 } as const;

/** Map creation flags. */
export const MapFlag = {
  NO_PREALLOC: 1 << 0,
  NO_COMMON_LRU: 1 << 1,
  NUMA_NODE: 1 << 2,
  RDONLY: 1 << 3,
  WRONLY: 1 << 4,
  RDONLY_PROG: 1 << 7,
  WRONLY_PROG: 1 << 8,
  MMAPABLE: 1 << 10,
} as const;

/** Flags of tcx/mprog attachment (BPF_F_*), for before/after ordering. */
export const MprogFlag = {
  REPLACE: 1 << 2,
  BEFORE: 1 << 3,
  AFTER: 1 << 4,
  ID: 1 << 5,
  LINK: 1 << 13,
} as const;

export const XdpFlag = { UPDATE_IF_NOEXIST: 1, SKB_MODE: 2, DRV_MODE: 4, HW_MODE: 8 } as const;

export const PROG_LOAD_LOG_LEVEL_BRANCH = 1;
export const PROG_LOAD_LOG_LEVEL_STATS = 4;
export const BPF_OBJ_NAME_LEN = 16;
export const PSEUDO_MAP_FD = 1;
export const PSEUDO_MAP_VALUE = 2;
export const PSEUDO_CALL = 1;
export const PSEUDO_FUNC = 4;
