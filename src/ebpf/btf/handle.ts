/** BTF loaded into the kernel (BPF_BTF_LOAD), referenced by programs for func/line info. */
import { EbpfError } from '../errors.js';
import { Fd } from '../fd.js';
import { Attr, AttrLayout, syscallError } from '../sys/bpf.js';
import { Cmd } from '../sys/constants.js';
import { bpf } from '../sys/libc.js';

export class BtfLoadError extends EbpfError {
  override readonly code = 'EBPF_BTF_LOAD';
  constructor(
    readonly errno: number,
    readonly log: string,
  ) {
    super(
      `load BTF: ${syscallError('', errno).message.slice(2)}: ${log.trimEnd().split('\n').slice(-2).join(' | ') || '(no log)'}`,
    );
  }
}

export class BtfHandle implements Disposable {
  private constructor(readonly fd: Fd) {}

  static load(raw: Uint8Array): BtfHandle {
    const L = AttrLayout.btfLoad;
    const data = Buffer.from(raw);
    const a = new Attr(L.size).ptr(L.btf, data).u32(L.btf_size, data.length);
    let { ret, errno } = bpf(Cmd.BTF_LOAD, a.buf, a.buf.length);
    if (ret < 0) {
      // Retry with a log so the error says what the kernel disliked.
      const log = Buffer.alloc(1 << 20);
      a.ptr(L.btf_log_buf, log).u32(L.btf_log_size, log.length).u32(L.btf_log_level, 1);
      ({ ret, errno } = bpf(Cmd.BTF_LOAD, a.buf, a.buf.length));
      if (ret < 0) throw new BtfLoadError(errno, log.toString('latin1').replace(/\0.*$/s, ''));
    }
    return new BtfHandle(new Fd(ret));
  }

  close(): void {
    this.fd.close();
  }
  [Symbol.dispose](): void {
    this.close();
  }
}
