/**
 * BpfMap: a live kernel map owning its file descriptor. Operations copy keys and values through
 * per-map scratch buffers whose addresses are fixed in a prebuilt bpf_attr, so a lookup or update
 * is one syscall and two small copies.
 */
import { readFileSync } from 'node:fs';
import type { MapSpec, Pinning } from './collection-spec.js';
import { BpfSyscallError, KeyNotFoundError, MapIncompatibleError, NotSupportedError } from './errors.js';
import { Fd } from './fd.js';
import { Attr, AttrLayout, call, getFdById, objGet, objInfo, objPin, syscallError } from './sys/bpf.js';
import { Cmd, MapType, type MapTypeValue, UpdateFlag } from './sys/constants.js';
import { Errno } from './sys/errno.js';
import { bpf, bpfAsync } from './sys/libc.js';

export interface MapInfo {
  type: MapTypeValue;
  id: number;
  keySize: number;
  valueSize: number;
  maxEntries: number;
  flags: number;
  name: string;
}

export interface CreateOptions {
  /** Fd of a map matching the inner template (map-in-map). */
  innerMapFd?: number;
  /** Kernel BTF object and type ids to describe key/value (nicer dumps, needed for some map features). */
  btf?: { fd: number; keyType: number; valueType: number };
}

let possibleCpus: number | undefined;
/** Number of possible CPUs: per-CPU map values hold one slot per possible CPU. */
export function numPossibleCpus(): number {
  if (possibleCpus === undefined) {
    const txt = readFileSync('/sys/devices/system/cpu/possible', 'utf8').trim();
    possibleCpus = txt.split(',').reduce((n, part) => {
      const [a, b] = part.split('-').map(Number);
      return n + (b === undefined ? 1 : b - a! + 1);
    }, 0);
  }
  return possibleCpus;
}

const PERCPU_TYPES = new Set<number>([MapType.PERCPU_HASH, MapType.PERCPU_ARRAY, MapType.LRU_PERCPU_HASH]);
const MAP_INFO_SIZE = 88;

export class BpfMap implements Disposable {
  readonly fd: Fd;
  readonly type: MapTypeValue;
  readonly name: string;
  readonly keySize: number;
  /** Size of one value as declared; per-CPU maps transfer `valueSize` slots × CPUs (see `userValueSize`). */
  readonly valueSize: number;
  readonly maxEntries: number;
  readonly flags: number;
  /** Bytes of a value as user space reads and writes it. */
  readonly userValueSize: number;
  pinnedPath?: string;
  /** Whether BPF_MAP_UPDATE_BATCH works on this map (undefined until tried). */
  private batchUpdates: boolean | undefined;

  private readonly key: Buffer;
  private readonly value: Buffer;
  private readonly next: Buffer;
  private readonly elemAttr: Attr;
  private readonly nextAttr: Attr;
  /** DELETE_ELEM rejects attrs with anything set after `key`. */
  private readonly deleteAttr: Attr;
  private readonly keyAddr: bigint;

  private constructor(fd: Fd, info: Omit<MapInfo, 'id'>) {
    this.fd = fd;
    this.type = info.type;
    this.name = info.name;
    this.keySize = info.keySize;
    this.valueSize = info.valueSize;
    this.maxEntries = info.maxEntries;
    this.flags = info.flags;
    this.userValueSize = PERCPU_TYPES.has(info.type)
      ? roundUp8(info.valueSize) * numPossibleCpus()
      : info.valueSize;
    this.key = Buffer.alloc(Math.max(this.keySize, 8));
    this.value = Buffer.alloc(Math.max(this.userValueSize, 8));
    this.next = Buffer.alloc(Math.max(this.keySize, 8));
    const L = AttrLayout.mapElem;
    this.elemAttr = new Attr(L.size).u32(L.map_fd, fd.value).ptr(L.key, this.key).ptr(L.value, this.value);
    this.nextAttr = new Attr(L.size).u32(L.map_fd, fd.value).ptr(L.key, this.key).ptr(L.next_key, this.next);
    this.keyAddr = this.nextAttr.getU64(L.key);
    this.deleteAttr = new Attr(L.size).u32(L.map_fd, fd.value).ptr(L.key, this.key);
  }

