/**
 * Program: a verified, loaded BPF program owning its fd. Loading resolves map references to fds,
 * attaches BTF func/line info (so verifier logs name source lines), and on rejection throws a
 * VerifierError carrying the full log.
 */

import type { BtfHandle } from './btf/handle.js';
import type { ProgramSpec } from './collection-spec.js';
import { EbpfError, VerifierError } from './errors.js';
import { Fd } from './fd.js';
import type { BpfMap } from './map.js';
import { Attr, AttrLayout, call, getFdById, objGet, objInfo, objPin, syscallError } from './sys/bpf.js';
import { Cmd, PROG_LOAD_LOG_LEVEL_BRANCH, type ProgTypeValue } from './sys/constants.js';
import { Errno } from './sys/errno.js';
import { addressOf, bpf, bpfAsync, withSignalsBlocked } from './sys/libc.js';

export interface ProgramLoadOptions {
  /** The object's BTF already loaded into the kernel; enables func/line info. */
  btf?: BtfHandle;
  /** Always request a verifier log (level 1 = branch, 2 = per-instruction, |4 = stats). */
  logLevel?: number;
  /** Initial verifier log buffer size; grows on ENOSPC up to `maxLogSize`. */
  logSize?: number;
  maxLogSize?: number;
}

export interface TestRunOptions {
  data: Uint8Array;
  /** Optional context (e.g. struct __sk_buff fields) passed as ctx_in. */
  ctx?: Uint8Array;
  repeat?: number;
  /** Room for the output packet; defaults to input size + 256. */
  dataOutSize?: number;
}

export interface TestRunResult {
  retval: number;
  /** Packet after the program ran (it may rewrite it). */
  data: Uint8Array;
  ctx?: Uint8Array;
  /** Average run time per repetition, as reported by the kernel. */
  durationNs: number;
}

export interface ProgramInfo {
  type: number;
  id: number;
  tag: string;
  name: string;
  mapIds: number[];
}

const INSN = 8;
const PROG_INFO_SIZE = 232;

/** Tries of a BPF_PROG_LOAD the kernel answers with EAGAIN (libbpf's PROG_LOAD_ATTEMPTS). */
const PROG_LOAD_ATTEMPTS = 5;

export class Program implements Disposable {
  /** Verifier log of a successful load when a log level was requested. */
  verifierLog = '';
  pinnedPath?: string;

  private constructor(
    readonly fd: Fd,
    readonly name: string,
    readonly type: ProgTypeValue,
  ) {}

  /** The BPF_PROG_LOAD attributes (map fds patched into a copy of the instructions), without a log. */
  private static attr(spec: ProgramSpec, maps: ReadonlyMap<string, BpfMap>, opts: ProgramLoadOptions): Attr {
    const insns = Buffer.from(spec.instructions);
    for (const ref of spec.mapRefs) {
      const m = maps.get(ref.map);
      if (!m) throw new EbpfError(`program ${spec.name}: map ${ref.map} was not created`);
      insns.writeInt32LE(m.fd.value, ref.insn * INSN + 4);
      if (ref.valueOffset !== undefined) insns.writeInt32LE(ref.valueOffset, (ref.insn + 1) * INSN + 4);
    }
    const L = AttrLayout.progLoad;
    const license = Buffer.from(`${spec.license || 'GPL'}\0`);
    const a = new Attr(L.size)
      .u32(L.prog_type, spec.type)
      .u32(L.insn_cnt, insns.length / INSN)
      .ptr(L.insns, insns)
      .ptr(L.license, license)
      .name(L.prog_name, spec.name.replace(/[^A-Za-z0-9_.]/g, '_'))
      .u32(L.expected_attach_type, spec.expectedAttachType);
    if (opts.btf && spec.funcInfo.length > 0) {
      const fi = Buffer.alloc(spec.funcInfo.length * 8);
      spec.funcInfo.forEach((r, i) => {
        fi.writeUInt32LE(r.insnOff, i * 8);
        fi.writeUInt32LE(r.typeId, i * 8 + 4);
      });
      const li = Buffer.alloc(spec.lineInfo.length * 16);
      spec.lineInfo.forEach((r, i) => {
        li.writeUInt32LE(r.insnOff, i * 16);
        li.writeUInt32LE(r.fileNameOff, i * 16 + 4);
        li.writeUInt32LE(r.lineOff, i * 16 + 8);
        li.writeUInt32LE(r.lineCol, i * 16 + 12);
      });
      a.u32(L.prog_btf_fd, opts.btf.fd.value)
        .u32(L.func_info_rec_size, 8)
        .ptr(L.func_info, fi)
        .u32(L.func_info_cnt, spec.funcInfo.length);
      if (spec.lineInfo.length > 0)
        a.u32(L.line_info_rec_size, 16).ptr(L.line_info, li).u32(L.line_info_cnt, spec.lineInfo.length);
    }
    return a;
  }

