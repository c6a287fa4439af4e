/**
 * In-memory stand-ins for the node's BPF maps and program loader, for driving the agent's cells
 * without root. They behave as the real targets do (keys normalised the same way, a trie per
 * endpoint, pinned programs outliving the agent) and can be told to fail writes.
 */
import type {
  DatapathTargets,
  LxcInfo,
  PolicyMapTarget,
  ProgramTarget,
} from '../../../src/endpoint/datapath-state.js';
import type { EndpointRecord } from '../../../src/endpoint/types.js';
import type { IpcacheInfo } from '../../../src/ipcache/ipcache.js';
import { normalizePrefix } from '../../../src/ipcache/ipcache.js';
import type { MapDiff, MapEntry } from '../../../src/policy/index.js';
import { policyKeyId } from '../../../src/policy/mapstate.js';
import type {
  LbAffinityMatchRow,
  LbBackendRow,
  LbMaglevRow,
  LbRevNatRow,
  LbServiceRow,
  LbSourceRangeRow,
} from '../../../src/service/lbstate.js';
import type { KeyedMap } from '../../../src/statedb/map-target.js';

export class FakeMap<V> implements KeyedMap<V> {
  readonly data = new Map<string, V>();
  /** Writes that will fail before one succeeds again. */
  failWrites = 0;
  writes = 0;

  constructor(private readonly norm: (k: string) => string = (k) => k) {}

  set(key: string, value: V): void {
    if (this.failWrites > 0) {
      this.failWrites--;
      throw new Error(`update ${key}: no space left on device (injected)`);
    }
    this.writes++;
    this.data.set(this.norm(key), value);
  }
  delete(key: string): void {
    this.data.delete(this.norm(key));
  }
  keys(): Iterable<string> {
    return this.data.keys();
  }
}

export class FakePolicyMaps implements PolicyMapTarget {
  readonly tries = new Map<number, Map<number, MapEntry>>();
  replaced = 0;

  endpoints(): number[] {
    return [...this.tries.keys()];
  }
  has(id: number): boolean {
    return this.tries.has(id);
  }
  replace(id: number, entries: Iterable<MapEntry>): void {
    this.replaced++;
    this.tries.set(id, new Map([...entries].map((e) => [policyKeyId(e.key), e])));
  }
  apply(id: number, diff: MapDiff): void {
    const t = this.tries.get(id) ?? new Map<number, MapEntry>();
    for (const e of diff.upserts) t.set(policyKeyId(e.key), e);
    for (const k of diff.deletes) t.delete(policyKeyId(k));
    this.tries.set(id, t);
  }
  dump(id: number): MapEntry[] | undefined {
    const t = this.tries.get(id);
    return t ? [...t.values()] : undefined;
  }
  delete(id: number): boolean {
    return this.tries.delete(id);
  }
}

export class FakePrograms implements ProgramTarget {
  /** Endpoint ID → identity its programs were loaded with (pinned: survives agent restarts). */
  readonly attached = new Map<number, number>();
  /** For each attach: whether the endpoint's policy trie existed at that moment. */
  readonly policyPresentAtAttach: boolean[] = [];

  constructor(private readonly policy: FakePolicyMaps) {}

  preload(): Promise<unknown> {
    return Promise.resolve({});
  }
  discard(): void {}
  async attach(ep: EndpointRecord): Promise<void> {
    this.policyPresentAtAttach.push(this.policy.has(ep.id));
    this.attached.set(ep.id, ep.identity);
  }
  detach(id: number): void {
    this.attached.delete(id);
  }
  pinned(): number[] {
    return [...this.attached.keys()];
  }
}

export interface FakeLb {
  services: FakeMap<LbServiceRow>;
  backends: FakeMap<LbBackendRow>;
  revNat: FakeMap<LbRevNatRow>;
  maglev: FakeMap<LbMaglevRow>;
  affinityMatch: FakeMap<LbAffinityMatchRow>;
  sourceRange: FakeMap<LbSourceRangeRow>;
  held(): { services: LbServiceRow[]; backends: LbBackendRow[] };
}

export interface FakeDatapath extends DatapathTargets {
  lb: FakeLb;
  ipcache: FakeMap<IpcacheInfo>;
  lxc: FakeMap<LxcInfo>;
  policy: FakePolicyMaps;
  programs: FakePrograms;
  interfaces: Set<string>;
}

export function fakeDatapath(): FakeDatapath {
  const policy = new FakePolicyMaps();
  const interfaces = new Set<string>();
  const lb = {
    services: new FakeMap<LbServiceRow>(),
    backends: new FakeMap<LbBackendRow>(),
    revNat: new FakeMap<LbRevNatRow>(),
    maglev: new FakeMap<LbMaglevRow>(),
    affinityMatch: new FakeMap<LbAffinityMatchRow>(),
    sourceRange: new FakeMap<LbSourceRangeRow>(),
  };
  return {
    lb: {
      ...lb,
      held: () => ({
        services: [...lb.services.data.values()].filter((r) => r.key.backendSlot === 0),
        backends: [...lb.backends.data.values()],
      }),
    },
    ipcache: new FakeMap<IpcacheInfo>(normalizePrefix),
    lxc: new FakeMap<LxcInfo>(),
    policy,
    programs: new FakePrograms(policy),
    interfaces,
    interfaceExists: (name) => interfaces.has(name),
  };
}
