/**
 * Deletes a removed node's keys from etcd (forget-node.ts) and prints what it deleted as JSON. The
 * lab runs it inside the etcd namespace, whose addresses the root namespace cannot reach:
 * `forget-node-main.js CLUSTER NODE ENDPOINT...`.
 */
import { EtcdKvStore } from '../kvstore/etcd.js';
import { forgetNode } from './forget-node.js';

const [cluster, node, ...endpoints] = process.argv.slice(2);
const store = new EtcdKvStore({ endpoints, statusIntervalMs: 3_600_000 });
try {
  process.stdout.write(`${JSON.stringify(await forgetNode(store, cluster!, node!))}\n`);
} finally {
  await store.close();
}
