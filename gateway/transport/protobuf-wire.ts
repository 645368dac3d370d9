/**
 * Reading and writing protobuf's wire form by hand, for the gRPC doors' common messages (Sibyl's PredictRequest and
 * PredictResponse in sibyl-api.ts, the Open Inference Protocol's ModelInferRequest and ModelInferResponse in
 * oip/oip-wire.ts): a reader that declines what it does not know (the door then decodes with protobuf-es, which gives
 * the same message or the precise error) and writers that give protobuf-es's bytes. Wire types: 0 varint, 1 fixed64,
 * 2 length-delimited, 5 fixed32.
 */
import { isUtf8 } from 'node:buffer';

/** The position in the message being read or written: one message at a time, and neither reading nor writing yields. */
export const cursor = { at: 0 };

/**
 * A varint of at most 32 bits at the cursor (a tag, a length, a small count), or -1 for a longer or truncated one, so
 * the caller declines the message.
 */
export function uint32(b: Uint8Array, end: number): number {
  let v = 0;
  for (let shift = 0; shift < 35; shift += 7) {
    if (cursor.at >= end) return -1;
    const x = b[cursor.at++]!;
    v += (x & 0x7f) * 2 ** shift;
    if (x < 0x80) return v <= 0xffffffff ? v : -1;
  }
  return -1;
}

/** A varint of up to 64 bits, as whether it is non-zero (a bool), or -1 when malformed. */
export function varintNonZero(b: Uint8Array, end: number): number {
  let nonZero = 0;
  for (let i = 0; i < 10; i++) {
    if (cursor.at >= end) return -1;
    const x = b[cursor.at++]!;
    if (x & 0x7f) nonZero = 1;
    if (x < 0x80) return nonZero;
  }
  return -1;
}

/** The string of `len` bytes at the cursor, or undefined when they overrun `end` or are not valid UTF-8. */
export function str(b: Buffer, len: number, end: number): string | undefined {
  const from = cursor.at;
  const to = from + len;
  if (to > end) return undefined;
  cursor.at = to;
  let ascii = true;
  for (let i = from; i < to; i++) {
    if (b[i]! >= 0x80) {
      ascii = false;
      break;
    }
  }
  if (ascii) return b.toString('latin1', from, to);
  return isUtf8(b.subarray(from, to)) ? b.toString('utf8', from, to) : undefined;
}

/**
 * Map keys read recently, by a hash of their bytes: slot -> the key's bytes, and its string. 4,096 slots: with 256,
 * two of the 25 strings the codec benchmark's three requests name shared a slot and evicted each other on every read,
 * which made that read slower than without the cache.
 */
const KEY_SLOTS = 4096;
const MAX_CACHED_KEY = 64;
const keyBytes: (Uint8Array | undefined)[] = new Array<Uint8Array | undefined>(KEY_SLOTS).fill(undefined);
const keyStrings: string[] = new Array<string>(KEY_SLOTS).fill('');

/**
 * `str` for a string that repeats from message to message (a map's key, a model's name or version, a tensor's name or
 * datatype): the same string, or undefined likewise, but bytes read before give the same string as then. A request
 * names the same few keys every time; a string made afresh for each had to be looked up in V8's string table again
 * when it became a property's name. Bounded: at most KEY_SLOTS strings of MAX_CACHED_KEY bytes.
 */
export function key(b: Buffer, len: number, end: number): string | undefined {
  const from = cursor.at;
  const to = from + len;
  if (len > MAX_CACHED_KEY || to > end) return str(b, len, end);
  // FNV-1a over the bytes, its high bits folded down.
  let h = 0x811c9dc5;
  for (let i = from; i < to; i++) {
    const c = b[i]!;
    if (c >= 0x80) return str(b, len, end);
    h = Math.imul(h ^ c, 0x01000193);
  }
  const slot = (h ^ (h >>> 16)) & (KEY_SLOTS - 1);
  const known = keyBytes[slot];
  cursor.at = to;
  if (known !== undefined && known.length === len) {
    let same = true;
    for (let i = 0; i < len; i++) {
      if (known[i] !== b[from + i]) {
        same = false;
        break;
      }
    }
    if (same) return keyStrings[slot]!;
  }
  const s = b.toString('latin1', from, to);
  keyBytes[slot] = new Uint8Array(b.subarray(from, to));
  keyStrings[slot] = s;
  return s;
}

/** A string field's bytes after its tag: its length and its UTF-8. */
export function lenPrefixed(s: string): number {
  const n = utf8Length(s);
  return varintSize(n) + n;
}

/** A proto3 string field's bytes, tag included; 0 for '' (left out). */
export function strField(s: string): number {
  return s === '' ? 0 : 1 + lenPrefixed(s);
}

/** A length-delimited field of `n` bytes, tag included. */
export function delimited(n: number): number {
  return 1 + varintSize(n) + n;
}

export function utf8Length(s: string): number {
  for (let i = 0; i < s.length; i++) if (s.charCodeAt(i) >= 0x80) return Buffer.byteLength(s, 'utf8');
  return s.length;
}

/** Bytes of a varint of a value below 2^35 (lengths, sizes, tensor dimensions). */
export function varintSize(n: number): number {
  return n < 0x80 ? 1 : n < 0x4000 ? 2 : n < 0x200000 ? 3 : n < 0x10000000 ? 4 : 5;
}

/** A varint of a value below 2^32 at the cursor. */
export function writeVarint(b: Buffer, n: number): void {
  while (n >= 0x80) {
    b[cursor.at++] = (n & 0x7f) | 0x80;
    n >>>= 7;
  }
  b[cursor.at++] = n;
}

/** A string field (tag, length, UTF-8); left out when '' unless `always` (a map key, a list item, a oneof's value). */
export function writeStr(b: Buffer, tag: number, s: string, always = false): void {
  if (s === '' && !always) return;
  b[cursor.at++] = tag;
  const n = utf8Length(s);
  writeVarint(b, n);
  if (n === s.length) {
    for (let i = 0; i < n; i++) b[cursor.at++] = s.charCodeAt(i);
  } else {
    cursor.at += b.write(s, cursor.at, n, 'utf8');
  }
}
