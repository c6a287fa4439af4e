#!/usr/bin/env node
/**
 * Minimal process entry for tests and the lab until the CLI wires `workload`: one JSON argument,
 * {"serve": ServeOptions} (prints "ready" once bound, runs until SIGTERM) or
 * {"connect": ConnectOptions} (prints the one-line message, exits with its code).
 */
import { type ConnectOptions, connect, type ServeOptions, serve } from './workload.js';

async function main(): Promise<void> {
  const arg = JSON.parse(process.argv[2] ?? '{}') as { serve?: ServeOptions; connect?: ConnectOptions };
  if (arg.serve) {
    const srv = await serve({ ...arg.serve, log: (l) => process.stderr.write(`${l}\n`) });
    process.stdout.write(`ready ${JSON.stringify({ tcp: srv.tcp, udp: srv.udp })}\n`);
    const stop = () => void srv.close().then(() => process.exit(0));
    process.on('SIGTERM', stop);
    process.on('SIGINT', stop);
    return;
  }
  if (arg.connect) {
    const r = await connect(arg.connect);
    process.stdout.write(`${r.message}\n`);
    process.exitCode = r.exitCode;
    return;
  }
  process.stderr.write('usage: runner.js \'{"serve":{...}}\' | \'{"connect":{...}}\'\n');
  process.exitCode = 2;
}

main().catch((e: Error) => {
  process.stderr.write(`${e.message}\n`);
  process.exitCode = 2;
});
