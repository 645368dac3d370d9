/**
 * The gateway against a real Redis: store features are used, missing keys fall back to the declared defaults, and
 * with Redis stopped mid-run predictions keep answering (with defaults) and a metric counts the failures.
 * Uses a private redis-server so that stopping it does not disturb other suites.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RedisProcess, sleep } from '../features/redis-process.ts';
import { loadFeatureFile } from '../../gateway/features/feature-file.ts';
import { createRedisFeatureStore } from '../../gateway/features/redis-feature-store.ts';
import { startGateway, postJson, type TestGateway } from '../helpers/gateway.ts';
import { close, expectedFor, MODELS_DIR } from '../helpers/expected.ts';

let redis: RedisProcess;
let gw: TestGateway;
const eta = expectedFor('delivery-eta', '2');
const storeFeatures = ['prep_time_avg_7d', 'prep_time_avg_1h', 'orders_last_30m', 'cancel_rate_7d', 'rating_avg_30d', 'kitchen_load', 'active_riders', 'open_orders', 'rider_wait_avg_15m', 'traffic_index', 'avg_speed_kmh', 'distance_to_door_m', 'building_floor'];

beforeAll(async () => {
  redis = await RedisProcess.start();
  gw = await startGateway({ REDIS_URL: redis.url, SIBYL_FEATURE_TIMEOUT_MS: '50', SIBYL_PREDICTION_LOG: 'off' });
  await seed();
}, 60_000);

/** Loads the demo population the way an operator would (the CLI's client, not the gateway's request-path one). */
async function seed(): Promise<void> {
  const loader = createRedisFeatureStore({ url: redis.url, commandTimeoutMs: 10_000 });
  try {
    await loader.write(await loadFeatureFile(`${MODELS_DIR}features.jsonl`, 'sibyl'));
  } finally {
    await loader.close();
  }
}
afterAll(async () => {
  await gw?.stop();
  await redis?.dispose();
});

const predict = (rows: { entities: Record<string, string>; features: Record<string, number> }[]) =>
  postJson(`${gw.http}/v1/models/delivery-eta/versions/2:predict`, { rows });

describe('gateway with Redis', () => {
  it('reads store features from Redis and matches the training library', async () => {
    const rows = eta.rows.slice(0, 10);
    const res = await predict(rows.map((r) => ({ entities: r.entities, features: r.request })));
    expect(res.status).toBe(200);
    rows.forEach((r, i) => {
      expect(res.json.results[i].defaultedFeatures ?? []).toEqual([]);
      expect(close(res.json.results[i].outputs.eta_minutes, r.expected['eta_minutes'] as number)).toBe(true);
    });
  });

  it('uses the declared defaults for an entity Redis does not have, and says which', async () => {
    const r = eta.rows[0]!;
    const res = await predict([{ entities: { ...r.entities, restaurant: 'r-unknown' }, features: r.request }]);
    expect(res.status).toBe(200);
    expect(res.json.results[0].defaultedFeatures).toEqual(['prep_time_avg_7d', 'prep_time_avg_1h', 'orders_last_30m', 'cancel_rate_7d', 'rating_avg_30d', 'kitchen_load']);
  });

  it('keeps answering with defaults while Redis is down, counts it, and uses Redis again once it is back', async () => {
    const r = eta.rows[1]!;
    const row = { entities: r.entities, features: r.request };
    await redis.stop();
    const started = performance.now();
    const results = await Promise.all(Array.from({ length: 20 }, () => predict([row])));
    const elapsed = performance.now() - started;
    for (const res of results) {
      expect(res.status).toBe(200);
      expect(res.json.results[0].defaultedFeatures).toEqual(storeFeatures);
    }
    // A correctness bound, not a benchmark: nothing waited for ioredis's reconnect (~10 s with its defaults).
    expect(elapsed).toBeLessThan(3000);
    const metrics = await (await fetch(`${gw.http}/metrics`)).text();
    const failures = metrics.split('\n').filter((l) => l.startsWith('sibyl_feature_store_failures_total{') && l.includes('model="delivery-eta"'));
    expect(failures.reduce((s, l) => s + Number(l.split(' ').at(-1)), 0)).toBeGreaterThanOrEqual(20);

    await redis.start();
    await seed();
    let last: any;
    for (let i = 0; i < 100; i++) {
      // The gateway's client reconnects in the background.
      last = await predict([row]);
      if ((last.json.results[0].defaultedFeatures ?? []).length === 0) break;
      await sleep(100);
    }
    expect(last.json.results[0].defaultedFeatures ?? []).toEqual([]);
    expect(close(last.json.results[0].outputs.eta_minutes, r.expected['eta_minutes'] as number)).toBe(true);
  }, 60_000);
});