  /** Creates a map in the kernel. Does not pin or populate it (see Collection for that). */
  static create(spec: MapSpec, opts: CreateOptions = {}): BpfMap {
    const L = AttrLayout.mapCreate;
    const a = new Attr(L.size)
      .u32(L.map_type, spec.type)
      .u32(L.key_size, spec.keySize)
      .u32(L.value_size, spec.valueSize)
      .u32(L.max_entries, spec.maxEntries)
      .u32(L.map_flags, spec.flags)
      .name(L.map_name, sanitizeName(spec.name));
    if (opts.innerMapFd !== undefined) a.u32(L.inner_map_fd, opts.innerMapFd);
    if (spec.numaNode !== undefined) a.u32(L.numa_node, spec.numaNode);
    if (spec.mapExtra !== undefined) a.u64(L.map_extra, spec.mapExtra);
    if (opts.btf)
      a.u32(L.btf_fd, opts.btf.fd)
        .u32(L.btf_key_type_id, opts.btf.keyType)
        .u32(L.btf_value_type_id, opts.btf.valueType);
    const fd = call(Cmd.MAP_CREATE, a, `create map ${spec.name}`, { hint: (e) => createHint(spec, e) });
    return new BpfMap(new Fd(fd), { ...spec, name: sanitizeName(spec.name) });
  }

  /** Wraps an fd we own (e.g. from BPF_OBJ_GET), reading the map's properties from the kernel. */
  static fromFd(fd: Fd): BpfMap {
    const info = mapInfo(fd.value);
    return new BpfMap(fd, info);
  }

  /** Opens a pinned map; with `expect`, refuses one whose type or sizes differ. */
  static openPinned(path: string, expect?: MapSpec): BpfMap {
    const m = BpfMap.fromFd(new Fd(objGet(path)));
    m.pinnedPath = path;
    if (expect) {
      try {
        m.checkCompatible(expect);
      } catch (err) {
        m.close();
        throw err;
      }
    }
    return m;
  }

  static fromId(id: number): BpfMap {
    return BpfMap.fromFd(new Fd(getFdById(Cmd.MAP_GET_FD_BY_ID, id, 'map')));
  }

  /** Throws MapIncompatibleError when this map cannot stand in for `spec`. */
  checkCompatible(spec: MapSpec): void {
    const diffs: string[] = [];
    if (this.type !== spec.type) diffs.push(`type ${this.type} != ${spec.type}`);
    if (this.keySize !== spec.keySize) diffs.push(`key size ${this.keySize} != ${spec.keySize}`);
    const want =
      spec.type === MapType.HASH_OF_MAPS || spec.type === MapType.ARRAY_OF_MAPS ? 4 : spec.valueSize;
    if (this.valueSize !== want) diffs.push(`value size ${this.valueSize} != ${want}`);
    if (this.maxEntries !== spec.maxEntries && spec.type !== MapType.RINGBUF)
      diffs.push(`max entries ${this.maxEntries} != ${spec.maxEntries}`);
    if (spec.type === MapType.RINGBUF && this.maxEntries !== spec.maxEntries)
      diffs.push(`size ${this.maxEntries} != ${spec.maxEntries}`);
    if ((this.flags & ~0x18) !== (spec.flags & ~0x18)) diffs.push(`flags ${this.flags} != ${spec.flags}`);
    if (diffs.length)
      throw new MapIncompatibleError(
        `map ${spec.name}${this.pinnedPath ? ` (${this.pinnedPath})` : ''}: ${diffs.join(', ')}`,
      );
  }

  info(): MapInfo {
    return mapInfo(this.fd.value);
  }

  pin(path: string): void {
    objPin(this.fd.value, path);
    this.pinnedPath = path;
  }

  // ---- single-element operations ----

  /** Value for `key`, or undefined when absent. The result is a fresh copy. */
  lookup(key: Uint8Array): Uint8Array | undefined {
    return this.lookupInto(key, undefined)
      ? Uint8Array.prototype.slice.call(this.value, 0, this.userValueSize)
      : undefined;
  }

  /** Looks up into `out` (or the internal buffer); returns false when absent. */
  lookupInto(key: Uint8Array, out: Uint8Array | undefined): boolean {
    this.setKey(key);
    const { ret, errno } = bpf(Cmd.MAP_LOOKUP_ELEM, this.elemAttr.buf, 32);
    if (ret < 0) {
      if (errno === Errno.ENOENT) return false;
      throw syscallError(`lookup in map ${this.name}`, errno);
    }
    out?.set(this.value.subarray(0, this.userValueSize));
    return true;
  }

  /** Inserts or replaces (flags: UpdateFlag.ANY, NOEXIST, EXIST). */
  update(key: Uint8Array, value: Uint8Array, flags: number = UpdateFlag.ANY): void {
    this.setKey(key);
    this.checkValue(value);
    this.value.set(value);
    this.elemAttr.buf.writeUInt32LE(flags, 24);
    const { ret, errno } = bpf(Cmd.MAP_UPDATE_ELEM, this.elemAttr.buf, 32);
    this.elemAttr.buf.writeUInt32LE(0, 24);
    if (ret < 0) throw syscallError(`update map ${this.name}`, errno, updateHint(this, errno));
  }

