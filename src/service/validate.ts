/**
 * Parses raw `Service` and `EndpointSlice` manifests (objects from YAML/JSON) into the typed model
 * of types.ts, validating them as the API server does: every error names its field path
 * (`spec.ports[1].nodePort`), enums are case-sensitive, unknown fields are refused, and the API
 * server's defaults are filled in. Fields cilium-ts does not implement (ExternalName, SCTP,
 * topology hints, ...) are refused with a clear "not supported" rather than accepted and ignored.
 * All issues of an object are reported at once, in one ServiceValidationError. Pure.
 */
import {
  dns1123LabelErrors,
  dns1123SubdomainErrors,
  labelKeyErrors,
  labelValueErrors,
  portNameErrors,
} from '../k8s/names.js';
import { type IpFamily, type Prefix, parseIp, parsePrefix, prefixContains } from '../labels/cidr.js';
import { type ServiceIssue, ServiceValidationError } from './errors.js';
import { ipv4Value } from './ip.js';
import {
  DEFAULT_AFFINITY_TIMEOUT_SECONDS,
  DEFAULT_NODE_PORT_RANGE,
  type Endpoint,
  type EndpointPort,
  type EndpointSlice,
  type IpFamilyName,
  isExternallyAccessible,
  type LoadBalancerIngress,
  MAX_AFFINITY_TIMEOUT_SECONDS,
  type ObjectMeta,
  type ObjectReference,
  type OwnerReference,
  type Protocol,
  SERVICE_NAME_LABEL,
  type Service,
  type ServicePort,
  type ServiceSpec,
  type ServiceStatus,
} from './types.js';

type Obj = Record<string, unknown>;

const NOT_SUPPORTED = 'not supported by cilium-ts';

/**
 * Where a value sits under a reader's `path`: a field (`.name`) or a list index (`[2]`). Readers
 * join it to the path only to report an issue: valid objects (10,000 services at start) build no
 * path strings.
 */
type Sub = string | number | undefined;

function at(path: string, sub: Sub): string {
  if (sub === undefined) return path;
  return typeof sub === 'number' ? `${path}[${sub}]` : join(path, sub);
}

/** Collects issues; each reader reports a wrong type itself and returns undefined. */
class Checker {
  readonly issues: ServiceIssue[] = [];

  err(path: string, message: string, sub?: Sub): void {
    this.issues.push({ path: at(path, sub), message });
  }

  /** A plain object whose every key is in `known` (null or absent → undefined). */
  object(v: unknown, path: string, known: readonly string[], sub?: Sub): Obj | undefined {
    if (v === undefined || v === null) return undefined;
    if (typeof v !== 'object' || Array.isArray(v)) {
      this.err(path, `Invalid value: ${show(v)}: must be an object`, sub);
      return undefined;
    }
    const o = v as Obj;
    // for-in over own keys: Object.keys() would allocate a list per object.
    for (const k in o)
      if (Object.hasOwn(o, k) && !known.includes(k) && o[k] !== null)
        this.err(join(at(path, sub), k), `unknown field "${k}"`);
    return o;
  }

