/**
 * CollectionSpec: everything an object file declares (maps, programs, global variables), parsed
 * from ELF + BTF without any syscall. Deterministic: the same object gives the same spec anywhere.
 * Programs come out linked (bpf-to-bpf callees appended, calls fixed up) with the map references
 * that remain to be resolved to file descriptors at load time.
 */
import { readFileSync } from 'node:fs';
import { Btf, type BtfExt, BtfKind, type FuncInfo, type LineInfo, parseBtfExt } from './btf/btf.js';
import {
  ElfFile,
  type ElfSection,
  type ElfSymbol,
  SHF_EXECINSTR,
  SHT_NOBITS,
  SHT_PROGBITS,
  STB_LOCAL,
  STT_FUNC,
  STT_OBJECT,
  STT_SECTION,
} from './elf/reader.js';
import { ElfError } from './errors.js';
import { sectionDef } from './sections.js';
import {
  type AttachTypeValue,
  MapFlag,
  MapType,
  type MapTypeValue,
  type ProgTypeValue,
  PSEUDO_CALL,
  PSEUDO_FUNC,
  PSEUDO_MAP_FD,
  PSEUDO_MAP_VALUE,
} from './sys/constants.js';

export type Pinning = 'none' | 'by-name';

export interface MapSpec {
  name: string;
  type: MapTypeValue;
  keySize: number;
  valueSize: number;
  maxEntries: number;
  flags: number;
  pinning: Pinning;
  numaNode?: number;
  mapExtra?: bigint;
  innerMap?: MapSpec;
  /** BTF type ids of key and value in the object's BTF, when declared with __type. */
  keyType?: number;
  valueType?: number;
  /** Initial contents (global data sections): key/value bytes written after creation. */
  contents?: { key: Uint8Array; value: Uint8Array }[];
  /** Freeze after populating (read-only data: the verifier then treats it as constants). */
  freeze?: boolean;
}

/** A reference from an instruction to a map, resolved at load time. */
export interface MapReference {
  /** Index of the first half of the ld_imm64 instruction. */
  insn: number;
  map: string;
  /** For PSEUDO_MAP_VALUE (global data): byte offset into the value; undefined for map fds. */
  valueOffset?: number;
}

export interface ProgramSpec {
  name: string;
  section: string;
  type: ProgTypeValue;
  expectedAttachType: AttachTypeValue | 0;
  license: string;
  /** Linked instructions (8 bytes each). */
  instructions: Uint8Array;
  mapRefs: MapReference[];
  funcInfo: FuncInfo[];
  lineInfo: LineInfo[];
}

export interface VariableSpec {
  name: string;
  /** Name of the data map holding the variable (.rodata, .data, .bss, ...). */
  map: string;
  offset: number;
  size: number;
  /** BTF type id of the variable's type. */
  type?: number;
  readOnly: boolean;
}

export type ConstantValue = number | bigint | boolean | Uint8Array | number[];

const INSN = 8;
const DATA_SECTION = /^\.(rodata|data|bss)(\..*)?$/;

export class CollectionSpec {
  readonly maps = new Map<string, MapSpec>();
  readonly programs = new Map<string, ProgramSpec>();
  readonly variables = new Map<string, VariableSpec>();
  license = '';
  btf?: Btf;
  btfExt?: BtfExt;
  /** The object's BTF as the kernel needs it: data-section sizes and variable offsets filled in. */
  kernelBtf?: Uint8Array;

  /** Parses an object file from disk. */
  static fromFile(path: string): CollectionSpec {
    try {
      return CollectionSpec.parse(readFileSync(path));
    } catch (err) {
      if (err instanceof ElfError) throw new ElfError(`${path}: ${err.message}`, { cause: err });
      throw err;
    }
  }

  static parse(bytes: Uint8Array): CollectionSpec {
    return new ElfSpecReader(new ElfFile(bytes)).read();
  }

