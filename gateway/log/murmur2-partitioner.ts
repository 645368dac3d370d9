/**
 * The Java Kafka client's default partitioning of keyed records: `toPositive(murmur2(keyBytes)) % partitions`
 * (org.apache.kafka.common.utils.Utils.murmur2, seed 0x9747b28c), the same as kafkajs' DefaultPartitioner. Records
 * with the same key land in the same partition whichever of these clients wrote them.
 *
 * Why not @platformatic/kafka's own: its `defaultPartitioner` returns `murmur2 >>> 0`, which puts negative hashes
 * (half of all keys) in other partitions than Java does; its `compatibilityPartitioner` matches Java but hashes
 * with BigInt arithmetic (a few µs per key). This one uses 32-bit integer arithmetic (Math.imul).
 */

const SEED = 0x9747b28c;
const M = 0x5bd1e995;

/** Java's `Utils.murmur2`: a signed 32-bit hash of the bytes. */
export function murmur2(data: Uint8Array): number {
  const length = data.length;
  let h = SEED ^ length;
  const whole = length & ~3;
  for (let i = 0; i < whole; i += 4) {
    let k = (data[i]! | (data[i + 1]! << 8) | (data[i + 2]! << 16) | (data[i + 3]! << 24)) | 0;
    k = Math.imul(k, M);
    k ^= k >>> 24;
    k = Math.imul(k, M);
    h = Math.imul(h, M) ^ k;
  }
  const rest = length & 3;
  if (rest > 0) {
    if (rest === 3) h ^= data[whole + 2]! << 16;
    if (rest >= 2) h ^= data[whole + 1]! << 8;
    h ^= data[whole]!;
    h = Math.imul(h, M);
  }
  h ^= h >>> 13;
  h = Math.imul(h, M);
  h ^= h >>> 15;
  return h | 0;
}

/** The partition (0 ≤ p < partitions) the Java client picks for a record with this key. */
export function partitionForKey(key: Uint8Array, partitions: number): number {
  return (murmur2(key) & 0x7fffffff) % partitions;
}

/**
 * A partitioner for @platformatic/kafka's Producer: returns the positive hash, which the producer reduces
 * modulo the topic's partition count (giving `partitionForKey`). Records without a key go to partition 0
 * (the sink always sets one).
 */
export function javaCompatiblePartitioner(_message: unknown, key: Buffer | undefined): number {
  return key === undefined ? 0 : murmur2(key) & 0x7fffffff;
}
