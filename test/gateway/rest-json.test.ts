/**
 * Sibyl REST's JSON, read and written without protobuf-es on the common path (gateway/transport/sibyl-api.ts): what
 * `plainPredictRequest` accepts must decode exactly as protobuf-es's `fromJson` + `toParsedRequest` decodes it, what it
 * declines goes there, and `predictResponseJson` must write byte for byte what `toJsonString` writes.
 */
import { describe, expect, it } from 'vitest';
import { fromJson, toJsonString, type JsonValue } from '@bufbuild/protobuf';
import { PredictRequestSchema, PredictResponseSchema } from '../../proto/gen/sibyl/v1/predict_pb.js';
import { plainPredictRequest, predictResponseJson, toParsedRequest, toPredictResponse } from '../../gateway/transport/sibyl-api.ts';
import type { ParsedRequest, PredictOutput } from '../../gateway/pipeline/pipeline.ts';
import type { Route } from '../../gateway/routing/route-table.ts';

const ROUTE = undefined as unknown as Route;

function viaProtobuf(json: unknown, timeoutMs?: number): ParsedRequest {
  return toParsedRequest(fromJson(PredictRequestSchema, json as JsonValue), timeoutMs);
}

function fields(p: ParsedRequest) {
  return { model: p.model, version: p.version, routingKey: p.routingKey, requestId: p.requestId, timeoutMs: p.timeoutMs, rows: p.rows(ROUTE, []) };
}

/** The body S1 sends (delivery-eta: three entities, seven inline features). */
const S1 = {
  rows: [
    {
      entities: { restaurant: 'r-17', zone: 'z-3', customer: 'c-90210' },
      features: { distance_km: 4.2, hour: 19, weekday: 5, basket_items: 3, basket_value: 31.5, rain: true, channel: 'app' },
    },
  ],
};

const ACCEPTED: [string, unknown][] = [
  ['S1', S1],
  ['every field', { model: 'm', version: '3', requestId: 'req-1', routingKey: 'customer-7', rows: S1.rows }],
  ['no rows', {}],
  ['empty rows', { rows: [] }],
  ['a row without maps', { rows: [{}] }],
  ['a row with entities only', { rows: [{ entities: { a: 'x' } }] }],
  ['a row with features only', { rows: [{ features: { f: -0, g: 1e300, h: '', i: false } }] }],
  ['several rows', { rows: [S1.rows[0], { features: { x: 1 } }, { entities: {} }] }],
  ['unicode and integer-like keys', { rows: [{ entities: { 'é': 'ü', '10': 'a', '2': 'b' }, features: { '7': 7, 'ключ': 'значение', '': 0 } }] }],
  ['empty strings', { model: '', version: '', requestId: '', routingKey: '', rows: [{ entities: { a: '' } }] }],
];

const DECLINED: [string, unknown][] = [
  ['proto field names', { request_id: 'r', rows: [] }],
  ['routing_key', { routing_key: 'k' }],
  ['a null field', { model: null }],
  ['an unknown key', { rows: [], extra: 1 }],
  ['a number for a string', { version: 3 }],
  ['rows not a list', { rows: {} }],
  ['a null row', { rows: [null] }],
  ['a list row', { rows: [[]] }],
  ['an unknown row key', { rows: [{ entities: {}, other: {} }] }],
  ['a null map', { rows: [{ features: null }] }],
  ['a number entity', { rows: [{ entities: { a: 1 } }] }],
  ['a null feature', { rows: [{ features: { a: null } }] }],
  ['an object feature', { rows: [{ features: { a: { b: 1 } } }] }],
  ['a list feature', { rows: [{ features: { a: [1, 2] } }] }],
  ['a __proto__ feature', { rows: [{ features: JSON.parse('{"__proto__": 1}') }] }],
  ['a __proto__ entity', { rows: [{ entities: JSON.parse('{"__proto__": "x"}') }] }],
  ['a __proto__ key', JSON.parse('{"__proto__": {}}')],
  ['a list', []],
  ['a string', 'rows'],
  ['null', null],
];

