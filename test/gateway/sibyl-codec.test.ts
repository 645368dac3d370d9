/**
 * Sibyl's messages read and written without protobuf-es on the common path (gateway/transport/sibyl-api.ts), in both
 * forms. JSON (Sibyl REST): what `plainPredictRequest` accepts must decode exactly as protobuf-es's `fromJson` +
 * `toParsedRequest` decodes it, and `predictResponseJson` must write byte for byte what `toJsonString` writes. The
 * wire form (Sibyl gRPC): likewise `readPredictRequest` against `fromBinary`, `predictResponseBinary` against
 * `toBinary`. What the direct readers decline goes to protobuf-es, which gives the same request or its error.
 */
import { describe, expect, it } from 'vitest';
import { create, fromBinary, fromJson, toBinary, toJsonString, type JsonValue } from '@bufbuild/protobuf';
import { PredictRequestSchema, PredictResponseSchema } from '../../proto/gen/sibyl/v1/predict_pb.js';
import { plainPredictRequest, predictResponseBinary, predictResponseJson, readPredictRequest, toParsedRequest, toPredictResponse } from '../../gateway/transport/sibyl-api.ts';
import type { ParsedRequest, PredictOutput } from '../../gateway/pipeline/pipeline.ts';
import type { Route } from '../../gateway/routing/route-table.ts';
import { seeded } from '../helpers/seeded.ts';

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
    const { rand, pick } = seeded(42);
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

describe('Sibyl gRPC: reading a PredictRequest in its wire form', () => {
  const value = (v: unknown) => {
    switch (typeof v) {
      case 'number':
        return { kind: { case: 'numberValue' as const, value: v } };
      case 'string':
        return { kind: { case: 'stringValue' as const, value: v } };
      case 'boolean':
        return { kind: { case: 'boolValue' as const, value: v } };
      default:
        return v === null ? { kind: { case: 'nullValue' as const, value: 0 } } : {};
    }
  };
  const bytesOf = (body: { model?: string; version?: string; requestId?: string; routingKey?: string; rows?: { entities?: Record<string, string>; features?: Record<string, unknown> }[] }) =>
    Buffer.from(
      toBinary(
        PredictRequestSchema,
        create(PredictRequestSchema, {
          ...body,
          rows: (body.rows ?? []).map((r) => ({ entities: r.entities ?? {}, features: Object.fromEntries(Object.entries(r.features ?? {}).map(([k, v]) => [k, value(v)])) })),
        }),
      ),
    );
  const viaWire = (bytes: Buffer) => toParsedRequest(fromBinary(PredictRequestSchema, bytes), 100);

  it.each([
    ['S1', S1],
    ['every field', { model: 'm', version: '3', requestId: 'req-1', routingKey: 'customer-7', rows: S1.rows }],
    ['nothing', {}],
    ['rows without maps', { rows: [{}, {}] }],
    ['unicode, empty and long strings', { model: 'é', rows: [{ entities: { 'ключ': 'значение', '': '', long: 'x'.repeat(300) }, features: { '': '', 'ü': 'ß'.repeat(40), n: -0, m: 1e-300, t: true, f: false } }] }],
  ] as [string, Parameters<typeof bytesOf>[0]][])('reads %s as protobuf-es decodes it', (_, body) => {
    const bytes = bytesOf(body);
    const direct = readPredictRequest(bytes, 100);
    expect(direct).toBeDefined();
    expect(fields(direct!)).toEqual(fields(viaWire(bytes)));
  });

  it('leaves other values, unknown fields, a __proto__ key and malformed bytes to protobuf-es', () => {
    expect(readPredictRequest(bytesOf({ rows: [{ features: { a: null } }] }), 100)).toBeUndefined();
    expect(readPredictRequest(bytesOf({ rows: [{ features: { a: undefined } }] }), 100)).toBeUndefined();
    expect(readPredictRequest(bytesOf({ rows: [{ entities: JSON.parse('{"__proto__": "x"}') }] }), 100)).toBeUndefined();
    const withUnknown = Buffer.concat([bytesOf(S1), Buffer.from([0x30, 0x01])]);
    expect(readPredictRequest(withUnknown, 100)).toBeUndefined();
    expect(fields(viaWire(withUnknown))).toEqual(fields(viaWire(bytesOf(S1))));
    const s1 = bytesOf(S1);
    expect(readPredictRequest(s1.subarray(0, s1.length - 3), 100)).toBeUndefined();
    const badUtf8 = bytesOf({ model: 'ab' });
    badUtf8[2] = 0xff;
    expect(readPredictRequest(badUtf8, 100)).toBeUndefined();
  });

  it('over random messages and random damage to them, whatever it accepts protobuf-es decodes to the same request', () => {
    const { rand, pick } = seeded(7);
    const str = () => pick(['', 'a', 'r-17', 'é', 'x'.repeat(30), 'ключ']);
    let accepted = 0;
    let declined = 0;
    for (let n = 0; n < 3000; n++) {
      const rows = Array.from({ length: Math.floor(rand() * 3) }, () => ({
        entities: Object.fromEntries(Array.from({ length: Math.floor(rand() * 3) }, () => [str(), str()])),
        features: Object.fromEntries(Array.from({ length: Math.floor(rand() * 4) }, () => [str(), pick<unknown>([1.5, 0, -3, 'v', '', true, false, null])])),
      }));
      const bytes = bytesOf({ model: str(), version: pick(['', '2']), requestId: str(), routingKey: str(), rows });
      // Damage one message in three: a byte changed, or the end cut off.
      if (rand() < 0.2 && bytes.length > 0) bytes[Math.floor(rand() * bytes.length)] = Math.floor(rand() * 256);
      const b = rand() < 0.1 ? bytes.subarray(0, Math.floor(rand() * bytes.length)) : bytes;
      const direct = readPredictRequest(b, 100);
      if (direct === undefined) {
        declined++;
        continue;
      }
      accepted++;
      let protobuf: ParsedRequest | Error;
      try {
        protobuf = viaWire(b);
      } catch (err) {
        protobuf = err as Error;
      }
      expect(protobuf, b.toString('hex')).not.toBeInstanceOf(Error);
      expect(fields(direct), b.toString('hex')).toEqual(fields(protobuf as ParsedRequest));
    }
    expect(accepted).toBeGreaterThan(1000);
    expect(declined).toBeGreaterThan(300);
  });
});

