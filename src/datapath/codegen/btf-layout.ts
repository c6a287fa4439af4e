/**
 * Reads C struct layouts out of a compiled object's BTF into a small model (field kind, offset,
 * size, byte order), shared by the code generator (scripts/codegen-datapath.ts) and the loader's
 * load-time check. Only what bpf/lib/defs.h uses is supported; anything else is a clear error
 * instead of a silently wrong codec.
 */
import { CiliumTsError } from '../../common/errors.js';
import { type Btf, BtfKind, type BtfType } from '../../ebpf/index.js';

export type FieldModel = IntField | BytesField | IntArrayField | StructField;

interface FieldBase {
  /** camelCase name in TypeScript. */
  name: string;
  /** C member name. */
  cName: string;
  /** Byte offset from the start of the outermost struct being modelled. */
  offset: number;
  size: number;
  /** Members of the same anonymous union share a group name ("u0", "u1", ...). */
  union?: string;
}

export interface IntField extends FieldBase {
  kind: 'int';
  signed: boolean;
  /** The member's BTF typedef is __be16/__be32/__be64: encoded big-endian. */
  bigEndian: boolean;
}

/** A `__u8 x[N]` / `char x[N]` member, exposed as Uint8Array. */
export interface BytesField extends FieldBase {
  kind: 'bytes';
}

/** An array of wider integers, exposed as number[] / bigint[]. */
export interface IntArrayField extends FieldBase {
  kind: 'intArray';
  count: number;
  elemSize: number;
  signed: boolean;
  bigEndian: boolean;
}

/** A nested named struct, exposed as an object with its own codec. */
export interface StructField extends FieldBase {
  kind: 'struct';
  struct: string;
}

export interface StructModel {
  /** C name, e.g. "ipcache_key". */
  name: string;
  size: number;
  fields: FieldModel[];
}

export class LayoutError extends CiliumTsError {
  override readonly name = 'LayoutError';
  override readonly code = 'failed-precondition';
}

export function camelCase(s: string): string {
  return s.replace(/_+([a-z0-9])/g, (_, c: string) => c.toUpperCase());
}

export function pascalCase(s: string): string {
  const c = camelCase(s);
  return c.charAt(0).toUpperCase() + c.slice(1);
}

/** Follows typedefs/qualifiers; reports whether a __be* typedef was crossed. */
function unwrap(btf: Btf, id: number): { t: BtfType; bigEndian: boolean } {
  let t = btf.type(id);
  let bigEndian = false;
  for (let i = 0; i < 32; i++) {
    if (t.kind === BtfKind.TYPEDEF) {
      if (/^__be(16|32|64)$/.test(t.name)) bigEndian = true;
      t = btf.type(t.sizeOrType);
    } else if (
      t.kind === BtfKind.CONST ||
      t.kind === BtfKind.VOLATILE ||
      t.kind === BtfKind.RESTRICT ||
      t.kind === BtfKind.TYPE_TAG
    ) {
      t = btf.type(t.sizeOrType);
    } else {
      return { t, bigEndian };
    }
  }
  throw new LayoutError(`type ${id}: typedef chain too long`);
}

function intInfo(t: BtfType): { size: number; signed: boolean } | undefined {
  if (t.kind === BtfKind.INT) return { size: t.sizeOrType, signed: ((t.intEncoding ?? 0) & 1) === 1 };
  if (t.kind === BtfKind.ENUM) return { size: t.sizeOrType, signed: t.kindFlag };
  return undefined;
}

/** The struct named `name` in `btf` (a definition, not a forward declaration), or undefined. */
export function findStruct(btf: Btf, name: string): BtfType | undefined {
  return btf.find(name, BtfKind.STRUCT).find((t) => t.members !== undefined);
}

/**
 * Models a struct. Nested named structs become `struct` fields (and are returned in `deps`),
 * anonymous unions are flattened into their members, tagged with a shared union group.
 */