  /** A value of one JSON type (null or absent → undefined); `what` names the type in the error. */
  #typed<T>(v: unknown, path: string, sub: Sub, is: (x: unknown) => x is T, what: string): T | undefined {
    if (v === undefined || v === null) return undefined;
    if (is(v)) return v;
    this.err(path, `Invalid value: ${show(v)}: must be ${what}`, sub);
    return undefined;
  }

  str(v: unknown, path: string, sub?: Sub): string | undefined {
    if (typeof v === 'string') return v;
    return this.#typed(v, path, sub, isString, 'a string');
  }

  int(v: unknown, path: string, sub?: Sub): number | undefined {
    return this.#typed(v, path, sub, Number.isInteger as (x: unknown) => x is number, 'an integer');
  }

  bool(v: unknown, path: string, sub?: Sub): boolean | undefined {
    if (typeof v === 'boolean') return v;
    return this.#typed(v, path, sub, isBoolean, 'a boolean');
  }

  array(v: unknown, path: string, sub?: Sub): unknown[] | undefined {
    if (Array.isArray(v)) return v;
    return this.#typed(v, path, sub, Array.isArray, 'a list');
  }

  strings(v: unknown, path: string, sub?: Sub): string[] | undefined {
    const a = this.array(v, path, sub);
    if (a === undefined) return undefined;
    // The usual case in one exact-size copy (a list grown by push holds room for 17).
    if (a.every(isString)) return a.slice();
    const out: string[] = [];
    for (let i = 0; i < a.length; i++) {
      const x = a[i];
      const s = typeof x === 'string' ? x : this.str(x, at(path, sub), i);
      if (s !== undefined) out.push(s);
    }
    return out.length === a.length ? out : undefined;
  }

  /** A case-sensitive enum value; `refused` lists known values cilium-ts does not implement. */
  enumOf<T extends string>(
    v: unknown,
    path: string,
    allowed: readonly T[],
    refused: Record<string, string> = {},
    sub?: Sub,
  ): T | undefined {
    const s = this.str(v, path, sub);
    if (s === undefined) return undefined;
    if ((allowed as readonly string[]).includes(s)) return s as T;
    if (s in refused) this.err(path, `Unsupported value: ${show(s)}: ${refused[s]}`, sub);
    else
      this.err(
        path,
        `Unsupported value: ${show(s)}: supported values: ${allowed.map((a) => show(a)).join(', ')}`,
        sub,
      );
    return undefined;
  }

  /** A string map whose keys and values are checked by the given rules. */
  stringMap(
    v: unknown,
    path: string,
    keyErrors: (k: string) => readonly string[],
    valueErrors: (v: string) => readonly string[],
  ): Record<string, string> | undefined {
    if (v === undefined || v === null) return undefined;
    if (typeof v !== 'object' || Array.isArray(v)) {
      this.err(path, `Invalid value: ${show(v)}: must be a map of strings`);
      return undefined;
    }
    const out: Record<string, string> = {};
    const o = v as Obj;
    for (const k in o) {
      if (!Object.hasOwn(o, k)) continue;
      const x = o[k];
      const p = () => `${path}[${k}]`;
      for (const e of keyErrors(k)) this.err(p(), `Invalid value: ${show(k)}: ${e}`);
      const s = typeof x === 'string' ? x : this.str(x, p());
      if (s === undefined) continue;
      for (const e of valueErrors(s)) this.err(p(), `Invalid value: ${show(s)}: ${e}`);
      out[k] = s;
    }
    return out;
  }

  /** Refuses a field cilium-ts knows but does not implement. */
  unsupported(o: Obj, key: string, path: string, why: string): void {
    if (o[key] !== undefined && o[key] !== null)
      this.err(join(path, key), `Forbidden: ${NOT_SUPPORTED}: ${why}`);
  }
}

/**
 * Names found valid before: every slice names the same few nodes, every object the same label
 * keys. Bounded, so that a stream of distinct names does not grow it without end.
 */
const validNodeNames = new Set<string>();
const validLabelKeys = new Set<string>();
const NO_ERRORS: readonly string[] = [];

function knownValid(cache: Set<string>, s: string, rule: (s: string) => string[]): readonly string[] {
  if (cache.has(s)) return NO_ERRORS;
  const errors = rule(s);
  if (errors.length === 0 && cache.size < 4096) cache.add(s);
  return errors;
}

const labelKeyProblems = (k: string) => knownValid(validLabelKeys, k, labelKeyErrors);

const isString = (x: unknown): x is string => typeof x === 'string';
const isBoolean = (x: unknown): x is boolean => typeof x === 'boolean';

function join(path: string, key: string): string {
  return path === '' ? key : `${path}.${key}`;
}

function show(v: unknown): string {
  return typeof v === 'string' ? JSON.stringify(v) : (JSON.stringify(v) ?? String(v));
}

const DNS1035_LABEL = /^[a-z]([-a-z0-9]*[a-z0-9])?$/;

function dns1035LabelErrors(s: string): string[] {
  const out: string[] = [];
  if (s.length > 63) out.push('must be no more than 63 characters');
  if (!DNS1035_LABEL.test(s))
    out.push(
      "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character",
    );
  return out;
}

const FAMILY_NAME: Record<IpFamily, IpFamilyName> = { 4: 'IPv4', 6: 'IPv6' };

const SPECIAL_RANGES: readonly [Prefix, string][] = [
  [parsePrefix('0.0.0.0/32'), 'may not be unspecified (0.0.0.0)'],
  [parsePrefix('::/128'), 'may not be unspecified (::)'],
  [parsePrefix('127.0.0.0/8'), 'may not be in the loopback range (127.0.0.0/8, ::1/128)'],
  [parsePrefix('::1/128'), 'may not be in the loopback range (127.0.0.0/8, ::1/128)'],
  [parsePrefix('169.254.0.0/16'), 'may not be in the link-local range (169.254.0.0/16, fe80::/10)'],
  [parsePrefix('fe80::/10'), 'may not be in the link-local range (169.254.0.0/16, fe80::/10)'],
  [parsePrefix('224.0.0.0/24'), 'may not be in the link-local multicast range (224.0.0.0/24, ff02::/10)'],
  [parsePrefix('ff02::/10'), 'may not be in the link-local multicast range (224.0.0.0/24, ff02::/10)'],
];

