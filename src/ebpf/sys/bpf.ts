/**
 * Typed wrappers over bpf(2). Each wrapper fills the command's part of `union bpf_attr`
 * (offsets below; a privileged test checks them against the kernel's BTF) and turns a
 * failure into a BpfSyscallError naming the operation.
 */
import { BpfSyscallError, KeyExistsError, KeyNotFoundError } from '../errors.js';
import { Cmd } from './constants.js';
import { Errno } from './errno.js';
import { addressOf, bpf } from './libc.js';

/** Offsets inside union bpf_attr, per command. */
export const AttrLayout = {
  mapCreate: {
    size: 80,
    map_type: 0,
    key_size: 4,
    value_size: 8,
    max_entries: 12,
    map_flags: 16,
    inner_map_fd: 20,
    numa_node: 24,
    map_name: 28,
    map_ifindex: 44,
    btf_fd: 48,
    btf_key_type_id: 52,
    btf_value_type_id: 56,
    map_extra: 64,
  },
  mapElem: { size: 32, map_fd: 0, key: 8, value: 16, next_key: 16, flags: 24 },
  mapBatch: {
    size: 56,
    in_batch: 0,
    out_batch: 8,
    keys: 16,
    values: 24,
    count: 32,
    map_fd: 36,
    elem_flags: 40,
    flags: 48,
  },
  progLoad: {
    size: 152,
    prog_type: 0,
    insn_cnt: 4,
    insns: 8,
    license: 16,
    log_level: 24,
    log_size: 28,
    log_buf: 32,
    kern_version: 40,
    prog_flags: 44,
    prog_name: 48,
    prog_ifindex: 64,
    expected_attach_type: 68,
    prog_btf_fd: 72,
    func_info_rec_size: 76,
    func_info: 80,
    func_info_cnt: 88,
    line_info_rec_size: 92,
    line_info: 96,
    line_info_cnt: 104,
    attach_btf_id: 108,
    log_true_size: 140,
  },
  objPin: { size: 24, pathname: 0, bpf_fd: 8, file_flags: 12, path_fd: 16 },
  btfLoad: {
    size: 40,
    btf: 0,
    btf_log_buf: 8,
    btf_size: 16,
    btf_log_size: 20,
    btf_log_level: 24,
    btf_log_true_size: 28,
  },
  testRun: {
    size: 80,
    prog_fd: 0,
    retval: 4,
    data_size_in: 8,
    data_size_out: 12,
    data_in: 16,
    data_out: 24,
    repeat: 32,
    duration: 36,
    ctx_size_in: 40,
    ctx_size_out: 44,
    ctx_in: 48,
    ctx_out: 56,
    flags: 64,
    cpu: 68,
    batch_size: 72,
  },
  linkCreate: {
    size: 64,
    prog_fd: 0,
    target_fd: 4,
    target_ifindex: 4,
    attach_type: 8,
    flags: 12,
    tcx_relative_fd: 16,
    tcx_expected_revision: 24,
  },
  linkDetach: { size: 8, link_fd: 0 },
  getId: { size: 12, id: 0, next_id: 4, open_flags: 8 },
  infoByFd: { size: 16, bpf_fd: 0, info_len: 4, info: 8 },
  progQuery: {
    size: 64,
    target_ifindex: 0,
    attach_type: 4,
    query_flags: 8,
    attach_flags: 12,
    prog_ids: 16,
    prog_cnt: 24,
    prog_attach_flags: 32,
    link_ids: 40,
    link_attach_flags: 48,
    revision: 56,
  },
  mapFreeze: { size: 8, map_fd: 0 },
} as const;

/** A zeroed bpf_attr buffer with typed setters. Keeps pointed-to buffers alive while referenced. */
export class Attr {
  readonly buf: Buffer;
  private readonly refs: Uint8Array[] = [];
  constructor(size: number) {
    this.buf = Buffer.alloc(size);
  }
  u32(off: number, v: number): this {
    this.buf.writeUInt32LE(v >>> 0, off);
    return this;
  }
  s32(off: number, v: number): this {
    this.buf.writeInt32LE(v, off);
    return this;
  }
  u64(off: number, v: bigint | number): this {
    this.buf.writeBigUInt64LE(BigInt(v), off);
    return this;
  }
  ptr(off: number, target: Uint8Array | null): this {
    if (target) {
      this.refs.push(target);
      this.buf.writeBigUInt64LE(addressOf(target), off);
    } else this.buf.writeBigUInt64LE(0n, off);
    return this;
  }
  name(off: number, s: string, max = 16): this {
    this.buf.fill(0, off, off + max);
    this.buf.write(s.slice(0, max - 1), off, 'latin1');
    return this;
  }
  getU32(off: number): number {
    return this.buf.readUInt32LE(off);
  }
  getU64(off: number): bigint {
    return this.buf.readBigUInt64LE(off);
  }
}

export interface CallOptions {
  /** Turns errno into a hint for the message. */
  hint?: (errno: number) => string | undefined;
}

/** Runs a bpf command; throws a typed error naming `op` on failure. */
export function call(cmd: number, attr: Attr, op: string, opts?: CallOptions): number {
  const { ret, errno } = bpf(cmd, attr.buf, attr.buf.length);
  if (ret < 0) throw syscallError(op, errno, opts?.hint?.(errno));
  return ret;
}

export function syscallError(op: string, errno: number, hint?: string): BpfSyscallError {
  if (errno === Errno.ENOENT) return new KeyNotFoundError(op, errno, hint);
  if (errno === Errno.EEXIST) return new KeyExistsError(op, errno, hint);
  return new BpfSyscallError(op, errno, hint);
}

export function objPin(fd: number, path: string): void {
  const p = Buffer.from(`${path}\0`);
  const L = AttrLayout.objPin;
  call(Cmd.OBJ_PIN, new Attr(L.size).ptr(L.pathname, p).u32(L.bpf_fd, fd), `pin ${path}`, {
    hint: (e) => (e === Errno.EPERM || e === Errno.EINVAL ? 'is the path on a mounted bpffs?' : undefined),
  });
}

export function objGet(path: string, flags = 0): number {
  const p = Buffer.from(`${path}\0`);
  const L = AttrLayout.objPin;
  return call(
    Cmd.OBJ_GET,
    new Attr(L.size).ptr(L.pathname, p).u32(L.file_flags, flags),
    `open pinned ${path}`,
  );
}

/** BPF_OBJ_GET_INFO_BY_FD into a zeroed buffer of `len` bytes. */
export function objInfo(fd: number, len: number, fill?: (info: Buffer) => void): Buffer {
  const info = Buffer.alloc(len);
  fill?.(info);
  const L = AttrLayout.infoByFd;
  call(
    Cmd.OBJ_GET_INFO_BY_FD,
    new Attr(L.size).u32(L.bpf_fd, fd).u32(L.info_len, len).ptr(L.info, info),
    'get object info',
  );
  return info;
}

export function getFdById(cmd: number, id: number, what: string): number {
  const L = AttrLayout.getId;
  return call(cmd, new Attr(L.size).u32(L.id, id), `open ${what} by id ${id}`);
}

/** Iterates ids with *_GET_NEXT_ID. */
export function* nextIds(cmd: number): Generator<number> {
  const L = AttrLayout.getId;
  let id = 0;
  for (;;) {
    const a = new Attr(L.size).u32(L.id, id);
    const { ret, errno } = bpf(cmd, a.buf, a.buf.length);
    if (ret < 0) {
      if (errno === Errno.ENOENT) return;
      throw syscallError('get next id', errno);
    }
    id = a.getU32(L.next_id);
    yield id;
  }
}