  /**
   * Sets `volatile const` (or any global) variables before load. Numbers are written in host order
   * unless the variable's BTF type is a big-endian typedef (__be16, __be32, __be64).
   */
  rewriteConstants(values: Record<string, ConstantValue>): void {
    for (const [name, value] of Object.entries(values)) {
      const v = this.variables.get(name);
      if (!v) throw new ElfError(`variable ${name} does not exist in the object`);
      const m = this.maps.get(v.map);
      const contents = m?.contents?.[0];
      if (!contents) throw new ElfError(`variable ${name}: data section ${v.map} not found`);
      const bytes = encodeConstant(name, value, v.size, this.isBigEndian(v.type));
      contents.value.set(bytes, v.offset);
    }
  }

  /** Reads the current (possibly rewritten) bytes of a variable. */
  variableBytes(name: string): Uint8Array {
    const v = this.variables.get(name);
    const c = v && this.maps.get(v.map)?.contents?.[0];
    if (!v || !c) throw new ElfError(`variable ${name} does not exist in the object`);
    return c.value.slice(v.offset, v.offset + v.size);
  }

  /** A deep copy, so one parsed object can be specialised per endpoint. */
  copy(): CollectionSpec {
    const c = new CollectionSpec();
    c.license = this.license;
    if (this.btf) c.btf = this.btf;
    if (this.btfExt) c.btfExt = this.btfExt;
    if (this.kernelBtf) c.kernelBtf = this.kernelBtf;
    for (const [k, m] of this.maps) c.maps.set(k, copyMapSpec(m));
    for (const [k, p] of this.programs) c.programs.set(k, p);
    for (const [k, v] of this.variables) c.variables.set(k, v);
    return c;
  }

  private isBigEndian(type: number | undefined): boolean {
    if (!this.btf || type === undefined) return false;
    let t = this.btf.type(type);
    for (let i = 0; i < 16; i++) {
      if (t.kind === BtfKind.TYPEDEF && /^__be(16|32|64)$/.test(t.name)) return true;
      if (t.kind === BtfKind.TYPEDEF || t.kind === BtfKind.CONST || t.kind === BtfKind.VOLATILE) {
        t = this.btf.type(t.sizeOrType);
      } else if (t.kind === BtfKind.ARRAY) {
        t = this.btf.type(t.array!.type);
      } else return false;
    }
    return false;
  }
}

function copyMapSpec(m: MapSpec): MapSpec {
  const c: MapSpec = { ...m };
  if (m.contents) c.contents = m.contents.map((e) => ({ key: e.key.slice(), value: e.value.slice() }));
  if (m.innerMap) c.innerMap = copyMapSpec(m.innerMap);
  return c;
}

export function encodeConstant(
  name: string,
  value: ConstantValue,
  size: number,
  bigEndian: boolean,
): Uint8Array {
  const out = new Uint8Array(size);
  if (value instanceof Uint8Array || Array.isArray(value)) {
    const arr = value instanceof Uint8Array ? value : Uint8Array.from(value);
    if (arr.length !== size)
      throw new ElfError(`variable ${name}: expected ${size} bytes, got ${arr.length}`);
    out.set(arr);
    return out;
  }
  let n = typeof value === 'boolean' ? (value ? 1n : 0n) : BigInt(value);
  const bits = BigInt(size * 8);
  if (size > 8) throw new ElfError(`variable ${name}: ${size}-byte variable needs a byte array`);
  if (n < 0n) n += 1n << bits;
  if (n < 0n || n >= 1n << bits)
    throw new ElfError(`variable ${name}: value ${value} does not fit in ${size} bytes`);
  for (let i = 0; i < size; i++) {
    const byte = Number((n >> BigInt(8 * i)) & 0xffn);
    out[bigEndian ? size - 1 - i : i] = byte;
  }
  return out;
}

/** A code section's function: a contiguous range of instructions. */
interface FuncRange {
  section: ElfSection;
  start: number; // instruction index within section
  end: number;
  name: string;
}

class ElfSpecReader {
  private readonly spec = new CollectionSpec();
  private btf?: Btf;

  constructor(private readonly elf: ElfFile) {}

