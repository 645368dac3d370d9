/**
 * Live and shadow executions land in the real Kafka topic as separate records that join by request id: same key
 * (the request id), role LIVE once and SHADOW once per shadow, the same arm.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { consumeTopic, TEST_BROKERS, uniqueName } from '../log/records.ts';
import { startGateway, postJson, type TestGateway } from '../helpers/gateway.ts';
import { expectedFor } from '../helpers/expected.ts';
import { makeModelsDir } from '../helpers/models-dir.ts';

const topic = uniqueName('e2e-shadows');
let gw: TestGateway;
beforeAll(async () => {
  const dir = makeModelsDir({
    bundles: ['delivery-eta/1', 'delivery-eta/2', 'eta-risk/1'],
    deployment: {
      models: {
        'delivery-eta': { default: '2', split: [{ version: '2', weight: 1, arm: 'main' }], shadows: [{ version: '1' }, { model: 'eta-risk' }] },
        'eta-risk': { default: '1' },
      },
    },
  });
  gw = await startGateway({ SIBYL_MODELS_DIR: dir, KAFKA_BROKERS: TEST_BROKERS.join(','), SIBYL_KAFKA_TOPIC: topic, SIBYL_CELL: 'cell-shadow' });
}, 60_000);
afterAll(() => gw?.stop());

describe('shadow records in Kafka', () => {
  it('join the live record by request id', async () => {
    const rows = expectedFor('delivery-eta', '2').rows.slice(0, 10);
    const ids: string[] = [];
    for (const r of rows) {
      const res = await postJson(`${gw.http}/v1/models/delivery-eta:predict`, { rows: [{ entities: r.entities, features: r.request }], routingKey: r.entities.customer });
      expect(res.status).toBe(200);
      expect(res.json.arm).toBe('main');
      ids.push(res.json.requestId);
    }
    await gw.gateway.shadows.flush();
    await gw.gateway.sink.flush();

    const messages = await consumeTopic(TEST_BROKERS, topic, ids.length * 3);
    expect(messages).toHaveLength(ids.length * 3);
    for (const id of ids) {
      const joined = messages.filter((m) => m.key === id).map((m) => m.event.data as any);
      expect(joined.map((d) => [d.role, d.model, d.version, d.arm]).sort()).toEqual([
        ['ROLE_LIVE', 'delivery-eta', '2', 'main'],
        ['ROLE_SHADOW', 'delivery-eta', '1', 'main'],
        ['ROLE_SHADOW', 'eta-risk', '1', 'main'],
      ]);
      expect(new Set(joined.map((d) => d.requestId))).toEqual(new Set([id]));
      // One partition per request: the key is the request id.
      expect(new Set(messages.filter((m) => m.key === id).map((m) => m.partition)).size).toBe(1);
    }
  });
});
