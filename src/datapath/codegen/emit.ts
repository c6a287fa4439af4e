/**
 * Emits src/datapath/maps/generated/layouts.ts: one codec per struct of bpf/lib/defs.h (from the
 * ABI object's BTF), the descriptors of every map the datapath objects declare (one definition per
 * name, shared by every object that uses it), what each object declares (programs, maps, load-time
 * constants), and the integer `#define`s of the datapath headers. Output is deterministic (same
 * inputs, same bytes), so CI can regenerate and compare.
 */
import { readFileSync } from 'node:fs';
import { basename } from 'node:path';
import { CollectionSpec, type MapSpec, MapType } from '../../ebpf/index.js';
import { settingVariables } from '../maps/check.js';
import type { Layouts, MapDescriptor, ObjectDescriptor } from '../maps/codec.js';
import {
  abiStructs,
  camelCase,
  type FieldModel,
  fingerprint,
  LayoutError,
  pascalCase,
  type StructModel,
} from './btf-layout.js';

export interface GenerateInputs {
  /** The ABI object (bpf/abi.c compiled): its BTF holds every defs.h struct. */
  abiObject: string;
  /** The datapath objects whose `.maps`, programs and constants are described. */
  objects: string[];
  /** Headers whose `#define NAME <integer>` lines become constants. */
  headers: string[];
  /** How the inputs are named in the generated header (repository-relative). */
  displayNames?: { abiObject: string; objects: string[]; headers: string[] };
}

/** Everything the generated file says, before it is printed. */
export interface LayoutModel {
  structs: StructModel[];
  /** Every map of every object, by name (sorted). */
  maps: MapDescriptor[];
  /** Object key (file name without .o) → what it declares. */
  objects: Record<string, ObjectDescriptor>;
  /** Integer #defines per header, duplicates (same value) kept only at their first header. */
  defs: { header: string; defs: [string, number][] }[];
  names: { abiObject: string; objects: string[]; headers: string[] };
}

const MAP_TYPE_NAMES = new Map<number, string>(Object.entries(MapType).map(([k, v]) => [v, k]));

function optionalInInit(f: FieldModel): boolean {
  return f.union !== undefined || /^(pad|reserved)|_unused$/.test(f.cName);
}

function tsType(f: FieldModel, init: boolean): string {
  switch (f.kind) {
    case 'int':
      return f.size === 8 ? (init ? 'bigint | number' : 'bigint') : 'number';
    case 'bytes':
      return 'Uint8Array';
    case 'intArray':
      return f.elemSize === 8 ? (init ? '(bigint | number)[]' : 'bigint[]') : 'number[]';
    case 'struct':
      return pascalCase(f.struct) + (init ? 'Init' : '');
  }
}

function accessor(size: number, signed: boolean): string {
  if (size === 8) return signed ? 'BigInt64' : 'BigUint64';
  return `${signed ? 'Int' : 'Uint'}${size * 8}`;
}

function docComment(f: FieldModel): string {
  const parts = [`${f.cName} @${f.offset}, ${f.size} B`];
  if ((f.kind === 'int' || f.kind === 'intArray') && f.bigEndian) parts.push('big-endian');
  if (f.union) parts.push(`union ${f.union}`);
  return `  /** ${parts.join(', ')} */`;
}

