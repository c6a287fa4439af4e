/** Opening the node's pinned maps by their generated descriptors, creating them when absent. */
import { join } from 'node:path';
import { BpfMap, KeyExistsError, KeyNotFoundError, type MapSpec } from '../../ebpf/index.js';
import { MapNotPinnedError } from '../errors.js';
import type { MapDescriptor } from './codec.js';

/** The MapSpec a descriptor stands for (inner template included). */
export function mapSpecOf(d: MapDescriptor): MapSpec {
  const s: MapSpec = {
    name: d.name,
    type: d.type as MapSpec['type'],
    keySize: d.keySize,
    valueSize: d.valueSize,
    maxEntries: d.maxEntries,
    flags: d.flags,
    pinning: d.pinning,
  };
  if (d.inner) {
    s.innerMap = {
      name: `${d.name}.inner`,
      type: d.inner.type as MapSpec['type'],
      keySize: d.inner.keySize,
      valueSize: d.inner.valueSize,
      maxEntries: d.inner.maxEntries,
      flags: d.inner.flags,
      pinning: 'none',
    };
  }
  return s;
}

export interface OpenMapOptions {
  /** Create and pin the map when it is not pinned yet (default true). */
  create?: boolean;
  /** BTF of the key and value to create it with (socket local storage needs them). */
  btf?: { fd: number; keyType: number; valueType: number };
}

/**
 * Opens `<pinDir>/<name>` (checked against the descriptor) or creates and pins it. Safe against a
 * concurrent creator: losing the pin race re-opens the winner's map.
 */
export function openPinnedMap(pinDir: string, d: MapDescriptor, opts: OpenMapOptions = {}): BpfMap {
  const path = join(pinDir, d.name);
  const spec = mapSpecOf(d);
  try {
    return BpfMap.openPinned(path, spec);
  } catch (err) {
    if (!(err instanceof KeyNotFoundError)) throw err;
    if (opts.create === false) throw new MapNotPinnedError(path);
  }
  let inner: BpfMap | undefined;
  if (spec.innerMap) inner = BpfMap.create(spec.innerMap);
  let m: BpfMap;
  try {
    m = BpfMap.create(spec, {
      ...(inner ? { innerMapFd: inner.fd.value } : {}),
      ...(opts.btf ? { btf: opts.btf } : {}),
    });
  } finally {
    inner?.close();
  }
  try {
    m.pin(path);
    return m;
  } catch (err) {
    m.close();
    if (err instanceof KeyExistsError) return BpfMap.openPinned(path, spec);
    throw err;
  }
}
