/**
 * The shipped models served end to end: a client sends only entity ids and request features; the gateway reads the
 * rest from the feature store (the embedded one, seeded from models/features.jsonl) and must return what the
 * training library produced, within float32 precision.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGateway, postJson, type TestGateway } from '../helpers/gateway.ts';
import { close, expectedFiles } from '../helpers/expected.ts';

let gw: TestGateway;
beforeAll(async () => {
  gw = await startGateway({ SIBYL_PREDICTION_LOG: 'off' });
});
afterAll(() => gw.stop());

describe.each(expectedFiles().map((f) => [`${f.model}/${f.version}`, f] as const))('%s', (_name, file) => {
  it('matches the training library on every expected row, as one batch with store features fetched', async () => {
    const res = await postJson(`${gw.http}/v1/models/${file.model}/versions/${file.version}:predict`, {
      rows: file.rows.map((r) => ({ entities: r.entities, features: r.request })),
    });
    expect(res.status, JSON.stringify(res.json)).toBe(200);
    expect(res.json.results).toHaveLength(file.rows.length);
    let worst = 0;
    file.rows.forEach((row, i) => {
      const result = res.json.results[i];
      expect(result.defaultedFeatures ?? []).toEqual([]);
      for (const [name, want] of Object.entries(row.expected)) {
        const got = result.outputs[name];
        const pairs: [number, number][] = Array.isArray(want) ? want.map((w, j) => [got[j], w]) : [[got, want]];
        for (const [g, w] of pairs) {
          worst = Math.max(worst, Math.abs(g - w) / Math.max(1, Math.abs(w)));
          expect(close(g, w), `${file.model} row ${i} ${name}: ${g} vs ${w}`).toBe(true);
        }
      }
    });
    expect(worst).toBeLessThanOrEqual(1e-5);
  });
});
