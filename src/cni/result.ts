/** Builder and validation of CNI ADD results (spec 1.0.0), and conversion to older result versions. */
import { isIP } from 'node:net';
import {
  CNI_VERSION,
  type CniDns,
  type CniInterface,
  type CniIpConfig,
  type CniResult,
  type CniRoute,
} from './types.js';

export interface ResultAddress {
  /** Bare pod address, e.g. "10.200.0.5". */
  ip: string;
  /** Router (gateway) address. */
  gateway: string;
  /** Prefix length of the address as configured in the pod (default /32 or /128). */
  prefixLength?: number;
}

export interface AddResultInput {
  /** Host-side interface (index 0, no sandbox). */
  hostInterface: { name: string; mac: string };
  /** Pod-side interface (index 1, inside `sandbox`). */
  podInterface: { name: string; mac: string; sandbox: string; mtu?: number };
  ipv4?: ResultAddress;
  ipv6?: ResultAddress;
  /** Extra routes; default routes via the gateways are added automatically unless `defaultRoutes` is false. */
  routes?: CniRoute[];
  defaultRoutes?: boolean;
  dns?: CniDns;
}

/** Build a 1.0.0 ADD result: interfaces [host, pod], ips bound to the pod interface, default routes. */
export function buildAddResult(input: AddResultInput): CniResult {
  const pod: CniInterface = {
    name: input.podInterface.name,
    mac: input.podInterface.mac,
    sandbox: input.podInterface.sandbox,
  };
  if (input.podInterface.mtu) pod.mtu = input.podInterface.mtu;
  const result: CniResult = {
    cniVersion: CNI_VERSION,
    interfaces: [{ name: input.hostInterface.name, mac: input.hostInterface.mac }, pod],
    ips: [],
    routes: [],
    dns: input.dns ? { ...input.dns } : {},
  };
  for (const [a, bits, any] of [
    [input.ipv4, 32, '0.0.0.0/0'],
    [input.ipv6, 128, '::/0'],
  ] as const) {
    if (!a) continue;
    result.ips!.push({ address: `${a.ip}/${a.prefixLength ?? bits}`, gateway: a.gateway, interface: 1 });
    if (input.defaultRoutes !== false) result.routes!.push({ dst: any, gw: a.gateway });
  }
  if (input.routes) result.routes!.push(...input.routes.map((r) => ({ ...r })));
  return result;
}

function isCidr(s: unknown): s is string {
  if (typeof s !== 'string') return false;
  const i = s.indexOf('/');
  if (i < 0) return false;
  const fam = isIP(s.slice(0, i));
  const p = s.slice(i + 1);
  return fam !== 0 && /^\d{1,3}$/.test(p) && Number(p) <= (fam === 4 ? 32 : 128);
}

function cidrFamily(s: string): number {
  return isIP(s.slice(0, s.indexOf('/')));
}

const MAC = /^([0-9a-fA-F]{2}:){5}[0-9a-fA-F]{2}$/;

/** Problems with a result as spec 1.0.0 defines it; empty when valid. */
export function validateResult(r: unknown): string[] {
  const errs: string[] = [];
  if (r === null || typeof r !== 'object' || Array.isArray(r)) return ['result must be an object'];
  const res = r as Record<string, unknown>;
  if (typeof res.cniVersion !== 'string') errs.push('cniVersion must be a string');
  const ifaces = res.interfaces;
  let nIf = 0;
  if (ifaces !== undefined) {
    if (!Array.isArray(ifaces)) errs.push('interfaces must be an array');
    else {
      nIf = ifaces.length;
      for (const [k, i] of ifaces.entries()) {
        const o = i as Record<string, unknown>;
        if (!o || typeof o !== 'object') {
          errs.push(`interfaces[${k}] must be an object`);
          continue;
        }
        if (typeof o.name !== 'string' || o.name === '')
          errs.push(`interfaces[${k}].name must be a non-empty string`);
        if (o.mac !== undefined && (typeof o.mac !== 'string' || !MAC.test(o.mac))) {
          errs.push(`interfaces[${k}].mac is not a MAC address`);
        }
        if (o.sandbox !== undefined && typeof o.sandbox !== 'string')
          errs.push(`interfaces[${k}].sandbox must be a string`);
        if (o.mtu !== undefined && !Number.isInteger(o.mtu))
          errs.push(`interfaces[${k}].mtu must be an integer`);
      }
    }
  }
  if (res.ips !== undefined) {
    if (!Array.isArray(res.ips)) errs.push('ips must be an array');
    else {
      for (const [k, i] of (res.ips as unknown[]).entries()) {
        const o = i as CniIpConfig;
        if (!o || typeof o !== 'object') {
          errs.push(`ips[${k}] must be an object`);
          continue;
        }
        if (!isCidr(o.address)) {
          errs.push(`ips[${k}].address ${JSON.stringify(o.address)} is not a CIDR`);
          continue;
        }
        if (o.gateway !== undefined && isIP(o.gateway) !== cidrFamily(o.address)) {
          errs.push(`ips[${k}].gateway ${JSON.stringify(o.gateway)} is not an address of the same family`);
        }
        if (
          o.interface !== undefined &&
          (!Number.isInteger(o.interface) || o.interface < 0 || o.interface >= nIf)
        ) {
          errs.push(`ips[${k}].interface ${o.interface} does not index interfaces (length ${nIf})`);
        }
      }
    }
  }
  if (res.routes !== undefined) {
    if (!Array.isArray(res.routes)) errs.push('routes must be an array');
    else {
      for (const [k, i] of (res.routes as unknown[]).entries()) {
        const o = i as CniRoute;
        if (!o || !isCidr(o.dst)) {
          errs.push(`routes[${k}].dst is not a CIDR`);
          continue;
        }
        if (o.gw !== undefined && isIP(o.gw) !== cidrFamily(o.dst))
          errs.push(`routes[${k}].gw is not an address of the same family`);
      }
    }
  }
  if (res.dns !== undefined) {
    const d = res.dns as Record<string, unknown>;
    if (!d || typeof d !== 'object') errs.push('dns must be an object');
    else {
      for (const k of ['nameservers', 'search', 'options'] as const) {
        const v = d[k];
        if (v !== undefined && (!Array.isArray(v) || v.some((x) => typeof x !== 'string')))
          errs.push(`dns.${k} must be an array of strings`);
      }
      if (d.domain !== undefined && typeof d.domain !== 'string') errs.push('dns.domain must be a string');
    }
  }
  return errs;
}

/**
 * Express a 1.0.0 result in the version the runtime asked for: 1.0.0 as is; 0.3.x/0.4.0 add the
 * per-IP "version" field those versions require.
 */
export function convertResult(r: CniResult, cniVersion: string): CniResult {
  const out: CniResult = { ...r, cniVersion };
  if (cniVersion.startsWith('0.')) {
    out.ips = (r.ips ?? []).map((ip) => ({ ...ip, version: cidrFamily(ip.address) === 6 ? '6' : '4' }));
  } else if (r.ips) {
    out.ips = r.ips.map(({ version: _v, ...rest }) => rest);
  }
  return out;
}
