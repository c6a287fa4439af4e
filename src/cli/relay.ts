/**
 * `cilium-ts hubble relay`: serve the Observer API for every node of the cluster (src/hubble/relay),
 * the nodes found through a node's Peer service or given with --peer. registerRelayCommands adds
 * `relay` to the program's `hubble` command (creating it when missing), so it can be registered
 * after registerHubbleCommands.
 */
import { Command } from 'commander';
import type { Peer } from '../hubble/peer.js';
import type { RelayOptions } from '../hubble/relay/server.js';
import { CliError } from './errors.js';

const collect = (v: string, prev: string[]) => [...prev, v];

const DURATION_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** `500ms`, `1s`, `1m30s` → milliseconds; the error names the flag. */
export function parseDurationFlag(flag: string, v: string): number {
  if (!/^(\d+(\.\d+)?(ms|s|m|h))+$/.test(v))
    throw new CliError(`${flag}: "${v}" is not a duration (e.g. 500ms, 1s, 2m)`);
  let ms = 0;
  for (const m of v.matchAll(/(\d+(?:\.\d+)?)(ms|s|m|h)/g)) ms += Number(m[1]) * DURATION_MS[m[2]!]!;
  if (!(ms > 0)) throw new CliError(`${flag}: must be more than 0`);
  return ms;
}

function parsePeerFlag(v: string): Peer {
  const eq = v.indexOf('=');
  if (eq <= 0 || eq === v.length - 1)
    throw new CliError(`--peer: "${v}" is not NAME=ADDRESS (e.g. node1=unix:///run/hubble.sock)`);
  return { name: v.slice(0, eq), address: v.slice(eq + 1) };
}

function checkListen(v: string): string {
  const i = v.lastIndexOf(':');
  const port = v.slice(i + 1);
  if (i <= 0 || !/^\d+$/.test(port) || Number(port) > 65535)
    throw new CliError(`--listen: "${v}" is not HOST:PORT (e.g. 127.0.0.1:4245)`);
  return v;
}

interface RelayFlags {
  listen: string;
  unixSocket?: string;
  peerService: string[];
  peer: string[];
  sortBufferLenMax: string;
  sortBufferDrainTimeout: string;
  errorAggregationWindow: string;
  retryTimeout: string;
}

/** The relay's options from the command's flags (checked; the error names the flag). */
export function relayOptionsFromFlags(o: RelayFlags): RelayOptions {
  if (o.peerService.length === 0 && o.peer.length === 0)
    throw new CliError('give --peer-service ADDRESS (a node’s Hubble server) or --peer NAME=ADDRESS');
  if (!/^\d+$/.test(o.sortBufferLenMax) || Number(o.sortBufferLenMax) === 0)
    throw new CliError(`--sort-buffer-len-max: "${o.sortBufferLenMax}" is not a positive integer`);
  const opts: RelayOptions = {
    listen: checkListen(o.listen),
    peerService: o.peerService,
    peers: o.peer.map(parsePeerFlag),
    sortBufferMaxLen: Number(o.sortBufferLenMax),
    sortBufferDrainTimeoutMs: parseDurationFlag('--sort-buffer-drain-timeout', o.sortBufferDrainTimeout),
    errorAggregationWindowMs: parseDurationFlag('--error-aggregation-window', o.errorAggregationWindow),
    initialBackoffMs: Math.min(1000, parseDurationFlag('--retry-timeout', o.retryTimeout)),
    maxBackoffMs: parseDurationFlag('--retry-timeout', o.retryTimeout),
  };
  if (o.unixSocket) opts.unixSocket = o.unixSocket;
  return opts;
}

const line = (s: string) => process.stdout.write(`${s}\n`);
const fields = (obj: object) =>
  Object.entries(obj)
    .map(([k, v]) => `${k}=${v}`)
    .join(' ');

export function registerRelayCommands(program: Command): Command {
  let hubble = program.commands.find((c) => c.name() === 'hubble');
  if (!hubble) {
    hubble = new Command('hubble').description('Flow observability (Hubble Observer API)');
    program.addCommand(hubble);
  }
  const cmd = new Command('relay')
    .description("Serve the Observer API for every node of the cluster, found through a node's Peer service")
    .option('--listen <host:port>', 'TCP address to serve on', '127.0.0.1:4245')
    .option('--unix-socket <path>', 'serve on this unix socket as well')
    .option(
      '--peer-service <address>',
      "a node's Hubble server whose Peer service lists the nodes (unix:///path or host:port); repeat to have fallbacks",
      collect,
      [],
    )
    .option('--peer <name=address>', 'a node to relay without a Peer service, repeatable', collect, [])
    .option(
      '--sort-buffer-len-max <n>',
      'follow mode: flows held for sorting before the oldest goes out',
      '100',
    )
    .option('--sort-buffer-drain-timeout <duration>', 'follow mode: flows older than this go out', '1s')
    .option('--error-aggregation-window <duration>', 'merge identical node errors within this window', '10s')
    .option(
      '--retry-timeout <duration>',
      'longest delay between reconnects to a node or the Peer service',
      '30s',
    )
    .action(async (o: RelayFlags) => {
      const opts = relayOptionsFromFlags(o);
      const { Relay } = await import('../hubble/relay/server.js');
      const relay = await Relay.start({
        ...opts,
        logger: {
          info: (obj, msg) => line(`hubble relay: ${msg} ${fields(obj)}`),
          warn: (obj, msg) => line(`hubble relay: warning: ${msg} ${fields(obj)}`),
        },
      });
      const where = [relay.addresses.tcp, relay.addresses.unix].filter(Boolean).join(' and ');
      const from = [...o.peerService, ...o.peer].join(', ');
      line(`hubble relay: listening on ${where}, nodes from ${from}`);
      const stop = () => void relay.stop().then(() => process.exit(0));
      process.once('SIGTERM', stop);
      process.once('SIGINT', stop);
    });
  hubble.addCommand(cmd);
  return cmd;
}
