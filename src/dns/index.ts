/**
 * Cluster DNS: a Kubernetes-style DNS server for the cluster zone (src/dns/zone.ts answers,
 * src/dns/server.ts serves UDP and TCP), its records fed from a file the lab rewrites
 * (src/dns/records-file.ts), and pods' resolv.conf (src/dns/resolv-conf.ts).
 */
import { watchRecordsFile } from './records-file.js';
import { type DnsServer, type DnsServerOptions, startDnsServer } from './server.js';

export * from './address.js';
export * from './errors.js';
export * from './from-services.js';
export * from './records.js';
export * from './records-file.js';
export * from './resolv-conf.js';
export * from './server.js';
export * from './zone.js';

export interface ServeDnsFromFileOptions extends Omit<DnsServerOptions, 'source'> {
  /** The records file (JSON of DnsRecords) the lab rewrites with writeRecordsFile. */
  recordsFile: string;
  /** How often the file is checked besides the watch (default 1000 ms). */
  pollMs?: number;
}

/** A DNS server answering from a records file it follows: what `cilium-ts dns serve` runs. */
export async function serveDnsFromFile(o: ServeDnsFromFileOptions): Promise<DnsServer> {
  const { recordsFile, pollMs, ...rest } = o;
  const source = watchRecordsFile(recordsFile, {
    ...(pollMs !== undefined ? { pollMs } : {}),
    ...(o.log ? { log: o.log } : {}),
  });
  try {
    const server = await startDnsServer({ ...rest, source });
    return {
      addresses: server.addresses,
      zone: server.zone,
      close: async () => {
        source.close();
        await server.close();
      },
    };
  } catch (e) {
    source.close();
    throw e;
  }
}
