/**
 * Kafka wire primitives: a bounds-checked reader over one frame and a growable writer. Every read past
 * the end throws KafkaDecodeError, so a truncated or lying frame is an error, never an out-of-range
 * read or a huge allocation (lengths are checked against what is left before anything is sliced).
 */
import { CiliumTsError } from '../../common/errors.js';

/** A frame that does not decode as the Kafka message it claims to be. */
export class KafkaDecodeError extends CiliumTsError {
  override readonly name = 'KafkaDecodeError';
  override readonly code = 'invalid-argument';
}

export class Reader {
  pos = 0;
  constructor(readonly buf: Buffer) {}

  get remaining(): number {
    return this.buf.length - this.pos;
  }

  private need(n: number, what: string): void {
    if (n < 0 || this.pos + n > this.buf.length)
      throw new KafkaDecodeError(
        `truncated ${what}: need ${n} bytes at ${this.pos}, frame has ${this.buf.length}`,
      );
  }

  int8(): number {
    this.need(1, 'int8');
    return this.buf.readInt8(this.pos++);
  }
  int16(): number {
    this.need(2, 'int16');
    const v = this.buf.readInt16BE(this.pos);
    this.pos += 2;
    return v;
  }
  int32(): number {
    this.need(4, 'int32');
    const v = this.buf.readInt32BE(this.pos);
    this.pos += 4;
    return v;
  }
  int64(): bigint {
    this.need(8, 'int64');
    const v = this.buf.readBigInt64BE(this.pos);
    this.pos += 8;
    return v;
  }
  skip(n: number, what = 'field'): void {
    this.need(n, what);
    this.pos += n;
  }
  /** Unsigned LEB128 varint (compact lengths, tagged fields), at most 5 bytes. */
  uvarint(): number {
    let v = 0;
    for (let shift = 0; shift < 35; shift += 7) {
      this.need(1, 'varint');
      const b = this.buf[this.pos++] as number;
      v += (b & 0x7f) * 2 ** shift;
      if ((b & 0x80) === 0) return v;
    }
    throw new KafkaDecodeError(`varint longer than 5 bytes at ${this.pos}`);
  }

  /** STRING (int16 length); a negative length is refused (use nullableString where null is legal). */
  string(): string {
    const s = this.nullableString();
    if (s === null) throw new KafkaDecodeError(`null string at ${this.pos}`);
    return s;
  }
  nullableString(): string | null {
    const n = this.int16();
    if (n < 0) return null;
    this.need(n, 'string');
    const s = this.buf.toString('utf8', this.pos, this.pos + n);
    this.pos += n;
    return s;
  }
  compactString(): string {
    const s = this.compactNullableString();
    if (s === null) throw new KafkaDecodeError(`null compact string at ${this.pos}`);
    return s;
  }
  compactNullableString(): string | null {
    const n = this.uvarint() - 1;
    if (n < 0) return null;
    this.need(n, 'string');
    const s = this.buf.toString('utf8', this.pos, this.pos + n);
    this.pos += n;
    return s;
  }
  /** BYTES / NULLABLE_BYTES (int32 length). */
  bytes(): Buffer | null {
    const n = this.int32();
    if (n < 0) return null;
    this.need(n, 'bytes');
    const b = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return b;
  }
  compactBytes(): Buffer | null {
    const n = this.uvarint() - 1;
    if (n < 0) return null;
    this.need(n, 'bytes');
    const b = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return b;
  }
  /** ARRAY length: -1 is null. Each element takes at least `minElem` bytes, checked up front. */
  arrayLength(minElem = 1): number {
    const n = this.int32();
    if (n >= 0) this.need(n * minElem, 'array');
    return n;
  }
  compactArrayLength(minElem = 1): number {
    const n = this.uvarint() - 1;
    if (n >= 0) this.need(n * minElem, 'array');
    return n;
  }
  array<T>(f: () => T, minElem = 1): T[] {
    const n = this.arrayLength(minElem);
    const out: T[] = [];
    for (let i = 0; i < n; i++) out.push(f());
    return out;
  }
  /** Tagged fields of a flexible version: skipped (none of them matter to policy). */
  taggedFields(): void {
    const n = this.uvarint();
    for (let i = 0; i < n; i++) {
      this.uvarint();
      this.skip(this.uvarint(), 'tagged field');
    }
  }
}

export class Writer {
  private buf = Buffer.allocUnsafe(256);
  private len = 0;

  private room(n: number): void {
    if (this.len + n <= this.buf.length) return;
    const next = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.len + n));
    this.buf.copy(next, 0, 0, this.len);
    this.buf = next;
  }
  int8(v: number): this {
    this.room(1);
    this.buf.writeInt8(v, this.len);
    this.len += 1;
    return this;
  }
  bool(v: boolean): this {
    return this.int8(v ? 1 : 0);
  }
  int16(v: number): this {
    this.room(2);
    this.buf.writeInt16BE(v, this.len);
    this.len += 2;
    return this;
  }
  int32(v: number): this {
    this.room(4);
    this.buf.writeInt32BE(v, this.len);
    this.len += 4;
    return this;
  }
  int64(v: bigint | number): this {
    this.room(8);
    this.buf.writeBigInt64BE(BigInt(v), this.len);
    this.len += 8;
    return this;
  }
  uvarint(v: number): this {
    let x = v;
    while (x >= 0x80) {
      this.int8u((x & 0x7f) | 0x80);
      x = Math.floor(x / 128);
    }
    return this.int8u(x);
  }
  private int8u(v: number): this {
    this.room(1);
    this.buf[this.len++] = v;
    return this;
  }
  raw(b: Buffer): this {
    this.room(b.length);
    b.copy(this.buf, this.len);
    this.len += b.length;
    return this;
  }
  string(s: string | null): this {
    if (s === null) return this.int16(-1);
    const b = Buffer.from(s, 'utf8');
    return this.int16(b.length).raw(b);
  }
  compactString(s: string | null): this {
    if (s === null) return this.uvarint(0);
    const b = Buffer.from(s, 'utf8');
    return this.uvarint(b.length + 1).raw(b);
  }
  bytes(b: Buffer | null): this {
    if (b === null) return this.int32(-1);
    return this.int32(b.length).raw(b);
  }
  array<T>(items: readonly T[] | null, f: (item: T) => void): this {
    if (items === null) return this.int32(-1);
    this.int32(items.length);
    for (const it of items) f(it);
    return this;
  }
  compactArray<T>(items: readonly T[] | null, f: (item: T) => void): this {
    if (items === null) return this.uvarint(0);
    this.uvarint(items.length + 1);
    for (const it of items) f(it);
    return this;
  }
  /** An empty tagged-field section. */
  noTags(): this {
    return this.uvarint(0);
  }
  toBuffer(): Buffer {
    return Buffer.from(this.buf.subarray(0, this.len));
  }
  /** The content preceded by its int32 size: one frame on the wire. */
  toFrame(): Buffer {
    const out = Buffer.allocUnsafe(4 + this.len);
    out.writeInt32BE(this.len, 0);
    this.buf.copy(out, 4, 0, this.len);
    return out;
  }
}
