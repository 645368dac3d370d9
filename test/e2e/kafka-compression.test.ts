/**
 * SIBYL_KAFKA_COMPRESSION against the shared test broker (scripts/services/kafka.sh): gateways logging the same
 * predictions uncompressed, with zstd and with lz4, each to a topic of its own. Every record reaches Kafka and
 * reads back whole through replay's reader (@platformatic/kafka's consumer, which decodes the codec), and the
 * broker holds the compressed topics in fewer bytes than the uncompressed one (its log directories' sizes), so the
 * codec was really applied.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Admin } from '@platformatic/kafka';
import { readPredictionLog } from '../../replay/log-reader.ts';
import { parsePredictionEvent } from '../../gateway/log/cloud-event.ts';
import { TEST_BROKERS, uniqueName } from '../log/records.ts';
import { startGateway, postJson, type TestGateway } from '../helpers/gateway.ts';
import { expectedFor } from '../helpers/expected.ts';

const CODECS = ['none', 'zstd', 'lz4'] as const;
type Codec = (typeof CODECS)[number];
const PREDICTIONS = 120;

const gateways = new Map<Codec, { gw: TestGateway; topic: string; requestIds: string[] }>();

beforeAll(async () => {
  await Promise.all(
    CODECS.map(async (codec) => {
      const topic = uniqueName(`e2e-compression-${codec}`);
      const gw = await startGateway({ KAFKA_BROKERS: TEST_BROKERS.join(','), SIBYL_KAFKA_TOPIC: topic, SIBYL_KAFKA_COMPRESSION: codec, SIBYL_CELL: 'cell-compression' });
      gateways.set(codec, { gw, topic, requestIds: [] });
    }),
  );
}, 90_000);
afterAll(async () => {
  for (const { gw } of gateways.values()) await gw.stop();
});

/** Bytes the broker holds for the topic, all partitions, all log directories. */
async function topicBytes(topic: string): Promise<number> {
  const admin = new Admin({ clientId: 'sibyl-test-log-dirs', bootstrapBrokers: TEST_BROKERS });
  try {
    const brokers = await admin.describeLogDirs({ topics: [{ name: topic, partitions: [0, 1, 2] }] });
    let bytes = 0;
    for (const b of brokers) for (const dir of b.results) for (const t of dir.topics) if (t.name === topic) for (const p of t.partitions) bytes += Number(p.partitionSize);
    return bytes;
  } finally {
    await admin.close();
  }
}

describe('prediction log compression', () => {
  it('delivers every record with each codec, and the broker stores the compressed ones in fewer bytes', async () => {
    const rows = expectedFor('delivery-eta', '2').rows;
    // The same requests to each gateway: the topics differ only in the codec (and in ids, which compress alike).
    for (let i = 0; i < PREDICTIONS; i++) {
      const r = rows[i % rows.length]!;
      for (const codec of CODECS) {
        const g = gateways.get(codec)!;
        const requestId = randomUUID();
        const res = await postJson(`${g.gw.http}/v1/models/delivery-eta:predict`, { requestId, rows: [{ entities: r.entities, features: r.request }] });
        expect(res.status, codec).toBe(200);
        g.requestIds.push(requestId);
      }
    }
    const sizes = new Map<Codec, number>();
    for (const codec of CODECS) {
      const g = gateways.get(codec)!;
      await g.gw.gateway.sink.flush();
      const read: string[] = [];
      for await (const batch of readPredictionLog({ brokers: TEST_BROKERS, topic: g.topic, groupId: uniqueName('compression-reader') })) read.push(...batch);
      const events = read.map((v) => parsePredictionEvent(v));
      expect(new Set(events.map((e) => (e.data as { requestId: string }).requestId)), codec).toEqual(new Set(g.requestIds));
      for (const e of events) expect(e.data, codec).toMatchObject({ model: 'delivery-eta', version: '2', role: 'ROLE_LIVE', cell: 'cell-compression' });
      sizes.set(codec, await topicBytes(g.topic));
    }
    const none = sizes.get('none')!;
    expect(none).toBeGreaterThan(PREDICTIONS * 500);
    // S1's records compress ~6x in 500-record batches; these batches are smaller (a flush sends what is there), so
    // the bound is loose: half the bytes.
    expect(sizes.get('zstd')!, `zstd ${sizes.get('zstd')} bytes against ${none} uncompressed`).toBeLessThan(none / 2);
    expect(sizes.get('lz4')!, `lz4 ${sizes.get('lz4')} bytes against ${none} uncompressed`).toBeLessThan(none / 2);
  }, 180_000);
});
