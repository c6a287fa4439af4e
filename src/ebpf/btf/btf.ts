/**
 * BTF (BPF Type Format) parser. Pure: bytes in, types out. Keeps the raw blob and each type's
 * byte offset so the loader can patch data-section sizes/offsets before handing BTF to the kernel.
 */

import { cstring } from '../elf/reader.js';
import { EbpfError } from '../errors.js';

export const BtfKind = {
  UNKN: 0,
  INT: 1,
  PTR: 2,
  ARRAY: 3,
  STRUCT: 4,
  UNION: 5,
  ENUM: 6,
  FWD: 7,
  TYPEDEF: 8,
  VOLATILE: 9,
  CONST: 10,
  RESTRICT: 11,
  FUNC: 12,
  FUNC_PROTO: 13,
  VAR: 14,
  DATASEC: 15,
  FLOAT: 16,
  DECL_TAG: 17,
  TYPE_TAG: 18,
  ENUM64: 19,
} as const;

const kindNames = Object.fromEntries(Object.entries(BtfKind).map(([k, v]) => [v, k])) as Record<
  number,
  string
>;

export class BtfError extends EbpfError {
  override readonly code = 'EBPF_BTF';
}

export interface BtfMember {
  name: string;
  type: number;
  /** Offset in bits from the start of the struct. */
  bitOffset: number;
  /** Bitfield size in bits, 0 for a plain member. */
  bitSize: number;
}

export interface BtfEnumValue {
  name: string;
  value: bigint;
}

export interface BtfVarSecinfo {
  type: number;
  offset: number;
  size: number;
}

export interface BtfType {
  id: number;
  kind: number;
  name: string;
  /** Raw `size_or_type` field. */
  sizeOrType: number;
  vlen: number;
  kindFlag: boolean;
  /** Byte offset of this type's record within the type section. */
  rawOffset: number;
  // Kind-specific:
  intEncoding?: number;
  intBits?: number;
  intOffset?: number;
  array?: { type: number; indexType: number; nelems: number };
  members?: BtfMember[];
  enumValues?: BtfEnumValue[];
  params?: { name: string; type: number }[];
  linkage?: number;
  secinfo?: BtfVarSecinfo[];
  componentIdx?: number;
}

export class Btf {
  /** types[id]; index 0 is void. */
  readonly types: BtfType[] = [];
  readonly strings: Uint8Array;
  readonly typesData: Uint8Array;
  private byName?: Map<string, BtfType[]>;

  constructor(readonly raw: Uint8Array) {
    const dv = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
    if (raw.length < 24 || dv.getUint16(0, true) !== 0xeb9f) throw new BtfError('bad BTF magic');
    const hdrLen = dv.getUint32(4, true);
    const typeOff = dv.getUint32(8, true);
    const typeLen = dv.getUint32(12, true);
    const strOff = dv.getUint32(16, true);
    const strLen = dv.getUint32(20, true);
    if (hdrLen + strOff + strLen > raw.length || hdrLen + typeOff + typeLen > raw.length) {
      throw new BtfError('BTF sections past end of data');
    }
    this.strings = raw.subarray(hdrLen + strOff, hdrLen + strOff + strLen);
    this.typesData = raw.subarray(hdrLen + typeOff, hdrLen + typeOff + typeLen);
    this.types.push({ id: 0, kind: 0, name: '', sizeOrType: 0, vlen: 0, kindFlag: false, rawOffset: -1 });
    this.parseTypes();
  }

  private str(off: number): string {
    return cstring(this.strings, off);
  }