describe('Sibyl REST JSON: reading a PredictRequest', () => {
  it.each(ACCEPTED)('reads %s as protobuf-es decodes it', (_, body) => {
    const plain = plainPredictRequest(structuredClone(body), 250);
    expect(plain).toBeDefined();
    expect(fields(plain!)).toEqual(fields(viaProtobuf(structuredClone(body), 250)));
  });

  it.each(DECLINED)('leaves %s to protobuf-es', (_, body) => {
    expect(plainPredictRequest(body, undefined)).toBeUndefined();
  });

  it('a row that lacks a map reads as an empty one, as protobuf-es gives it, and nothing else of the body changes', () => {
    const body = { rows: [{ features: { a: 1 } }, { entities: { e: 'x' } }] };
    const rows = plainPredictRequest(body, undefined)!.rows(ROUTE, []);
    expect(rows).toEqual([
      { entities: {}, features: { a: 1 } },
      { entities: { e: 'x' }, features: {} },
    ]);
    expect(rows).toEqual(viaProtobuf({ rows: [{ features: { a: 1 } }, { entities: { e: 'x' } }] }).rows(ROUTE, []));
  });

  it('over random bodies, whatever it accepts protobuf-es decodes to the same request', () => {
    let seed = 42;
    const rand = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
    const pick = <T,>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)]!;
    const scalar = () => pick<unknown>([1, -2.5, 0, 'x', '', true, false, null, [1], { a: 1 }, 'ü']);
    const map = (values: () => unknown) => {
      const m: Record<string, unknown> = {};
      for (let i = Math.floor(rand() * 4); i > 0; i--) m[pick(['a', 'b', '1', 'é', 'feature_x'])] = values();
      return m;
    };
    const row = () => {
      const r: Record<string, unknown> = {};
      if (rand() < 0.8) r.entities = rand() < 0.9 ? map(() => pick<unknown>(['id', 'x', '', 3, null])) : pick<unknown>([null, [], 'x']);
      if (rand() < 0.8) r.features = rand() < 0.9 ? map(scalar) : pick<unknown>([null, [], 1]);
      if (rand() < 0.05) r.extra = 1;
      return r;
    };
    let accepted = 0;
    let declined = 0;
    for (let n = 0; n < 3000; n++) {
      const body: Record<string, unknown> = {};
      for (const key of ['model', 'version', 'requestId', 'routingKey', 'request_id', 'rows', 'other']) {
        if (rand() < (key === 'rows' ? 0.9 : key === 'request_id' || key === 'other' ? 0.03 : 0.3)) {
          body[key] = key === 'rows' ? (rand() < 0.95 ? Array.from({ length: Math.floor(rand() * 3) }, row) : pick<unknown>([null, {}, 'x'])) : pick<unknown>(['m', '2', '', 7, null]);
        }
      }
      const plain = plainPredictRequest(structuredClone(body), 100);
      let protobuf: ParsedRequest | Error;
      try {
        protobuf = viaProtobuf(structuredClone(body), 100);
      } catch (err) {
        protobuf = err as Error;
      }
      if (plain === undefined) {
        declined++;
        continue;
      }
      accepted++;
      expect(protobuf, JSON.stringify(body)).not.toBeInstanceOf(Error);
      expect(fields(plain), JSON.stringify(body)).toEqual(fields(protobuf as ParsedRequest));
    }
    // Both kinds were exercised.
    expect(accepted).toBeGreaterThan(300);
    expect(declined).toBeGreaterThan(300);
  });
});

function output(results: PredictOutput['results'], arm = '', requestId = 'req-1'): PredictOutput {
  return { requestId, model: 'delivery-eta', version: '2', arm, results, route: undefined as unknown as Route };
}

describe('Sibyl REST JSON: writing a PredictResponse', () => {
  const cases: [string, PredictOutput][] = [
    ['S1', output([{ outputs: { eta_minutes: 31.25 }, defaulted: [] }])],
    ['an arm and defaults', output([{ outputs: { eta_minutes: 30.8148193359375, late: false }, defaulted: ['zone_load', 'rain'] }], 'canary')],
    ['several rows', output([{ outputs: { a: 1 }, defaulted: [] }, { outputs: { a: -0, b: 'x' }, defaulted: ['f'] }, { outputs: {}, defaulted: [] }])],
    ['no rows', output([])],
    ['lists and other values', output([{ outputs: { probs: [0.1, 0.9], nested: [[1, 2], ['a', true]], n: null, u: undefined, big: 1e300 } as never, defaulted: [] }])],
    ['integer-like and unicode names', output([{ outputs: { '10': 1, '2': 2, 'ключ': 'значение', z: 'é' }, defaulted: [] }])],
    ['empty names and strings', output([{ outputs: { '': '' }, defaulted: [''] }], '', '')],
  ];

  it.each(cases)('writes %s as protobuf-es does', (_, out) => {
    expect(predictResponseJson(out)).toBe(toJsonString(PredictResponseSchema, toPredictResponse(out)));
  });

  it('a number google.protobuf.Value cannot hold is refused as protobuf-es refuses it', () => {
    for (const bad of [NaN, Infinity, -Infinity, [1, NaN]]) {
      const out = output([{ outputs: { ok: 1, bad } as never, defaulted: [] }]);
      expect(() => toJsonString(PredictResponseSchema, toPredictResponse(out))).toThrow(/cannot be NaN or Infinity/);
      expect(() => predictResponseJson(out)).toThrow(/cannot be NaN or Infinity/);
    }
  });
});
