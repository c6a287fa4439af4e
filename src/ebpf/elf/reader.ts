/**
 * A reader for the ELF64 little-endian relocatable objects clang emits for `-target bpf`.
 * Pure: bytes in, sections/symbols/relocations out; no syscalls.
 */
import { ElfError } from '../errors.js';

export const SHT_PROGBITS = 1;
export const SHT_SYMTAB = 2;
export const SHT_STRTAB = 3;
export const SHT_NOBITS = 8;
export const SHT_REL = 9;
export const SHF_EXECINSTR = 0x4;
export const STT_NOTYPE = 0;
export const STT_OBJECT = 1;
export const STT_FUNC = 2;
export const STT_SECTION = 3;
export const STB_LOCAL = 0;
export const STB_GLOBAL = 1;
export const EM_BPF = 247;

export interface ElfSection {
  index: number;
  name: string;
  type: number;
  flags: number;
  offset: number;
  size: number;
  link: number;
  info: number;
  entsize: number;
  /** Section contents (empty for SHT_NOBITS). A view into the file, not a copy. */
  data: Uint8Array;
}

export interface ElfSymbol {
  index: number;
  name: string;
  type: number;
  bind: number;
  sectionIndex: number;
  value: number;
  size: number;
}

export interface ElfRelocation {
  offset: number;
  type: number;
  symbol: ElfSymbol;
}

export class ElfFile {
  readonly sections: ElfSection[] = [];
  readonly symbols: ElfSymbol[] = [];
  /** Relocations keyed by the index of the section they apply to. */
  readonly relocations = new Map<number, ElfRelocation[]>();

  readonly bytes: Uint8Array;

  constructor(input: Uint8Array) {
    // A plain Uint8Array view (not a Buffer), so slice() copies and subarray() views.
    const bytes = new Uint8Array(input.buffer, input.byteOffset, input.byteLength);
    this.bytes = bytes;
    const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    if (bytes.length < 64 || dv.getUint32(0, false) !== 0x7f454c46) throw new ElfError('not an ELF file');
    if (bytes[4] !== 2) throw new ElfError('not a 64-bit ELF file');
    if (bytes[5] !== 1) throw new ElfError('not a little-endian ELF file');
    const machine = dv.getUint16(18, true);
    if (machine !== EM_BPF) throw new ElfError(`ELF machine ${machine} is not BPF (247)`);
    const shoff = Number(dv.getBigUint64(40, true));
    const shentsize = dv.getUint16(58, true);
    const shnum = dv.getUint16(60, true);
    const shstrndx = dv.getUint16(62, true);
    if (shoff + shnum * shentsize > bytes.length) throw new ElfError('section headers past end of file');

    const raw = [];
    for (let i = 0; i < shnum; i++) {
      const o = shoff + i * shentsize;
      raw.push({
        nameOff: dv.getUint32(o, true),
        type: dv.getUint32(o + 4, true),
        flags: Number(dv.getBigUint64(o + 8, true)),
        offset: Number(dv.getBigUint64(o + 24, true)),
        size: Number(dv.getBigUint64(o + 32, true)),
        link: dv.getUint32(o + 40, true),
        info: dv.getUint32(o + 44, true),
        entsize: Number(dv.getBigUint64(o + 56, true)),
      });
    }
    const shstr = raw[shstrndx];
    if (!shstr) throw new ElfError('missing section name table');
    const shstrData = bytes.subarray(shstr.offset, shstr.offset + shstr.size);
    raw.forEach((s, index) => {
      if (s.type !== SHT_NOBITS && s.offset + s.size > bytes.length) {
        throw new ElfError(`section ${index} extends past end of file`);
      }
      this.sections.push({
        index,
        name: cstring(shstrData, s.nameOff),
        type: s.type,
        flags: s.flags,
        offset: s.offset,
        size: s.size,
        link: s.link,
        info: s.info,
        entsize: s.entsize,
        data: s.type === SHT_NOBITS ? new Uint8Array(0) : bytes.subarray(s.offset, s.offset + s.size),
      });
    });

    const symtab = this.sections.find((s) => s.type === SHT_SYMTAB);
    if (symtab) {
      const strtab = this.sections[symtab.link];
      if (!strtab) throw new ElfError('symbol table without string table');
      const sdv = new DataView(symtab.data.buffer, symtab.data.byteOffset, symtab.data.byteLength);
      const n = symtab.size / 24;
      for (let i = 0; i < n; i++) {
        const o = i * 24;
        const info = sdv.getUint8(o + 4);
        this.symbols.push({
          index: i,
          name: cstring(strtab.data, sdv.getUint32(o, true)),
          type: info & 0xf,
          bind: info >> 4,
          sectionIndex: sdv.getUint16(o + 6, true),
          value: Number(sdv.getBigUint64(o + 8, true)),
          size: Number(sdv.getBigUint64(o + 16, true)),
        });
      }
    }

    for (const s of this.sections) {
      if (s.type !== SHT_REL) continue;
      const rdv = new DataView(s.data.buffer, s.data.byteOffset, s.data.byteLength);
      const list: ElfRelocation[] = [];
      for (let o = 0; o + 16 <= s.size; o += 16) {
        const info = rdv.getBigUint64(o + 8, true);
        const symIndex = Number(info >> 32n);
        const symbol = this.symbols[symIndex];
        if (!symbol) throw new ElfError(`relocation in ${s.name} references missing symbol ${symIndex}`);
        list.push({ offset: Number(rdv.getBigUint64(o, true)), type: Number(info & 0xffffffffn), symbol });
      }
      this.relocations.set(s.info, list);
    }
  }

  section(name: string): ElfSection | undefined {
    return this.sections.find((s) => s.name === name);
  }
}

export function cstring(data: Uint8Array, off: number): string {
  let end = off;
  while (end < data.length && data[end] !== 0) end++;
  return Buffer.from(data.buffer, data.byteOffset + off, end - off).toString('latin1');
}