function emitStruct(m: StructModel): string {
  const T = pascalCase(m.name);
  const v = camelCase(m.name);
  const L: string[] = [];
  L.push(`/** struct ${m.name} (${m.size} bytes) */`);
  L.push(`export interface ${T} {`);
  for (const f of m.fields) L.push(docComment(f), `  ${f.name}: ${tsType(f, false)};`);
  L.push('}');
  L.push('');
  L.push(`/** What ${v}.encode accepts: padding and union members may be left out (zero). */`);
  L.push(`export interface ${T}Init {`);
  for (const f of m.fields) L.push(`  ${f.name}${optionalInInit(f) ? '?' : ''}: ${tsType(f, true)};`);
  L.push('}');
  L.push('');
  L.push(`export const ${v}: StructLayout<${T}, ${T}Init> = {`);
  L.push(`  name: '${m.name}',`);
  L.push(`  size: ${m.size},`);
  L.push(`  fingerprint: '${fingerprint(m)}',`);
  L.push('  fields: {');
  for (const f of m.fields) {
    const be = (f.kind === 'int' || f.kind === 'intArray') && f.bigEndian;
    const u =
      (f.union ? `, union: '${f.union}'` : '') + (f.kind === 'struct' ? `, struct: '${f.struct}'` : '');
    L.push(
      `    ${f.name}: { cName: '${f.cName}', offset: ${f.offset}, size: ${f.size}, kind: '${f.kind}', bigEndian: ${be}${u} },`,
    );
  }
  L.push('  },');
  L.push(`  encode(value: ${T}Init): Uint8Array {`);
  L.push(`    const out = new Uint8Array(${m.size});`);
  L.push(`    ${v}.encodeInto(value, out, 0);`);
  L.push('    return out;');
  L.push('  },');
  L.push(`  encodeInto(value: ${T}Init, out: Uint8Array, o: number): void {`);
  L.push(`    out.fill(0, o, o + ${m.size});`);
  if (m.fields.some((f) => f.kind === 'int' || f.kind === 'intArray')) L.push('    const d = view(out);');
  for (const f of m.fields) {
    const at = `o + ${f.offset}`;
    const val = `value.${f.name}`;
    const opt = optionalInInit(f);
    let stmt: string;
    switch (f.kind) {
      case 'int': {
        const acc = accessor(f.size, f.signed);
        const x = f.size === 8 ? `BigInt(${val})` : val;
        stmt =
          f.size === 1
            ? `d.set${acc}(${at}, ${x});`
            : `d.set${acc}(${at}, ${x}, ${f.bigEndian ? 'false' : 'true'});`;
        break;
      }
      case 'bytes':
        stmt = `putBytes(out, ${at}, ${f.size}, ${val}, '${m.name}.${f.cName}');`;
        break;
      case 'intArray': {
        const acc = accessor(f.elemSize, f.signed);
        const x = f.elemSize === 8 ? 'BigInt(e)' : 'e';
        stmt = `${val}.slice(0, ${f.count}).forEach((e, i) => d.set${acc}(${at} + i * ${f.elemSize}, ${x}, ${!f.bigEndian}));`;
        break;
      }
      case 'struct':
        stmt = `${camelCase(f.struct)}.encodeInto(${val}, out, ${at});`;
        break;
    }
    L.push(opt ? `    if (${val} !== undefined) ${stmt}` : `    ${stmt}`);
  }
  L.push('  },');
  L.push(`  decode(b: Uint8Array, o = 0): ${T} {`);
  L.push(`    if (b.length < o + ${m.size}) throw shortBuffer('${m.name}', ${m.size}, b.length - o);`);
  if (m.fields.some((f) => f.kind === 'int' || f.kind === 'intArray')) L.push('    const d = view(b);');
  L.push('    return {');
  for (const f of m.fields) {
    const at = `o + ${f.offset}`;
    let expr: string;
    switch (f.kind) {
      case 'int': {
        const acc = accessor(f.size, f.signed);
        expr = f.size === 1 ? `d.get${acc}(${at})` : `d.get${acc}(${at}, ${f.bigEndian ? 'false' : 'true'})`;
        break;
      }
      case 'bytes':
        expr = `b.slice(${at}, ${at} + ${f.size})`;
        break;
      case 'intArray': {
        const acc = accessor(f.elemSize, f.signed);
        expr = `Array.from({ length: ${f.count} }, (_, i) => d.get${acc}(${at} + i * ${f.elemSize}, ${!f.bigEndian}))`;
        break;
      }
      case 'struct':
        expr = `${camelCase(f.struct)}.decode(b, ${at})`;
        break;
    }
    L.push(`      ${f.name}: ${expr},`);
  }
  L.push('    };');
  L.push('  },');
  L.push('};');
  return L.join('\n');
}