/** An IP address (`10.0.0.1`, `fd00::1`); with `nonSpecial`, not unspecified, loopback or link-local. */
function checkIp(c: Checker, s: string, path: string, nonSpecial = false, sub?: Sub): IpFamily | undefined {
  if (!nonSpecial && ipv4Value(s) !== undefined) return 4; // the common case, without bigints
  const ip = parseIp(s);
  if (ip === undefined) {
    c.err(
      path,
      `Invalid value: ${show(s)}: must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)`,
      sub,
    );
    return undefined;
  }
  if (nonSpecial) {
    const host = parsePrefix(s);
    for (const [range, why] of SPECIAL_RANGES)
      if (prefixContains(range, host)) {
        c.err(path, `Invalid value: ${show(s)}: ${why}`, sub);
        return undefined;
      }
  }
  return ip.family;
}

const META_FIELDS = [
  'name',
  'namespace',
  'labels',
  'annotations',
  'uid',
  'resourceVersion',
  'generation',
  'creationTimestamp',
  'deletionTimestamp',
  'deletionGracePeriodSeconds',
  'ownerReferences',
  'finalizers',
  'generateName',
  'managedFields',
] as const;

function parseMeta(c: Checker, v: unknown, nameRule: (s: string) => string[]): ObjectMeta | undefined {
  const o = c.object(v, 'metadata', META_FIELDS);
  if (o === undefined) {
    c.err('metadata', 'Required value');
    return undefined;
  }
  const name = c.str(o.name, 'metadata.name');
  if (name === undefined || name === '') c.err('metadata.name', 'Required value: name is required');
  else for (const e of nameRule(name)) c.err('metadata.name', `Invalid value: ${show(name)}: ${e}`);
  const ns = c.str(o.namespace, 'metadata.namespace') || 'default';
  for (const e of dns1123LabelErrors(ns)) c.err('metadata.namespace', `Invalid value: ${show(ns)}: ${e}`);
  const meta: ObjectMeta = { name: name ?? '', namespace: ns };
  const labels = c.stringMap(o.labels, 'metadata.labels', labelKeyProblems, labelValueErrors);
  if (labels !== undefined) meta.labels = labels;
  const annotations = c.stringMap(o.annotations, 'metadata.annotations', labelKeyProblems, () => NO_ERRORS);
  if (annotations !== undefined) meta.annotations = annotations;
  for (const k of [
    'uid',
    'resourceVersion',
    'creationTimestamp',
    'deletionTimestamp',
    'generateName',
  ] as const) {
    const s = c.str(o[k], 'metadata', k);
    if (s !== undefined) meta[k] = s;
  }
  for (const k of ['generation', 'deletionGracePeriodSeconds'] as const) {
    const n = c.int(o[k], 'metadata', k);
    if (n !== undefined) meta[k] = n;
  }
  const finalizers = c.strings(o.finalizers, 'metadata.finalizers');
  if (finalizers !== undefined) meta.finalizers = finalizers;
  const owners = c.array(o.ownerReferences, 'metadata.ownerReferences');
  if (owners !== undefined) {
    meta.ownerReferences = [];
    owners.forEach((x, i) => {
      const p = `metadata.ownerReferences[${i}]`;
      const r = c.object(x, p, ['apiVersion', 'kind', 'name', 'uid', 'controller', 'blockOwnerDeletion']);
      if (r === undefined) return;
      const ref: OwnerReference = { apiVersion: '', kind: '', name: '', uid: '' };
      for (const k of ['apiVersion', 'kind', 'name', 'uid'] as const) {
        const s = c.str(r[k], `${p}.${k}`);
        if (s === undefined || s === '') c.err(`${p}.${k}`, 'Required value');
        else ref[k] = s;
      }
      for (const k of ['controller', 'blockOwnerDeletion'] as const) {
        const b = c.bool(r[k], `${p}.${k}`);
        if (b !== undefined) ref[k] = b;
      }
      meta.ownerReferences!.push(ref);
    });
  }
  return meta;
}

function checkKind(c: Checker, o: Obj, apiVersion: string, kind: string): void {
  if (o.apiVersion !== apiVersion)
    c.err(
      'apiVersion',
      `Unsupported value: ${show(o.apiVersion ?? '')}: supported values: ${show(apiVersion)}`,
    );
  if (o.kind !== kind)
    c.err('kind', `Unsupported value: ${show(o.kind ?? '')}: supported values: ${show(kind)}`);
}

function what(kind: string, meta: ObjectMeta | undefined): string {
  return meta?.name ? `${kind} ${meta.namespace}/${meta.name}` : kind;
}

