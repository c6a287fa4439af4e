/** errno values of Linux x86_64 / generic, with names for messages. */
export const Errno = {
  EPERM: 1,
  ENOENT: 2,
  ESRCH: 3,
  EINTR: 4,
  EIO: 5,
  E2BIG: 7,
  EBADF: 9,
  EAGAIN: 11,
  ENOMEM: 12,
  EACCES: 13,
  EFAULT: 14,
  EBUSY: 16,
  EEXIST: 17,
  EXDEV: 18,
  ENODEV: 19,
  ENOTDIR: 20,
  EINVAL: 22,
  ENFILE: 23,
  EMFILE: 24,
  ENOSPC: 28,
  ERANGE: 34,
  ENOSYS: 38,
  ELOOP: 40,
  EOPNOTSUPP: 95,
  ENOTSUPP: 524,
} as const;

const names = new Map<number, string>(Object.entries(Errno).map(([k, v]) => [v, k]));
const descriptions: Record<number, string> = {
  1: 'operation not permitted',
  2: 'no such file or directory',
  7: 'argument list too long',
  9: 'bad file descriptor',
  11: 'resource temporarily unavailable',
  12: 'cannot allocate memory',
  13: 'permission denied',
  14: 'bad address',
  16: 'device or resource busy',
  17: 'file exists',
  19: 'no such device',
  22: 'invalid argument',
  28: 'no space left on device',
  34: 'numerical result out of range',
  38: 'function not implemented',
  95: 'operation not supported',
  524: 'operation not supported',
};

export function errnoName(errno: number): string {
  const name = names.get(errno) ?? `errno ${errno}`;
  const desc = descriptions[errno];
  return desc ? `${name} (${desc})` : name;
}
