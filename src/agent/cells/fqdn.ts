/**
 * FQDN policy state: the cache of DNS answers the proxy let through, the identities of the IPs
 * `toFQDNs` selectors want (src/fqdn), claimed in the ipcache as one owner, and `state/fqdn.json`
 * so that a restarted agent claims the same IPs again before the maps' first full pass (an IP
 * allowed before the restart stays allowed). This cell starts before the endpoints cell, so the
 * restored identities are claimed before unclaimed ones are freed.
 */
import { type FqdnCacheEntry, routes } from '../../api/types.js';
import { FqdnCache, type FqdnCacheState, FqdnIdentities } from '../../fqdn/index.js';
import { cell, type Token, token } from '../../hive/hive.js';
import { fqdnPatterns } from '../../policy/index.js';
import {
  type AgentCellExtras,
  ConfigT,
  IdentitiesT,
  IpcacheT,
  LogT,
  PolicyT,
  SerialT,
  StateT,
} from './tokens.js';

export const FQDN_IPCACHE_OWNER = 'fqdn';

export interface FqdnService {
  readonly cache: FqdnCache;
  readonly identities: FqdnIdentities;
  /**
   * Brings identities and ipcache claims in line with the cache and the policies' toFQDNs
   * selectors (synchronous; the endpoints follow through the selector cache). Run it serially.
   */
  apply(): void;
}

export const FqdnT: Token<FqdnService> = token('fqdn');

/** Seconds between checks for expired IPs when nothing expires sooner. */
const GC_MAX_INTERVAL_MS = 60_000;

export const fqdnCell = cell<FqdnService, AgentCellExtras>({
  name: 'fqdn',
  needs: [ConfigT, IdentitiesT, IpcacheT, PolicyT, StateT, SerialT, LogT],
  provides: FqdnT,
  build: (get) => {
    const { allocator } = get(IdentitiesT);
    const { meta } = get(IpcacheT);
    const policy = get(PolicyT);
    const serial = get(SerialT);
    const log = get(LogT).child({ subsys: 'fqdn' });
    const file = get(StateT).file<FqdnCacheState>('fqdn');
    const cache = new FqdnCache({ minTtl: get(ConfigT).fqdnMinTtlSeconds });
    const identities = new FqdnIdentities(allocator);
    let saving = false;
    let gcTimer: NodeJS.Timeout | undefined;
    let stopped = false;

    const save = () => {
      if (saving) return;
      saving = true;
      // One write for a burst of answers; the file is a restart aid, the maps are the truth.
      setImmediate(() => {
        saving = false;
        file.save(cache.export()).catch((err) => log.warn({ err }, 'saving the fqdn cache failed'));
      });
    };
    const scheduleGc = () => {
      if (stopped) return;
      clearTimeout(gcTimer);
      const next = cache.nextExpiry();
      const wait = next === undefined ? GC_MAX_INTERVAL_MS : Math.min(GC_MAX_INTERVAL_MS, next - Date.now());
      gcTimer = setTimeout(
        () => {
          void serial(async () => {
            if (cache.gc(Date.now())) svc.apply();
            else scheduleGc();
          }).catch((err) => log.warn({ err }, 'fqdn cache gc failed'));
        },
        Math.max(100, wait),
      );
      gcTimer.unref();
    };

    const svc: FqdnService = {
      cache,
      identities,
      apply: () => {
        identities.sync(fqdnPatterns(policy.repo.rules()), cache.namesToIps(Date.now()));
        meta.replaceOwner(FQDN_IPCACHE_OWNER, 'generated', identities.ipcacheEntries());
        save();
        scheduleGc();
      },
    };
    // A policy adding or dropping a toFQDNs selector changes which IPs get identities.
    policy.onChanged(async () => svc.apply());

    return {
      provide: svc,
      start: async () => {
        let saved: FqdnCacheState | undefined;
        try {
          saved = await file.load();
          if (saved) cache.restore(saved);
        } catch (err) {
          log.warn({ err }, 'the saved fqdn cache is unreadable; starting empty');
        }
        cache.gc(Date.now());
        svc.apply();
      },
      stop: () => {
        stopped = true;
        clearTimeout(gcTimer);
      },
      routes: (r) => {
        r.route(routes.fqdnCache, (): FqdnCacheEntry[] =>
          cache.rows().map((row) => ({
            endpoint: row.endpointId,
            source: 'lookup',
            name: row.name,
            lookupTime: new Date(row.lookupTime).toISOString(),
            ips: row.ips.map((i) => ({ ip: i.ip, ttl: i.ttl, expiresAt: new Date(i.expires).toISOString() })),
          })),
        );
      },
    };
  },
});
