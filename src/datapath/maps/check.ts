/**
 * Load-time check: an object about to be loaded must declare its maps and struct layouts exactly as
 * the generated codecs describe them. Catches a rebuilt bpf/ without a regenerated layouts.ts (or
 * the reverse) before any map is written with a wrong layout. Works for any object: each map it
 * declares must match the one definition of that name; an object codegen knows (OBJECTS) must also
 * still declare every map, program and load-time constant it was generated with.
 */
import { basename } from 'node:path';
import type { CollectionSpec, MapSpec, VariableSpec } from '../../ebpf/index.js';
import { findStruct, fingerprint, modelStruct } from '../codegen/btf-layout.js';
import { LayoutMismatchError } from '../errors.js';
import type { Layouts, MapDescriptor } from './codec.js';
import { MAPS, OBJECTS, STRUCTS } from './generated/layouts.js';

/** The committed generated layouts. */
export const GENERATED_LAYOUTS: Layouts = { MAPS, STRUCTS, OBJECTS };

function mapDifferences(name: string, m: MapSpec, d: MapDescriptor): string[] {
  const diffs: string[] = [];
  const cmp = (what: string, got: number | string, want: number | string): void => {
    if (got !== want) diffs.push(`map ${name}: ${what} ${got}, generated ${want}`);
  };
  cmp('type', m.type, d.type);
  cmp('key size', m.keySize, d.keySize);
  cmp('value size', m.valueSize, d.valueSize);
  cmp('max entries', m.maxEntries, d.maxEntries);
  cmp('flags', m.flags, d.flags);
  cmp('pinning', m.pinning, d.pinning);
  if (d.inner) {
    const i = m.innerMap;
    if (!i) diffs.push(`map ${name}: no inner map template`);
    else {
      cmp('inner type', i.type, d.inner.type);
      cmp('inner key size', i.keySize, d.inner.keySize);
      cmp('inner value size', i.valueSize, d.inner.valueSize);
      cmp('inner max entries', i.maxEntries, d.inner.maxEntries);
      cmp('inner flags', i.flags, d.inner.flags);
    }
  }
  return diffs;
}

/**
 * Differences between an object's maps/structs and the layouts (empty when they agree). `object`
 * names the file (e.g. "bpf_lxc.o" or its path): when the layouts know it, its whole declaration is
 * compared too.
 */
export function layoutDifferences(
  spec: CollectionSpec,
  object?: string,
  layouts: Layouts = GENERATED_LAYOUTS,
): string[] {
  const diffs: string[] = [];
  const known = object !== undefined ? layouts.OBJECTS[basename(object).replace(/\.o$/, '')] : undefined;
  const declared = [...spec.maps.keys()].filter((n) => !n.startsWith('.'));
  for (const name of [...new Set([...(known?.maps ?? []), ...declared])].sort()) {
    const m = spec.maps.get(name);
    const d = layouts.MAPS[name];
    if (!m) diffs.push(`map ${name} is missing`);
    else if (!d) diffs.push(`map ${name} has no generated descriptor`);
    else diffs.push(...mapDifferences(name, m, d));
  }
  if (known) {
    for (const p of Object.keys(known.programs))
      if (!spec.programs.has(p)) diffs.push(`program ${p} is missing`);
    const constants = new Map(settingVariables(spec).map((v) => [v.name, v.size]));
    for (const [c, size] of Object.entries(known.constants)) {
      const got = constants.get(c);
      if (got === undefined) diffs.push(`constant ${c} is missing`);
      else if (got !== size) diffs.push(`constant ${c}: ${got} bytes, generated ${size}`);
    }
    for (const c of constants.keys())
      if (!(c in known.constants)) diffs.push(`constant ${c} has no generated descriptor`);
  }
  const btf = spec.btf;
  if (!btf) {
    diffs.push('object has no BTF');
    return diffs;
  }
  for (const layout of Object.values(layouts.STRUCTS)) {
    const t = findStruct(btf, layout.name);
    if (!t) continue; // the object does not use this struct
    const got = fingerprint(modelStruct(btf, t));
    if (got !== layout.fingerprint)
      diffs.push(`struct ${layout.name}: object has ${got}, generated ${layout.fingerprint}`);
  }
  return diffs;
}

/** Throws LayoutMismatchError naming every difference. */
export function checkObjectLayouts(
  spec: CollectionSpec,
  objectName: string,
  layouts: Layouts = GENERATED_LAYOUTS,
): void {
  const diffs = layoutDifferences(spec, objectName, layouts);
  if (diffs.length) throw new LayoutMismatchError(objectName, diffs);
}

/**
 * The variables a loader sets per load: the node's constants (frozen `.rodata`) and the settings in
 * named data sections (`.data.<scope>`, written into the loaded copy's map, e.g. config/endpoint.h).
 */
export function settingVariables(spec: CollectionSpec): VariableSpec[] {
  return [...spec.variables.values()].filter(
    (v) => (v.readOnly && v.map === '.rodata') || v.map.startsWith('.data.'),
  );
}
