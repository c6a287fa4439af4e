/**
 * Security labels: `source:key=value`.
 *
 * A label's source says where it came from (`k8s`, `reserved`, `cidr`, ...). In a *selector*, a key
 * without a source means `any:` (matches the key from every source); in a plain label it means
 * `unspec:`. As upstream, `reserved.X` (dot instead of colon) is read as `reserved:X`.
 */
import { CiliumTsError } from '../common/errors.js';

export const LabelSource = {
  Any: 'any',
  Unspec: 'unspec',
  K8s: 'k8s',
  Reserved: 'reserved',
  Cidr: 'cidr',
  Container: 'container',
  Kvstore: 'kvstore',
  Fqdn: 'fqdn',
  CiliumGenerated: 'cilium-generated',
  Node: 'node',
} as const;
export type LabelSourceName = string;

export interface Label {
  readonly source: string;
  readonly key: string;
  readonly value: string;
}

export class LabelParseError extends CiliumTsError {
  override readonly name = 'LabelParseError';
  override readonly code = 'invalid-argument';
  constructor(
    readonly input: string,
    reason: string,
  ) {
    super(`invalid label ${JSON.stringify(input)}: ${reason}`);
  }
}

export function makeLabel(source: string, key: string, value = ''): Label {
  return Object.freeze({ source, key, value });
}

/** Splits an optional `source:` prefix off a key. `reserved.X` counts as `reserved:X`. */
export function splitSource(str: string, defaultSource: string): { source: string; rest: string } {
  const colon = str.indexOf(':');
  if (colon > 0) {
    return { source: str.slice(0, colon), rest: str.slice(colon + 1) };
  }
  if (colon === 0) return { source: defaultSource, rest: str.slice(1) };
  if (str.startsWith('reserved.'))
    return { source: LabelSource.Reserved, rest: str.slice('reserved.'.length) };
  return { source: defaultSource, rest: str };
}

/** Parses `source:key=value`, `source:key`, `key=value` or `key` (source defaults to `unspec`). */
export function parseLabel(str: string, defaultSource: string = LabelSource.Unspec): Label {
  if (str.length === 0) throw new LabelParseError(str, 'empty label');
  const { source, rest } = splitSource(str, defaultSource);
  const eq = rest.indexOf('=');
  const key = eq >= 0 ? rest.slice(0, eq) : rest;
  const value = eq >= 0 ? rest.slice(eq + 1) : '';
  if (key.length === 0) throw new LabelParseError(str, 'empty key');
  if (source.length === 0) throw new LabelParseError(str, 'empty source');
  return makeLabel(source, key, value);
}

/** Parses a selector label: without a source the label matches any source (`any:`). */
export function parseSelectLabel(str: string): Label {
  return parseLabel(str, LabelSource.Any);
}

/** Parses only the key part of a selector key (`k8s:app`, `app`, `reserved.init`). */
export function parseSelectKey(str: string): { source: string; key: string } {
  const { source, rest } = splitSource(str, LabelSource.Any);
  return { source, key: rest };
}

export function formatLabel(l: Label): string {
  return l.value === '' ? `${l.source}:${l.key}` : `${l.source}:${l.key}=${l.value}`;
}

export function labelsEqual(a: Label, b: Label): boolean {
  return a.source === b.source && a.key === b.key && a.value === b.value;
}

function compareLabels(a: Label, b: Label): number {
  if (a.key !== b.key) return a.key < b.key ? -1 : 1;
  if (a.source !== b.source) return a.source < b.source ? -1 : 1;
  if (a.value !== b.value) return a.value < b.value ? -1 : 1;
  return 0;
}

/**
 * An immutable, sorted set of labels, at most one label per key (as upstream, where labels are a map
 * keyed by key). The canonical string (`k8s:a=1;k8s:b=2`) identifies the set: equal sets have equal
 * strings, which is what identity allocation keys on.
 */
export class LabelSet implements Iterable<Label> {
  readonly #labels: readonly Label[];
  readonly #byKey: ReadonlyMap<string, Label>;
  #str: string | undefined;
  #strs: readonly string[] | undefined;

  private constructor(labels: Label[]) {
    const byKey = new Map<string, Label>();
    for (const l of labels) byKey.set(l.key, l);
    this.#labels = Object.freeze([...byKey.values()].sort(compareLabels));
    this.#byKey = byKey;
  }

  static readonly empty: LabelSet = new LabelSet([]);

  /** Later labels with the same key replace earlier ones. */
  static of(labels: Iterable<Label>): LabelSet {
    return new LabelSet([...labels]);
  }

  /** Parses labels written as strings (`k8s:app=web`); default source `unspec`. */
  static parse(strs: Iterable<string>, defaultSource: string = LabelSource.Unspec): LabelSet {
    return new LabelSet([...strs].map((s) => parseLabel(s, defaultSource)));
  }

  /** Parses a canonical string as produced by `toString()`. */
  static fromString(str: string): LabelSet {
    if (str === '') return LabelSet.empty;
    return LabelSet.parse(str.split(';').filter((s) => s.length > 0));
  }

  /** Builds labels of one source from a key/value map (e.g. pod labels with source `k8s`). */
  static fromMap(map: Readonly<Record<string, string>>, source: string): LabelSet {
    return new LabelSet(Object.entries(map).map(([k, v]) => makeLabel(source, k, v)));
  }

  get size(): number {
    return this.#labels.length;
  }

  [Symbol.iterator](): Iterator<Label> {
    return this.#labels[Symbol.iterator]();
  }

  toArray(): Label[] {
    return [...this.#labels];
  }

  get(key: string): Label | undefined {
    return this.#byKey.get(key);
  }

  has(key: string, source?: string): boolean {
    const l = this.#byKey.get(key);
    return l !== undefined && (source === undefined || source === LabelSource.Any || l.source === source);
  }

  hasSource(source: string): boolean {
    return this.#labels.some((l) => l.source === source);
  }

  /** Labels of this set plus `other`; `other` wins on key conflicts. */
  merge(other: Iterable<Label>): LabelSet {
    return new LabelSet([...this.#labels, ...other]);
  }

  filter(pred: (l: Label) => boolean): LabelSet {
    return new LabelSet(this.#labels.filter(pred));
  }

  equals(other: LabelSet): boolean {
    return this.toString() === other.toString();
  }

  /** Canonical form: labels sorted by key, formatted `source:key=value`, joined with `;`. */
  toString(): string {
    this.#str ??= this.#labels.map(formatLabel).join(';');
    return this.#str;
  }

  toStrings(): string[] {
    return this.#labels.map(formatLabel);
  }

  /** toStrings(), made once and shared (frozen): for readers that keep or compare it by reference. */
  strings(): readonly string[] {
    this.#strs ??= Object.freeze(this.toStrings());
    return this.#strs;
  }

  toJSON(): string[] {
    return this.toStrings();
  }
}