const PROTOCOLS = ['TCP', 'UDP'] as const;
const SLICE_PORT_FIELDS = ['name', 'protocol', 'port', 'appProtocol'] as const;
const SERVICE_PORT_FIELDS = ['name', 'protocol', 'port', 'targetPort', 'nodePort', 'appProtocol'] as const;
const PROTOCOL_REFUSED = { SCTP: `${NOT_SUPPORTED}: SCTP services are not implemented; use TCP or UDP` };

export interface ParseServiceOptions {
  /** The cluster's NodePort range (default 30000-32767). */
  nodePortRange?: { min: number; max: number };
}

/** Validates a raw Service manifest and returns it typed, with defaults; throws ServiceValidationError. */
export function parseService(raw: unknown, opts: ParseServiceOptions = {}): Service {
  const c = new Checker();
  const top = c.object(raw, '', ['apiVersion', 'kind', 'metadata', 'spec', 'status']);
  if (top === undefined)
    throw new ServiceValidationError('Service', [{ path: '', message: 'must be an object' }]);
  checkKind(c, top, 'v1', 'Service');
  const metadata = parseMeta(c, top.metadata, dns1035LabelErrors);
  const spec = parseServiceSpec(c, top.spec, opts.nodePortRange ?? DEFAULT_NODE_PORT_RANGE);
  const status = parseServiceStatus(c, top.status);
  if (c.issues.length > 0 || metadata === undefined || spec === undefined)
    throw new ServiceValidationError(what('Service', metadata), c.issues);
  const svc: Service = { apiVersion: 'v1', kind: 'Service', metadata, spec };
  if (status !== undefined) svc.status = status;
  return svc;
}

const SPEC_FIELDS = [
  'type',
  'selector',
  'clusterIP',
  'clusterIPs',
  'ipFamilies',
  'ipFamilyPolicy',
  'ports',
  'externalIPs',
  'sessionAffinity',
  'sessionAffinityConfig',
  'externalTrafficPolicy',
  'internalTrafficPolicy',
  'loadBalancerIP',
  'loadBalancerSourceRanges',
  'allocateLoadBalancerNodePorts',
  'publishNotReadyAddresses',
  // Known fields that are refused below.
  'externalName',
  'loadBalancerClass',
  'healthCheckNodePort',
  'trafficDistribution',
] as const;

