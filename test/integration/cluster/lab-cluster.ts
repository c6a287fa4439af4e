/**
 * Reading and drilling a multi-node lab from a test: each agent's status, identities and ipcache,
 * the lab's etcd read directly (from its namespace), routes of a node, and long-lived TCP streams
 * between pods that count their echoes (lost data shows as a count that falls short).
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cliPath } from '../../../src/common/paths.js';
import { loadLab } from '../../../src/lab/state.js';
import { cliOk, pinnedPod } from '../../helpers/cli.js';
import { waitFor } from '../../helpers/wait.js';

/** A pod pinned to `node` labelled app=`app`: an echo server on TCP 80 (`serve`) or a sleeper. */
export const podManifest = (name: string, node: string, app: string, serve = false) =>
  pinnedPod(
    name,
    node,
    `app: ${app}`,
    serve ? '[cilium-ts, workload, serve, --tcp, "80"]' : '[sleep, infinity]',
  );

export interface Stream {
  out(): string;
  /** Echoes counted so far (the stream reports every second). */
  echoed(): number;
  /** Resolves with the exit code: 0 when every line sent came back. */
  closed: Promise<number>;
  stop(): void;
}

export class LabCluster {
  constructor(
    readonly lab: string,
    readonly nodes: string[],
  ) {}

  state() {
    const s = loadLab(this.lab);
    assert.ok(s, `lab ${this.lab} exists`);
    return s;
  }

  run(args: string[]): Promise<string> {
    return cliOk(args, { lab: this.lab });
  }

  async json<T>(args: string[]): Promise<T> {
    return JSON.parse(await this.run([...args, '-o', 'json'])) as T;
  }

  async podIp(name: string): Promise<string> {
    return (await this.json<{ status: { podIP: string } }>(['lab', 'get', 'pod', name])).status.podIP;
  }

  status<T = { kvstore: string; nodes: number; identitiesWaiting?: string }>(node: string): Promise<T> {
    return this.json<T>(['--node', node, 'status']);
  }

  /** Every agent's kvstore line, once all match `re`. */
  agentsReport(re: RegExp, nodes = this.nodes, timeoutMs = 20_000): Promise<string[]> {
    return waitFor(
      `the kvstore line of ${nodes.join(', ')} to match ${re}`,
      async () => {
        const lines = await Promise.all(nodes.map(async (n) => (await this.status(n)).kvstore));
        return lines.every((l) => re.test(l)) && lines;
      },
      timeoutMs,
      250,
    );
  }

  /** `node`'s ipcache: address → identity. */
  async ipcacheOf(node: string): Promise<Map<string, number>> {
    const list = await this.json<{ prefix: string; identity: number }[]>([
      '--node',
      node,
      'bpf',
      'ipcache',
      'list',
    ]);
    return new Map(list.map((e) => [e.prefix.replace(/\/32$/, ''), e.identity]));
  }

  /** The identity `node` knows for app=`app` (namespace default). */
  async identityOf(node: string, app: string): Promise<number | undefined> {
    const list = await this.json<{ id: number; labels: string[] }[]>(['--node', node, 'identity', 'list']);
    return list.find((i) => i.labels.includes(`k8s:app=${app}`))?.id;
  }

  /** The identity of pod `name` (its CiliumEndpoint), once every node in `nodes` knows it. */
  async agreedIdentity(name: string, app: string, nodes = this.nodes): Promise<number> {
    const cep = await this.json<{ status: { identity: { id: number } } }>(['lab', 'get', 'cep', name]);
    const id = cep.status.identity.id;
    assert.ok(id >= 256 && id < 65536, `${name} has a cluster identity (${id})`);
    for (const n of nodes)
      await waitFor(
        `${n} to know ${name}'s identity ${id}`,
        async () => (await this.identityOf(n, app)) === id,
      );
    return id;
  }

  /** The node's routing table (its namespace). */
  routes(node: string): string {
    return spawnSync('ip', ['-n', `cts-${this.lab}-${node}`, 'route'], { encoding: 'utf8' }).stdout;
  }

  /** Node names `node`'s agent knows (`node list`). */
  async nodesKnownBy(node: string): Promise<string[]> {
    const list = await this.json<{ name: string }[]>(['--node', node, 'node', 'list']);
    return list.map((n) => n.name).sort();
  }

