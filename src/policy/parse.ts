/**
 * Parsing and validation of policy documents (already-parsed YAML/JSON objects) into the internal
 * rule model. Every error names the document and the field path, e.g.
 *   `document 0 (CiliumNetworkPolicy default/rule1): spec.ingress[0].toPorts[0].ports[0].port: port 70000 out of range 0-65535`
 * A multi-document input is all-or-nothing: `parsePolicies` throws if any document is invalid.
 *
 * Namespace scoping (as upstream):
 *  - CiliumNetworkPolicy in namespace N: the endpointSelector always gets
 *    `k8s:io.kubernetes.pod.namespace=N` (a policy cannot select pods of another namespace); each
 *    from/toEndpoints and from/toRequires selector gets it too unless the selector already has a
 *    requirement on the namespace key (`k8s:` or `any:` source) or on a `reserved:` label.
 *  - CiliumClusterwideNetworkPolicy: the endpointSelector is not scoped; peer endpoint selectors that
 *    do not mention the namespace get `k8s:io.kubernetes.pod.namespace` *Exists*, so `{}` means
 *    "every Cilium-managed pod" rather than "every identity" (skipped when the rule selects
 *    `reserved:init` endpoints, which have no namespace label).
 *  - NetworkPolicy: label keys get the `k8s:` source; podSelector peers are scoped to the policy's
 *    namespace, namespaceSelector keys become `k8s:io.cilium.k8s.namespace.labels.<key>` (ANDed
 *    with the podSelector when both are in one peer).
 * `key: null` fields are dropped first, as the Kubernetes API server prunes them.
 *
 * Validation follows the CRD schemas and the API server (unknown fields are errors, enums are
 * case-sensitive, names and label values are checked). A field the datapath cannot enforce (L7
 * rules, TLS, listeners, authentication, toServices, groups, CIDR groups, host policies,
 * entities whose identity nothing carries here) is refused with an error naming it, never accepted
 * and ignored: a policy is never wider than written. docs/policy.md lists every field.
 */
import type { z } from 'zod';
import { CiliumTsError } from '../common/errors.js';
import {
  dns1123LabelErrors,
  dns1123SubdomainErrors,
  labelKeyErrors,
  labelValueErrors,
  portNameErrors,
} from '../k8s/names.js';
import {
  cidrLabelKey,
  DEFAULT_CLUSTER_NAME,
  formatPrefix,
  K8sLabelKey,
  type Label,
  LabelSource,
  makeLabel,
  type Prefix,
  parsePrefix,
  parseSelectKey,
  prefixContains,
  ReservedName,
  subtractPrefixes,
} from '../labels/index.js';
import { fqdnSelector, selectorPattern } from './fqdn.js';
import { kafkaRuleProblems } from './kafka.js';
import { ENFORCED_L7, type HttpHeaderMatch, type HttpRule, type L7Rules } from './l7.js';
import { icmpType, L4_PROTO_NAMES, type L4ProtoName } from './ports.js';
import {
  type CidrRuleInput,
  type CiliumRuleInput,
  ciliumPolicySchema,
  type IcmpRuleInput,
  type K8sPeerInput,
  type K8sPortInput,
  k8sNetworkPolicySchema,
  type LabelSelectorInput,
  type PortRuleInput,
} from './schema.js';
import { makeRequirement, parseOperator, Selector } from './selector.js';
import type {
  IcmpField,
  L4Port,
  ParsedPolicy,
  Peer,
  PeerRule,
  PolicyKind,
  PolicyRef,
  PolicyRule,
  PortRule,
  Section,
} from './types.js';
import { SECTIONS } from './types.js';

interface FqdnSelector {
  matchName?: string | undefined;
  matchPattern?: string | undefined;
}

export interface ParseOptions {
  /** Cluster name used by the `cluster` entity; default "default". */
  clusterName?: string;
  /** Namespace for namespaced policies without metadata.namespace; default "default". */
  defaultNamespace?: string;
}

export interface ValidationIssue {
  readonly document: number;
  readonly kind?: string;
  readonly name?: string;
  /** Field path, e.g. `spec.ingress[0].toPorts[0].ports[0].port` ('' = the document itself). */
  readonly path: string;
  readonly message: string;
}

export function formatIssue(i: ValidationIssue): string {
  const what = i.kind !== undefined && i.name !== undefined ? ` (${i.kind} ${i.name})` : '';
  return `document ${i.document}${what}: ${i.path === '' ? '' : `${i.path}: `}${i.message}`;
}

export class PolicyValidationError extends CiliumTsError {
  override readonly name = 'PolicyValidationError';
  override readonly code = 'invalid-argument';
  constructor(readonly issues: readonly ValidationIssue[]) {
    super(issues.map(formatIssue).join('\n'), { details: issues });
  }
}

const KINDS: Record<string, string> = {
  CiliumNetworkPolicy: 'cilium.io/v2',
  CiliumClusterwideNetworkPolicy: 'cilium.io/v2',
  NetworkPolicy: 'networking.k8s.io/v1',
};

type Path = readonly (string | number)[];

export function formatPath(path: Path): string {
  let out = '';
  for (const seg of path) {
    if (typeof seg === 'number') out += `[${seg}]`;
    else out += out === '' ? seg : `.${seg}`;
  }
  return out;
}

/** Removes `key: null` entries (recursively), as the Kubernetes API server prunes them. */
export function pruneNulls(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(pruneNulls);
  if (v !== null && typeof v === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v as Record<string, unknown>)) if (x !== null) out[k] = pruneNulls(x);
    return out;
  }
  return v;
}