  /**
   * Loads on a worker thread, so the verifier can run for several programs at once without blocking
   * the event loop. A rejection is repeated synchronously to produce the same VerifierError as load().
   */
  static async loadAsync(
    spec: ProgramSpec,
    maps: ReadonlyMap<string, BpfMap>,
    opts: ProgramLoadOptions = {},
  ): Promise<Program> {
    if (opts.logLevel) return Program.load(spec, maps, opts);
    const a = Program.attr(spec, maps, opts);
    const fd = await bpfAsync(Cmd.PROG_LOAD, a.buf, a.buf.length);
    if (fd >= 0) return new Program(new Fd(fd), spec.name, spec.type);
    return Program.load(spec, maps, opts);
  }

  /**
   * Loads synchronously. A rejection comes with the verifier's log (asked for on a second attempt:
   * the first goes without one); a load the kernel interrupted (EAGAIN) is tried again.
   */
  static load(spec: ProgramSpec, maps: ReadonlyMap<string, BpfMap>, opts: ProgramLoadOptions = {}): Program {
    const L = AttrLayout.progLoad;
    const a = Program.attr(spec, maps, opts);
    // First attempt without a log (cheaper); on failure, retry with a growing log buffer.
    let level = opts.logLevel ?? 0;
    let size = opts.logSize ?? (level ? 1 << 20 : 0);
    const max = opts.maxLogSize ?? 1 << 28;
    let interrupted = 0;
    for (let attempt = 0; attempt < 12 + PROG_LOAD_ATTEMPTS; attempt++) {
      const log = size > 0 ? Buffer.alloc(size) : null;
      a.u32(L.log_level, log ? level || PROG_LOAD_LOG_LEVEL_BRANCH : 0)
        .u32(L.log_size, log ? size : 0)
        .ptr(L.log_buf, log);
      // Signals blocked: the verifier gives up at a pending one (see withSignalsBlocked).
      const { ret, errno } = withSignalsBlocked(() => bpf(Cmd.PROG_LOAD, a.buf, a.buf.length));
      const text = log ? log.toString('latin1').replace(/\0.*$/s, '') : '';
      if (ret >= 0) {
        const p = new Program(new Fd(ret), spec.name, spec.type);
        p.verifierLog = text;
        return p;
      }
      // EAGAIN: the kernel can still give up for its own reasons: try again, as libbpf does
      // (PROG_LOAD_ATTEMPTS).
      if (errno === Errno.EAGAIN && ++interrupted < PROG_LOAD_ATTEMPTS) continue;
      if (errno === Errno.ENOSPC && log) {
        if (size >= max)
          throw new VerifierError(spec.name, errno, `${text}\n(log truncated at ${size} bytes)`);
        const trueSize = a.getU32(L.log_true_size);
        size = Math.min(max, Math.max(size * 4, trueSize + 1));
        continue;
      }
      if (
        !log &&
        (errno === Errno.EACCES || errno === Errno.EINVAL || errno === Errno.E2BIG || errno === Errno.EFAULT)
      ) {
        level = level || PROG_LOAD_LOG_LEVEL_BRANCH;
        size = opts.logSize ?? 1 << 20;
        continue;
      }
      if (log && text.trim()) throw new VerifierError(spec.name, errno, text);
      throw syscallError(
        `load program ${spec.name}`,
        errno,
        errno === Errno.EPERM ? 'loading programs needs CAP_BPF/CAP_SYS_ADMIN' : undefined,
      );
    }
    throw new EbpfError(`load program ${spec.name}: gave up growing the verifier log`);
  }