  /** Every key under cilium/ in the lab's etcd (read from its namespace), and the store's revision. */
  etcdKeys(): { revision: number; keys: Map<string, string> } {
    const s = this.state();
    const m = s.etcd!.members.find((x) => x.pid) ?? s.etcd!.members[0]!;
    const script = `const b64=(x)=>Buffer.from(x).toString('base64');
fetch('http://${m.ip}:${m.clientPort}/v3/kv/range',{method:'POST',body:JSON.stringify({key:b64('cilium/'),range_end:b64('cilium0')})})
.then(r=>r.json()).then(j=>process.stdout.write(JSON.stringify(j)),e=>{console.error(e);process.exit(1)})`;
    const r = spawnSync(
      'nsenter',
      [`--net=/run/netns/${s.etcd!.netns}`, '--', process.execPath, '-e', script],
      {
        encoding: 'utf8',
        timeout: 30_000,
      },
    );
    assert.equal(r.status, 0, `reading etcd: ${r.stderr}`);
    const res = JSON.parse(r.stdout) as {
      header: { revision: string };
      kvs?: { key: string; value?: string }[];
    };
    const dec = (x: string | undefined) => Buffer.from(x ?? '', 'base64').toString('utf8');
    return {
      revision: Number(res.header.revision),
      keys: new Map((res.kvs ?? []).map((kv) => [dec(kv.key), dec(kv.value)])),
    };
  }

  /** The etcd keys a node owns: its node key, its endpoints' IPs and its identity value keys. */
  keysOf(node: string, keys = this.etcdKeys().keys): string[] {
    return [...keys]
      .filter(
        ([k, v]) =>
          k === `cilium/state/nodes/v1/default/${node}` ||
          (k.startsWith('cilium/state/identities/v1/value/') && k.endsWith(`/${node}`)) ||
          (k.startsWith('cilium/state/ip/v1/') && (JSON.parse(v) as { Metadata?: string }).Metadata === node),
      )
      .map(([k]) => k);
  }

  /**
   * A long-lived TCP connection from pod `from` to host:80 (a server echoing lines): a line every
   * 100 ms, each echoed back, until stop(); then it exits 0 if every line came back.
   */
  stream(from: string, host: string): Stream {
    const stopFile = join(tmpdir(), `cts-${this.lab}-stream-${randomBytes(4).toString('hex')}`);
    const script = `const net=require('net'),fs=require('fs');const c=net.connect(80,'${host}');let n=0,got='';
const echoed=()=>got.split('\\n').filter(l=>l==='ping').length;
c.on('data',d=>{got+=d});c.on('error',e=>{console.log('error '+e.code);process.exit(2)});
c.on('close',()=>{console.log('closed after '+n);process.exit(3)});
const p=setInterval(()=>console.log('echoed '+echoed()),1000);
const t=setInterval(()=>{if(fs.existsSync('${stopFile}')){clearInterval(t);setTimeout(()=>{clearInterval(p);
const e=echoed();console.log('echoes '+e+' of '+n);process.exit(e===n?0:4)},500);return}c.write('ping\\n');n++},100);`;
    const child: ChildProcess = spawn(
      process.execPath,
      [cliPath, 'lab', 'exec', from, '--', 'node', '-e', script],
      {
        env: { ...process.env, CILIUM_TS_LAB: this.lab },
      },
    );
    let out = '';
    child.stdout!.on('data', (d) => (out += d));
    const closed = new Promise<number>((r) => child.on('close', (c) => r(c ?? 1))).finally(() =>
      rmSync(stopFile, { force: true }),
    );
    return {
      out: () => out,
      echoed: () => Number([...out.matchAll(/^echoed (\d+)$/gm)].at(-1)?.[1] ?? -1),
      closed,
      stop: () => writeFileSync(stopFile, ''),
    };
  }
}

/** Stops streams and checks that each lost nothing. */
export async function streamsLostNothing(streams: Record<string, Stream>): Promise<void> {
  for (const [what, s] of Object.entries(streams)) {
    s.stop();
    assert.equal(await s.closed, 0, `the ${what} stream lost nothing: ${s.out()}`);
    assert.match(s.out(), /^echoes (\d+) of \1$/m, what);
  }
}