  read(): CollectionSpec {
    const { elf, spec } = this;
    const lic = elf.section('license');
    spec.license = lic ? Buffer.from(lic.data).toString('latin1').replace(/\0.*$/s, '') : '';
    const btfSec = elf.section('.BTF');
    if (btfSec) {
      this.btf = new Btf(btfSec.data.slice());
      spec.btf = this.btf;
      const ext = elf.section('.BTF.ext');
      if (ext) spec.btfExt = parseBtfExt(ext.data, this.btf);
      spec.kernelBtf = this.fixupDatasecs(this.btf);
    }
    if (elf.section('maps'))
      throw new ElfError('legacy "maps" section is not supported; declare maps in ".maps" with BTF');
    this.readBtfMaps();
    this.readDataSections();
    this.readPrograms();
    return spec;
  }

  /**
   * clang leaves DATASEC sizes and variable offsets for the loader to fill from the ELF
   * (sections and symbols); the kernel rejects them otherwise. Patches a copy of the blob.
   */
  private fixupDatasecs(btf: Btf): Uint8Array {
    const raw = Uint8Array.prototype.slice.call(btf.raw);
    const hdrLen = new DataView(raw.buffer).getUint32(4, true);
    const typeOff = new DataView(raw.buffer).getUint32(8, true);
    const dv = new DataView(raw.buffer, hdrLen + typeOff);
    for (const t of btf.types) {
      if (t.kind !== BtfKind.DATASEC) continue;
      const sec = this.elf.section(t.name);
      const infos = (t.secinfo ?? []).map((vsi) => {
        const v = btf.type(vsi.type);
        if (v.kind !== BtfKind.VAR || !sec) return vsi;
        const sym = this.elf.symbols.find((y) => y.sectionIndex === sec.index && y.name === v.name);
        return sym ? { ...vsi, offset: sym.value } : vsi;
      });
      infos.sort((a, b) => a.offset - b.offset);
      if (sec) dv.setUint32(t.rawOffset + 8, sec.size, true);
      infos.forEach((vsi, i) => {
        const o = t.rawOffset + 12 + i * 12;
        dv.setUint32(o, vsi.type, true);
        dv.setUint32(o + 4, vsi.offset, true);
        dv.setUint32(o + 8, vsi.size, true);
      });
    }
    return raw;
  }

  // ---- maps declared in .maps (BTF-defined) ----
  private readBtfMaps(): void {
    const sec = this.elf.section('.maps');
    if (!sec) return;
    const btf = this.btf;
    if (!btf) throw new ElfError('.maps section without BTF (compile with -g)');
    const ds = btf.find('.maps', BtfKind.DATASEC)[0];
    if (!ds) throw new ElfError('BTF has no .maps DATASEC');
    for (const vsi of ds.secinfo ?? []) {
      const v = btf.type(vsi.type);
      if (v.kind !== BtfKind.VAR) throw new ElfError(`.maps: entry ${v.name} is not a variable`);
      const m = this.mapFromBtf(v.name, v.sizeOrType);
      this.spec.maps.set(m.name, m);
    }
  }