  /**
   * update() on a worker thread, for a map-in-map: its update waits out an RCU grace period in the
   * kernel (10-30 ms on a busy machine) that should not hold the event loop. A failure is repeated
   * synchronously for its errno.
   */
  async updateAsync(key: Uint8Array, value: Uint8Array, flags: number = UpdateFlag.ANY): Promise<void> {
    this.checkKey(key);
    this.checkValue(value);
    // own buffers: the shared ones may be rewritten by other calls while this one runs
    const v = Buffer.alloc(Math.max(this.userValueSize, 8));
    v.set(value);
    const L = AttrLayout.mapElem;
    const a = new Attr(L.size).u32(L.map_fd, this.fd.value).ptr(L.key, Buffer.from(key)).ptr(L.value, v);
    a.buf.writeUInt32LE(flags, L.flags);
    const ret = await bpfAsync(Cmd.MAP_UPDATE_ELEM, a.buf, 32);
    if (ret >= 0 && a.buf.length > 0) return; // (`a` holds the buffers until the call is done)
    this.update(key, value, flags);
  }

  /** Deletes `key`; returns false when it was absent. */
  delete(key: Uint8Array): boolean {
    this.setKey(key);
    const { ret, errno } = bpf(Cmd.MAP_DELETE_ELEM, this.deleteAttr.buf, 32);
    if (ret < 0) {
      if (errno === Errno.ENOENT) return false;
      throw syscallError(`delete from map ${this.name}`, errno);
    }
    return true;
  }

  /** The key after `key` (or the first key), undefined at the end. */
  nextKey(key?: Uint8Array): Uint8Array | undefined {
    const L = AttrLayout.mapElem;
    if (key) this.setKey(key);
    this.nextAttr.u64(L.key, key ? this.keyAddr : 0n);
    const { ret, errno } = bpf(Cmd.MAP_GET_NEXT_KEY, this.nextAttr.buf, 32);
    if (ret < 0) {
      if (errno === Errno.ENOENT) return undefined;
      throw syscallError(`iterate map ${this.name}`, errno);
    }
    return Uint8Array.prototype.slice.call(this.next, 0, this.keySize);
  }

  /** All keys (a snapshot walk; keys deleted meanwhile may restart the walk, as in the kernel). */
  *keys(): Generator<Uint8Array> {
    let k = this.nextKey();
    while (k) {
      yield k;
      k = this.nextKey(k);
    }
  }

  *entries(): Generator<[Uint8Array, Uint8Array]> {
    for (const k of this.keys()) {
      const v = this.lookup(k);
      if (v) yield [k, v];
    }
  }

  // ---- batch operations ----

  /**
   * Looks up every element in batches of `batchSize`. Returns concatenated keys and values.
   */
  lookupBatch(batchSize = 4096): { keys: Uint8Array; values: Uint8Array; count: number } {
    const L = AttrLayout.mapBatch;
    const tokenSize = Math.max(this.keySize, 8);
    let inBatch: Buffer | null = null;
    const outBatch = Buffer.alloc(tokenSize);
    const keyChunks: Uint8Array[] = [];
    const valChunks: Uint8Array[] = [];
    let total = 0;
    for (;;) {
      const keys = Buffer.alloc(batchSize * this.keySize);
      const values = Buffer.alloc(batchSize * this.userValueSize);
      const a = new Attr(L.size)
        .ptr(L.in_batch, inBatch)
        .ptr(L.out_batch, outBatch)
        .ptr(L.keys, keys)
        .ptr(L.values, values)
        .u32(L.count, batchSize)
        .u32(L.map_fd, this.fd.value);
      const { ret, errno } = bpf(Cmd.MAP_LOOKUP_BATCH, a.buf, a.buf.length);
      const n = a.getU32(L.count);
      if (ret < 0 && errno !== Errno.ENOENT) {
        if (errno === Errno.EINVAL || errno === Errno.ENOTSUPP || errno === Errno.EOPNOTSUPP) {
          throw new NotSupportedError(`batch lookup on map type ${this.type}`, undefined, {
            cause: syscallError('lookup batch', errno),
          });
        }
        throw syscallError(`lookup batch in map ${this.name}`, errno);
      }
      keyChunks.push(keys.subarray(0, n * this.keySize));
      valChunks.push(values.subarray(0, n * this.userValueSize));
      total += n;
      if (ret < 0) break; // ENOENT: no more elements
      inBatch = Buffer.from(outBatch);
    }
    return { keys: Buffer.concat(keyChunks), values: Buffer.concat(valChunks), count: total };
  }