  static fromFd(fd: Fd): Program {
    const info = programInfo(fd.value);
    return new Program(fd, info.name, info.type as ProgTypeValue);
  }

  static openPinned(path: string): Program {
    const p = Program.fromFd(new Fd(objGet(path)));
    p.pinnedPath = path;
    return p;
  }

  static fromId(id: number): Program {
    return Program.fromFd(new Fd(getFdById(Cmd.PROG_GET_FD_BY_ID, id, 'program')));
  }

  info(): ProgramInfo {
    return programInfo(this.fd.value);
  }

  pin(path: string): void {
    objPin(this.fd.value, path);
    this.pinnedPath = path;
  }

  /** Runs the program on a crafted packet with BPF_PROG_TEST_RUN. */
  testRun(opts: TestRunOptions): TestRunResult {
    const L = AttrLayout.testRun;
    const dataIn = Buffer.from(opts.data);
    const dataOut = Buffer.alloc(opts.dataOutSize ?? dataIn.length + 256);
    const a = new Attr(L.size)
      .u32(L.prog_fd, this.fd.value)
      .u32(L.data_size_in, dataIn.length)
      .u32(L.data_size_out, dataOut.length)
      .ptr(L.data_in, dataIn)
      .ptr(L.data_out, dataOut)
      .u32(L.repeat, opts.repeat ?? 1);
    let ctxOut: Buffer | undefined;
    if (opts.ctx) {
      const ctxIn = Buffer.from(opts.ctx);
      ctxOut = Buffer.alloc(ctxIn.length);
      a.u32(L.ctx_size_in, ctxIn.length)
        .ptr(L.ctx_in, ctxIn)
        .u32(L.ctx_size_out, ctxOut.length)
        .ptr(L.ctx_out, ctxOut);
    }
    // Signals blocked: a repeated run stops with EINTR at a pending one (see withSignalsBlocked).
    withSignalsBlocked(() => call(Cmd.PROG_TEST_RUN, a, `test run of program ${this.name}`));
    const res: TestRunResult = {
      retval: a.getU32(L.retval) | 0,
      data: dataOut.subarray(0, a.getU32(L.data_size_out)),
      durationNs: a.getU32(L.duration),
    };
    if (ctxOut) res.ctx = ctxOut.subarray(0, a.getU32(L.ctx_size_out));
    return res;
  }

  close(): void {
    this.fd.close();
  }
  [Symbol.dispose](): void {
    this.close();
  }
}

export function programInfo(fd: number): ProgramInfo {
  // First call learns nr_map_ids; second fetches them.
  const first = objInfo(fd, PROG_INFO_SIZE);
  const nrMaps = first.readUInt32LE(52);
  const ids = Buffer.alloc(Math.max(nrMaps, 1) * 4);
  const b = objInfo(fd, PROG_INFO_SIZE, (info) => {
    info.writeUInt32LE(nrMaps, 52);
    info.writeBigUInt64LE(addressOf(ids), 56);
  });
  return {
    type: b.readUInt32LE(0),
    id: b.readUInt32LE(4),
    tag: b.subarray(8, 16).toString('hex'),
    name: b.subarray(64, 80).toString('latin1').replace(/\0.*$/s, ''),
    mapIds: Array.from({ length: nrMaps }, (_, i) => ids.readUInt32LE(i * 4)),
  };
}
