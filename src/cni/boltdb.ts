/**
 * A read-only reader of bolt database files (the B+tree key/value store podman 4 keeps its
 * containers in), enough to look a key up through nested buckets. It reads a snapshot of the file:
 * bolt never overwrites live pages (copy-on-write, the meta page switched last), and a meta page
 * whose checksum does not match is ignored, so a read racing a writer sees the previous state.
 */
import { readFileSync } from 'node:fs';
import { CiliumTsError } from '../common/errors.js';

const MAGIC = 0xed0cdaed;
const VERSION = 2;
const PAGE_HEADER = 16;
const ELEMENT = 16;
const BRANCH_PAGE = 0x01;
const LEAF_PAGE = 0x02;
const BUCKET_LEAF = 0x01;
/** Meta fields before the checksum: magic, version, pageSize, flags, root (2×u64), freelist, pgid, txid. */
const META_SUMMED = 4 * 4 + 8 * 5;

export class BoltFormatError extends CiliumTsError {
  override readonly name = 'BoltFormatError';
  override readonly code = 'invalid-argument';
}

function fnv64a(b: Buffer): bigint {
  let h = 0xcbf29ce484222325n;
  for (const x of b) h = ((h ^ BigInt(x)) * 0x100000001b3n) & 0xffffffffffffffffn;
  return h;
}

/** A page (or an inline bucket's page) as a view: where it starts in `buf`. */
interface PageRef {
  buf: Buffer;
  at: number;
}

export class BoltDb {
  private readonly pageSize: number;
  private readonly root: bigint;

  constructor(private readonly data: Buffer) {
    let best: { txid: bigint; root: bigint; pageSize: number } | undefined;
    // Two meta pages, at pages 0 and 1 (the page size is in the first; bolt's default is 4096).
    const first = data.length >= PAGE_HEADER + 12 && data.readUInt32LE(PAGE_HEADER) === MAGIC;
    const pageSize = first ? data.readUInt32LE(PAGE_HEADER + 8) : 4096;
    for (const page of [0, 1]) {
      const at = page * pageSize + PAGE_HEADER;
      if (at + META_SUMMED + 8 > data.length) continue;
      if (data.readUInt32LE(at) !== MAGIC || data.readUInt32LE(at + 4) !== VERSION) continue;
      if (fnv64a(data.subarray(at, at + META_SUMMED)) !== data.readBigUInt64LE(at + META_SUMMED)) continue;
      const txid = data.readBigUInt64LE(at + 48);
      if (!best || txid > best.txid) best = { txid, root: data.readBigUInt64LE(at + 16), pageSize };
    }
    if (!best) throw new BoltFormatError('not a bolt database (no valid meta page)');
    this.pageSize = best.pageSize;
    this.root = best.root;
  }

  static open(path: string): BoltDb {
    return new BoltDb(readFileSync(path));
  }

  /** The value under `path` (bucket names, then the key), or undefined. A bucket is not a value. */
  get(path: readonly (string | Buffer)[]): Buffer | undefined {
    if (path.length === 0) return undefined;
    let bucket: PageRef = this.page(this.root);
    for (const [i, name] of path.entries()) {
      const hit = this.find(bucket, typeof name === 'string' ? Buffer.from(name) : name);
      if (!hit) return undefined;
      const last = i === path.length - 1;
      if (last) return hit.bucket ? undefined : hit.value;
      if (!hit.bucket) return undefined;
      bucket = this.bucketRoot(hit.value);
    }
    return undefined;
  }

  private page(pgid: bigint): PageRef {
    const at = Number(pgid) * this.pageSize;
    if (at + PAGE_HEADER > this.data.length) throw new BoltFormatError(`page ${pgid} beyond the file`);
    return { buf: this.data, at };
  }

  /** A bucket value: its root page, or the inline page that follows the header when root is 0. */
  private bucketRoot(value: Buffer): PageRef {
    const root = value.readBigUInt64LE(0);
    return root === 0n ? { buf: value, at: 16 } : this.page(root);
  }

  private find(p: PageRef, key: Buffer): { value: Buffer; bucket: boolean } | undefined {
    for (let depth = 0; depth < 64; depth++) {
      const flags = p.buf.readUInt16LE(p.at + 8);
      const count = p.buf.readUInt16LE(p.at + 10);
      const el = (i: number) => p.at + PAGE_HEADER + i * ELEMENT;
      if (flags & LEAF_PAGE) {
        for (let i = 0; i < count; i++) {
          const e = el(i);
          const pos = e + p.buf.readUInt32LE(e + 4);
          const ksize = p.buf.readUInt32LE(e + 8);
          const vsize = p.buf.readUInt32LE(e + 12);
          if (p.buf.subarray(pos, pos + ksize).equals(key)) {
            return {
              value: p.buf.subarray(pos + ksize, pos + ksize + vsize),
              bucket: (p.buf.readUInt32LE(e) & BUCKET_LEAF) !== 0,
            };
          }
        }
        return undefined;
      }
      if (!(flags & BRANCH_PAGE) || count === 0) throw new BoltFormatError(`unexpected page flags ${flags}`);
      // The last element whose key is <= the key sought holds it.
      let child = p.buf.readBigUInt64LE(el(0) + 8);
      for (let i = 0; i < count; i++) {
        const e = el(i);
        const pos = e + p.buf.readUInt32LE(e);
        const k = p.buf.subarray(pos, pos + p.buf.readUInt32LE(e + 4));
        if (Buffer.compare(k, key) > 0) break;
        child = p.buf.readBigUInt64LE(e + 8);
      }
      p = this.page(child);
    }
    throw new BoltFormatError('bolt tree deeper than 64 levels');
  }
}
