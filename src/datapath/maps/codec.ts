/**
 * Runtime side of the generated layouts (generated/layouts.ts): the codec interface, field
 * metadata, and the byte-order helpers the map wrappers use for members that carry network-order
 * data (addresses, ports, policy identities).
 */

export interface FieldInfo {
  readonly cName: string;
  readonly offset: number;
  readonly size: number;
  readonly kind: 'int' | 'bytes' | 'intArray' | 'struct';
  /** The member's C type is a __be* typedef: the codec reads/writes it big-endian. */
  readonly bigEndian: boolean;
  /** Anonymous union group shared with the other members over the same bytes. */
  readonly union?: string;
  /** C name of a nested struct member's type. */
  readonly struct?: string;
}

/** Codec of one C struct. `encode` accepts the Init shape (padding and union members optional). */
export interface StructLayout<T, I = T> {
  /** C struct name. */
  readonly name: string;
  readonly size: number;
  readonly fields: Readonly<Record<string, FieldInfo>>;
  /** Layout fingerprint (see codegen/btf-layout.ts), compared against an object's BTF at load time. */
  readonly fingerprint: string;
  encode(value: I): Uint8Array;
  /** Writes `size` bytes at `offset` of `out` (batch buffers). Bytes not covered by a field are zeroed. */
  encodeInto(value: I, out: Uint8Array, offset: number): void;
  decode(bytes: Uint8Array, offset?: number): T;
}

/** A map as declared in the `.maps` of the datapath objects (one name, one definition). */
export interface MapDescriptor {
  readonly name: string;
  readonly type: number;
  readonly typeName: string;
  readonly keySize: number;
  readonly valueSize: number;
  readonly maxEntries: number;
  readonly flags: number;
  readonly pinning: 'none' | 'by-name';
  /** C struct names of key and value, when declared with __type(key/value, struct ...). */
  readonly key?: string;
  readonly value?: string;
  readonly inner?: Omit<MapDescriptor, 'inner' | 'name' | 'pinning'>;
}

/** What one datapath object (build/bpf/<name>.o) declares, as generated from it. */
export interface ObjectDescriptor {
  /** File name under build/bpf, e.g. "bpf_lxc.o". */
  readonly file: string;
  /** Program name → ELF section. */
  readonly programs: Readonly<Record<string, string>>;
  /** Names of the maps it declares (described in MAPS). */
  readonly maps: readonly string[];
  /** Load-time values (`volatile const` in .rodata, settings in `.data.<scope>`) → size in bytes. */
  readonly constants: Readonly<Record<string, number>>;
}

/**
 * A set of generated layouts: what the load-time check compares an object against. The committed
 * generated/layouts.ts is one; codegen's buildLayoutModel gives another for any list of objects.
 */
export interface Layouts {
  readonly MAPS: Readonly<Record<string, MapDescriptor>>;
  readonly STRUCTS: Readonly<Record<string, { readonly name: string; readonly fingerprint: string }>>;
  readonly OBJECTS: Readonly<Record<string, ObjectDescriptor>>;
}

/**
 * The views of the last two byte arrays: a batch encodes every key into one array and every value
 * into another, so two views serve a whole batch instead of a new DataView per element.
 */
let lastBytes: Uint8Array | undefined;
let lastView: DataView | undefined;
let prevBytes: Uint8Array | undefined;
let prevView: DataView | undefined;

export function view(b: Uint8Array): DataView {
  if (b === lastBytes) return lastView!;
  if (b === prevBytes) return prevView!;
  prevBytes = lastBytes;
  prevView = lastView;
  lastBytes = b;
  lastView = new DataView(b.buffer, b.byteOffset, b.byteLength);
  return lastView;
}

export function bswap16(x: number): number {
  return ((x & 0xff) << 8) | ((x >>> 8) & 0xff);
}

export function bswap32(x: number): number {
  return (((x & 0xff) << 24) | ((x & 0xff00) << 8) | ((x >>> 8) & 0xff00) | ((x >>> 24) & 0xff)) >>> 0;
}

/**
 * The number to give a field's codec so that the field's bytes hold `value` in network order.
 * Works whether the C member is a __be typedef (codec writes big-endian) or a plain __u16/__u32
 * documented as network order (codec writes host order, so the value is swapped first).
 */
export function toNet(field: FieldInfo, value: number): number {
  if (field.bigEndian) return value;
  if (field.size === 2) return bswap16(value);
  if (field.size === 4) return bswap32(value);
  if (field.size === 1) return value;
  throw new RangeError(`field ${field.cName}: no network-order conversion for ${field.size} bytes`);
}

/** Inverse of toNet: the host-order value of a network-order field as decoded by its codec. */
export function fromNet(field: FieldInfo, decoded: number): number {
  return toNet(field, decoded);
}

/**
 * Copies a byte-array member. Members up to 16 bytes (MACs, IPv6 addresses) need the exact length;
 * longer ones (event capture buffers) accept less, the rest stays zero.
 */
export function putBytes(
  out: Uint8Array,
  offset: number,
  size: number,
  bytes: Uint8Array,
  what: string,
): void {
  if (bytes.length > size || (size <= 16 && bytes.length !== size))
    throw new RangeError(`${what}: expected ${size} bytes, got ${bytes.length}`);
  out.set(bytes, offset);
}

export function shortBuffer(struct: string, size: number, got: number): RangeError {
  return new RangeError(`struct ${struct}: need ${size} bytes, got ${Math.max(0, got)}`);
}