describe('Sibyl gRPC: map keys read again are the strings read before', () => {
  const message = (model: string, features: Record<string, number>, entities: Record<string, string> = {}) =>
    Buffer.from(toBinary(PredictRequestSchema, create(PredictRequestSchema, { model, rows: [{ entities, features: Object.fromEntries(Object.entries(features).map(([k, v]) => [k, { kind: { case: 'numberValue' as const, value: v } }])) }] })));

  it('thousands of distinct keys, sharing slots and lengths, each read back as itself in any order', () => {
    const { rand } = seeded(11);
    const letters = 'abcdefghijklmnopqrstuvwxyz_0123456789';
    // Lengths 0-80: past the 64 bytes a key is remembered up to, and hundreds of pairs of keys sharing a slot.
    const names = Array.from({ length: 2000 }, (_, i) => {
      const len = i % 81;
      let s = '';
      for (let j = 0; j < len; j++) s += letters[Math.floor(rand() * letters.length)];
      return s;
    });
    // Keys one byte apart, and one a prefix of another.
    names.push('distance_km', 'distance_kn', 'distance_k', 'distance_km_', 'Distance_km');
    for (let n = 0; n < 4000; n++) {
      const picked = Array.from({ length: 1 + Math.floor(rand() * 5) }, () => names[Math.floor(rand() * names.length)]!);
      const features = Object.fromEntries(picked.map((k, j) => [k, j]));
      const model = names[Math.floor(rand() * names.length)]!;
      const read = readPredictRequest(message(model, features, { [picked[0]!]: model }), 100)!;
      expect(read.model).toBe(model);
      expect(read.rows(ROUTE, [])[0]!.features).toEqual(features);
      expect(read.rows(ROUTE, [])[0]!.entities).toEqual({ [picked[0]!]: model });
    }
  });

  it('a key is copied when first read: changing the message buffer afterwards changes no later read', () => {
    // For each other key of the same length: read prep_time from a buffer, overwrite it there with that key, then read
    // a new message naming that key. A remembered view into the first buffer would answer prep_time wherever the
    // two keys share a slot; among these 17,575 keys several do.
    const letters = 'abcdefghijklmnopqrstuvwxyz';
    let checked = 0;
    for (const a of letters) {
      for (const b of letters) {
        for (const c of letters) {
          const other = `prep_t${a}${b}${c}`;
          if (other === 'prep_time') continue;
          const bytes = message('eta', { prep_time: 1 });
          const first = readPredictRequest(bytes, 100)!.rows(ROUTE, [])[0]!.features;
          bytes.write(other, bytes.indexOf('prep_time'), 'latin1');
          const later = readPredictRequest(message('eta', { [other]: 1 }), 100)!.rows(ROUTE, [])[0]!.features;
          if (Object.keys(first)[0] !== 'prep_time' || Object.keys(later)[0] !== other) expect.fail(`read ${Object.keys(first)} then ${Object.keys(later)} for ${other}`);
          checked++;
        }
      }
    }
    expect(checked).toBe(17_575);
  });

  it('a key that is not ASCII is read as UTF-8 each time, and a key that is not UTF-8 is declined', () => {
    for (let n = 0; n < 3; n++) expect(Object.keys(readPredictRequest(message('m', { 'ключ': 1, 'é': 2 }), 100)!.rows(ROUTE, [])[0]!.features)).toEqual(['ключ', 'é']);
    const bad = message('m', { 'é': 2 });
    bad[bad.indexOf(Buffer.from('é'))] = 0xff;
    expect(readPredictRequest(bad, 100)).toBeUndefined();
  });
});

