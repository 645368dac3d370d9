/** The sink's partitioner against the Java client's murmur2 and kafkajs' DefaultPartitioner (the former client). */
import { Partitioners } from 'kafkajs';
import { describe, expect, it } from 'vitest';
import { javaCompatiblePartitioner, murmur2, partitionForKey } from '../../gateway/log/murmur2-partitioner.ts';

describe('murmur2 partitioner', () => {
  it('hashes like the Java client (UtilsTest.testMurmur2 vectors)', () => {
    const vectors: [string, number][] = [
      ['21', -973932308],
      ['foobar', -790332482],
      ['a-little-bit-long-string', -985981536],
      ['a-little-bit-longer-string', -1486304829],
      ['lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8', -58897971],
      ['abc', 479470107],
    ];
    for (const [key, hash] of vectors) expect(murmur2(Buffer.from(key)), key).toBe(hash);
  });

  it('puts every key in the partition kafkajs put it in, for 1 to 12 partitions', () => {
    for (let partitions = 1; partitions <= 12; partitions++) {
      const kafkajs = Partitioners.DefaultPartitioner();
      const meta = Array.from({ length: partitions }, (_, p) => ({ partitionId: p, leader: 1 }));
      for (let i = 0; i < 2000; i++) {
        const key = `${crypto.randomUUID()}${'é'.repeat(i % 4)}`;
        const expected = kafkajs({ topic: 't', partitionMetadata: meta as never, message: { key, value: null } });
        expect(partitionForKey(Buffer.from(key), partitions)).toBe(expected);
        expect(javaCompatiblePartitioner(undefined, Buffer.from(key)) % partitions).toBe(expected);
      }
    }
  });
});
