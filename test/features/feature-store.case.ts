/**
 * The conformance suite every FeatureStore passes (ARCHITECTURE.md, "Plug-ins and roles"). Call it from a store's
 * test file:
 *
 *   featureStoreConformance('redis', () => openStore(), { prefix: uniquePrefix });
 *
 * `open` is called once before the suite; the store is closed after it. Every key the suite touches starts with
 * `prefix` + ':' so suites can share a real server (the caller cleans its prefix up if it needs to).
 */
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { featureKey, type FeatureLookup, type FeatureStore } from '../../execution/feature-store.ts';
import { seedFromFile } from '../../gateway/features/memory-feature-store.ts';

export const FIXTURE_JSONL = fileURLToPath(new URL('./fixtures/features.jsonl', import.meta.url));
export const FIXTURE_CSV = fileURLToPath(new URL('./fixtures/features.csv', import.meta.url));

/** Generous for a shared 2-core machine: the suite checks answers, not speed. */
const TIMEOUT_MS = 2000;

export function featureStoreConformance(name: string, open: () => Promise<FeatureStore>, opts: { prefix: string }): void {
  describe(`FeatureStore conformance: ${name}`, () => {
    let store: FeatureStore;
    const key = (entity: string, id: string) => featureKey(opts.prefix, entity, id);

    beforeAll(async () => {
      store = await open();
      await store.write([
        { key: key('restaurant', 'r1'), fields: { prep_time_avg_7d: '14.2', orders_last_30m: '11', cuisine: 'thaï 🍜' } },
        { key: key('restaurant', 'r2'), fields: { prep_time_avg_7d: '9.5' } },
        { key: key('customer', 'c1'), fields: { orders_30d: '3' } },
      ]);
    });
    afterAll(async () => {
      await store?.close();
    });

    it('reads the requested fields of a present key, as strings, in the requested order', async () => {
      const got = await store.read([{ key: key('restaurant', 'r1'), fields: ['cuisine', 'orders_last_30m', 'prep_time_avg_7d'] }], TIMEOUT_MS);
      expect(got).toEqual([['thaï 🍜', '11', '14.2']]);
    });

    it('reads null for a missing key and for a missing field of a present key', async () => {
      const got = await store.read(
        [
          { key: key('restaurant', 'nope'), fields: ['prep_time_avg_7d', 'orders_last_30m'] },
          { key: key('restaurant', 'r2'), fields: ['orders_last_30m', 'prep_time_avg_7d'] },
        ],
        TIMEOUT_MS,
      );
      expect(got).toEqual([
        [null, null],
        [null, '9.5'],
      ]);
    });

    it('answers one array per lookup in lookup order, repeated keys included', async () => {
      const got = await store.read(
        [
          { key: key('customer', 'c1'), fields: ['orders_30d'] },
          { key: key('restaurant', 'r2'), fields: ['prep_time_avg_7d'] },
          { key: key('restaurant', 'r1'), fields: ['prep_time_avg_7d'] },
          { key: key('customer', 'c1'), fields: ['orders_30d', 'missing'] },
        ],
        TIMEOUT_MS,
      );
      expect(got).toEqual([['3'], ['9.5'], ['14.2'], ['3', null]]);
    });

    it('answers an empty read, and a lookup with no fields, with empty arrays', async () => {
      expect(await store.read([], TIMEOUT_MS)).toEqual([]);
      expect(await store.read([{ key: key('restaurant', 'r1'), fields: [] }], TIMEOUT_MS)).toEqual([[]]);
    });

    it('reads many lookups of many fields in one call', async () => {
      const fields = ['f0', 'f1', 'f2', 'f3', 'f4', 'f5', 'f6'];
      const entries = Array.from({ length: 300 }, (_, i) => ({
        key: key('bulk', `e${i}`),
        fields: Object.fromEntries(fields.map((f, j) => [f, `${i}.${j}`])),
      }));
      await store.write(entries);
      const lookups: FeatureLookup[] = entries.map((e) => ({ key: e.key, fields }));
      lookups.push({ key: key('bulk', 'absent'), fields });
      const got = await store.read(lookups, TIMEOUT_MS);
      expect(got).toHaveLength(301);
      got.slice(0, 300).forEach((values, i) => expect(values).toEqual(fields.map((_, j) => `${i}.${j}`)));
      expect(got[300]).toEqual(fields.map(() => null));
    });

    it('keeps concurrent reads apart: each gets its own answer', async () => {
      const entries = Array.from({ length: 50 }, (_, i) => ({ key: key('conc', `e${i}`), fields: { a: `a${i}`, b: `b${i}` } }));
      await store.write(entries);
      const reads = Array.from({ length: 200 }, (_, n) => {
        const i = n % 50;
        const j = (n * 7) % 50;
        return store.read(
          [
            { key: key('conc', `e${i}`), fields: ['b', 'a'] },
            { key: key('conc', `e${j}`), fields: ['a'] },
          ],
          TIMEOUT_MS,
        );
      });
      const got = await Promise.all(reads);
      got.forEach((values, n) => {
        const i = n % 50;
        const j = (n * 7) % 50;
        expect(values).toEqual([[`b${i}`, `a${i}`], [`a${j}`]]);
      });
    });

    it('write merges fields into a hash and overwrites values (HSET semantics)', async () => {
      const k = key('merge', 'm1');
      await store.write([{ key: k, fields: { a: '1', b: '2' } }]);
      await store.write([{ key: k, fields: { b: '20', c: '30' } }]);
      expect(await store.read([{ key: k, fields: ['a', 'b', 'c'] }], TIMEOUT_MS)).toEqual([['1', '20', '30']]);
    });

    it('write of an entry with no fields is a no-op', async () => {
      const k = key('merge', 'empty');
      await store.write([{ key: k, fields: {} }]);
      expect(await store.read([{ key: k, fields: ['a'] }], TIMEOUT_MS)).toEqual([[null]]);
    });

    it('is healthy after a successful read', async () => {
      await store.read([{ key: key('restaurant', 'r1'), fields: ['cuisine'] }], TIMEOUT_MS);
      expect(store.healthy).toBe(true);
    });

    it('is seeded from a JSON-lines feature file, values as strings, nulls left absent', async () => {
      const prefix = `${opts.prefix}:seed`;
      expect(await seedFromFile(store, FIXTURE_JSONL, prefix)).toBe(3);
      const got = await store.read(
        [
          { key: featureKey(prefix, 'restaurant', 'r1'), fields: ['prep_time_avg_7d', 'orders_last_30m', 'cuisine', 'is_open'] },
          { key: featureKey(prefix, 'restaurant', 'r2'), fields: ['prep_time_avg_7d', 'orders_last_30m', 'cuisine'] },
          { key: featureKey(prefix, 'customer', '42'), fields: ['orders_30d'] },
        ],
        TIMEOUT_MS,
      );
      expect(got).toEqual([
        ['14.2', '11', 'thai', 'true'],
        ['9.5', '0', null],
        ['3'],
      ]);
    });
  });
}