  private parseTypes(): void {
    const d = this.typesData;
    const dv = new DataView(d.buffer, d.byteOffset, d.byteLength);
    let o = 0;
    while (o < d.length) {
      const start = o;
      const info = dv.getUint32(o + 4, true);
      const t: BtfType = {
        id: this.types.length,
        kind: (info >>> 24) & 0x1f,
        name: this.str(dv.getUint32(o, true)),
        sizeOrType: dv.getUint32(o + 8, true),
        vlen: info & 0xffff,
        kindFlag: info >>> 31 === 1,
        rawOffset: start,
      };
      o += 12;
      switch (t.kind) {
        case BtfKind.INT: {
          const v = dv.getUint32(o, true);
          t.intEncoding = (v >>> 24) & 0xf;
          t.intOffset = (v >>> 16) & 0xff;
          t.intBits = v & 0xff;
          o += 4;
          break;
        }
        case BtfKind.ARRAY:
          t.array = {
            type: dv.getUint32(o, true),
            indexType: dv.getUint32(o + 4, true),
            nelems: dv.getUint32(o + 8, true),
          };
          o += 12;
          break;
        case BtfKind.STRUCT:
        case BtfKind.UNION:
          t.members = [];
          for (let i = 0; i < t.vlen; i++, o += 12) {
            const off = dv.getUint32(o + 8, true);
            t.members.push({
              name: this.str(dv.getUint32(o, true)),
              type: dv.getUint32(o + 4, true),
              bitOffset: t.kindFlag ? off & 0xffffff : off,
              bitSize: t.kindFlag ? off >>> 24 : 0,
            });
          }
          break;
        case BtfKind.ENUM:
          t.enumValues = [];
          for (let i = 0; i < t.vlen; i++, o += 8) {
            t.enumValues.push({
              name: this.str(dv.getUint32(o, true)),
              value: BigInt(dv.getInt32(o + 4, true)),
            });
          }
          break;
        case BtfKind.ENUM64:
          t.enumValues = [];
          for (let i = 0; i < t.vlen; i++, o += 12) {
            const lo = BigInt(dv.getUint32(o + 4, true));
            const hi = BigInt(dv.getUint32(o + 8, true));
            t.enumValues.push({ name: this.str(dv.getUint32(o, true)), value: (hi << 32n) | lo });
          }
          break;
        case BtfKind.FUNC_PROTO:
          t.params = [];
          for (let i = 0; i < t.vlen; i++, o += 8) {
            t.params.push({ name: this.str(dv.getUint32(o, true)), type: dv.getUint32(o + 4, true) });
          }
          break;
        case BtfKind.VAR:
          t.linkage = dv.getUint32(o, true);
          o += 4;
          break;
        case BtfKind.DATASEC:
          t.secinfo = [];
          for (let i = 0; i < t.vlen; i++, o += 12) {
            t.secinfo.push({
              type: dv.getUint32(o, true),
              offset: dv.getUint32(o + 4, true),
              size: dv.getUint32(o + 8, true),
            });
          }
          break;
        case BtfKind.DECL_TAG:
          t.componentIdx = dv.getInt32(o, true);
          o += 4;
          break;
        case BtfKind.PTR:
        case BtfKind.FWD:
        case BtfKind.TYPEDEF:
        case BtfKind.VOLATILE:
        case BtfKind.CONST:
        case BtfKind.RESTRICT:
        case BtfKind.FUNC:
        case BtfKind.FLOAT:
        case BtfKind.TYPE_TAG:
          break;
        default:
          throw new BtfError(`unknown BTF kind ${t.kind} at type ${t.id}`);
      }
      this.types.push(t);
    }
  }

  type(id: number): BtfType {
    const t = this.types[id];
    if (!t) throw new BtfError(`BTF type ${id} does not exist`);
    return t;
  }

  /** All types with the given name (optionally of one kind). */
  find(name: string, kind?: number): BtfType[] {
    if (!this.byName) {
      this.byName = new Map();
      for (const t of this.types) {
        if (!t.name) continue;
        const l = this.byName.get(t.name);
        if (l) l.push(t);
        else this.byName.set(t.name, [t]);
      }
    }
    const all = this.byName.get(name) ?? [];
    return kind === undefined ? all : all.filter((t) => t.kind === kind);
  }

  /** Skips typedefs and qualifiers. */
  resolve(id: number): BtfType {
    let t = this.type(id);
    for (let i = 0; i < 64; i++) {
      if (
        t.kind === BtfKind.TYPEDEF ||
        t.kind === BtfKind.VOLATILE ||
        t.kind === BtfKind.CONST ||
        t.kind === BtfKind.RESTRICT ||
        t.kind === BtfKind.TYPE_TAG
      ) {
        t = this.type(t.sizeOrType);
      } else return t;
    }
    throw new BtfError(`type ${id}: qualifier chain too long`);
  }

  /** Size in bytes of a type. */
  sizeof(id: number): number {
    const t = this.resolve(id);
    switch (t.kind) {
      case BtfKind.INT:
      case BtfKind.STRUCT:
      case BtfKind.UNION:
      case BtfKind.ENUM:
      case BtfKind.ENUM64:
      case BtfKind.FLOAT:
      case BtfKind.DATASEC:
        return t.sizeOrType;
      case BtfKind.PTR:
        return 8;
      case BtfKind.ARRAY:
        return this.sizeof(t.array!.type) * t.array!.nelems;
      case BtfKind.VAR:
        return this.sizeof(t.sizeOrType);
      default:
        throw new BtfError(`type ${id} (${kindName(t.kind)}) has no size`);
    }
  }