  /** Updates `count` elements from concatenated keys/values in one syscall. Returns how many were written. */
  updateBatch(
    keys: Uint8Array,
    values: Uint8Array,
    count: number,
    elemFlags: number = UpdateFlag.ANY,
  ): number {
    const { ret, errno, written } = this.batchUpdateCall(keys, values, count, elemFlags);
    if (ret < 0) {
      throw new BpfSyscallError(
        `update batch in map ${this.name} (${written} of ${count} written)`,
        errno,
        updateHint(this, errno),
      );
    }
    return written;
  }

  /** One BPF_MAP_UPDATE_BATCH; `written` is the count the kernel reports back. */
  private batchUpdateCall(
    keys: Uint8Array,
    values: Uint8Array,
    count: number,
    elemFlags: number,
  ): { ret: number; errno: number; written: number } {
    if (keys.length < count * this.keySize || values.length < count * this.userValueSize)
      throw new RangeError(`map ${this.name}: batch buffers too small for ${count} elements`);
    const L = AttrLayout.mapBatch;
    const a = new Attr(L.size)
      .ptr(L.keys, keys)
      .ptr(L.values, values)
      .u32(L.count, count)
      .u32(L.map_fd, this.fd.value)
      .u64(L.elem_flags, elemFlags);
    const { ret, errno } = bpf(Cmd.MAP_UPDATE_BATCH, a.buf, a.buf.length);
    return { ret, errno, written: a.getU32(L.count) };
  }

  /**
   * Writes `count` elements from concatenated keys/values, in order: BPF_MAP_UPDATE_BATCH where the
   * kernel has it for this map type, one update per element where it does not (found out once per
   * map). Stops at the first element that fails: throws BatchUpdateError with its index (the
   * elements before it are written, the ones after it are not tried).
   */
  updateMany(keys: Uint8Array, values: Uint8Array, count: number, elemFlags: number = UpdateFlag.ANY): void {
    if (keys.length < count * this.keySize || values.length < count * this.userValueSize)
      throw new RangeError(`map ${this.name}: batch buffers too small for ${count} elements`);
    const ks = this.keySize;
    const vs = this.userValueSize;
    let done = 0;
    if (this.batchUpdates !== false && count > 1) {
      const { ret, errno, written } = this.batchUpdateCall(keys, values, count, elemFlags);
      if (ret >= 0) {
        this.batchUpdates = true;
        return;
      }
      done = written;
      // The kernel writes the count back only once it started on the elements; an early refusal
      // leaves our count there (a failure at the last element would say count - 1).
      if (done >= count) done = 0;
      const unsupported =
        errno === Errno.ENOTSUPP ||
        errno === Errno.EOPNOTSUPP ||
        (errno === Errno.EINVAL && done === 0 && this.batchUpdates === undefined);
      if (!unsupported) throw new BatchUpdateError(this, done, errno);
      // EINVAL on the first element: no batch for this map type, or a bad first element; the
      // single update below tells which (and throws for the element if it is bad).
    }
    for (let i = done; i < count; i++) {
      try {
        this.update(keys.subarray(i * ks, (i + 1) * ks), values.subarray(i * vs, (i + 1) * vs), elemFlags);
      } catch (err) {
        if (err instanceof BpfSyscallError) throw new BatchUpdateError(this, i, err.errno);
        throw err;
      }
      if (i === done && count > 1 && this.batchUpdates === undefined) this.batchUpdates = false;
    }
  }

  /** Deletes `count` keys in one syscall; returns how many were deleted (stops at the first absent key). */
  deleteBatch(keys: Uint8Array, count: number): number {
    const L = AttrLayout.mapBatch;
    const a = new Attr(L.size).ptr(L.keys, keys).u32(L.count, count).u32(L.map_fd, this.fd.value);
    const { ret, errno } = bpf(Cmd.MAP_DELETE_BATCH, a.buf, a.buf.length);
    if (ret < 0 && errno !== Errno.ENOENT) throw syscallError(`delete batch in map ${this.name}`, errno);
    return a.getU32(L.count);
  }

  /** Makes the map read-only for user space (the verifier may then trust .rodata as constants). */
  freeze(): void {
    const L = AttrLayout.mapFreeze;
    call(Cmd.MAP_FREEZE, new Attr(L.size).u32(L.map_fd, this.fd.value), `freeze map ${this.name}`);
  }

