/**
 * The Maglev flow hash in TypeScript (src/datapath/flow-hash.ts), which must pick the same table
 * entry as the datapath (bpf/lib/lb_xlate.h; the privileged NodePort test checks real flows against
 * it). Here: jhash_3words against lookup3's general word hash (hashword) for three words, and how
 * a flow's fields go into the words.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import { jhash3Words, maglevFlowHash4, maglevSlot } from '../../../src/datapath/index.js';

/** lookup3's hashword(k, length, initval), written as the general loop it is in lookup3.c. */
function hashword(k: readonly number[], initval: number): number {
  const rot = (x: number, s: number) => ((x << s) | (x >>> (32 - s))) >>> 0;
  let a = (0xdeadbeef + (k.length << 2) + initval) >>> 0;
  let b = a;
  let c = a;
  let i = 0;
  let left = k.length;
  while (left > 3) {
    a = (a + k[i]!) >>> 0;
    b = (b + k[i + 1]!) >>> 0;
    c = (c + k[i + 2]!) >>> 0;
    a = (a - c) >>> 0;
    a = (a ^ rot(c, 4)) >>> 0;
    c = (c + b) >>> 0;
    b = (b - a) >>> 0;
    b = (b ^ rot(a, 6)) >>> 0;
    a = (a + c) >>> 0;
    c = (c - b) >>> 0;
    c = (c ^ rot(b, 8)) >>> 0;
    b = (b + a) >>> 0;
    a = (a - c) >>> 0;
    a = (a ^ rot(c, 16)) >>> 0;
    c = (c + b) >>> 0;
    b = (b - a) >>> 0;
    b = (b ^ rot(a, 19)) >>> 0;
    a = (a + c) >>> 0;
    c = (c - b) >>> 0;
    c = (c ^ rot(b, 4)) >>> 0;
    b = (b + a) >>> 0;
    left -= 3;
    i += 3;
  }
  if (left === 0) return c;
  if (left >= 3) c = (c + k[i + 2]!) >>> 0;
  if (left >= 2) b = (b + k[i + 1]!) >>> 0;
  a = (a + k[i]!) >>> 0;
  c = ((c ^ b) - rot(b, 14)) >>> 0;
  a = ((a ^ c) - rot(c, 11)) >>> 0;
  b = ((b ^ a) - rot(a, 25)) >>> 0;
  c = ((c ^ b) - rot(b, 16)) >>> 0;
  a = ((a ^ c) - rot(c, 4)) >>> 0;
  b = ((b ^ a) - rot(a, 14)) >>> 0;
  c = ((c ^ b) - rot(b, 24)) >>> 0;
  return c;
}

const u32 = () => randomBytes(4).readUInt32LE();

describe('Maglev flow hash', () => {
  it('jhash_3words is lookup3 hashword over three words', () => {
    for (let n = 0; n < 1000; n++) {
      const [a, b, c, seed] = [u32(), u32(), u32(), u32()];
      assert.equal(jhash3Words(a, b, c, seed), hashword([a, b, c], seed));
    }
    assert.equal(jhash3Words(0, 0, 0, 0), hashword([0, 0, 0], 0));
  });

  it('words: the client address and ports as the datapath loads them (wire bytes, little-endian), protocol', () => {
    const seed = 0x5eed1234;
    const flow = { saddr: '192.168.1.100', sport: 40001, dport: 30080, protocol: 6 };
    // 192.168.1.100 in wire order read little-endian; ports byte-swapped: dport in the high half
    const a = 0x6401a8c0;
    const swap = (p: number) => ((p & 0xff) << 8) | (p >> 8);
    const b = ((swap(30080) << 16) | swap(40001)) >>> 0;
    assert.equal(maglevFlowHash4(flow, seed), jhash3Words(a, b, 6, seed));
    assert.equal(maglevFlowHash4(flow, seed, true), jhash3Words(a, (swap(30080) << 16) >>> 0, 6, seed));
  });

  it('session affinity leaves the client port out; the seed and every other field count', () => {
    const flow = { saddr: '10.0.0.7', sport: 1234, dport: 80, protocol: 6 };
    const h = maglevFlowHash4(flow, 1);
    assert.equal(maglevFlowHash4({ ...flow, sport: 999 }, 1, true), maglevFlowHash4(flow, 1, true));
    for (const other of [
      maglevFlowHash4({ ...flow, sport: 1235 }, 1),
      maglevFlowHash4({ ...flow, dport: 81 }, 1),
      maglevFlowHash4({ ...flow, protocol: 17 }, 1),
      maglevFlowHash4({ ...flow, saddr: '10.0.0.8' }, 1),
      maglevFlowHash4(flow, 2),
    ])
      assert.notEqual(other, h);
  });

  it('a slot is the hash modulo the table size; IPv6 is refused', () => {
    const flow = { saddr: '10.0.0.7', sport: 1234, dport: 80, protocol: 6 };
    assert.equal(maglevSlot(flow, 7, 16381), maglevFlowHash4(flow, 7) % 16381);
    assert.throws(() => maglevFlowHash4({ ...flow, saddr: 'fd00::1' }, 7), /not an IPv4 address/);
  });
});