describe('Sibyl gRPC: writing a PredictResponse in its wire form', () => {
  const viaProtobuf = (out: PredictOutput) => Buffer.from(toBinary(PredictResponseSchema, toPredictResponse(out)));

  it.each([
    ['S1', output([{ outputs: { eta_minutes: 31.25 }, defaulted: [] }])],
    ['an arm, defaults and every scalar', output([{ outputs: { a: -0, b: NaN, c: Infinity, d: '', e: 'ü'.repeat(100), f: true, g: false }, defaulted: ['zone_load', ''] }], 'canary')],
    ['several rows, one empty', output([{ outputs: { a: 1 }, defaulted: [] }, { outputs: {}, defaulted: [] }, { outputs: { '': 2 }, defaulted: ['x'] }])],
    ['no rows and no request id', output([], '', '')],
    ['a long row', output([{ outputs: Object.fromEntries(Array.from({ length: 40 }, (_, i) => [`output_${i}`, i % 3 ? i / 7 : `v${'x'.repeat(i * 10)}`])), defaulted: [] }])],
    ['lists and nulls (protobuf-es writes those)', output([{ outputs: { probs: [0.1, 0.9], n: null, u: undefined } as never, defaulted: [] }])],
    ['a lone surrogate', output([{ outputs: { s: 'a\ud800b' }, defaulted: ['\udc00'] }], '\ud83d')],
  ] as [string, PredictOutput][])('writes %s as protobuf-es does', (_, out) => {
    expect(Buffer.from(predictResponseBinary(out)).toString('hex')).toBe(viaProtobuf(out).toString('hex'));
  });

  it('over random answers, the same bytes as protobuf-es', () => {
    const { rand, pick } = seeded(11);
    for (let n = 0; n < 2000; n++) {
      const results = Array.from({ length: Math.floor(rand() * 3) }, () => ({
        outputs: Object.fromEntries(Array.from({ length: Math.floor(rand() * 4) }, () => [pick(['a', 'eta', 'é', '', '1']), pick<unknown>([rand() * 1e6 - 5e5, 0, -1, 'x', '', 'ñ', true, false, [1]])])),
        defaulted: Array.from({ length: Math.floor(rand() * 3) }, () => pick(['f', '', 'ü'])),
      }));
      const out = output(results as PredictOutput['results'], pick(['', 'b']), pick(['', 'req-1']));
      expect(Buffer.from(predictResponseBinary(out)).toString('hex'), JSON.stringify(out.results)).toBe(viaProtobuf(out).toString('hex'));
    }
  });
});
