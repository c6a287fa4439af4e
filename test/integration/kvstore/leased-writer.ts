/**
 * A client that writes one leased key and then lives until it is killed: a dead agent, for the
 * test that its keys expire with its lease. Usage: leased-writer.js ENDPOINT KEY
 */
import { EtcdKvStore } from '../../../src/kvstore/etcd.js';

const [endpoint, key] = process.argv.slice(2);
const store = new EtcdKvStore({ endpoints: [endpoint!], leaseTtlSeconds: 3 });
await store.put(key!, String(process.pid), { lease: true });
process.stdout.write('ready\n');
setInterval(() => {}, 1 << 30);