  close(): void {
    this.fd.close();
  }

  [Symbol.dispose](): void {
    this.close();
  }

  private setKey(key: Uint8Array): void {
    this.checkKey(key);
    this.key.set(key);
  }

  private checkKey(key: Uint8Array): void {
    if (key.length !== this.keySize)
      throw new RangeError(`map ${this.name}: key is ${key.length} bytes, expected ${this.keySize}`);
  }

  private checkValue(value: Uint8Array): void {
    if (value.length !== this.userValueSize)
      throw new RangeError(
        `map ${this.name}: value is ${value.length} bytes, expected ${this.userValueSize}`,
      );
  }
}

/** Typed view over a BpfMap using key/value codecs. */
export interface Codec<T> {
  readonly size: number;
  encode(value: T): Uint8Array;
  decode(bytes: Uint8Array): T;
}

export class TypedMap<K, V> {
  constructor(
    readonly map: BpfMap,
    readonly keyCodec: Codec<K>,
    readonly valueCodec: Codec<V>,
  ) {
    if (keyCodec.size !== map.keySize)
      throw new MapIncompatibleError(
        `map ${map.name}: key codec is ${keyCodec.size} bytes, map key ${map.keySize}`,
      );
    if (valueCodec.size !== map.userValueSize) {
      throw new MapIncompatibleError(
        `map ${map.name}: value codec is ${valueCodec.size} bytes, map value ${map.userValueSize}`,
      );
    }
  }
  get(key: K): V | undefined {
    const v = this.map.lookup(this.keyCodec.encode(key));
    return v && this.valueCodec.decode(v);
  }
  set(key: K, value: V, flags: number = UpdateFlag.ANY): void {
    this.map.update(this.keyCodec.encode(key), this.valueCodec.encode(value), flags);
  }
  delete(key: K): boolean {
    return this.map.delete(this.keyCodec.encode(key));
  }
  *entries(): Generator<[K, V]> {
    for (const [k, v] of this.map.entries()) yield [this.keyCodec.decode(k), this.valueCodec.decode(v)];
  }
}

export function mapInfo(fd: number): MapInfo {
  const b = objInfo(fd, MAP_INFO_SIZE);
  return {
    type: b.readUInt32LE(0) as MapTypeValue,
    id: b.readUInt32LE(4),
    keySize: b.readUInt32LE(8),
    valueSize: b.readUInt32LE(12),
    maxEntries: b.readUInt32LE(16),
    flags: b.readUInt32LE(20),
    name: b.subarray(24, 40).toString('latin1').replace(/\0.*$/s, ''),
  };
}

/** Kernel map names: at most 15 characters of [A-Za-z0-9_.]. */
export function sanitizeName(name: string): string {
  return name.replace(/[^A-Za-z0-9_.]/g, '_').slice(0, 15);
}

function roundUp8(n: number): number {
  return (n + 7) & ~7;
}

function createHint(spec: MapSpec, errno: number): string | undefined {
  if (errno === Errno.EPERM) return 'creating maps needs CAP_BPF (run as root)';
  if (errno === Errno.EINVAL) {
    if (spec.maxEntries === 0) return 'max_entries is 0';
    if (spec.type === MapType.RINGBUF)
      return 'ring buffer size must be a power-of-two multiple of the page size';
    if (spec.type === MapType.LPM_TRIE)
      return 'LPM tries need BPF_F_NO_PREALLOC and a key starting with a u32 prefix length';
    return `check key/value sizes (${spec.keySize}/${spec.valueSize}) and flags (${spec.flags}) for map type ${spec.type}`;
  }
  if (errno === Errno.E2BIG) return 'key or value too large for this map type';
  return undefined;
}

function updateHint(m: BpfMap, errno: number): string | undefined {
  if (errno === Errno.E2BIG) return `map is full (max_entries ${m.maxEntries})`;
  if (errno === Errno.EEXIST) return 'key exists (BPF_NOEXIST)';
  if (errno === Errno.ENOENT) return 'key does not exist (BPF_EXIST)';
  if (errno === Errno.EPERM) return 'map is frozen or read-only';
  return undefined;
}

/** updateMany stopped at element `index` (the ones before it are written). */
export class BatchUpdateError extends BpfSyscallError {
  constructor(
    m: BpfMap,
    readonly index: number,
    errno: number,
  ) {
    super(`update map ${m.name} (element ${index} of a batch)`, errno, updateHint(m, errno));
  }
}

export { KeyNotFoundError, type Pinning };