class Ctx {
  readonly issues: ValidationIssue[] = [];
  kind: string | undefined;
  name: string | undefined;
  constructor(readonly document: number) {}
  err(path: Path, message: string): void {
    const issue: { -readonly [K in keyof ValidationIssue]: ValidationIssue[K] } = {
      document: this.document,
      path: formatPath(path),
      message,
    };
    if (this.kind !== undefined) issue.kind = this.kind;
    if (this.name !== undefined) issue.name = this.name;
    this.issues.push(issue);
  }
  zod(error: z.ZodError): void {
    for (const i of error.issues) {
      const p = i.path.filter((x): x is string | number => typeof x !== 'symbol');
      if (i.code === 'unrecognized_keys') {
        for (const k of i.keys) this.err([...p, k], `unknown field "${k}"`);
      } else if (i.code === 'invalid_value' && p.length === 1 && (p[0] === 'apiVersion' || p[0] === 'kind')) {
        this.err(p, i.message);
      } else {
        this.err(p, i.message);
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Value checks shared by the kinds

/** The CRD's pattern for a CiliumNetworkPolicy port name (an IANA service name, either case). */
const CILIUM_PORT_NAME_RE = /^([a-zA-Z0-9]-?)*[a-zA-Z](-?[a-zA-Z0-9])*$/;

/**
 * A port number or name. NetworkPolicy names must be IANA service names (lowercase), as the API
 * server requires; CiliumNetworkPolicy names may use either case and are lower-cased, as upstream
 * does. Either way the result matches container port names (lowercase by validation) exactly.
 */
function parsePortValue(
  v: string | number | undefined,
  path: Path,
  ctx: Ctx,
  k8s: boolean,
): { port?: number; name?: string } | undefined {
  if (v === undefined) return { port: 0 };
  const min = k8s ? 1 : 0;
  if (typeof v === 'number' || /^[0-9]+$/.test(v)) {
    const n = Number(v);
    if (!Number.isInteger(n) || n < min || n > 65535) {
      ctx.err(path, `port ${v} out of range ${min}-65535`);
      return undefined;
    }
    return { port: n };
  }
  if (k8s) {
    const problems = portNameErrors(v);
    if (problems.length > 0) {
      ctx.err(path, `invalid port name ${JSON.stringify(v)}: ${problems.join('; ')}`);
      return undefined;
    }
    return { name: v };
  }
  if (v.length > 15 || !CILIUM_PORT_NAME_RE.test(v)) {
    ctx.err(path, `invalid port ${JSON.stringify(v)}: not a number in 0-65535 nor a port name`);
    return undefined;
  }
  return { name: v.toLowerCase() };
}

function parseEndPort(
  end: number | undefined,
  p: { port?: number; name?: string },
  path: Path,
  ctx: Ctx,
): number | undefined | null {
  if (end === undefined || end === 0) return undefined;
  if (!Number.isInteger(end) || end < 0 || end > 65535) {
    ctx.err(path, `endPort ${end} out of range 0-65535`);
    return null;
  }
  if (p.name !== undefined) {
    ctx.err(path, 'endPort cannot be used with a named port');
    return null;
  }
  if (p.port !== undefined && end < p.port) {
    ctx.err(path, `endPort ${end} is lower than port ${p.port}`);
    return null;
  }
  return end;
}

function parseCidr(s: string, path: Path, ctx: Ctx): Prefix | undefined {
  try {
    return parsePrefix(s);
  } catch (e) {
    ctx.err(path, (e as Error).message);
    return undefined;
  }
}

function checkRegex(s: string | undefined, path: Path, ctx: Ctx): void {
  if (s === undefined) return;
  try {
    new RegExp(s);
  } catch {
    ctx.err(path, `invalid regular expression ${JSON.stringify(s)}`);
  }
}

const DNS_NAME_RE = /^([-a-zA-Z0-9_]+[.]?)+$/;
const DNS_PATTERN_RE = /^([-a-zA-Z0-9_*]+[.]?)+$/;

/** FQDN selectors checked as the CRD checks them. */
function checkFqdnSelectors(list: readonly FqdnSelector[] | undefined, path: Path, ctx: Ctx): void {
  (list ?? []).forEach((f, i) => {
    const p = [...path, i];
    if ((f.matchName === undefined) === (f.matchPattern === undefined)) {
      ctx.err(p, 'exactly one of matchName or matchPattern is required');
      return;
    }
    if (f.matchName !== undefined && (f.matchName.length > 255 || !DNS_NAME_RE.test(f.matchName))) {
      ctx.err([...p, 'matchName'], `invalid DNS name ${JSON.stringify(f.matchName)}`);
    }
    if (
      f.matchPattern !== undefined &&
      (f.matchPattern.length > 255 || !DNS_PATTERN_RE.test(f.matchPattern))
    ) {
      ctx.err([...p, 'matchPattern'], `invalid DNS pattern ${JSON.stringify(f.matchPattern)}`);
    }
  });
}

interface SelectorOptions {
  /** Source given to every key (NetworkPolicy keys are `k8s:`). */
  forceSource?: string;
  /** Rewrites keys (a NetworkPolicy namespaceSelector's keys become namespace-label keys). */
  keyMap?: (k: string) => string;
  /** Label keys and expression values are checked as the API server checks a NetworkPolicy's. */
  k8sNames?: boolean;
}

/**
 * Validates a label selector and converts it. Operators are case-sensitive and matchLabels values
 * are label values, as the CRDs and the API server require.
 */
function parseSelector(
  sel: LabelSelectorInput,
  path: Path,
  ctx: Ctx,
  opts: SelectorOptions = {},
): Selector | undefined {
  const before = ctx.issues.length;
  const checkKey = (k: string, p: Path) => {
    if (k === '') ctx.err(p, 'empty label key');
    else if (opts.k8sNames)
      for (const m of labelKeyErrors(k)) ctx.err(p, `invalid label key ${JSON.stringify(k)}: ${m}`);
  };
  const checkValue = (v: string, p: Path) => {
    for (const m of labelValueErrors(v)) ctx.err(p, `invalid label value ${JSON.stringify(v)}: ${m}`);
  };
  for (const [k, v] of Object.entries(sel.matchLabels ?? {})) {
    checkKey(k, [...path, 'matchLabels']);
    checkValue(v, [...path, 'matchLabels', k]);
  }
  (sel.matchExpressions ?? []).forEach((e, i) => {
    const p = [...path, 'matchExpressions', i];
    const op = parseOperator(e.operator);
    checkKey(e.key, [...p, 'key']);
    if (op === undefined) {
      ctx.err(
        [...p, 'operator'],
        `invalid operator ${JSON.stringify(e.operator)} (expected In, NotIn, Exists or DoesNotExist)`,
      );
    } else if ((op === 'In' || op === 'NotIn') && (e.values ?? []).length === 0) {
      ctx.err([...p, 'values'], `operator ${op} requires at least one value`);
    } else if ((op === 'Exists' || op === 'DoesNotExist') && (e.values ?? []).length > 0) {
      ctx.err([...p, 'values'], `operator ${op} takes no values`);
    } else if (opts.k8sNames) {
      for (const [j, v] of (e.values ?? []).entries()) checkValue(v, [...p, 'values', j]);
    }
  });
  if (ctx.issues.length > before) return undefined;
  const { keyMap } = opts;
  if (keyMap === undefined) return Selector.fromK8s(sel, opts.forceSource);
  const mapped: LabelSelectorInput = {
    matchLabels: Object.fromEntries(Object.entries(sel.matchLabels ?? {}).map(([k, v]) => [keyMap(k), v])),
    matchExpressions: (sel.matchExpressions ?? []).map((e) => ({ ...e, key: keyMap(e.key) })),
  };
  return Selector.fromK8s(mapped, opts.forceSource);
}

const NS_KEY = K8sLabelKey.PodNamespace;
const nsIn = (ns: string) => makeRequirement(LabelSource.K8s, NS_KEY, 'In', [ns]);
const nsExists = () => makeRequirement(LabelSource.K8s, NS_KEY, 'Exists');

function reservedSel(name: string): Selector {
  return Selector.fromLabels([{ source: LabelSource.Reserved, key: name, value: '' }]);
}

/** Selects identities by prefix containment (`cidr:<prefix>` Exists). */
function cidrSel(p: Prefix): Selector {
  return Selector.of([makeRequirement(LabelSource.Cidr, cidrLabelKey(p), 'Exists')]);
}

const ALL_IPV4 = parsePrefix('0.0.0.0/0');
const ALL_IPV6 = parsePrefix('::/0');

/** Every entity name of the policy language (the CRD's list plus world-ipv4 / world-ipv6). */
export const ENTITIES = [
  'all',
  'world',
  'world-ipv4',
  'world-ipv6',
  'cluster',
  'host',
  'remote-node',
  'kube-apiserver',
  'init',
  'health',
  'unmanaged',
  'ingress',
  'none',
] as const;

/**
 * Entities whose reserved identity nothing carries here: a policy naming one is refused rather
 * than silently selecting nothing.
 */
const UNSUPPORTED_ENTITIES: Readonly<Record<string, string>> = {
  'kube-apiserver': 'there is no kube-apiserver, so nothing carries the kube-apiserver identity',
  init: 'endpoints get their labels when they are created, so none carries the init identity',
  health: 'there are no cilium-health endpoints',
  unmanaged: 'every pod is managed, so nothing carries the unmanaged identity',
  ingress: 'there is no Ingress or Gateway proxy, so nothing carries the ingress identity',
};

/** What an entity selects: identity selectors, plus the CIDR prefixes those need in the ipcache. */
export interface EntityMeaning {
  readonly selectors: readonly Selector[];
  readonly prefixes: readonly Prefix[];
}

/**
 * Upstream's entity → selector mapping. `world` is `reserved:world`: identity 2 (an address no
 * ipcache prefix covers) and every CIDR identity. `world-ipv4` / `world-ipv6` select the CIDR
 * identities of their family only, and put that family's /0 in the ipcache so that every address of
 * the family resolves to one of them (never to the family-less identity 2).
 * Returns a string (the reason) for an entity that is known but not supported; undefined if unknown.
 */
export function entityMeaning(entity: string, clusterName: string): EntityMeaning | string | undefined {
  const sel = (...selectors: Selector[]): EntityMeaning => ({ selectors, prefixes: [] });
  const unsupported = UNSUPPORTED_ENTITIES[entity];
  if (unsupported !== undefined) return unsupported;
  switch (entity) {
    case 'all':
      return sel(Selector.wildcard);
    case 'world':
      return sel(reservedSel('world'));
    case 'world-ipv4':
      return { selectors: [cidrSel(ALL_IPV4)], prefixes: [ALL_IPV4] };
    case 'world-ipv6':
      return { selectors: [cidrSel(ALL_IPV6)], prefixes: [ALL_IPV6] };
    case 'cluster':
      return sel(
        ...['host', 'remote-node', 'init', 'health', 'unmanaged', 'kube-apiserver', 'ingress'].map(
          reservedSel,
        ),
        Selector.fromLabels([{ source: LabelSource.K8s, key: K8sLabelKey.Cluster, value: clusterName }]),
      );
    case 'host':
    case 'remote-node':
      return sel(reservedSel(entity));
    case 'none':
      return sel();
    default:
      return undefined;
  }
}

/**
 * Selectors for a set of CIDR prefixes (containment). A /0 needs no `reserved:world`: it is in the
 * ipcache itself, so every address of its family resolves to a CIDR identity it contains, and
 * identity 2 (which has no family) is left to the other family.
 */
function cidrPeers(prefixes: readonly Prefix[]): Peer[] {
  return prefixes.map((p) => ({ selector: cidrSel(p), origin: 'cidr' }));
}

function parseCidrSet(list: CidrRuleInput[], path: Path, ctx: Ctx): Prefix[] {
  const prefixes: Prefix[] = [];
  list.forEach((c, i) => {
    const p = [...path, i];
    const given = [c.cidr, c.cidrGroupRef, c.cidrGroupSelector].filter((x) => x !== undefined).length;
    if (given !== 1) {
      ctx.err(p, 'exactly one of cidr, cidrGroupRef or cidrGroupSelector is required');
      return;
    }
    if (c.cidr === undefined) {
      const field = c.cidrGroupRef !== undefined ? 'cidrGroupRef' : 'cidrGroupSelector';
      ctx.err([...p, field], 'CiliumCIDRGroup references are not supported yet');
      return;
    }
    const base = parseCidr(c.cidr, [...p, 'cidr'], ctx);
    const holes: Prefix[] = [];
    (c.except ?? []).forEach((e, j) => {
      const h = parseCidr(e, [...p, 'except', j], ctx);
      if (h === undefined || base === undefined) return;
      if (!prefixContains(base, h)) {
        ctx.err([...p, 'except', j], `except ${formatPrefix(h)} is not contained in ${formatPrefix(base)}`);
        return;
      }
      holes.push(h);
    });
    if (base !== undefined) prefixes.push(...subtractPrefixes(base, holes));
  });
  return prefixes;
}

function parseL4Ports(
  ports: {
    port?: string | number | undefined;
    endPort?: number | undefined;
    protocol?: string | undefined;
  }[],
  path: Path,
  ctx: Ctx,
  k8s: boolean,
): L4Port[] {
  const out: L4Port[] = [];
  ports.forEach((pp, i) => {
    const p = [...path, i];
    let protocol: L4ProtoName = k8s ? 'TCP' : 'ANY';
    if (pp.protocol !== undefined && pp.protocol !== '') {
      const allowed: readonly string[] = k8s ? ['TCP', 'UDP', 'SCTP'] : L4_PROTO_NAMES;
      if (!allowed.includes(pp.protocol)) {
        ctx.err(
          [...p, 'protocol'],
          `invalid protocol ${JSON.stringify(pp.protocol)} (expected ${allowed.join(', ')})`,
        );
        return;
      }
      protocol = pp.protocol as L4ProtoName;
    }
    const pv = parsePortValue(pp.port, [...p, 'port'], ctx, k8s);
    if (pv === undefined) return;
    const end = parseEndPort(pp.endPort, pv, [...p, 'endPort'], ctx);
    if (end === null) return;
    const l4: { -readonly [K in keyof L4Port]: L4Port[K] } = { protocol };
    if (pv.port !== undefined) l4.port = pv.port;
    if (pv.name !== undefined) l4.name = pv.name;
    if (end !== undefined && end !== pv.port) l4.endPort = end;
    out.push(l4);
  });
  return out;
}

const L7_KINDS = ['http', 'kafka', 'dns', 'l7proto'] as const;

/**
 * L7 rules are checked as the CRD checks them, then turned into the shared L7 model (l7.ts).
 * A parser without a proxy (not in ENFORCED_L7) is refused: the port would be open to every
 * request. As upstream, L7 rules need concrete ports (no port 0, no ranges) and TCP (DNS: UDP
 * or TCP too).
 */
function parseL7(
  rules: NonNullable<PortRuleInput['rules']>,
  ports: readonly L4Port[],
  path: Path,
  portsPath: Path,
  ctx: Ctx,
): L7Rules | undefined {
  const kinds = L7_KINDS.filter((k) => rules[k] !== undefined);
  if (kinds.length === 0) ctx.err(path, 'exactly one of http, kafka, dns or l7proto is required');
  if (kinds.length > 1) ctx.err(path, `only one L7 rule type allowed per port rule, got ${kinds.join(', ')}`);
  for (const k of kinds)
    if (k === 'l7proto' || !ENFORCED_L7.has(k))
      ctx.err(
        [...path, k],
        `L7 rules of type ${k} are not enforced yet: the policy is refused rather than opening the whole port`,
      );
  if (rules.l7 !== undefined && rules.l7proto === undefined)
    ctx.err([...path, 'l7'], 'l7 rules require l7proto');
  const kind = kinds[0];
  if (kind !== undefined && kind !== 'l7proto' && (rules[kind] ?? []).length === 0)
    ctx.err([...path, kind], `an empty ${kind} list allows nothing; write [{}] to allow every request`);
  ports.forEach((p, i) => {
    const pp = [...portsPath, i];
    if (p.port === 0 && p.name === undefined)
      ctx.err([...pp, 'port'], 'L7 rules need a port: port 0 (all ports) cannot be redirected to a proxy');
    if (p.endPort !== undefined) ctx.err([...pp, 'endPort'], 'L7 rules do not support port ranges');
    const okProtos = kind === 'dns' ? ['TCP', 'UDP', 'ANY'] : ['TCP', 'ANY'];
    if (!okProtos.includes(p.protocol))
      ctx.err(
        [...pp, 'protocol'],
        `L7 ${kind} rules need protocol ${okProtos.join(' or ')}, got ${p.protocol}`,
      );
  });
  const http = (rules.http ?? []).map((h, i): HttpRule => {
    const hp = [...path, 'http', i];
    checkRegex(h.method, [...hp, 'method'], ctx);
    checkRegex(h.path, [...hp, 'path'], ctx);
    checkRegex(h.host, [...hp, 'host'], ctx);
    const headers: HttpHeaderMatch[] = (h.headers ?? []).map((raw) => {
      const sp = raw.indexOf(' ');
      return sp < 0 ? { name: raw } : { name: raw.slice(0, sp), value: raw.slice(sp + 1) };
    });
    (h.headerMatches ?? []).forEach((m, j) => {
      const mp = [...hp, 'headerMatches', j];
      if (m.secret !== undefined)
        ctx.err([...mp, 'secret'], 'header values from secrets are not supported yet');
      if (m.mismatch !== undefined)
        ctx.err([...mp, 'mismatch'], 'mismatch actions (LOG, ADD, DELETE, REPLACE) are not supported yet');
      headers.push(m.value === undefined ? { name: m.name } : { name: m.name, value: m.value });
    });
    headers.forEach((hd, j) => {
      if (!/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(hd.name))
        ctx.err([...hp, 'headers', j], `invalid header name ${JSON.stringify(hd.name)}`);
    });
    return {
      ...(h.method !== undefined ? { method: h.method } : {}),
      ...(h.path !== undefined ? { path: h.path } : {}),
      ...(h.host !== undefined ? { host: h.host } : {}),
      headers,
    };
  });
  (rules.kafka ?? []).forEach((k, i) => {
    for (const [field, message] of kafkaRuleProblems(k))
      ctx.err(field ? [...path, 'kafka', i, field] : [...path, 'kafka', i], message);
  });
  checkFqdnSelectors(rules.dns, [...path, 'dns'], ctx);
  if (kind === 'http') return { parser: 'http', http };
  if (kind === 'kafka') return { parser: 'kafka', kafka: (rules.kafka ?? []).map((k) => ({ ...k })) };
  if (kind === 'dns') return { parser: 'dns', dns: (rules.dns ?? []).map((d) => selectorPattern(d)) };
  return undefined;
}

/** Port-rule fields that need the L7 proxy: refused, each with what it would have done. */
const PROXY_FIELDS: Readonly<Record<string, string>> = {
  serverNames: 'TLS SNI matching (serverNames) is not enforced yet',
  terminatingTLS: 'TLS termination (terminatingTLS) is not supported yet',
  originatingTLS: 'TLS origination (originatingTLS) is not supported yet',
  listener: 'Envoy listeners (listener) are not supported yet',
};

function parsePortRules(list: PortRuleInput[] | undefined, path: Path, ctx: Ctx): PortRule[] {
  const out: PortRule[] = [];
  (list ?? []).forEach((pr, i) => {
    const p = [...path, i];
    let ports = parseL4Ports(pr.ports ?? [], [...p, 'ports'], ctx, false);
    if ((pr.ports ?? []).length === 0) ports = [{ port: 0, protocol: 'ANY' }];
    const l7 =
      pr.rules === undefined ? undefined : parseL7(pr.rules, ports, [...p, 'rules'], [...p, 'ports'], ctx);
    for (const [field, message] of Object.entries(PROXY_FIELDS))
      if ((pr as Record<string, unknown>)[field] !== undefined) ctx.err([...p, field], message);
    out.push(l7 === undefined ? { ports } : { ports, l7 });
  });
  return out;
}

function parseIcmps(list: IcmpRuleInput[] | undefined, path: Path, ctx: Ctx): IcmpField[] {
  const out: IcmpField[] = [];
  (list ?? []).forEach((r, i) => {
    (r.fields ?? []).forEach((f, j) => {
      const family = f.family ?? 'IPv4';
      const t = icmpType(family, f.type);
      if (t === undefined) {
        ctx.err(
          [...path, i, 'fields', j, 'type'],
          `invalid ICMP type ${JSON.stringify(f.type)} for ${family}`,
        );
        return;
      }
      out.push({ family, type: t });
    });
  });
  return out;
}

// ---------------------------------------------------------------------------------------------
// Cilium policies

interface Scope {
  namespace: string; // '' = clusterwide
  clusterName: string;
  subjectMatchesInit: boolean;
}

function scopePeerSelector(sel: Selector, scope: Scope): Selector {
  if (sel.hasKey(NS_KEY, [LabelSource.K8s, LabelSource.Any])) return sel;
  if (sel.hasSource(LabelSource.Reserved)) return sel;
  if (scope.namespace !== '') return sel.with(nsIn(scope.namespace));
  if (scope.subjectMatchesInit) return sel;
  return sel.with(nsExists());
}

type AnyCiliumPeerRule = Record<string, unknown> & {
  toPorts?: PortRuleInput[];
  icmps?: IcmpRuleInput[];
};

function parseCiliumPeerRule(
  raw: AnyCiliumPeerRule,
  index: number,
  section: Section,
  path: Path,
  ctx: Ctx,
  scope: Scope,
): PeerRule {
  const ingress = section === 'ingress' || section === 'ingressDeny';
  const f = (name: string) => (ingress ? `from${name}` : `to${name}`);
  const peers: Peer[] = [];
  const prefixes: Prefix[] = [];
  let anyL3 = false;

  const endpoints = raw[f('Endpoints')] as LabelSelectorInput[] | undefined;
  if (endpoints !== undefined) {
    anyL3 = true;
    endpoints.forEach((s, i) => {
      const sel = parseSelector(s, [...path, f('Endpoints'), i], ctx);
      if (sel !== undefined) peers.push({ selector: scopePeerSelector(sel, scope), origin: 'endpoints' });
    });
  }
  const requires: Selector[] = [];
  ((raw[f('Requires')] as LabelSelectorInput[] | undefined) ?? []).forEach((s, i) => {
    const sel = parseSelector(s, [...path, f('Requires'), i], ctx);
    if (sel !== undefined) requires.push(scopePeerSelector(sel, scope));
  });
  const cidrs = raw[f('CIDR')] as string[] | undefined;
  if (cidrs !== undefined) {
    anyL3 = true;
    cidrs.forEach((c, i) => {
      const p = parseCidr(c, [...path, f('CIDR'), i], ctx);
      if (p !== undefined) prefixes.push(p);
    });
  }
  const cidrSet = raw[f('CIDRSet')] as CidrRuleInput[] | undefined;
  if (cidrSet !== undefined) {
    anyL3 = true;
    prefixes.push(...parseCidrSet(cidrSet, [...path, f('CIDRSet')], ctx));
  }
  peers.push(...cidrPeers(prefixes));
  const entities = raw[f('Entities')] as string[] | undefined;
  if (entities !== undefined) {
    anyL3 = true;
    entities.forEach((e, i) => {
      const m = entityMeaning(e, scope.clusterName);
      if (m === undefined) {
        ctx.err(
          [...path, f('Entities'), i],
          `unknown entity ${JSON.stringify(e)} (expected one of ${ENTITIES.join(', ')})`,
        );
        return;
      }
      if (typeof m === 'string') {
        ctx.err([...path, f('Entities'), i], `entity ${JSON.stringify(e)} is not supported yet: ${m}`);
        return;
      }
      for (const s of m.selectors) peers.push({ selector: s, origin: 'entities' });
      prefixes.push(...m.prefixes);
    });
  }
  const nodes = raw[f('Nodes')] as LabelSelectorInput[] | undefined;
  if (nodes !== undefined) {
    anyL3 = true;
    nodes.forEach((s, i) => {
      for (const sel of parseNodeSelector(s, [...path, f('Nodes'), i], ctx))
        peers.push({ selector: sel, origin: 'nodes' });
    });
  }
  for (const [field, message] of Object.entries(UNSUPPORTED_PEERS(ingress))) {
    if (raw[field] === undefined) continue;
    anyL3 = true;
    ctx.err([...path, field], message);
  }
  if (!ingress) peers.push(...parseToFqdns(raw, anyL3, path, ctx));
  anyL3 ||= !ingress && raw['toFQDNs'] !== undefined;
  const auth = raw['authentication'] as { mode: string } | undefined;
  if (auth !== undefined && auth.mode !== 'disabled')
    ctx.err(
      [...path, 'authentication', 'mode'],
      `mutual authentication (mode ${auth.mode}) is not enforced yet`,
    );
  const ports = parsePortRules(raw.toPorts, [...path, 'toPorts'], ctx);
  // The DNS proxy sees the queries endpoints send: DNS rules are egress rules, as upstream.
  if (ingress)
    ports.forEach((r, i) => {
      if (r.l7?.parser === 'dns')
        ctx.err([...path, 'toPorts', i, 'rules', 'dns'], 'DNS rules apply to egress only');
    });
  const icmps = parseIcmps(raw.icmps, [...path, 'icmps'], ctx);
  if (ports.length > 0 && icmps.length > 0)
    ctx.err(path, 'toPorts and icmps cannot be used in the same rule');
  if (!anyL3 && (ports.length > 0 || icmps.length > 0))
    peers.push({ selector: Selector.wildcard, origin: 'wildcard' });
  return { index, peers, cidrPrefixes: prefixes, requires, ports, icmps };
}

/**
 * toFQDNs: each selector becomes a peer selecting the identities the FQDN subsystem gives to the IPs
 * DNS answered for matching names (src/policy/fqdn.ts). As upstream, it stands alone as the rule's L3
 * part: combined with another L3 selector the rule would allow their union.
 */
function parseToFqdns(raw: AnyCiliumPeerRule, otherL3: boolean, path: Path, ctx: Ctx): Peer[] {
  const list = raw['toFQDNs'] as FqdnSelector[] | undefined;
  if (list === undefined) return [];
  const before = ctx.issues.length;
  checkFqdnSelectors(list, [...path, 'toFQDNs'], ctx);
  if (otherL3) ctx.err([...path, 'toFQDNs'], 'combining toFQDNs with other L3 selectors is not supported');
  if (ctx.issues.length > before) return [];
  return list.map((f) => ({ selector: fqdnSelector(selectorPattern(f)), origin: 'fqdn' }));
}

/** L3 peer fields that nothing here can resolve yet: refused rather than selecting nothing. */
function UNSUPPORTED_PEERS(ingress: boolean): Record<string, string> {
  return ingress
    ? { fromGroups: 'cloud provider groups (fromGroups) are not supported' }
    : {
        toGroups: 'cloud provider groups (toGroups) are not supported',
        toServices: 'toServices is not supported yet',
      };
}

const hostReq = makeRequirement(LabelSource.Reserved, ReservedName.Host, 'Exists');
const remoteNodeReq = makeRequirement(LabelSource.Reserved, ReservedName.RemoteNode, 'Exists');

/**
 * A fromNodes/toNodes selector matches node labels (source `node`; a key without a source means
 * it) on the identities that stand for nodes: the host (`reserved:host`) and remote nodes
 * (`reserved:remote-node`). So `{}` selects every node, never a pod or the world.
 */
function parseNodeSelector(s: LabelSelectorInput, path: Path, ctx: Ctx): Selector[] {
  const keys = [
    ...Object.keys(s.matchLabels ?? {}).map((k) => ({ k, p: [...path, 'matchLabels'] })),
    ...(s.matchExpressions ?? []).map((e, i) => ({ k: e.key, p: [...path, 'matchExpressions', i, 'key'] })),
  ];
  let ok = true;
  for (const { k, p } of keys) {
    const { source } = parseSelectKey(k);
    if (source !== LabelSource.Any && source !== LabelSource.Node) {
      ctx.err(p, `node selectors match node labels: key ${JSON.stringify(k)} must have no source or node:`);
      ok = false;
    }
  }
  const nodePrefix = `${LabelSource.Node}:`;
  const sel = parseSelector(s, path, ctx, {
    forceSource: LabelSource.Node,
    keyMap: (k) => (k.startsWith(nodePrefix) ? k.slice(nodePrefix.length) : k),
  });
  if (!ok || sel === undefined) return [];
  return [sel.with(hostReq), sel.with(remoteNodeReq)];
}

function parseCiliumRule(
  spec: CiliumRuleInput,
  ruleIndex: number,
  path: Path,
  ctx: Ctx,
  ref: PolicyRef,
  clusterName: string,
): PolicyRule | undefined {
  const clusterwide = ref.kind === 'CiliumClusterwideNetworkPolicy';
  if ((spec.endpointSelector === undefined) === (spec.nodeSelector === undefined)) {
    ctx.err(path, 'exactly one of endpointSelector or nodeSelector is required');
    return undefined;
  }
  if (spec.nodeSelector !== undefined) {
    ctx.err(
      [...path, 'nodeSelector'],
      clusterwide
        ? 'host policies (nodeSelector) are not supported yet: nothing would enforce them on the host'
        : 'nodeSelector is only allowed in CiliumClusterwideNetworkPolicy',
    );
    return undefined;
  }
  if (SECTIONS.every((s) => spec[s] === undefined)) {
    ctx.err(path, 'at least one of ingress, ingressDeny, egress or egressDeny is required');
    return undefined;
  }
  let subject = parseSelector(spec.endpointSelector!, [...path, 'endpointSelector'], ctx);
  if (subject === undefined) return undefined;
  if (!clusterwide) {
    subject = subject
      .without((r) => r.source === LabelSource.K8s && r.key === NS_KEY)
      .with(nsIn(ref.namespace));
  }
  const scope: Scope = {
    namespace: clusterwide ? '' : ref.namespace,
    clusterName,
    subjectMatchesInit: subject.hasKey('init', [LabelSource.Reserved]),
  };
  const rule: { -readonly [K in keyof PolicyRule]: PolicyRule[K] } = {
    policy: ref,
    ruleIndex,
    subject,
    enableDefaultDeny: { ...(spec.enableDefaultDeny ?? {}) },
    labels: policyLabels(ref, spec.labels),
  };
  if (spec.description !== undefined) rule.description = spec.description;
  for (const section of SECTIONS) {
    const list = spec[section] as AnyCiliumPeerRule[] | undefined;
    if (list === undefined) continue;
    rule[section] = list.map((r, i) => parseCiliumPeerRule(r, i, section, [...path, section, i], ctx, scope));
  }
  return rule;
}

function policyLabels(
  ref: PolicyRef,
  extra?: { key: string; value?: string | undefined; source?: string | undefined }[],
): Label[] {
  const out: Label[] = [
    makeLabel(LabelSource.K8s, K8sLabelKey.PolicyDerivedFrom, ref.kind),
    makeLabel(LabelSource.K8s, K8sLabelKey.PolicyName, ref.name),
  ];
  if (ref.namespace !== '') out.push(makeLabel(LabelSource.K8s, K8sLabelKey.PolicyNamespace, ref.namespace));
  for (const l of extra ?? []) out.push(makeLabel(l.source ?? LabelSource.Unspec, l.key, l.value ?? ''));
  return out;
}

/** Object names as the API server checks them: the name a DNS subdomain, the namespace a DNS label. */
function checkMetadata(meta: { name: string; namespace?: string | undefined }, ctx: Ctx): boolean {
  const before = ctx.issues.length;
  for (const m of dns1123SubdomainErrors(meta.name))
    ctx.err(['metadata', 'name'], `invalid name ${JSON.stringify(meta.name)}: ${m}`);
  if (meta.namespace !== undefined && meta.namespace !== '')
    for (const m of dns1123LabelErrors(meta.namespace))
      ctx.err(['metadata', 'namespace'], `invalid namespace ${JSON.stringify(meta.namespace)}: ${m}`);
  return ctx.issues.length === before;
}

function parseCilium(doc: unknown, ctx: Ctx, opts: Required<ParseOptions>): ParsedPolicy | undefined {
  const r = ciliumPolicySchema.safeParse(doc);
  if (!r.success) {
    ctx.zod(r.error);
    return undefined;
  }
  const d = r.data;
  if (!checkMetadata(d.metadata, ctx)) return undefined;
  const clusterwide = d.kind === 'CiliumClusterwideNetworkPolicy';
  if (clusterwide && d.metadata.namespace !== undefined && d.metadata.namespace !== '') {
    ctx.err(
      ['metadata', 'namespace'],
      'CiliumClusterwideNetworkPolicy is cluster-scoped and takes no namespace',
    );
    return undefined;
  }
  const ref: PolicyRef = {
    kind: d.kind,
    namespace: clusterwide ? '' : (d.metadata.namespace ?? opts.defaultNamespace),
    name: d.metadata.name,
  };
  if (d.spec === undefined && d.specs === undefined) {
    ctx.err([], 'spec or specs is required');
    return undefined;
  }
  const rules: PolicyRule[] = [];
  let idx = 0;
  if (d.spec !== undefined) {
    const rule = parseCiliumRule(d.spec, idx++, ['spec'], ctx, ref, opts.clusterName);
    if (rule !== undefined) rules.push(rule);
  }
  (d.specs ?? []).forEach((s, i) => {
    const rule = parseCiliumRule(s, idx++, ['specs', i], ctx, ref, opts.clusterName);
    if (rule !== undefined) rules.push(rule);
  });
  return { ref, rules, document: ctx.document };
}

// ---------------------------------------------------------------------------------------------
// Kubernetes NetworkPolicy

const K8S_SELECTOR: SelectorOptions = { forceSource: LabelSource.K8s, k8sNames: true };

function parseK8sPeers(
  list: K8sPeerInput[] | undefined,
  path: Path,
  ctx: Ctx,
  ns: string,
): { peers: Peer[]; prefixes: Prefix[] } {
  // An empty or missing from/to list matches all sources/destinations.
  if (list === undefined || list.length === 0) {
    return { peers: [{ selector: Selector.wildcard, origin: 'wildcard' }], prefixes: [] };
  }
  const peers: Peer[] = [];
  const prefixes: Prefix[] = [];
  list.forEach((peer, i) => {
    const p = [...path, i];
    const given = [peer.podSelector, peer.namespaceSelector, peer.ipBlock].filter(
      (x) => x !== undefined,
    ).length;
    if (given === 0) {
      ctx.err(p, 'one of podSelector, namespaceSelector or ipBlock is required');
      return;
    }
    if (peer.ipBlock !== undefined) {
      if (given > 1) {
        ctx.err(p, 'ipBlock cannot be combined with podSelector or namespaceSelector');
        return;
      }
      const r = parseCidrSet(
        [{ cidr: peer.ipBlock.cidr, except: peer.ipBlock.except }],
        [...p, 'ipBlock'],
        ctx,
      );
      // parseCidrSet reports paths with a [0] index; the ipBlock has no list, fix them up.
      for (const issue of ctx.issues) {
        if (issue.path.startsWith(`${formatPath([...p, 'ipBlock'])}[0]`)) {
          (issue as { path: string }).path = issue.path.replace(
            `${formatPath([...p, 'ipBlock'])}[0]`,
            formatPath([...p, 'ipBlock']),
          );
        }
      }
      prefixes.push(...r);
      peers.push(...cidrPeers(r));
      return;
    }
    let sel: Selector | undefined = Selector.wildcard;
    if (peer.podSelector !== undefined) {
      sel = parseSelector(peer.podSelector, [...p, 'podSelector'], ctx, K8S_SELECTOR);
    }
    if (sel === undefined) return;
    if (peer.namespaceSelector !== undefined) {
      const nsSel = parseSelector(peer.namespaceSelector, [...p, 'namespaceSelector'], ctx, {
        ...K8S_SELECTOR,
        keyMap: (k) => K8sLabelKey.NamespaceLabelsPrefix + k,
      });
      if (nsSel === undefined) return;
      // Any namespace matching the namespace selector, pods only (namespace label must exist).
      sel = sel.with(...nsSel.requirements, nsExists());
    } else {
      sel = sel.with(nsIn(ns));
    }
    peers.push({ selector: sel, origin: 'k8s' });
  });
  return { peers, prefixes };
}

function parseK8sPorts(list: K8sPortInput[] | undefined, path: Path, ctx: Ctx): PortRule[] {
  if (list === undefined || list.length === 0) return [];
  return [{ ports: parseL4Ports(list, path, ctx, true) }];
}

function parseK8s(doc: unknown, ctx: Ctx, opts: Required<ParseOptions>): ParsedPolicy | undefined {
  const r = k8sNetworkPolicySchema.safeParse(doc);
  if (!r.success) {
    ctx.zod(r.error);
    return undefined;
  }
  const d = r.data;
  if (!checkMetadata(d.metadata, ctx)) return undefined;
  const ns = d.metadata.namespace ?? opts.defaultNamespace;
  const ref: PolicyRef = { kind: 'NetworkPolicy', namespace: ns, name: d.metadata.name };
  // An invalid podSelector still lets the rest be checked, so every problem is reported at once.
  const podSel =
    parseSelector(d.spec.podSelector, ['spec', 'podSelector'], ctx, K8S_SELECTOR) ?? Selector.wildcard;
  const types = new Set(
    d.spec.policyTypes ?? (d.spec.egress !== undefined ? ['Ingress', 'Egress'] : ['Ingress']),
  );
  const rule: { -readonly [K in keyof PolicyRule]: PolicyRule[K] } = {
    policy: ref,
    ruleIndex: 0,
    subject: podSel.with(nsIn(ns)),
    enableDefaultDeny: {},
    labels: policyLabels(ref),
  };
  if (types.has('Ingress')) {
    rule.ingress = (d.spec.ingress ?? []).map((ir, i) => {
      const { peers, prefixes } = parseK8sPeers(ir.from, ['spec', 'ingress', i, 'from'], ctx, ns);
      return {
        index: i,
        peers,
        cidrPrefixes: prefixes,
        requires: [],
        ports: parseK8sPorts(ir.ports, ['spec', 'ingress', i, 'ports'], ctx),
        icmps: [],
      };
    });
  }
  if (types.has('Egress')) {
    rule.egress = (d.spec.egress ?? []).map((er, i) => {
      const { peers, prefixes } = parseK8sPeers(er.to, ['spec', 'egress', i, 'to'], ctx, ns);
      return {
        index: i,
        peers,
        cidrPrefixes: prefixes,
        requires: [],
        ports: parseK8sPorts(er.ports, ['spec', 'egress', i, 'ports'], ctx),
        icmps: [],
      };
    });
  }
  return { ref, rules: [rule], document: ctx.document };
}

// ---------------------------------------------------------------------------------------------

function parseOne(
  doc: unknown,
  index: number,
  opts: Required<ParseOptions>,
): { policy?: ParsedPolicy; issues: ValidationIssue[] } {
  const ctx = new Ctx(index);
  const pruned = pruneNulls(doc);
  if (pruned === null || typeof pruned !== 'object' || Array.isArray(pruned)) {
    ctx.err([], 'document must be an object');
    return { issues: ctx.issues };
  }
  const o = pruned as Record<string, unknown>;
  const kind = o['kind'];
  const meta = o['metadata'] as Record<string, unknown> | undefined;
  if (typeof kind === 'string') ctx.kind = kind;
  if (meta !== undefined && typeof meta === 'object' && typeof meta['name'] === 'string') {
    const ns = typeof meta['namespace'] === 'string' ? meta['namespace'] : undefined;
    ctx.name =
      ns !== undefined && kind !== 'CiliumClusterwideNetworkPolicy' ? `${ns}/${meta['name']}` : meta['name'];
  }
  if (typeof kind !== 'string' || KINDS[kind] === undefined) {
    ctx.err(['kind'], `unsupported kind ${JSON.stringify(kind)} (expected ${Object.keys(KINDS).join(', ')})`);
    return { issues: ctx.issues };
  }
  if (o['apiVersion'] !== KINDS[kind]) {
    ctx.err(['apiVersion'], `expected ${KINDS[kind]} for ${kind}, got ${JSON.stringify(o['apiVersion'])}`);
    return { issues: ctx.issues };
  }
  const policy = kind === 'NetworkPolicy' ? parseK8s(pruned, ctx, opts) : parseCilium(pruned, ctx, opts);
  if (ctx.issues.length > 0 || policy === undefined) return { issues: ctx.issues };
  return { policy, issues: [] };
}

function fullOpts(opts: ParseOptions): Required<ParseOptions> {
  return {
    clusterName: opts.clusterName ?? DEFAULT_CLUSTER_NAME,
    defaultNamespace: opts.defaultNamespace ?? 'default',
  };
}

/** Validates documents without throwing; null/undefined documents (empty YAML documents) are skipped. */
export function validatePolicies(docs: readonly unknown[], opts: ParseOptions = {}): ValidationIssue[] {
  const o = fullOpts(opts);
  return docs.flatMap((d, i) => (d === null || d === undefined ? [] : parseOne(d, i, o).issues));
}

/**
 * Parses every document or none: throws PolicyValidationError listing every issue of every document.
 * Two documents defining the same kind/namespace/name are an error too.
 */
export function parsePolicies(docs: readonly unknown[], opts: ParseOptions = {}): ParsedPolicy[] {
  const o = fullOpts(opts);
  const out: ParsedPolicy[] = [];
  const issues: ValidationIssue[] = [];
  const seen = new Map<string, number>();
  docs.forEach((d, i) => {
    if (d === null || d === undefined) return;
    const r = parseOne(d, i, o);
    issues.push(...r.issues);
    if (r.policy !== undefined) {
      const key = `${r.policy.ref.kind}/${r.policy.ref.namespace}/${r.policy.ref.name}`;
      const prev = seen.get(key);
      if (prev !== undefined) {
        issues.push({
          document: i,
          kind: r.policy.ref.kind,
          name: r.policy.ref.name,
          path: 'metadata.name',
          message: `duplicate of document ${prev}`,
        });
      }
      seen.set(key, i);
      out.push(r.policy);
    }
  });
  if (issues.length > 0) throw new PolicyValidationError(issues);
  return out;
}

export function parsePolicy(doc: unknown, opts: ParseOptions = {}): ParsedPolicy {
  const r = parsePolicies([doc], opts);
  if (r.length === 0) throw new PolicyValidationError([{ document: 0, path: '', message: 'empty document' }]);
  return r[0]!;
}

/** Kinds accepted by the parser. */
export const POLICY_KINDS: readonly PolicyKind[] = [
  'CiliumNetworkPolicy',
  'CiliumClusterwideNetworkPolicy',
  'NetworkPolicy',
];