function parseServiceSpec(
  c: Checker,
  v: unknown,
  range: { min: number; max: number },
): ServiceSpec | undefined {
  const o = c.object(v, 'spec', SPEC_FIELDS);
  if (o === undefined) {
    c.err('spec', 'Required value');
    return undefined;
  }
  c.unsupported(o, 'externalName', 'spec', 'ExternalName services are not implemented');
  c.unsupported(o, 'loadBalancerClass', 'spec', 'the lab assigns every LoadBalancer IP itself');
  c.unsupported(o, 'healthCheckNodePort', 'spec', 'no per-service health check server');
  c.unsupported(o, 'trafficDistribution', 'spec', 'topology-aware routing is not implemented');

  const parsedType = c.enumOf(
    o.type ?? 'ClusterIP',
    'spec.type',
    ['ClusterIP', 'NodePort', 'LoadBalancer'] as const,
    { ExternalName: `${NOT_SUPPORTED}: ExternalName services are not implemented` },
  );
  const type = parsedType ?? 'ClusterIP';
  const isLB = type === 'LoadBalancer';

  const spec: ServiceSpec = {
    type,
    ports: [],
    sessionAffinity: 'None',
    internalTrafficPolicy: 'Cluster',
  };

  const selector = c.stringMap(o.selector, 'spec.selector', labelKeyProblems, labelValueErrors);
  if (selector !== undefined) spec.selector = selector;

  parseClusterIPs(c, o, spec);
  const headless = spec.clusterIP === 'None';
  if (headless && type !== 'ClusterIP')
    c.err('spec.clusterIP', `Invalid value: "None": may not be set to 'None' for ${type} services`);

  // Without a type it is unknown whether ports are needed: report the type alone.
  parsePorts(c, o.ports, spec, headless || parsedType === undefined, range);

  const externalIPs = c.strings(o.externalIPs, 'spec.externalIPs');
  if (externalIPs !== undefined && externalIPs.length > 0) {
    const seen = new Set<string>();
    externalIPs.forEach((ip, i) => {
      const p = `spec.externalIPs[${i}]`;
      checkIp(c, ip, p, true);
      if (seen.has(ip)) c.err(p, `Duplicate value: ${show(ip)}`);
      seen.add(ip);
    });
    spec.externalIPs = externalIPs;
  }

  spec.sessionAffinity =
    c.enumOf(o.sessionAffinity ?? 'None', 'spec.sessionAffinity', ['None', 'ClientIP'] as const) ?? 'None';
  const sac = c.object(o.sessionAffinityConfig, 'spec.sessionAffinityConfig', ['clientIP']);
  if (spec.sessionAffinity === 'None' && sac !== undefined)
    c.err('spec.sessionAffinityConfig', 'Forbidden: must not be set when spec.sessionAffinity is None');
  if (spec.sessionAffinity === 'ClientIP') {
    const cip = sac && c.object(sac.clientIP, 'spec.sessionAffinityConfig.clientIP', ['timeoutSeconds']);
    const p = 'spec.sessionAffinityConfig.clientIP.timeoutSeconds';
    const t = cip ? c.int(cip.timeoutSeconds, p) : undefined;
    if (t !== undefined && (t < 1 || t > MAX_AFFINITY_TIMEOUT_SECONDS))
      c.err(p, `Invalid value: ${t}: must be in 1-${MAX_AFFINITY_TIMEOUT_SECONDS} (seconds)`);
    spec.sessionAffinityConfig = { clientIP: { timeoutSeconds: t ?? DEFAULT_AFFINITY_TIMEOUT_SECONDS } };
  }

  const etp = c.enumOf(o.externalTrafficPolicy, 'spec.externalTrafficPolicy', ['Cluster', 'Local'] as const);
  if (isExternallyAccessible(spec)) spec.externalTrafficPolicy = etp ?? 'Cluster';
  else if (etp !== undefined)
    c.err(
      'spec.externalTrafficPolicy',
      `Invalid value: ${show(etp)}: may only be set for externally-accessible services (NodePort, LoadBalancer, or with externalIPs)`,
    );
  spec.internalTrafficPolicy =
    c.enumOf(o.internalTrafficPolicy ?? 'Cluster', 'spec.internalTrafficPolicy', [
      'Cluster',
      'Local',
    ] as const) ?? 'Cluster';

  const lbOnly = (key: string) => {
    if (!isLB && o[key] !== undefined && o[key] !== null)
      c.err(`spec.${key}`, "Forbidden: may only be used when `type` is 'LoadBalancer'");
  };
  lbOnly('loadBalancerIP');
  lbOnly('loadBalancerSourceRanges');
  lbOnly('allocateLoadBalancerNodePorts');

  const lbIP = c.str(o.loadBalancerIP, 'spec.loadBalancerIP');
  if (
    lbIP !== undefined &&
    lbIP !== '' &&
    checkIp(c, lbIP, 'spec.loadBalancerIP', true) !== undefined &&
    isLB
  )
    spec.loadBalancerIP = lbIP;

  const ranges = c.strings(o.loadBalancerSourceRanges, 'spec.loadBalancerSourceRanges');
  if (ranges !== undefined && ranges.length > 0) {
    ranges.forEach((r, i) => {
      const p = `spec.loadBalancerSourceRanges[${i}]`;
      try {
        if (!r.includes('/')) throw new Error('no prefix length');
        parsePrefix(r);
      } catch {
        c.err(p, `Invalid value: ${show(r)}: must be a CIDR, e.g. 192.0.2.0/24 or 2001:db8::/32`);
      }
    });
    if (isLB) spec.loadBalancerSourceRanges = ranges;
  }

  const alloc = c.bool(o.allocateLoadBalancerNodePorts, 'spec.allocateLoadBalancerNodePorts');
  if (isLB) spec.allocateLoadBalancerNodePorts = alloc ?? true;
  const pnr = c.bool(o.publishNotReadyAddresses, 'spec.publishNotReadyAddresses');
  if (pnr !== undefined) spec.publishNotReadyAddresses = pnr;
  return spec;
}