  /** A human name for a type, e.g. `struct policy_key` or `__u32`. */
  typeName(id: number): string {
    const t = this.type(id);
    switch (t.kind) {
      case BtfKind.STRUCT:
        return `struct ${t.name || '(anon)'}`;
      case BtfKind.UNION:
        return `union ${t.name || '(anon)'}`;
      case BtfKind.ENUM:
      case BtfKind.ENUM64:
        return `enum ${t.name || '(anon)'}`;
      case BtfKind.PTR:
        return `${this.typeName(t.sizeOrType)} *`;
      case BtfKind.ARRAY:
        return `${this.typeName(t.array!.type)}[${t.array!.nelems}]`;
      case BtfKind.CONST:
        return `const ${this.typeName(t.sizeOrType)}`;
      case BtfKind.VOLATILE:
        return `volatile ${this.typeName(t.sizeOrType)}`;
      case 0:
        return 'void';
      default:
        return t.name || kindName(t.kind).toLowerCase();
    }
  }
}

export function kindName(kind: number): string {
  return kindNames[kind] ?? `kind ${kind}`;
}

/** One function's record from .BTF.ext func_info: instruction offset (bytes) and FUNC type id. */
export interface FuncInfo {
  insnOff: number;
  typeId: number;
}

/** One .BTF.ext line_info record; `insnOff` in bytes, the rest as the kernel expects. */
export interface LineInfo {
  insnOff: number;
  fileNameOff: number;
  lineOff: number;
  lineCol: number;
}

export interface BtfExt {
  funcInfo: Map<string, FuncInfo[]>;
  lineInfo: Map<string, LineInfo[]>;
  funcInfoRecSize: number;
  lineInfoRecSize: number;
  coreReloCount: number;
}

/** Parses .BTF.ext; section names resolve through the object's BTF strings. */
export function parseBtfExt(raw: Uint8Array, btf: Btf): BtfExt {
  const dv = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
  if (dv.getUint16(0, true) !== 0xeb9f) throw new BtfError('bad BTF.ext magic');
  const hdrLen = dv.getUint32(4, true);
  const fiOff = dv.getUint32(8, true);
  const fiLen = dv.getUint32(12, true);
  const liOff = dv.getUint32(16, true);
  const liLen = dv.getUint32(20, true);
  const coreLen = hdrLen >= 32 ? dv.getUint32(28, true) : 0;
  const out: BtfExt = {
    funcInfo: new Map(),
    lineInfo: new Map(),
    funcInfoRecSize: 8,
    lineInfoRecSize: 16,
    coreReloCount: 0,
  };

  const walk = (
    off: number,
    len: number,
    cb: (sec: string, rec: number, recSize: number) => void,
  ): number => {
    if (len === 0) return 0;
    const base = hdrLen + off;
    const recSize = dv.getUint32(base, true);
    let o = base + 4;
    while (o < base + len) {
      const sec = cstring(btf.strings, dv.getUint32(o, true));
      const n = dv.getUint32(o + 4, true);
      o += 8;
      for (let i = 0; i < n; i++, o += recSize) cb(sec, o, recSize);
    }
    return recSize;
  };
  const push = <T>(m: Map<string, T[]>, k: string, v: T): void => {
    const l = m.get(k);
    if (l) l.push(v);
    else m.set(k, [v]);
  };
  out.funcInfoRecSize =
    walk(fiOff, fiLen, (sec, o) =>
      push(out.funcInfo, sec, { insnOff: dv.getUint32(o, true), typeId: dv.getUint32(o + 4, true) }),
    ) || 8;
  out.lineInfoRecSize =
    walk(liOff, liLen, (sec, o) =>
      push(out.lineInfo, sec, {
        insnOff: dv.getUint32(o, true),
        fileNameOff: dv.getUint32(o + 4, true),
        lineOff: dv.getUint32(o + 8, true),
        lineCol: dv.getUint32(o + 12, true),
      }),
    ) || 16;
  if (coreLen > 0) {
    const coreOff = dv.getUint32(24, true);
    walk(coreOff, coreLen, () => {
      out.coreReloCount++;
    });
  }
  return out;
}