  private mapFromBtf(name: string, typeId: number, inner = false): MapSpec {
    const btf = this.btf!;
    const def = btf.resolve(typeId);
    if (def.kind !== BtfKind.STRUCT) throw new ElfError(`map ${name}: definition is not a struct`);
    const m: MapSpec = {
      name,
      type: MapType.UNSPEC,
      keySize: 0,
      valueSize: 0,
      maxEntries: 0,
      flags: 0,
      pinning: 'none',
    };
    const uint = (member: string, id: number): number => {
      const p = btf.resolve(id);
      if (p.kind !== BtfKind.PTR) throw new ElfError(`map ${name}: ${member} is not declared with __uint`);
      const arr = btf.resolve(p.sizeOrType);
      if (arr.kind !== BtfKind.ARRAY)
        throw new ElfError(`map ${name}: ${member} is not declared with __uint`);
      return arr.array!.nelems;
    };
    const pointee = (member: string, id: number): number => {
      const p = btf.resolve(id);
      if (p.kind !== BtfKind.PTR) throw new ElfError(`map ${name}: ${member} is not declared with __type`);
      return p.sizeOrType;
    };
    for (const mem of def.members ?? []) {
      switch (mem.name) {
        case 'type':
          m.type = uint(mem.name, mem.type) as MapTypeValue;
          break;
        case 'max_entries':
          m.maxEntries = uint(mem.name, mem.type);
          break;
        case 'map_flags':
          m.flags = uint(mem.name, mem.type);
          break;
        case 'numa_node':
          m.numaNode = uint(mem.name, mem.type);
          break;
        case 'map_extra':
          m.mapExtra = BigInt(uint(mem.name, mem.type));
          break;
        case 'key_size':
          m.keySize = uint(mem.name, mem.type);
          break;
        case 'value_size':
          m.valueSize = uint(mem.name, mem.type);
          break;
        case 'key':
          m.keyType = pointee(mem.name, mem.type);
          m.keySize = btf.sizeof(m.keyType);
          break;
        case 'value':
          m.valueType = pointee(mem.name, mem.type);
          m.valueSize = btf.sizeof(m.valueType);
          break;
        case 'pinning': {
          const p = uint(mem.name, mem.type);
          if (p > 1) throw new ElfError(`map ${name}: unsupported pinning ${p}`);
          m.pinning = p === 1 ? 'by-name' : 'none';
          break;
        }
        case 'values': {
          if (inner) throw new ElfError(`map ${name}: nested map-in-map is not supported`);
          // __array(values, struct inner_def): ARRAY of PTR to the inner definition (or to a FUNC_PROTO for prog arrays).
          const arr = btf.resolve(mem.type);
          if (arr.kind !== BtfKind.ARRAY)
            throw new ElfError(`map ${name}: values must be declared with __array`);
          const ptr = btf.resolve(arr.array!.type);
          if (ptr.kind !== BtfKind.PTR)
            throw new ElfError(`map ${name}: values must be an array of pointers`);
          const target = btf.resolve(ptr.sizeOrType);
          if (target.kind === BtfKind.STRUCT) m.innerMap = this.mapFromBtf(`${name}.inner`, target.id, true);
          break;
        }
        default:
          throw new ElfError(`map ${name}: unknown map definition member "${mem.name}"`);
      }
    }
    if (m.type === MapType.HASH_OF_MAPS || m.type === MapType.ARRAY_OF_MAPS) {
      if (!m.innerMap)
        throw new ElfError(`map ${name}: map-in-map needs an inner map template (__array(values, ...))`);
      m.valueSize = 4;
    }
    if (m.type === MapType.PROG_ARRAY) m.valueSize = 4;
    if (m.type === MapType.UNSPEC) throw new ElfError(`map ${name}: missing type`);
    return m;
  }

  // ---- global data: .rodata/.data/.bss become single-entry array maps ----
  private readDataSections(): void {
    const { elf, spec } = this;
    for (const s of elf.sections) {
      if (!DATA_SECTION.test(s.name) || (s.type !== SHT_PROGBITS && s.type !== SHT_NOBITS) || s.size === 0)
        continue;
      const readOnly = s.name.startsWith('.rodata');
      const value = new Uint8Array(s.size);
      if (s.type !== SHT_NOBITS) value.set(s.data);
      spec.maps.set(s.name, {
        name: s.name,
        type: MapType.ARRAY,
        keySize: 4,
        valueSize: s.size,
        maxEntries: 1,
        flags: readOnly ? MapFlag.RDONLY_PROG : 0,
        pinning: 'none',
        contents: [{ key: new Uint8Array(4), value }],
        freeze: readOnly,
      });
      const ds = this.btf?.find(s.name, BtfKind.DATASEC)[0];
      for (const sym of elf.symbols) {
        if (sym.sectionIndex !== s.index || sym.type !== STT_OBJECT || !sym.name) continue;
        const vsi = ds?.secinfo?.find((i) => this.btf!.type(i.type).name === sym.name);
        const varType = vsi ? this.btf!.type(vsi.type).sizeOrType : undefined;
        const v: VariableSpec = { name: sym.name, map: s.name, offset: sym.value, size: sym.size, readOnly };
        if (varType !== undefined) v.type = varType;
        spec.variables.set(sym.name, v);
      }
    }
  }

