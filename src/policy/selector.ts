/**
 * Endpoint selectors: Kubernetes label selectors evaluated against security-identity labels.
 *
 * Keys carry a label source (`k8s:app`); a key without one means `any:` and matches that key from
 * every source. Requirements are ANDed. A `cidr:` requirement (In/Exists) matches by prefix
 * containment: `cidr:10.0.0.0/8` selects an identity labelled `cidr:10.1.0.0/16`.
 */
import {
  type LabelSet,
  LabelSource,
  type Prefix,
  parseCidrLabelKey,
  parseSelectKey,
  prefixContains,
} from '../labels/index.js';

export type Operator = 'In' | 'NotIn' | 'Exists' | 'DoesNotExist';

export interface Requirement {
  readonly source: string;
  readonly key: string;
  readonly op: Operator;
  /** Sorted, de-duplicated; empty for Exists/DoesNotExist. */
  readonly values: readonly string[];
}

export interface K8sLabelSelector {
  matchLabels?: Record<string, string> | undefined;
  matchExpressions?: { key: string; operator: string; values?: string[] | undefined }[] | undefined;
}

const OPERATORS: ReadonlySet<string> = new Set<Operator>(['In', 'NotIn', 'Exists', 'DoesNotExist']);

/** Operator lookup; case-sensitive, as the CRD's and the API server's enum. */
export function parseOperator(op: string): Operator | undefined {
  return OPERATORS.has(op) ? (op as Operator) : undefined;
}

function reqString(r: Requirement): string {
  const k = `${r.source}:${r.key}`;
  switch (r.op) {
    case 'Exists':
      return k;
    case 'DoesNotExist':
      return `!${k}`;
    case 'In':
      return r.values.length === 1 ? `${k}=${r.values[0]}` : `${k} in (${r.values.join(',')})`;
    case 'NotIn':
      return `${k} notin (${r.values.join(',')})`;
  }
}

export function makeRequirement(
  source: string,
  key: string,
  op: Operator,
  values: Iterable<string> = [],
): Requirement {
  return Object.freeze({ source, key, op, values: Object.freeze([...new Set(values)].sort()) });
}

// CIDR label keys parsed once: selectors test every CIDR identity's labels many times.
const cidrKeys = new Map<string, Prefix | undefined>();
function cidrOfLabelKey(key: string): Prefix | undefined {
  let p = cidrKeys.get(key);
  if (p === undefined && !cidrKeys.has(key)) {
    p = parseCidrLabelKey(key);
    if (cidrKeys.size > 100_000) cidrKeys.clear();
    cidrKeys.set(key, p);
  }
  return p;
}

export class Selector {
  readonly requirements: readonly Requirement[];
  /** Canonical string; equal selectors have equal keys. `{}` for the wildcard. */
  readonly key: string;
  readonly #cidr: (Prefix | undefined)[];

  private constructor(reqs: Requirement[]) {
    const byStr = new Map<string, Requirement>();
    for (const r of reqs) byStr.set(reqString(r), r);
    const sorted = [...byStr.entries()].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
    this.requirements = Object.freeze(sorted.map(([, r]) => r));
    this.key = sorted.length === 0 ? '{}' : `{${sorted.map(([s]) => s).join(', ')}}`;
    this.#cidr = this.requirements.map((r) =>
      r.source === LabelSource.Cidr && (r.op === 'Exists' || r.op === 'In')
        ? parseCidrLabelKey(r.key)
        : undefined,
    );
  }

  static readonly wildcard: Selector = new Selector([]);

  static of(reqs: Iterable<Requirement>): Selector {
    return new Selector([...reqs]);
  }

  /** Selects identities carrying exactly these labels (`{source:key: value}`); value "" = exists-with-empty. */
  static fromLabels(labels: Iterable<{ source: string; key: string; value: string }>): Selector {
    return new Selector([...labels].map((l) => makeRequirement(l.source, l.key, 'In', [l.value])));
  }

  /**
   * Converts an already-validated K8s label selector. `keyPrefixSource` forces a source on keys
   * (K8s NetworkPolicy uses `k8s`); otherwise keys are parsed (`k8s:app`, `app` → any).
   */
  static fromK8s(sel: K8sLabelSelector, keyPrefixSource?: string): Selector {
    const reqs: Requirement[] = [];
    const keyOf = (k: string): { source: string; key: string } =>
      keyPrefixSource !== undefined ? { source: keyPrefixSource, key: k } : parseSelectKey(k);
    for (const [k, v] of Object.entries(sel.matchLabels ?? {})) {
      const { source, key } = keyOf(k);
      reqs.push(makeRequirement(source, key, 'In', [v]));
    }
    for (const e of sel.matchExpressions ?? []) {
      const op = parseOperator(e.operator);
      if (op === undefined) throw new Error(`invalid operator ${e.operator}`);
      const { source, key } = keyOf(e.key);
      reqs.push(makeRequirement(source, key, op, op === 'In' || op === 'NotIn' ? (e.values ?? []) : []));
    }
    return new Selector(reqs);
  }

  get isWildcard(): boolean {
    return this.requirements.length === 0;
  }

  with(...reqs: Requirement[]): Selector {
    return new Selector([...this.requirements, ...reqs]);
  }

  without(pred: (r: Requirement) => boolean): Selector {
    return new Selector(this.requirements.filter((r) => !pred(r)));
  }

  /** True if some requirement is on `key` with one of `sources` (default: any source). */
  hasKey(key: string, sources?: readonly string[]): boolean {
    return this.requirements.some(
      (r) => r.key === key && (sources === undefined || sources.includes(r.source)),
    );
  }

  hasSource(source: string): boolean {
    return this.requirements.some((r) => r.source === source);
  }

  /** CIDR prefixes this selector selects by containment (cidr requirements). */
  cidrPrefixes(): Prefix[] {
    return this.#cidr.filter((p): p is Prefix => p !== undefined);
  }

  matches(labels: LabelSet): boolean {
    for (let i = 0; i < this.requirements.length; i++) {
      if (!this.#matchOne(this.requirements[i]!, this.#cidr[i], labels)) return false;
    }
    return true;
  }

  #matchOne(r: Requirement, cidr: Prefix | undefined, labels: LabelSet): boolean {
    if (cidr !== undefined) {
      for (const l of labels) {
        if (l.source !== LabelSource.Cidr) continue;
        const p = cidrOfLabelKey(l.key);
        if (p !== undefined && prefixContains(cidr, p))
          return r.op === 'Exists' || r.values.includes(l.value);
      }
      return false;
    }
    const l = labels.get(r.key);
    const present = l !== undefined && (r.source === LabelSource.Any || l.source === r.source);
    switch (r.op) {
      case 'Exists':
        return present;
      case 'DoesNotExist':
        return !present;
      case 'In':
        return present && r.values.includes(l!.value);
      case 'NotIn':
        return !present || !r.values.includes(l!.value);
    }
  }

  toString(): string {
    return this.key;
  }

  toJSON(): string {
    return this.key;
  }
}
