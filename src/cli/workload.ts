/** `cilium-ts workload serve|connect`: the built-in test server and prober. */
import type { Command } from 'commander';

export function registerWorkload(program: Command): void {
  const wl = program.command('workload').description('built-in test server and prober for pods');
  wl.command('serve')
    .description('serve TCP/UDP ports (a banner line, or HTTP 200 with --http)')
    .option('--tcp <ports>', 'TCP ports, e.g. 80,81')
    .option('--udp <ports>', 'UDP ports')
    .option('--sctp <ports>', 'SCTP ports')
    .option('--http', 'answer HTTP requests on the TCP ports')
    .option('--host <address>', 'bind address (default: all addresses, IPv4 and IPv6)')
    .option('--name <name>', 'name in replies (default $POD_NAME or host name)')
    .option('-q, --quiet', 'do not log each connection')
    .action(
      async (o: {
        tcp?: string;
        udp?: string;
        sctp?: string;
        http?: boolean;
        name?: string;
        host?: string;
        quiet?: boolean;
      }) => {
        const { serve } = await import('../workload/index.js');
        const opts: Parameters<typeof serve>[0] = {};
        if (o.tcp) opts.tcp = o.tcp;
        if (o.udp) opts.udp = o.udp;
        if (o.sctp) opts.sctp = o.sctp;
        if (o.http) opts.http = true;
        if (o.name) opts.name = o.name;
        if (o.host) opts.host = o.host;
        if (!o.quiet) opts.log = (l) => process.stdout.write(`${l}\n`);
        const s = await serve(opts);
        process.stdout.write(
          `serving ${s.name}: tcp ${s.tcp.join(',') || '-'} udp ${s.udp.join(',') || '-'}\n`,
        );
        const stop = () => void s.close().then(() => process.exit(0));
        process.on('SIGTERM', stop);
        process.on('SIGINT', stop);
      },
    );
  wl.command('prober')
    .description('answer probe requests on a unix socket, probing from this network namespace')
    .requiredOption('--socket <path>', 'unix socket to listen on')
    .option('-q, --quiet', 'do not log each request')
    .action(async (o: { socket: string; quiet?: boolean }) => {
      const { startProber } = await import('../workload/index.js');
      const p = await startProber({
        socket: o.socket,
        ...(o.quiet ? {} : { log: (l: string) => process.stdout.write(`${l}\n`) }),
      });
      process.stdout.write(`prober listening on ${p.socket}\n`);
      const stop = () => void p.close().then(() => process.exit(0));
      process.on('SIGTERM', stop);
      process.on('SIGINT', stop);
    });
  wl.command('connect')
    .description('probe HOST:PORT; exit 0 connected, 1 refused/timeout')
    .argument('<target>', 'HOST:PORT or [IPv6]:PORT')
    .option('--protocol <p>', 'tcp|udp|sctp', 'tcp')
    .option('--timeout <d>', 'deadline, e.g. 1s or 500ms', '1s')
    .option('--http', 'send an HTTP GET and require a 2xx answer')
    .option('--path <path>', 'HTTP path', '/')
    .action(
      async (target: string, o: { protocol: string; timeout: string; http?: boolean; path: string }) => {
        const { connect } = await import('../workload/index.js');
        const r = await connect({
          target,
          protocol: o.protocol as 'tcp' | 'udp' | 'sctp',
          timeout: o.timeout,
          http: o.http ?? false,
          path: o.path,
        });
        process.stdout.write(`${r.message}\n`);
        process.exit(r.exitCode);
      },
    );
}