  // ---- programs ----
  private readPrograms(): void {
    const { elf, spec } = this;
    for (const s of elf.sections) {
      if (!(s.flags & SHF_EXECINSTR) || s.type !== SHT_PROGBITS || s.name === '.text' || s.size === 0)
        continue;
      const def = sectionDef(s.name);
      if (!def) throw new ElfError(`section "${s.name}": unknown program type`);
      const funcs = elf.symbols.filter(
        (y) => y.sectionIndex === s.index && y.type === STT_FUNC && y.bind !== STB_LOCAL,
      );
      if (funcs.length === 0) throw new ElfError(`section "${s.name}" has code but no global function`);
      for (const f of funcs) {
        const linked = this.link(this.funcRange(s, f));
        spec.programs.set(f.name, {
          name: f.name,
          section: s.name,
          type: def.progType,
          expectedAttachType: def.attachType ?? 0,
          license: spec.license,
          ...linked,
        });
      }
    }
  }

  private funcRange(section: ElfSection, sym: ElfSymbol): FuncRange {
    const start = sym.value / INSN;
    const size = sym.size > 0 ? sym.size : section.size - sym.value;
    return { section, start, end: start + size / INSN, name: sym.name };
  }

  /** The function (by symbol) that starts at or contains instruction `idx` of a section. */
  private funcAt(section: ElfSection, idx: number): FuncRange {
    const syms = this.elf.symbols.filter((y) => y.sectionIndex === section.index && y.type === STT_FUNC);
    const hit = syms.find((y) => idx >= y.value / INSN && idx < (y.value + y.size) / INSN);
    if (!hit) throw new ElfError(`call into ${section.name}+${idx * INSN} does not land in a function`);
    return this.funcRange(section, hit);
  }

