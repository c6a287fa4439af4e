/** `cilium-ts dns serve|resolv-conf`: the cluster DNS server (a lab system pod runs it) and pods' resolv.conf. */
import type { Command } from 'commander';
import { CliError } from './errors.js';

const collect = (v: string, prev: string[]) => [...prev, v];

function intFlag(flag: string, v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  if (!/^\d+$/.test(v)) throw new CliError(`${flag}: "${v}" is not a non-negative integer`);
  return Number(v);
}

export function registerDnsCommands(program: Command): void {
  const dns = program
    .command('dns')
    .description('cluster DNS: the server for the cluster zone, pods’ resolv.conf');
  dns
    .command('serve')
    .description(
      'serve the cluster zone over UDP and TCP from a records file the lab rewrites (followed without restart)',
    )
    .requiredOption(
      '--listen <ip:port>',
      'address to serve on, repeatable (port 53 if left out)',
      collect,
      [],
    )
    .requiredOption('--records <file>', 'JSON records file (services, endpoints, pods)')
    .option('--zone <domain>', 'cluster domain', 'cluster.local')
    .option('--ttl <seconds>', 'TTL of the zone’s answers', '30')
    .option(
      '--upstream <ip:port>',
      'forward names outside the zone there, repeatable (none: REFUSED)',
      collect,
      [],
    )
    .option(
      '--pod-records <mode>',
      'answers for <dashed-ip>.<ns>.pod.<zone>: verified|insecure|disabled',
      'verified',
    )
    .option('--log-queries', 'print one line per query')
    .action(
      async (o: {
        listen: string[];
        records: string;
        zone: string;
        ttl: string;
        upstream: string[];
        podRecords: string;
        logQueries?: boolean;
      }) => {
        const { formatHostPort, serveDnsFromFile } = await import('../dns/index.js');
        const log = (l: string) => process.stdout.write(`${l}\n`);
        const server = await serveDnsFromFile({
          listen: o.listen,
          recordsFile: o.records,
          zone: o.zone,
          ttl: intFlag('--ttl', o.ttl)!,
          upstreams: o.upstream,
          podRecords: o.podRecords as 'verified',
          log,
          ...(o.logQueries ? { queryLog: log } : {}),
        });
        log(
          `serving ${server.zone} on ${server.addresses.map(formatHostPort).join(', ')} (udp, tcp) from ${o.records}`,
        );
        const stop = () => void server.close().then(() => process.exit(0));
        process.on('SIGTERM', stop);
        process.on('SIGINT', stop);
      },
    );
  dns
    .command('resolv-conf')
    .description('print the resolv.conf of a pod in NAMESPACE (search path, nameserver, ndots:5)')
    .requiredOption('--namespace <ns>', 'the pod’s namespace')
    .requiredOption('--nameserver <ip>', 'the cluster DNS address, repeatable', collect, [])
    .option('--zone <domain>', 'cluster domain', 'cluster.local')
    .option('--ndots <n>', 'options ndots', '5')
    .action(async (o: { namespace: string; nameserver: string[]; zone: string; ndots: string }) => {
      const { podResolvConf } = await import('../dns/index.js');
      process.stdout.write(
        podResolvConf({
          namespace: o.namespace,
          nameservers: o.nameserver,
          zone: o.zone,
          ndots: intFlag('--ndots', o.ndots)!,
        }),
      );
    });
}
