/** `cilium-ts fqdn cache list`: the names endpoints resolved through the DNS proxy, and their IPs. */
import type { Command } from 'commander';
import { type FqdnCacheEntry, routes } from '../api/types.js';
import { CliError } from './errors.js';
import { formatColumns, printJson } from './output.js';
import { targetOf } from './target.js';

/** Rows as upstream's `cilium fqdn cache list` prints them: one per name and expiry, IPs joined. */
export function formatFqdnCache(entries: readonly FqdnCacheEntry[], now = Date.now()): string {
  const rows: string[][] = [];
  for (const e of entries) {
    const byExpiry = new Map<string, { ttl: number; ips: string[] }>();
    for (const i of e.ips) {
      const g = byExpiry.get(i.expiresAt) ?? { ttl: i.ttl, ips: [] };
      g.ips.push(i.ip);
      byExpiry.set(i.expiresAt, g);
    }
    for (const [expiresAt, g] of [...byExpiry].sort((a, b) => (a[0] < b[0] ? -1 : 1))) {
      const left = Math.max(0, Math.round((Date.parse(expiresAt) - now) / 1000));
      rows.push([
        String(e.endpoint),
        e.source,
        e.name,
        `${g.ttl} (${left}s left)`,
        expiresAt,
        g.ips.join(','),
      ]);
    }
  }
  return formatColumns(['Endpoint', 'Source', 'FQDN', 'TTL', 'ExpirationTime', 'IPs'], rows);
}

export function registerFqdnCommands(program: Command): void {
  const fqdn = program.command('fqdn').description('DNS-based policy (toFQDNs) state');
  fqdn
    .command('cache')
    .description('the FQDN cache')
    .command('list')
    .description('names endpoints resolved through the DNS proxy, with their IPs and TTLs')
    .option('-o, --output <format>', 'table|json', 'table')
    .option('--endpoint <id>', 'only this endpoint')
    .option('--name <fqdn>', 'only this name')
    .action(async (o: { output: string; endpoint?: string; name?: string }, cmd: Command) => {
      if (o.output !== 'table' && o.output !== 'json')
        throw new CliError(`--output: expected table or json, got ${JSON.stringify(o.output)}`);
      if (o.endpoint !== undefined && !/^\d+$/.test(o.endpoint))
        throw new CliError(`--endpoint: expected an endpoint ID, got ${JSON.stringify(o.endpoint)}`);
      const { AgentApi } = await import('../api/client.js');
      const api = new AgentApi(targetOf(cmd).agentSocket);
      const wantName = o.name === undefined ? undefined : o.name.toLowerCase().replace(/\.?$/, '.');
      const rows = (await api.call(routes.fqdnCache, {})).filter(
        (e) =>
          (o.endpoint === undefined || e.endpoint === Number(o.endpoint)) &&
          (wantName === undefined || e.name === wantName),
      );
      if (o.output === 'json') return printJson(rows);
      process.stdout.write(formatFqdnCache(rows));
    });
}
