/**
 * The bolt reader against a real bbolt file with a deep tree: etcd keeps its keys in one (bucket
 * "key", keys are revisions), on loopback in a temporary folder.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Etcd3 } from 'etcd3';
import { BoltDb, BoltFormatError } from '../../../src/cni/boltdb.js';

const haveEtcd = spawnSync('etcd', ['--version']).status === 0;

/** etcd's key in its "key" bucket: main revision, "_", sub revision (big endian). */
function revision(main: number): Buffer {
  const b = Buffer.alloc(17);
  b.writeBigUInt64BE(BigInt(main), 0);
  b.write('_', 8);
  return b;
}

describe('bolt reader', { skip: !haveEtcd && 'needs etcd (etcd-server)' }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'boltdb-'));
  const db = join(dir, 'copy.db');
  let etcd: ChildProcess | undefined;
  const N = 3000;

  before(async () => {
    const port = 20000 + Math.floor(Math.random() * 20000);
    etcd = spawn(
      'etcd',
      [
        '--data-dir',
        join(dir, 'etcd'),
        '--listen-client-urls',
        `http://127.0.0.1:${port}`,
        '--advertise-client-urls',
        `http://127.0.0.1:${port}`,
        '--listen-peer-urls',
        `http://127.0.0.1:${port + 1}`,
        '--initial-advertise-peer-urls',
        `http://127.0.0.1:${port + 1}`,
        '--initial-cluster',
        `default=http://127.0.0.1:${port + 1}`,
      ],
      { stdio: 'ignore' },
    );
    const client = new Etcd3({ hosts: `http://127.0.0.1:${port}` });
    for (let t = 0; ; t++) {
      try {
        await client.get('probe');
        break;
      } catch (e) {
        if (t > 100) throw e;
        await new Promise((r) => setTimeout(r, 100));
      }
    }
    for (let i = 0; i < N; i += 100) {
      await Promise.all(
        Array.from({ length: 100 }, (_, j) =>
          client.put(`k${i + j}`).value(`value-${i + j}-${'x'.repeat(40)}`),
        ),
      );
    }
    client.close();
    etcd.kill('SIGTERM');
    await new Promise((r) => etcd!.once('exit', r));
    etcd = undefined;
    copyFileSync(join(dir, 'etcd', 'member', 'snap', 'db'), db);
  });
  after(() => {
    etcd?.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  });

  it('finds every key of a bucket that spans many pages, and nothing else', () => {
    const b = BoltDb.open(db);
    // Revision 1 is the store's start; the puts are revisions 2..N+1, in an order of their own.
    const seen = new Set<string>();
    for (let rev = 2; rev <= N + 1; rev++) {
      const v = b.get(['key', revision(rev)]);
      assert.ok(v, `revision ${rev} not found`);
      const m = /value-(\d+)-/.exec(v.toString('latin1'));
      assert.ok(m, `revision ${rev}: no value`);
      seen.add(m[1]!);
    }
    assert.equal(seen.size, N);
    assert.equal(b.get(['key', revision(N + 2)]), undefined);
    assert.equal(b.get(['key', revision(0)]), undefined);
    assert.equal(b.get(['no-such-bucket', 'x']), undefined);
    assert.equal(b.get(['key']), undefined, 'a bucket is not a value');
  });

  it('refuses a file without a valid meta page', () => {
    const bad = Buffer.from(readFileSync(db));
    bad.writeUInt32LE(0, 16); // page 0's magic
    const pageSize = bad.readUInt32LE(16 + 8);
    bad.writeUInt32LE(bad.readUInt32LE(pageSize + 16 + 16) ^ 1, pageSize + 16 + 16); // page 1's root: checksum fails
    writeFileSync(join(dir, 'bad.db'), bad);
    assert.throws(() => BoltDb.open(join(dir, 'bad.db')), BoltFormatError);
    assert.throws(() => new BoltDb(Buffer.from('not a database')), /no valid meta page/);
  });
});