function parseClusterIPs(c: Checker, o: Obj, spec: ServiceSpec): void {
  let clusterIP = c.str(o.clusterIP, 'spec.clusterIP');
  if (clusterIP === '') clusterIP = undefined;
  const clusterIPs = c.strings(o.clusterIPs, 'spec.clusterIPs')?.filter((s) => s !== '');
  if (clusterIP === undefined && clusterIPs && clusterIPs.length > 0) clusterIP = clusterIPs[0];
  const families: (IpFamily | undefined)[] = [];
  if (clusterIP !== undefined && clusterIP !== 'None') families.push(checkIp(c, clusterIP, 'spec.clusterIP'));
  if (clusterIPs && clusterIPs.length > 0) {
    if (clusterIPs[0] !== clusterIP)
      c.err('spec.clusterIPs[0]', `Invalid value: ${show(clusterIPs[0])}: must be equal to spec.clusterIP`);
    if (clusterIPs.length > 2)
      c.err('spec.clusterIPs', 'Too many: may have at most two items (one per IP family)');
    if (clusterIP === 'None' && clusterIPs.length > 1)
      c.err('spec.clusterIPs', 'Invalid value: "None": must be the only item of a headless service');
    if (clusterIPs.length === 2 && clusterIP !== 'None') {
      const f = checkIp(c, clusterIPs[1]!, 'spec.clusterIPs[1]');
      if (f !== undefined && f === families[0])
        c.err('spec.clusterIPs[1]', 'Invalid value: may specify no more than one IP for each IP family');
      families.push(f);
    }
  }
  if (clusterIP !== undefined) spec.clusterIP = clusterIP;
  if (clusterIPs && clusterIPs.length > 0) spec.clusterIPs = clusterIPs;

  const fams = c.array(o.ipFamilies, 'spec.ipFamilies');
  if (fams !== undefined && fams.length > 0) {
    const names: IpFamilyName[] = [];
    fams.forEach((f, i) => {
      const p = `spec.ipFamilies[${i}]`;
      const n = c.enumOf(f, p, ['IPv4', 'IPv6'] as const);
      if (n === undefined) return;
      if (names.includes(n)) c.err(p, `Duplicate value: ${show(n)}`);
      const ipf = families[i];
      if (ipf !== undefined && FAMILY_NAME[ipf] !== n)
        c.err(p, `Invalid value: ${show(n)}: does not match the family of spec.clusterIPs[${i}]`);
      names.push(n);
    });
    if (fams.length > 2) c.err('spec.ipFamilies', 'Too many: may have at most two items');
    spec.ipFamilies = names;
  }
  const policy = c.enumOf(o.ipFamilyPolicy, 'spec.ipFamilyPolicy', [
    'SingleStack',
    'PreferDualStack',
    'RequireDualStack',
  ] as const);
  if (policy !== undefined) {
    const many = Math.max(families.length, spec.ipFamilies?.length ?? 0) > 1;
    if (policy === 'SingleStack' && many)
      c.err(
        'spec.ipFamilyPolicy',
        'Invalid value: "SingleStack": must be RequireDualStack or PreferDualStack when multiple IP families are specified',
      );
    spec.ipFamilyPolicy = policy;
  }
}

function parsePorts(
  c: Checker,
  v: unknown,
  spec: ServiceSpec,
  portsOptional: boolean,
  range: { min: number; max: number },
): void {
  const list = c.array(v, 'spec.ports') ?? [];
  if (list.length === 0 && !portsOptional) c.err('spec.ports', 'Required value');
  const names = new Set<string>();
  const portProto = new Set<string>();
  const nodePortProto = new Set<string>();
  list.forEach((x, i) => {
    const p = `spec.ports[${i}]`;
    const o = c.object(x, p, SERVICE_PORT_FIELDS);
    if (o === undefined) {
      c.err(p, 'Required value: must be an object');
      return;
    }
    const name = c.str(o.name, p, 'name') ?? '';
    if (name === '') {
      if (list.length > 1)
        c.err(p, 'Required value: every port must be named when there is more than one', 'name');
    } else {
      for (const e of dns1123LabelErrors(name)) c.err(p, `Invalid value: ${show(name)}: ${e}`, 'name');
      if (names.has(name)) c.err(p, `Duplicate value: ${show(name)}`, 'name');
      names.add(name);
    }
    const protocol: Protocol =
      c.enumOf(o.protocol ?? 'TCP', p, PROTOCOLS, PROTOCOL_REFUSED, 'protocol') ?? 'TCP';
    const port = c.int(o.port, p, 'port');
    if (port === undefined) {
      if (o.port === undefined || o.port === null) c.err(p, 'Required value', 'port');
      return;
    }
    if (port < 1 || port > 65535)
      c.err(p, `Invalid value: ${port}: must be between 1 and 65535, inclusive`, 'port');
    const pp = `${port}/${protocol}`;
    if (portProto.has(pp)) c.err(p, `Duplicate value: {"port":${port},"protocol":"${protocol}"}`);
    portProto.add(pp);

    let targetPort: number | string = port;
    const tp = o.targetPort;
    if (typeof tp === 'number') {
      if (!Number.isInteger(tp) || tp < 0 || tp > 65535)
        c.err(`${p}.targetPort`, `Invalid value: ${tp}: must be between 1 and 65535, inclusive`);
      else if (tp !== 0) targetPort = tp;
    } else if (typeof tp === 'string') {
      const problems = portNameErrors(tp);
      if (problems.length > 0) c.err(`${p}.targetPort`, `Invalid value: ${show(tp)}: ${problems.join('; ')}`);
      else targetPort = tp;
    } else if (tp !== undefined && tp !== null) {
      c.err(`${p}.targetPort`, `Invalid value: ${show(tp)}: must be a port number or a port name`);
    }

    const sp: ServicePort = { name, protocol, port, targetPort };
    const nodePort = c.int(o.nodePort, p, 'nodePort');
    if (nodePort !== undefined && nodePort !== 0) {
      if (spec.type === 'ClusterIP')
        c.err(`${p}.nodePort`, "Forbidden: may not be used when `type` is 'ClusterIP'");
      else if (nodePort < range.min || nodePort > range.max)
        c.err(
          `${p}.nodePort`,
          `Invalid value: ${nodePort}: must be in the NodePort range ${range.min}-${range.max}`,
        );
      const np = `${nodePort}/${protocol}`;
      if (nodePortProto.has(np)) c.err(`${p}.nodePort`, `Duplicate value: ${nodePort}`);
      nodePortProto.add(np);
      sp.nodePort = nodePort;
    }
    const appProtocol = c.str(o.appProtocol, p, 'appProtocol');
    if (appProtocol !== undefined) sp.appProtocol = appProtocol;
    spec.ports.push(sp);
  });
}

