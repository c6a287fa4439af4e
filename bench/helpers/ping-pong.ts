/**
 * TCP request/response latency between two namespaces: an echo server and a client that sends a
 * 32-byte message, waits for its echo, and repeats on one connection (after 500 warm-up round
 * trips), printing the p50 / p99 round-trip time in µs as JSON. Scripts for `node -e`, so they run
 * inside a namespace with nsenter (bench/overlay.ts; bench/datapath.ts uses the C one in crr.c).
 */

/** Echo server on `port`; prints `listening` once it accepts. */
export function pingServerScript(port: number): string {
  return `
  import net from 'node:net';
  net.createServer((c) => { c.setNoDelay(true); c.on('data', (d) => c.write(d)); c.on('error', () => {}); })
    .listen(${port}, '0.0.0.0', () => console.log('listening'));`;
}

/** Client: argv HOST N; prints {"p50","p99","n"} (µs). */
export function pingClientScript(port: number): string {
  return `
  import net from 'node:net';
  const [host, n] = [process.argv[1], Number(process.argv[2])];
  const c = net.connect({ host, port: ${port} }, () => c.setNoDelay(true));
  const msg = Buffer.alloc(32, 1);
  const rtts = [];
  let t0 = 0n; let i = 0; const warm = 500;
  c.on('connect', () => { t0 = process.hrtime.bigint(); c.write(msg); });
  c.on('data', () => {
    const t = process.hrtime.bigint();
    if (i >= warm) rtts.push(Number(t - t0) / 1000);
    if (++i >= n + warm) { c.end(); rtts.sort((a, b) => a - b);
      const q = (p) => rtts[Math.min(rtts.length - 1, Math.floor(p * rtts.length))];
      console.log(JSON.stringify({ p50: q(0.5), p99: q(0.99), n: rtts.length })); process.exit(0); }
    t0 = process.hrtime.bigint(); c.write(msg);
  });
  c.on('error', (e) => { console.error(e.message); process.exit(1); });`;
}
