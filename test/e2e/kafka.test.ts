/**
 * The gateway with KAFKA_BROKERS set: every prediction lands in the topic as a CloudEvent whose data is the
 * prediction record (request id, model, version, role, entities, the features the model saw, outputs, defaults).
 * Against the shared test broker started by scripts/services/kafka.sh.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { consumeTopic, TEST_BROKERS, uniqueName } from '../log/records.ts';
import { startGateway, postJson, type TestGateway } from '../helpers/gateway.ts';
import { close, expectedFor } from '../helpers/expected.ts';

const topic = uniqueName('e2e-predictions');
let gw: TestGateway;
beforeAll(async () => {
  gw = await startGateway({ KAFKA_BROKERS: TEST_BROKERS.join(','), SIBYL_KAFKA_TOPIC: topic, SIBYL_CELL: 'cell-e2e' });
}, 60_000);
afterAll(() => gw?.stop());

describe('prediction log in Kafka', () => {
  it('holds one record per prediction with the right content, keyed by request id', async () => {
    const rows = expectedFor('delivery-eta', '2').rows.slice(0, 6);
    const answers = [];
    for (const r of rows) {
      const res = await postJson(`${gw.http}/v1/models/delivery-eta:predict`, { rows: [{ entities: r.entities, features: r.request }] });
      expect(res.status).toBe(200);
      answers.push(res.json);
    }
    // One that defaults its restaurant features, one that fails (unknown version: not logged, no route), one batch.
    const unknown = await postJson(`${gw.http}/v1/models/delivery-eta:predict`, { rows: [{ entities: { ...rows[0]!.entities, restaurant: 'nobody' }, features: rows[0]!.request }] });
    expect(unknown.status).toBe(200);
    await gw.gateway.sink.flush();

    const messages = await consumeTopic(TEST_BROKERS, topic, rows.length + 1);
    expect(messages).toHaveLength(rows.length + 1);
    const byRequest = new Map(messages.map((m) => [m.key, m]));
    answers.forEach((answer, i) => {
      const m = byRequest.get(answer.requestId)!;
      expect(m, `record of ${answer.requestId}`).toBeDefined();
      expect(m.event).toMatchObject({ specversion: '1.0', type: 'sibyl.prediction.v1', source: 'sibyl/cell-e2e', datacontenttype: 'application/json' });
      const rec = m.event.data as any;
      expect(rec).toMatchObject({ requestId: answer.requestId, cell: 'cell-e2e', model: 'delivery-eta', version: '2', role: 'ROLE_LIVE' });
      expect(m.id).toBe(rec.predictionId);
      expect(rec.rows).toHaveLength(1);
      expect(rec.rows[0].entities).toEqual(rows[i]!.entities);
      for (const [k, v] of Object.entries(rows[i]!.features)) expect(close(rec.rows[0].features[k], v), k).toBe(true);
      expect(rec.rows[0].outputs.eta_minutes).toBe(answer.results[0].outputs.eta_minutes);
      expect(Number(rec.modelLatencyUs)).toBeGreaterThan(0);
    });
    const defaulted = byRequest.get(unknown.json.requestId)!.event.data as any;
    expect(defaulted.rows[0].defaultedFeatures).toEqual(['prep_time_avg_7d', 'prep_time_avg_1h', 'orders_last_30m', 'cancel_rate_7d', 'rating_avg_30d', 'kitchen_load']);
    expect(new Set(messages.map((m) => m.id)).size).toBe(messages.length);
  }, 90_000);

  it("carries the request's trace context as the CloudEvents distributed-tracing extension, and names the data's schema", async () => {
    const r = expectedFor('delivery-eta', '2').rows[0]!;
    const traceparent = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';
    const res = await postJson(`${gw.http}/v1/models/delivery-eta:predict`, { rows: [{ entities: r.entities, features: r.request }] }, { traceparent, tracestate: 'caller=kafka' });
    expect(res.status).toBe(200);
    await gw.gateway.sink.flush();
    let m;
    for (let i = 0; i < 10 && !m; i++) m = (await consumeTopic(TEST_BROKERS, topic, 1)).find((x) => x.key === res.json.requestId);
    expect(m).toBeDefined();
    // No OTLP endpoint here: the gateway traces nothing and passes the caller's context on as it came.
    expect(m!.event).toMatchObject({ traceparent, tracestate: 'caller=kafka', dataschema: 'urn:sibyl:proto:sibyl.v1.PredictionRecord' });
    expect(m!.event.data).toMatchObject({ requestId: res.json.requestId, traceparent, tracestate: 'caller=kafka' });
  }, 90_000);
});