function parseServiceStatus(c: Checker, v: unknown): ServiceStatus | undefined {
  const o = c.object(v, 'status', ['loadBalancer', 'conditions']);
  if (o === undefined) return undefined;
  const lb = c.object(o.loadBalancer, 'status.loadBalancer', ['ingress']);
  if (lb === undefined) return {};
  const list = c.array(lb.ingress, 'status.loadBalancer.ingress');
  if (list === undefined) return { loadBalancer: {} };
  const ingress: LoadBalancerIngress[] = [];
  list.forEach((x, i) => {
    const p = `status.loadBalancer.ingress[${i}]`;
    const e = c.object(x, p, ['ip', 'ipMode', 'hostname', 'ports']);
    if (e === undefined) return;
    c.unsupported(e, 'hostname', p, 'only IP ingress points are programmed');
    c.unsupported(e, 'ports', p, 'ingress port status is not used');
    const ip = c.str(e.ip, `${p}.ip`);
    if (ip === undefined || ip === '') {
      c.err(`${p}.ip`, 'Required value');
      return;
    }
    if (checkIp(c, ip, `${p}.ip`, true) === undefined) return;
    const entry: LoadBalancerIngress = { ip };
    const mode = c.enumOf(e.ipMode, `${p}.ipMode`, ['VIP'] as const, {
      Proxy: `${NOT_SUPPORTED}: the load balancer IP is always handled on the node (VIP)`,
    });
    if (mode !== undefined) entry.ipMode = mode;
    ingress.push(entry);
  });
  return { loadBalancer: { ingress } };
}

// ---- EndpointSlice -----------------------------------------------------------------------------

const MAX_ENDPOINTS = 1000;
const MAX_ADDRESSES = 100;
const MAX_PORTS = 20000;

/** Validates a raw EndpointSlice manifest and returns it typed; throws ServiceValidationError. */
export function parseEndpointSlice(raw: unknown): EndpointSlice {
  const c = new Checker();
  const top = c.object(raw, '', ['apiVersion', 'kind', 'metadata', 'addressType', 'endpoints', 'ports']);
  if (top === undefined)
    throw new ServiceValidationError('EndpointSlice', [{ path: '', message: 'must be an object' }]);
  checkKind(c, top, 'discovery.k8s.io/v1', 'EndpointSlice');
  const metadata = parseMeta(c, top.metadata, dns1123SubdomainErrors);
  if (metadata !== undefined && !metadata.labels?.[SERVICE_NAME_LABEL])
    c.err(
      `metadata.labels[${SERVICE_NAME_LABEL}]`,
      'Required value: names the Service this slice belongs to',
    );
  if (top.addressType === undefined || top.addressType === null) c.err('addressType', 'Required value');
  const addressType = c.enumOf(top.addressType, 'addressType', ['IPv4', 'IPv6'] as const, {
    FQDN: `${NOT_SUPPORTED}: FQDN endpoints cannot be load-balanced in eBPF`,
  });
  const family: IpFamily | undefined = addressType === 'IPv4' ? 4 : addressType === 'IPv6' ? 6 : undefined;

  const endpoints: Endpoint[] = [];
  const eps = c.array(top.endpoints, 'endpoints') ?? [];
  if (eps.length > MAX_ENDPOINTS)
    c.err('endpoints', `Too many: ${eps.length}: must have at most ${MAX_ENDPOINTS} items`);
  eps.forEach((x, i) => {
    const ep = parseEndpoint(c, x, `endpoints[${i}]`, family);
    if (ep) endpoints.push(ep);
  });

  const ports: EndpointPort[] = [];
  const list = c.array(top.ports, 'ports') ?? [];
  if (list.length > MAX_PORTS)
    c.err('ports', `Too many: ${list.length}: must have at most ${MAX_PORTS} items`);
  const names = new Set<string>();
  list.forEach((x, i) => {
    const p = `ports[${i}]`;
    const o = c.object(x, p, SLICE_PORT_FIELDS);
    if (o === undefined) return;
    const name = c.str(o.name, p, 'name') ?? '';
    if (name !== '')
      for (const e of dns1123LabelErrors(name)) c.err(p, `Invalid value: ${show(name)}: ${e}`, 'name');
    if (names.has(name)) c.err(p, `Duplicate value: ${show(name)}`, 'name');
    names.add(name);
    const protocol: Protocol =
      c.enumOf(o.protocol ?? 'TCP', p, PROTOCOLS, PROTOCOL_REFUSED, 'protocol') ?? 'TCP';
    const ep: EndpointPort = { name, protocol };
    const port = c.int(o.port, p, 'port');
    if (port !== undefined) {
      if (port < 1 || port > 65535)
        c.err(p, `Invalid value: ${port}: must be between 1 and 65535, inclusive`, 'port');
      ep.port = port;
    }
    const appProtocol = c.str(o.appProtocol, p, 'appProtocol');
    if (appProtocol !== undefined) ep.appProtocol = appProtocol;
    ports.push(ep);
  });

  if (c.issues.length > 0 || metadata === undefined || addressType === undefined)
    throw new ServiceValidationError(what('EndpointSlice', metadata), c.issues);
  return {
    apiVersion: 'discovery.k8s.io/v1',
    kind: 'EndpointSlice',
    metadata,
    addressType,
    endpoints,
    ports,
  };
}

