/**
 * Random (version 4) UUIDs for the request path: request ids and prediction ids. node:crypto's `randomUUID` builds its
 * string by twenty concatenations, ~600 bytes of garbage per id (two ids per logged request); this writes the 36
 * characters into one buffer and reads them as one string, from the same source of randomness (a pool of
 * `randomFillSync` bytes, refilled every 256 ids).
 */
import { randomFillSync } from 'node:crypto';

const IDS_PER_FILL = 256;
const pool = Buffer.allocUnsafeSlow(16 * IDS_PER_FILL);
let nextId = IDS_PER_FILL;
const text = Buffer.allocUnsafeSlow(36);
const HEX = Buffer.from('0123456789abcdef', 'latin1');

/** A random UUID (RFC 9562 version 4), lower-case, as `crypto.randomUUID()` returns it. */
export function randomUuid(): string {
  if (nextId === IDS_PER_FILL) {
    randomFillSync(pool);
    nextId = 0;
  }
  const p = nextId++ * 16;
  pool[p + 6] = (pool[p + 6]! & 0x0f) | 0x40; // version 4
  pool[p + 8] = (pool[p + 8]! & 0x3f) | 0x80; // variant 10
  let o = 0;
  for (let i = 0; i < 16; i++) {
    if (i === 4 || i === 6 || i === 8 || i === 10) text[o++] = 0x2d; // '-'
    const b = pool[p + i]!;
    text[o++] = HEX[b >> 4]!;
    text[o++] = HEX[b & 15]!;
  }
  return text.toString('latin1', 0, 36);
}
