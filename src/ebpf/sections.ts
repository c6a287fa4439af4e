/**
 * ELF section name → program type and expected attach type, for the section names clang/libbpf
 * programs use. Longest matching prefix wins; "tc" matches "tc" and "tc/anything".
 */
import { AttachType, type AttachTypeValue, ProgType, type ProgTypeValue } from './sys/constants.js';

export interface SectionDef {
  prefix: string;
  progType: ProgTypeValue;
  attachType?: AttachTypeValue;
}

const defs: SectionDef[] = [
  { prefix: 'socket', progType: ProgType.SOCKET_FILTER },
  { prefix: 'tc', progType: ProgType.SCHED_CLS },
  { prefix: 'classifier', progType: ProgType.SCHED_CLS },
  { prefix: 'tcx/ingress', progType: ProgType.SCHED_CLS, attachType: AttachType.TCX_INGRESS },
  { prefix: 'tcx/egress', progType: ProgType.SCHED_CLS, attachType: AttachType.TCX_EGRESS },
  { prefix: 'action', progType: ProgType.SCHED_ACT },
  { prefix: 'xdp', progType: ProgType.XDP, attachType: AttachType.XDP },
  { prefix: 'cgroup_skb/ingress', progType: ProgType.CGROUP_SKB, attachType: AttachType.CGROUP_INET_INGRESS },
  { prefix: 'cgroup_skb/egress', progType: ProgType.CGROUP_SKB, attachType: AttachType.CGROUP_INET_EGRESS },
  {
    prefix: 'cgroup/sock_create',
    progType: ProgType.CGROUP_SOCK,
    attachType: AttachType.CGROUP_INET_SOCK_CREATE,
  },
  {
    prefix: 'cgroup/sock_release',
    progType: ProgType.CGROUP_SOCK,
    attachType: AttachType.CGROUP_INET_SOCK_RELEASE,
  },
  {
    prefix: 'cgroup/post_bind4',
    progType: ProgType.CGROUP_SOCK,
    attachType: AttachType.CGROUP_INET4_POST_BIND,
  },
  {
    prefix: 'cgroup/post_bind6',
    progType: ProgType.CGROUP_SOCK,
    attachType: AttachType.CGROUP_INET6_POST_BIND,
  },
  { prefix: 'cgroup/bind4', progType: ProgType.CGROUP_SOCK_ADDR, attachType: AttachType.CGROUP_INET4_BIND },
  { prefix: 'cgroup/bind6', progType: ProgType.CGROUP_SOCK_ADDR, attachType: AttachType.CGROUP_INET6_BIND },
  {
    prefix: 'cgroup/connect4',
    progType: ProgType.CGROUP_SOCK_ADDR,
    attachType: AttachType.CGROUP_INET4_CONNECT,
  },
  {
    prefix: 'cgroup/connect6',
    progType: ProgType.CGROUP_SOCK_ADDR,
    attachType: AttachType.CGROUP_INET6_CONNECT,
  },
  {
    prefix: 'cgroup/sendmsg4',
    progType: ProgType.CGROUP_SOCK_ADDR,
    attachType: AttachType.CGROUP_UDP4_SENDMSG,
  },
  {
    prefix: 'cgroup/sendmsg6',
    progType: ProgType.CGROUP_SOCK_ADDR,
    attachType: AttachType.CGROUP_UDP6_SENDMSG,
  },
  {
    prefix: 'cgroup/recvmsg4',
    progType: ProgType.CGROUP_SOCK_ADDR,
    attachType: AttachType.CGROUP_UDP4_RECVMSG,
  },
  {
    prefix: 'cgroup/recvmsg6',
    progType: ProgType.CGROUP_SOCK_ADDR,
    attachType: AttachType.CGROUP_UDP6_RECVMSG,
  },
  {
    prefix: 'cgroup/getpeername4',
    progType: ProgType.CGROUP_SOCK_ADDR,
    attachType: AttachType.CGROUP_INET4_GETPEERNAME,
  },
  {
    prefix: 'cgroup/getpeername6',
    progType: ProgType.CGROUP_SOCK_ADDR,
    attachType: AttachType.CGROUP_INET6_GETPEERNAME,
  },
  {
    prefix: 'cgroup/getsockname4',
    progType: ProgType.CGROUP_SOCK_ADDR,
    attachType: AttachType.CGROUP_INET4_GETSOCKNAME,
  },
  {
    prefix: 'cgroup/getsockname6',
    progType: ProgType.CGROUP_SOCK_ADDR,
    attachType: AttachType.CGROUP_INET6_GETSOCKNAME,
  },
  { prefix: 'sockops', progType: ProgType.SOCK_OPS, attachType: AttachType.CGROUP_SOCK_OPS },
  { prefix: 'sk_lookup', progType: ProgType.SK_LOOKUP },
  { prefix: 'syscall', progType: ProgType.SYSCALL },
];

export function sectionDef(section: string): SectionDef | undefined {
  let best: SectionDef | undefined;
  for (const d of defs) {
    if (section === d.prefix || section.startsWith(`${d.prefix}/`)) {
      if (!best || d.prefix.length > best.prefix.length) best = d;
    }
  }
  return best;
}