function mapDescriptor(ms: MapSpec, spec: CollectionSpec, structNames: Set<string>): MapDescriptor {
  const btf = spec.btf;
  const structOf = (id: number | undefined): string | undefined => {
    if (id === undefined || !btf) return undefined;
    const t = btf.resolve(id);
    return t.kind === 4 && structNames.has(t.name) ? t.name : undefined;
  };
  const typeName = MAP_TYPE_NAMES.get(ms.type);
  if (!typeName) throw new LayoutError(`map ${ms.name}: unknown map type ${ms.type}`);
  const k = structOf(ms.keyType);
  const v = structOf(ms.valueType);
  const i = ms.innerMap;
  return {
    name: ms.name,
    type: ms.type,
    typeName,
    keySize: ms.keySize,
    valueSize: ms.valueSize,
    maxEntries: ms.maxEntries,
    flags: ms.flags,
    pinning: ms.pinning,
    ...(k ? { key: k } : {}),
    ...(v ? { value: v } : {}),
    ...(i
      ? {
          inner: {
            type: i.type,
            typeName: MAP_TYPE_NAMES.get(i.type) ?? String(i.type),
            keySize: i.keySize,
            valueSize: i.valueSize,
            maxEntries: i.maxEntries,
            flags: i.flags,
          },
        }
      : {}),
  };
}

function printMap(d: MapDescriptor): string {
  const parts = [
    `name: '${d.name}'`,
    `type: ${d.type}`,
    `typeName: '${d.typeName}'`,
    `keySize: ${d.keySize}`,
    `valueSize: ${d.valueSize}`,
    `maxEntries: ${d.maxEntries}`,
    `flags: ${d.flags}`,
    `pinning: '${d.pinning}'`,
  ];
  if (d.key) parts.push(`key: '${d.key}'`);
  if (d.value) parts.push(`value: '${d.value}'`);
  if (d.inner) {
    const i = d.inner;
    parts.push(
      `inner: { type: ${i.type}, typeName: '${i.typeName}', keySize: ${i.keySize}, valueSize: ${i.valueSize}, maxEntries: ${i.maxEntries}, flags: ${i.flags} }`,
    );
  }
  return `  ${d.name}: {\n${parts.map((p) => `    ${p},`).join('\n')}\n  },`;
}

function printObject(key: string, o: ObjectDescriptor): string {
  const L = [`  ${key}: {`, `    file: '${o.file}',`, '    programs: {'];
  for (const [p, sec] of Object.entries(o.programs)) L.push(`      ${p}: '${sec}',`);
  L.push('    },', '    maps: [');
  for (const m of o.maps) L.push(`      '${m}',`);
  L.push('    ],', '    constants: {');
  for (const [c, size] of Object.entries(o.constants)) L.push(`      ${c}: ${size},`);
  L.push('    },', '  },');
  return L.join('\n');
}

/** The object key of a file: its name without directory and `.o`. */
export function objectKey(file: string): string {
  return basename(file).replace(/\.o$/, '');
}

/** Programs, maps and load-time constants of one parsed object. */
function describeObject(file: string, spec: CollectionSpec): ObjectDescriptor {
  const programs: Record<string, string> = {};
  for (const p of [...spec.programs.values()].sort((a, b) => a.name.localeCompare(b.name)))
    programs[p.name] = p.section;
  const constants: Record<string, number> = {};
  const ro = settingVariables(spec).sort((a, b) => a.map.localeCompare(b.map) || a.offset - b.offset);
  for (const v of ro) constants[v.name] = v.size;
  const maps = [...spec.maps.keys()].filter((n) => !n.startsWith('.')).sort();
  return { file: basename(file), programs, maps, constants };
}

/** `#define NAME <integer>` lines (decimal or hex, optional parentheses), in file order. */
export function parseDefines(text: string): [string, number][] {
  const out: [string, number][] = [];
  const re = /^#define\s+([A-Z][A-Z0-9_]*)\s+\(?\s*(0x[0-9a-fA-F]+|\d+)[uUlL]*\s*\)?\s*(?:\/\*.*\*\/\s*)?$/gm;
  for (const m of text.matchAll(re)) out.push([m[1]!, Number(m[2]!)]);
  return out;
}

