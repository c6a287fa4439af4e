/**
 * Load-time check: the object about to be loaded must have exactly the maps and struct layouts the
 * generated codecs were made from. Catches a rebuilt bpf/ without a regenerated layouts.ts (or the
 * reverse) before any map is written with a wrong layout.
 */
import type { CollectionSpec } from '../../ebpf/index.js';
import { findStruct, fingerprint, modelStruct } from '../codegen/btf-layout.js';
import { LayoutMismatchError } from '../errors.js';
import type { MapDescriptor } from './codec.js';
import { MAPS, STRUCTS } from './generated/layouts.js';

/** Differences between an object's maps/structs and the generated layouts (empty when they agree). */
export function layoutDifferences(spec: CollectionSpec): string[] {
  const diffs: string[] = [];
  for (const d of Object.values(MAPS) as MapDescriptor[]) {
    const m = spec.maps.get(d.name);
    if (!m) {
      diffs.push(`map ${d.name} is missing`);
      continue;
    }
    const cmp = (what: string, got: number, want: number): void => {
      if (got !== want) diffs.push(`map ${d.name}: ${what} ${got}, generated ${want}`);
    };
    cmp('type', m.type, d.type);
    cmp('key size', m.keySize, d.keySize);
    cmp('value size', m.valueSize, d.valueSize);
    cmp('max entries', m.maxEntries, d.maxEntries);
    cmp('flags', m.flags, d.flags);
    if (d.inner) {
      const i = m.innerMap;
      if (!i) diffs.push(`map ${d.name}: no inner map template`);
      else {
        cmp('inner type', i.type, d.inner.type);
        cmp('inner key size', i.keySize, d.inner.keySize);
        cmp('inner value size', i.valueSize, d.inner.valueSize);
        cmp('inner max entries', i.maxEntries, d.inner.maxEntries);
        cmp('inner flags', i.flags, d.inner.flags);
      }
    }
  }
  for (const name of spec.maps.keys()) {
    if (!name.startsWith('.') && !(name in MAPS)) diffs.push(`map ${name} has no generated descriptor`);
  }
  const btf = spec.btf;
  if (!btf) {
    diffs.push('object has no BTF');
    return diffs;
  }
  for (const layout of Object.values(STRUCTS)) {
    const t = findStruct(btf, layout.name);
    if (!t) continue; // the object does not use this struct
    const got = fingerprint(modelStruct(btf, t));
    if (got !== layout.fingerprint)
      diffs.push(`struct ${layout.name}: object has ${got}, generated ${layout.fingerprint}`);
  }
  return diffs;
}

/** Throws LayoutMismatchError naming every difference. */
export function checkObjectLayouts(spec: CollectionSpec, objectName: string): void {
  const diffs = layoutDifferences(spec);
  if (diffs.length) throw new LayoutMismatchError(objectName, diffs);
}