const TARGET_REF_FIELDS = [
  'kind',
  'namespace',
  'name',
  'uid',
  'apiVersion',
  'resourceVersion',
  'fieldPath',
] as const;

const ENDPOINT_FIELDS = [
  'addresses',
  'conditions',
  'hostname',
  'nodeName',
  'zone',
  'targetRef',
  'hints',
  'deprecatedTopology',
] as const;
const CONDITION_FIELDS = ['ready', 'serving', 'terminating'] as const;

function parseEndpoint(
  c: Checker,
  v: unknown,
  p: string,
  family: IpFamily | undefined,
): Endpoint | undefined {
  const o = c.object(v, p, ENDPOINT_FIELDS);
  if (o === undefined) return undefined;
  c.unsupported(o, 'hints', p, 'topology-aware routing is not implemented');
  c.unsupported(o, 'deprecatedTopology', p, 'topology-aware routing is not implemented');
  const addresses = c.strings(o.addresses, p, 'addresses') ?? [];
  if (addresses.length === 0) c.err(p, 'Required value: must have at least 1 item', 'addresses');
  if (addresses.length > MAX_ADDRESSES)
    c.err(p, `Too many: ${addresses.length}: must have at most ${MAX_ADDRESSES} items`, 'addresses');
  for (let j = 0; j < addresses.length; j++) {
    const a = addresses[j]!;
    const f = ipv4Value(a) !== undefined ? 4 : checkIp(c, a, `${p}.addresses`, false, j);
    if (f !== undefined && family !== undefined && f !== family)
      c.err(`${p}.addresses`, `Invalid value: ${show(a)}: must be a valid ${FAMILY_NAME[family]} address`, j);
  }
  const ep: Endpoint = { addresses, conditions: {} };
  const cond = c.object(o.conditions, p, CONDITION_FIELDS, 'conditions');
  if (cond !== undefined)
    for (const k of CONDITION_FIELDS) {
      const x = cond[k];
      const b = typeof x === 'boolean' || x === undefined ? x : c.bool(x, `${p}.conditions`, k);
      if (b !== undefined) ep.conditions[k] = b;
    }
  const hostname = c.str(o.hostname, p, 'hostname');
  if (hostname !== undefined) {
    for (const e of dns1123LabelErrors(hostname))
      c.err(p, `Invalid value: ${show(hostname)}: ${e}`, 'hostname');
    ep.hostname = hostname;
  }
  const nodeName = c.str(o.nodeName, p, 'nodeName');
  if (nodeName !== undefined) {
    for (const e of knownValid(validNodeNames, nodeName, dns1123SubdomainErrors))
      c.err(p, `Invalid value: ${show(nodeName)}: ${e}`, 'nodeName');
    ep.nodeName = nodeName;
  }
  const zone = c.str(o.zone, p, 'zone');
  if (zone !== undefined) ep.zone = zone;
  const ref = c.object(o.targetRef, p, TARGET_REF_FIELDS, 'targetRef');
  if (ref !== undefined) {
    const r: ObjectReference = {};
    for (const k of TARGET_REF_FIELDS) {
      const x = ref[k];
      const s = typeof x === 'string' ? x : c.str(x, `${p}.targetRef`, k);
      if (s !== undefined) r[k] = s;
    }
    ep.targetRef = r;
  }
  return ep;
}