/** Reads the objects and headers into the model the generated file is printed from. */
export function buildLayoutModel(inputs: GenerateInputs): LayoutModel {
  const abi = CollectionSpec.fromFile(inputs.abiObject);
  if (!abi.btf) throw new LayoutError(`${inputs.abiObject} has no BTF (compile with -g)`);
  const structs = abiStructs(abi.btf);
  const structNames = new Set(structs.map((s) => s.name));
  const names = inputs.displayNames ?? {
    abiObject: inputs.abiObject,
    objects: inputs.objects,
    headers: inputs.headers,
  };

  const maps = new Map<string, { d: MapDescriptor; from: string }>();
  const objects: Record<string, ObjectDescriptor> = {};
  for (const [i, file] of inputs.objects.entries()) {
    const spec = CollectionSpec.fromFile(file);
    const key = objectKey(file);
    if (objects[key]) throw new LayoutError(`two objects are named ${key}`);
    objects[key] = describeObject(file, spec);
    for (const ms of spec.maps.values()) {
      if (ms.name.startsWith('.')) continue;
      const d = mapDescriptor(ms, spec, structNames);
      const prev = maps.get(d.name);
      if (prev && JSON.stringify(prev.d) !== JSON.stringify(d))
        throw new LayoutError(
          `map ${d.name} is declared differently by ${prev.from} and ${names.objects[i]} (one name, one map: a node pins it once)`,
        );
      if (!prev) maps.set(d.name, { d, from: names.objects[i]! });
    }
  }

  const defs: LayoutModel['defs'] = [];
  const seen = new Map<string, number>();
  for (const [i, h] of inputs.headers.entries()) {
    const own: [string, number][] = [];
    for (const [n, val] of parseDefines(readFileSync(h, 'utf8'))) {
      const prev = seen.get(n);
      if (prev !== undefined) {
        if (prev !== val) throw new LayoutError(`#define ${n} has two values (${prev}, ${val})`);
        continue;
      }
      seen.set(n, val);
      own.push([n, val]);
    }
    defs.push({ header: names.headers[i]!, defs: own });
  }

  return {
    structs,
    maps: [...maps.values()].map((m) => m.d).sort((a, b) => a.name.localeCompare(b.name)),
    objects,
    defs,
    names,
  };
}

/** The model in the shape the load-time check takes (what the generated module exports). */
export function layoutsOf(model: LayoutModel): Layouts {
  return {
    MAPS: Object.fromEntries(model.maps.map((m) => [m.name, m])),
    STRUCTS: Object.fromEntries(
      model.structs.map((s) => [s.name, { name: s.name, fingerprint: fingerprint(s) }]),
    ),
    OBJECTS: model.objects,
  };
}

export function emitLayouts(model: LayoutModel): string {
  const { structs, names } = model;
  const out: string[] = [];
  out.push('/*');
  out.push(' * GENERATED FILE, DO NOT EDIT. Regenerate with `node dist/scripts/codegen-datapath.js`;');
  out.push(' * CI runs it with --check.');
  out.push(` * Structs: BTF of ${names.abiObject}.`);
  out.push(` * Maps, programs, constants: ${names.objects.join(', ')}.`);
  out.push(` * #defines: ${names.headers.join(', ')}.`);
  out.push(' */');
  out.push(
    "import { type MapDescriptor, type ObjectDescriptor, putBytes, shortBuffer, type StructLayout, view } from '../codec.js';",
  );
  out.push('');
  for (const s of structs) {
    out.push(emitStruct(s));
    out.push('');
  }
  out.push('/** Every struct codec by C name. */');
  out.push('export const STRUCTS = {');
  for (const s of structs) out.push(`  ${s.name}: ${camelCase(s.name)},`);
  out.push('} as const;');
  out.push('');
  out.push('/** Every map of the datapath objects (section .maps), by name: one definition per name. */');
  out.push('export const MAPS = {');
  for (const m of model.maps) out.push(printMap(m));
  out.push('} as const satisfies Record<string, MapDescriptor>;');
  out.push('');
  out.push(
    '/** The datapath objects by name: their programs (→ section), maps and load-time constants (→ size). */',
  );
  out.push('export const OBJECTS = {');
  for (const [k, o] of Object.entries(model.objects)) out.push(printObject(k, o));
  out.push('} as const satisfies Record<string, ObjectDescriptor>;');
  out.push('');
  out.push('/** Integer #defines of the datapath headers. */');
  out.push('export const DEFS = {');
  for (const { header, defs } of model.defs) {
    if (defs.length) out.push(`  // ${header}`);
    for (const [n, val] of defs) out.push(`  ${n}: ${val},`);
  }
  out.push('} as const;');
  out.push('');
  return out.join('\n');
}

export function generateLayouts(inputs: GenerateInputs): string {
  return emitLayouts(buildLayoutModel(inputs));
}
