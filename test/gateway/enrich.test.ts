/** Enrichment against an in-memory fake store (the Redis and memory stores have their own suites). */
import { describe, expect, it } from 'vitest';
import { compileFeaturePlan, enrich } from '../../execution/feature-plan.ts';
import type { FeatureLookup, FeatureStore } from '../../execution/feature-store.ts';
import { SibylError } from '../../core/errors.ts';
import { validateManifest } from '../../runtimes/manifest.ts';

const manifest = validateManifest({
  name: 'm',
  version: '1',
  runtime: 'onnx',
  features: [
    { name: 'distance', dtype: 'float32', source: 'request', default: 3 },
    { name: 'prep', dtype: 'float32', source: 'store', entity: 'restaurant', default: 15 },
    { name: 'orders', dtype: 'int64', source: 'store', entity: 'restaurant', key: 'orders_30m', default: 0 },
    { name: 'riders', dtype: 'float32', source: 'store', entity: 'zone', default: 50 },
    { name: 'open', dtype: 'bool', source: 'store', entity: 'zone', default: true },
  ],
  onnx: { file: 'm.onnx', inputs: [{ name: 'x', dtype: 'float32', features: ['distance', 'prep', 'orders', 'riders', 'open'] }], outputs: [{ name: 'y' }] },
});
const plan = compileFeaturePlan(manifest);

function fakeStore(data: Record<string, Record<string, string>>, behaviour: 'ok' | 'timeout' | 'error' = 'ok') {
  const calls: FeatureLookup[][] = [];
  const store: FeatureStore = {
    kind: 'fake',
    healthy: true,
    async read(lookups) {
      calls.push([...lookups]);
      if (behaviour === 'timeout') throw new SibylError('DEADLINE_EXCEEDED', 'late');
      if (behaviour === 'error') throw new Error('down');
      return lookups.map((l) => l.fields.map((f) => data[l.key]?.[f] ?? null));
    },
    async write() {},
    async close() {},
  };
  return { store, calls };
}

describe('enrich', () => {
  it('reads all entities of all rows in one store call and types the values', async () => {
    const { store, calls } = fakeStore({ 'p:restaurant:r1': { prep: '12.5', orders_30m: '7' }, 'p:zone:z1': { riders: '40', open: 'false' } });
    const out = await enrich(plan, [{ entities: { restaurant: 'r1', zone: 'z1' }, features: { distance: 2 } }, { entities: { restaurant: 'r1', zone: 'z1' }, features: {} }], store, 'p', 5);
    expect(calls).toHaveLength(1);
    expect(calls[0]).toEqual([
      { key: 'p:restaurant:r1', fields: ['prep', 'orders_30m'] },
      { key: 'p:zone:z1', fields: ['riders', 'open'] },
      { key: 'p:restaurant:r1', fields: ['prep', 'orders_30m'] },
      { key: 'p:zone:z1', fields: ['riders', 'open'] },
    ]);
    expect(out.rows[0]).toEqual({ distance: 2, prep: 12.5, orders: 7, riders: 40, open: false });
    expect(out.defaulted).toEqual([[], ['distance']]);
    expect(out.rows[1]!['distance']).toBe(3);
  });

  it('defaults missing keys, missing fields and unparsable values, and says which', async () => {
    const { store } = fakeStore({ 'p:restaurant:r1': { prep: 'n/a' } });
    const out = await enrich(plan, [{ entities: { restaurant: 'r1', zone: 'z9' }, features: { distance: 1 } }], store, 'p', 5);
    expect(out.rows[0]).toEqual({ distance: 1, prep: 15, orders: 0, riders: 50, open: true });
    expect(out.defaulted[0]).toEqual(['prep', 'orders', 'riders', 'open']);
    expect(out.storeFailure).toBeUndefined();
  });

  it.each(['timeout', 'error'] as const)('answers with defaults when the store fails (%s)', async (behaviour) => {
    const { store } = fakeStore({}, behaviour);
    const out = await enrich(plan, [{ entities: { restaurant: 'r1', zone: 'z1' }, features: { distance: 1 } }], store, 'p', 5);
    expect(out.rows[0]).toEqual({ distance: 1, prep: 15, orders: 0, riders: 50, open: true });
    expect(out.storeFailure).toBe(behaviour);
  });

  it('lets inline values win and skips the lookup when an entity is fully inline', async () => {
    const { store, calls } = fakeStore({ 'p:zone:z1': { riders: '40', open: '1' } });
    const out = await enrich(plan, [{ entities: { zone: 'z1' }, features: { prep: 9, orders: 2, riders: 99 } }], store, 'p', 5);
    expect(calls[0]).toEqual([{ key: 'p:zone:z1', fields: ['riders', 'open'] }]);
    expect(out.rows[0]).toMatchObject({ prep: 9, orders: 2, riders: 99, open: true });
  });

  it("gives every row its features in the manifest's order, whatever order the request sent them in", async () => {
    // The prediction log writes a row's features in this order: a consumer sees the same columns in the same order.
    const { store } = fakeStore({ 'p:restaurant:r1': { prep: '12.5' }, 'p:zone:z1': { riders: '40', open: '1' } });
    const out = await enrich(
      plan,
      [
        { entities: { zone: 'z1', restaurant: 'r1' }, features: { open: false, orders: 4, distance: 2 } },
        { entities: { restaurant: 'r1', zone: 'z1' }, features: {} },
      ],
      store,
      'p',
      5,
    );
    const order = ['distance', 'prep', 'orders', 'riders', 'open'];
    expect(out.rows.map((r) => Object.keys(r))).toEqual([order, order]);
    expect(JSON.stringify(out.rows[0])).toBe('{"distance":2,"prep":12.5,"orders":4,"riders":40,"open":false}');
    expect(out.defaulted).toEqual([[], ['distance', 'orders']]);
  });

  it.each([
    [{ entities: { zone: 'z1' }, features: {} }, /rows\[0\]\.entities\.restaurant: an id is required \(the model reads prep, orders by it\)/],
    [{ entities: { restaurant: 'r', zone: 'z', shop: 's' }, features: {} }, /rows\[0\]\.entities\.shop: the model has no entity "shop" \(it has restaurant, zone\)/],
    [{ entities: { restaurant: 'r', zone: 'z' }, features: { orders: 1.5 } }, /rows\[0\]\.features\.orders: must be an integer of at most 53 bits \(int64\), got 1.5/],
    [{ entities: { restaurant: 'r', zone: 'z' }, features: { open: 1 } }, /rows\[0\]\.features\.open: must be a boolean \(bool\), got 1/],
  ])('rejects bad rows with INVALID_ARGUMENT: %#', async (row, message) => {
    const { store, calls } = fakeStore({});
    await expect(enrich(plan, [row], store, 'p', 5)).rejects.toThrow(message);
    expect(calls).toHaveLength(0);
  });
});
