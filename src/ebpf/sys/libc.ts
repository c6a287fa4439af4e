/**
 * The few libc entry points the library needs, bound once through koffi.
 * Everything goes through `syscall()` or plain libc wrappers; no libbpf.
 */
import koffi from 'koffi';

const libc = koffi.load('libc.so.6');

export const SYS_bpf = 321; // x86_64
export const CLONE_NEWNET = 0x40000000;

// Arguments are declared with the widths the kernel reads; Buffers are passed by address.
const syscallBpf = libc.func('long syscall(long nr, int cmd, void *attr, unsigned int size)');
const setnsFn = libc.func('int setns(int fd, int nstype)');
const closeFn = libc.func('int close(int fd)');
const mmapFn = libc.func('void *mmap(void *addr, size_t length, int prot, int flags, int fd, long offset)');
const munmapFn = libc.func('int munmap(void *addr, size_t length)');
const epollCreate1 = libc.func('int epoll_create1(int flags)');
const epollCtlFn = libc.func('int epoll_ctl(int epfd, int op, int fd, void *event)');
const epollWaitFn = libc.func('int epoll_wait(int epfd, void *events, int maxevents, int timeout)');
const ifNameToIndex = libc.func('unsigned int if_nametoindex(const char *ifname)');
const sysconfFn = libc.func('long sysconf(int name)');
const eventfdFn = libc.func('int eventfd(unsigned int initval, int flags)');
const sigmaskFn = libc.func('int pthread_sigmask(int how, const void *set, void *oldset)');

export interface SyscallResult {
  ret: number;
  errno: number;
}

/** bpf(2). Returns the raw result and errno (valid only when ret < 0). */
export function bpf(cmd: number, attr: Uint8Array, size: number): SyscallResult {
  const ret = Number(syscallBpf(SYS_bpf, cmd, attr, size));
  return { ret, errno: ret < 0 ? koffi.errno() : 0 };
}

/**
 * bpf(2) on a worker thread: for commands that wait in the kernel (the verifier, RCU grace periods
 * of link and map-in-map updates), so several can proceed at once and the event loop stays free.
 * Resolves with the return value only; on failure the caller repeats the call synchronously to get
 * a precise errno (errno is per thread). The worker runs in the process's network namespace.
 */
export function bpfAsync(cmd: number, attr: Uint8Array, size: number): Promise<number> {
  return new Promise((resolve, reject) => {
    syscallBpf.async(SYS_bpf, cmd, attr, size, (err: unknown, ret: number | bigint) => {
      if (err) reject(err);
      else resolve(Number(ret));
    });
  });
}

const SIG_BLOCK = 0;
const SIG_SETMASK = 2;
const SIGSET_BYTES = 128; // glibc's sigset_t
const ALL_SIGNALS = Buffer.alloc(SIGSET_BYTES, 0xff); // SIGKILL and SIGSTOP stay deliverable regardless

/**
 * Runs `fn` with every signal blocked on this thread, then restores the mask (pending signals are
 * delivered then). For syscalls that give up when a signal arrives: the verifier answers EAGAIN
 * to any pending signal, and a repeated BPF_PROG_TEST_RUN stops with EINTR; a sampling profiler's
 * SIGPROF every few ms, or a burst of SIGCHLD, can interrupt every retry of a call that takes
 * longer than that.
 */
export function withSignalsBlocked<T>(fn: () => T): T {
  const old = Buffer.alloc(SIGSET_BYTES);
  if ((sigmaskFn(SIG_BLOCK, ALL_SIGNALS, old) as number) !== 0) return fn();
  try {
    return fn();
  } finally {
    sigmaskFn(SIG_SETMASK, old, null);
  }
}

export function setns(fd: number, nstype: number): SyscallResult {
  const ret = setnsFn(fd, nstype) as number;
  return { ret, errno: ret < 0 ? koffi.errno() : 0 };
}

export function close(fd: number): void {
  closeFn(fd);
}

export const PROT_READ = 1;
export const PROT_WRITE = 2;
export const MAP_SHARED = 1;

/** mmap; returns the native pointer, or throws with errno. */
export function mmap(length: number, prot: number, flags: number, fd: number, offset: number): unknown {
  const ptr = mmapFn(null, length, prot, flags, fd, offset);
  const addr = koffi.address(ptr);
  if (addr === 0xffffffffffffffffn || addr === 0n) {
    throw Object.assign(new Error('mmap failed'), { errno: koffi.errno() });
  }
  return ptr;
}

export function munmap(ptr: unknown, length: number): void {
  munmapFn(ptr, length);
}

/** An ArrayBuffer over native memory (no copy). */
export function view(ptr: unknown, length: number): ArrayBuffer {
  return koffi.view(ptr, length);
}

/** The address of a Buffer/TypedArray's memory, for pointers inside bpf_attr. */
export function addressOf(buf: Uint8Array): bigint {
  return koffi.address(buf);
}

export const EPOLLIN = 0x001;
export const EPOLL_CTL_ADD = 1;
export const EPOLL_CLOEXEC = 0o2000000;

export function epollCreate(): number {
  const fd = epollCreate1(EPOLL_CLOEXEC) as number;
  if (fd < 0) throw Object.assign(new Error('epoll_create1 failed'), { errno: koffi.errno() });
  return fd;
}

export function epollAdd(epfd: number, fd: number, events: number, data: number): void {
  // struct epoll_event is packed on x86_64: u32 events, u64 data.
  const ev = Buffer.alloc(12);
  ev.writeUInt32LE(events, 0);
  ev.writeBigUInt64LE(BigInt(data), 4);
  if ((epollCtlFn(epfd, EPOLL_CTL_ADD, fd, ev) as number) < 0) {
    throw Object.assign(new Error('epoll_ctl failed'), { errno: koffi.errno() });
  }
}

/** epoll_wait on a worker thread so the event loop stays free. Resolves with the ready count. */
export function epollWaitAsync(
  epfd: number,
  events: Buffer,
  max: number,
  timeoutMs: number,
): Promise<number> {
  return new Promise((resolve, reject) => {
    epollWaitFn.async(epfd, events, max, timeoutMs, (err: unknown, n: number) => {
      if (err) reject(err);
      else resolve(n);
    });
  });
}

export function epollWait(epfd: number, events: Buffer, max: number, timeoutMs: number): number {
  return epollWaitFn(epfd, events, max, timeoutMs) as number;
}

export const EFD_CLOEXEC = 0o2000000;
export const EFD_NONBLOCK = 0o4000;

export function eventfd(flags: number): number {
  const fd = eventfdFn(0, flags) as number;
  if (fd < 0) throw Object.assign(new Error('eventfd failed'), { errno: koffi.errno() });
  return fd;
}

export function ifNametoindex(name: string): number {
  return ifNameToIndex(name) as number;
}

export const pageSize: number = Number(sysconfFn(30 /* _SC_PAGESIZE */));