export function modelStruct(btf: Btf, t: BtfType, deps?: Set<number>): StructModel {
  if (t.kind !== BtfKind.STRUCT) throw new LayoutError(`${t.name || '(anon)'} is not a struct`);
  const fields: FieldModel[] = [];
  let unions = 0;
  const where = (m: string): string => `struct ${t.name}.${m}`;

  const add = (cName: string, typeId: number, offset: number, union: string | undefined): void => {
    const { t: mt, bigEndian } = unwrap(btf, typeId);
    const base = { name: camelCase(cName), cName, offset, ...(union ? { union } : {}) };
    const ii = intInfo(mt);
    if (ii) {
      fields.push({ ...base, kind: 'int', size: ii.size, signed: ii.signed, bigEndian });
      return;
    }
    if (mt.kind === BtfKind.ARRAY) {
      const a = mt.array!;
      const { t: et, bigEndian: eBe } = unwrap(btf, a.type);
      const ei = intInfo(et);
      if (!ei) throw new LayoutError(`${where(cName)}: arrays of ${btf.typeName(a.type)} are not supported`);
      if (ei.size === 1) {
        fields.push({ ...base, kind: 'bytes', size: a.nelems });
      } else {
        fields.push({
          ...base,
          kind: 'intArray',
          size: a.nelems * ei.size,
          count: a.nelems,
          elemSize: ei.size,
          signed: ei.signed,
          bigEndian: eBe,
        });
      }
      return;
    }
    if (mt.kind === BtfKind.STRUCT && mt.name) {
      deps?.add(mt.id);
      fields.push({ ...base, kind: 'struct', size: mt.sizeOrType, struct: mt.name });
      return;
    }
    throw new LayoutError(`${where(cName)}: member type ${btf.typeName(typeId)} is not supported`);
  };

  for (const m of t.members ?? []) {
    if (m.bitSize !== 0 || m.bitOffset % 8 !== 0)
      throw new LayoutError(`${where(m.name)}: bitfields are not supported`);
    const off = m.bitOffset / 8;
    if (m.name) {
      add(m.name, m.type, off, undefined);
      continue;
    }
    const { t: ut } = unwrap(btf, m.type);
    if (ut.kind !== BtfKind.UNION)
      throw new LayoutError(`${where('(anon)')}: anonymous ${btf.typeName(m.type)} is not supported`);
    const group = `u${unions++}`;
    for (const um of ut.members ?? []) {
      if (!um.name || um.bitSize !== 0 || um.bitOffset !== 0)
        throw new LayoutError(`${where('(union)')}: unnamed or bitfield union members are not supported`);
      add(um.name, um.type, off, group);
    }
  }
  const names = new Set<string>();
  for (const f of fields) {
    if (names.has(f.name)) throw new LayoutError(`${where(f.cName)}: camelCase name ${f.name} collides`);
    names.add(f.name);
  }
  return { name: t.name, size: t.sizeOrType, fields };
}

/** A compact, comparable description of a layout: "name:size|field@off:size:kind[:be],...". */
export function fingerprint(m: StructModel): string {
  const f = m.fields.map((x) => {
    const extra =
      x.kind === 'int' || x.kind === 'intArray'
        ? `${x.signed ? 's' : 'u'}${x.bigEndian ? 'be' : ''}`
        : x.kind === 'struct'
          ? x.struct
          : '';
    return `${x.cName}@${x.offset}:${x.size}:${x.kind}${extra ? `:${extra}` : ''}${x.union ? `|${x.union}` : ''}`;
  });
  return `${m.name}:${m.size}{${f.join(',')}}`;
}

/**
 * The structs the ABI object instantiates (`__abi_<struct>` globals, in declaration order),
 * followed by any struct they nest that is not itself listed.
 */
export function abiStructs(btf: Btf): StructModel[] {
  const listed: BtfType[] = [];
  for (const t of btf.types) {
    if (t.kind !== BtfKind.DATASEC) continue;
    for (const vsi of t.secinfo ?? []) {
      const v = btf.type(vsi.type);
      if (v.kind !== BtfKind.VAR || !v.name.startsWith('__abi_')) continue;
      const { t: st } = unwrap(btf, v.sizeOrType);
      if (st.kind !== BtfKind.STRUCT) throw new LayoutError(`${v.name} is not a struct`);
      listed.push(st);
    }
  }
  if (listed.length === 0) throw new LayoutError('no __abi_* variables in the ABI object');
  const out: StructModel[] = [];
  const done = new Set<number>();
  const visit = (t: BtfType): void => {
    if (done.has(t.id)) return;
    done.add(t.id);
    const deps = new Set<number>();
    const m = modelStruct(btf, t, deps);
    for (const d of deps) visit(btf.type(d)); // nested types first
    out.push(m);
  };
  for (const t of listed) visit(t);
  return out;
}
