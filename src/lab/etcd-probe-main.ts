/**
 * One status check of etcd endpoints, printed as JSON (EtcdStatus). The lab runs it inside the etcd
 * namespace, whose addresses the root namespace cannot reach: `etcd-probe-main.js ENDPOINT...`.
 */
import { checkEndpoints } from './etcd.js';

const status = await checkEndpoints(process.argv.slice(2));
process.stdout.write(`${JSON.stringify(status)}\n`);