  /**
   * Links one program: its own instructions, then every function it calls (transitively),
   * fixing call offsets, and collecting map references and BTF func/line info.
   */
  private link(
    entry: FuncRange,
  ): Omit<ProgramSpec, 'name' | 'section' | 'type' | 'expectedAttachType' | 'license'> {
    const out: Uint8Array[] = [];
    let len = 0; // instructions emitted so far
    const placed = new Map<string, number>(); // `${sec}:${start}` -> new start
    const queue: FuncRange[] = [];
    const mapRefs: MapReference[] = [];
    const funcInfo: FuncInfo[] = [];
    const lineInfo: LineInfo[] = [];
    const callFixups: { at: number; sec: ElfSection; target: number; pseudoFunc: boolean }[] = [];
    const place = (f: FuncRange): number => {
      const key = `${f.section.index}:${f.start}`;
      const existing = placed.get(key);
      if (existing !== undefined) return existing;
      placed.set(key, len);
      len += f.end - f.start;
      queue.push(f);
      return placed.get(key)!;
    };
    place(entry);
    for (let qi = 0; qi < queue.length; qi++) {
      const f = queue[qi]!;
      const base = placed.get(`${f.section.index}:${f.start}`)!;
      const code = f.section.data.slice(f.start * INSN, f.end * INSN);
      out.push(code);
      const dv = new DataView(code.buffer, code.byteOffset, code.byteLength);
      const relocs = new Map((this.elf.relocations.get(f.section.index) ?? []).map((r) => [r.offset, r]));
      for (let i = 0; i < f.end - f.start; i++) {
        const secIdx = f.start + i;
        const op = code[i * INSN]!;
        const srcReg = code[i * INSN + 1]! >> 4;
        const imm = dv.getInt32(i * INSN + 4, true);
        const rel = relocs.get(secIdx * INSN);
        if (op === 0x85 && srcReg === PSEUDO_CALL) {
          // bpf-to-bpf call: relocated calls target sym + imm + 1; unrelocated ones are section-relative.
          const sec = rel ? this.sectionOf(rel.symbol) : f.section;
          const target = rel ? rel.symbol.value / INSN + imm + 1 : secIdx + imm + 1;
          callFixups.push({ at: base + i, sec, target, pseudoFunc: false });
        } else if (op === 0x85 && srcReg !== 0) {
          throw new ElfError(`${entry.name}: kfunc calls are not supported`);
        } else if (op === 0x18 && rel) {
          const sym = rel.symbol;
          const sec = this.sectionOf(sym);
          if (sec.name === '.maps') {
            const mapName = sym.type === STT_SECTION ? undefined : sym.name;
            if (!mapName || !this.spec.maps.has(mapName))
              throw new ElfError(`${entry.name}: reference to unknown map ${sym.name}`);
            code[i * INSN + 1] = (code[i * INSN + 1]! & 0x0f) | (PSEUDO_MAP_FD << 4);
            mapRefs.push({ insn: base + i, map: mapName });
          } else if (DATA_SECTION.test(sec.name)) {
            if (!this.spec.maps.has(sec.name))
              throw new ElfError(`${entry.name}: reference to empty data section ${sec.name}`);
            code[i * INSN + 1] = (code[i * INSN + 1]! & 0x0f) | (PSEUDO_MAP_VALUE << 4);
            mapRefs.push({
              insn: base + i,
              map: sec.name,
              valueOffset: imm + (sym.type === STT_SECTION ? 0 : sym.value),
            });
          } else if (sec.flags & SHF_EXECINSTR) {
            // Address of a function (callbacks for bpf_loop and friends).
            const target = (sym.value + imm) / INSN;
            callFixups.push({ at: base + i, sec, target, pseudoFunc: true });
          } else {
            throw new ElfError(`${entry.name}: unsupported relocation against section ${sec.name}`);
          }
        } else if (rel && op !== 0x18) {
          throw new ElfError(`${entry.name}: unsupported relocation at ${f.section.name}+${secIdx * INSN}`);
        }
      }
      this.collectExt(f, base, funcInfo, lineInfo);
      // Place callees discovered in this function now, so offsets are known before fixups.
      for (const c of callFixups) {
        if (!placed.has(`${c.sec.index}:${this.funcAt(c.sec, c.target).start}`))
          place(this.funcAt(c.sec, c.target));
      }
    }
    const insns = new Uint8Array(len * INSN);
    let o = 0;
    for (const chunk of out) {
      insns.set(chunk, o);
      o += chunk.length;
    }
    const dv = new DataView(insns.buffer);
    for (const c of callFixups) {
      const fn = this.funcAt(c.sec, c.target);
      const dest = placed.get(`${c.sec.index}:${fn.start}`)! + (c.target - fn.start);
      dv.setInt32(c.at * INSN + 4, dest - (c.at + 1), true);
      if (c.pseudoFunc) insns[c.at * INSN + 1] = (insns[c.at * INSN + 1]! & 0x0f) | (PSEUDO_FUNC << 4);
    }
    funcInfo.sort((a, b) => a.insnOff - b.insnOff);
    lineInfo.sort((a, b) => a.insnOff - b.insnOff);
    return { instructions: insns, mapRefs, funcInfo, lineInfo };
  }

  /** Copies .BTF.ext records of a function, rebased to its new position (in instructions). */
  private collectExt(f: FuncRange, base: number, funcInfo: FuncInfo[], lineInfo: LineInfo[]): void {
    const ext = this.spec.btfExt;
    if (!ext) return;
    const within = (off: number): boolean => off >= f.start * INSN && off < f.end * INSN;
    for (const r of ext.funcInfo.get(f.section.name) ?? []) {
      if (within(r.insnOff))
        funcInfo.push({ insnOff: base + (r.insnOff / INSN - f.start), typeId: r.typeId });
    }
    for (const r of ext.lineInfo.get(f.section.name) ?? []) {
      if (within(r.insnOff)) lineInfo.push({ ...r, insnOff: base + (r.insnOff / INSN - f.start) });
    }
  }

  private sectionOf(sym: ElfSymbol): ElfSection {
    const s = this.elf.sections[sym.sectionIndex];
    if (!s || sym.sectionIndex === 0)
      throw new ElfError(`symbol ${sym.name || '(anon)'} is undefined (extern?)`);
    return s;
  }
}
