/**
 * The Open Inference Protocol's infer request read without zod on the common path (oip-rest-schemas.ts,
 * `plainInferRequest`): what it accepts must be exactly what `InferRequest` parses it to, and what it declines goes
 * to `InferRequest`, which gives the same request or the precise error.
 */
import { describe, expect, it } from 'vitest';
import { InferRequest, plainInferRequest } from '../../gateway/transport/oip/oip-rest-schemas.ts';
import { seeded } from '../helpers/seeded.ts';

/** What the OIP REST benchmark sends: delivery-eta's 20 features as one FP32 tensor. */
const ETA = { inputs: [{ name: 'features', datatype: 'FP32', shape: [1, 20], data: [1.83, 17, 1, 1, 9.58, 0, 0, 19.14, 21.65, 13, 0.005, 5, 0.5, 31, 51, 7.83, 0.56, 21.43, 29.3, 0] }] };

const ACCEPTED: [string, unknown][] = [
  ['the benchmark request', ETA],
  [
    'every field',
    {
      id: 'req-1',
      parameters: { sibyl_routing_key: 'customer-7', binary_data_output: true, n: 2.5 },
      inputs: [{ name: 'x', datatype: 'FP32', shape: [2, 1], parameters: { binary_data_size: 0 }, data: [1, 2] }],
      outputs: [{ name: 'y', parameters: { binary_data: false } }, { name: 'z' }],
    },
  ],
  ['no inputs in the list', { inputs: [] }],
  ['a tensor without data (binary part)', { inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 2], parameters: { binary_data_size: 8 } }] }],
  ['BYTES and BOOL elements', { inputs: [{ name: 'ids', datatype: 'BYTES', shape: [2], data: ['r-1', ''] }, { name: 'b', datatype: 'BOOL', shape: [1], data: [true] }] }],
  ['empty data, a zero and an empty shape', { inputs: [{ name: 'x', datatype: 'FP32', shape: [0], data: [] }, { name: 'y', datatype: 'FP32', shape: [], data: [1] }] }],
  ['an infinity JSON.parse made (the decoder refuses it later, with its dtype)', JSON.parse('{"inputs":[{"name":"x","datatype":"FP64","shape":[1],"data":[1e999]}]}')],
  ['an empty id and empty parameters', { id: '', parameters: {}, inputs: [{ name: 'x', datatype: '', shape: [1], data: [-0] }] }],
];

const DECLINED: [string, unknown][] = [
  ['no inputs', {}],
  ['inputs not a list', { inputs: {} }],
  ['an unknown key', { inputs: [], model_name: 'm' }],
  ['an unknown tensor key', { inputs: [{ name: 'x', datatype: 'FP32', shape: [1], data: [1], extra: 1 }] }],
  ['nested data', { inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 2], data: [[1, 2]] }] }],
  ['a null element', { inputs: [{ name: 'x', datatype: 'FP32', shape: [1], data: [null] }] }],
  ['an object element', { inputs: [{ name: 'x', datatype: 'FP32', shape: [1], data: [{ a: 1 }] }] }],
  ['data not a list', { inputs: [{ name: 'x', datatype: 'FP32', shape: [1], data: 1 }] }],
  ['an empty name', { inputs: [{ name: '', datatype: 'FP32', shape: [1], data: [1] }] }],
  ['no name', { inputs: [{ datatype: 'FP32', shape: [1], data: [1] }] }],
  ['no datatype', { inputs: [{ name: 'x', shape: [1], data: [1] }] }],
  ['no shape', { inputs: [{ name: 'x', datatype: 'FP32', data: [1] }] }],
  ['a negative dimension', { inputs: [{ name: 'x', datatype: 'FP32', shape: [-1], data: [1] }] }],
  ['a fractional dimension', { inputs: [{ name: 'x', datatype: 'FP32', shape: [1.5], data: [1] }] }],
  ['a dimension past the safe integers', { inputs: [{ name: 'x', datatype: 'FP32', shape: [2 ** 60], data: [1] }] }],
  ['a string dimension', { inputs: [{ name: 'x', datatype: 'FP32', shape: ['1'], data: [1] }] }],
  ['a number id', { id: 7, inputs: [] }],
  ['a null id', { id: null, inputs: [] }],
  ['a null parameter', { parameters: { a: null }, inputs: [] }],
  ['a list parameter', { parameters: { a: [1] }, inputs: [] }],
  ['an infinite parameter', JSON.parse('{"parameters":{"a":1e999},"inputs":[]}')],
  ['a __proto__ parameter', { parameters: JSON.parse('{"__proto__": 1}'), inputs: [] }],
  ['a __proto__ key', JSON.parse('{"__proto__": {}, "inputs": []}')],
  ['parameters not a map', { parameters: [], inputs: [] }],
  ['an output without a name', { inputs: [], outputs: [{ parameters: {} }] }],
  ['an output with an unknown key', { inputs: [], outputs: [{ name: 'y', datatype: 'FP32' }] }],
  ['outputs not a list', { inputs: [], outputs: { name: 'y' } }],
  ['a null tensor', { inputs: [null] }],
];

describe('OIP REST: reading an infer request without zod', () => {
  it.each(ACCEPTED)('reads %s as InferRequest parses it', (_, body) => {
    const parsed = InferRequest.safeParse(structuredClone(body));
    expect(parsed.success).toBe(true);
    expect(plainInferRequest(structuredClone(body) as Record<string, unknown>)).toEqual(parsed.data);
  });

  it.each(DECLINED)('leaves %s to InferRequest', (_, body) => {
    expect(plainInferRequest(body as Record<string, unknown>)).toBeUndefined();
  });

  it('returns the body itself, not a copy', () => {
    const body = structuredClone(ETA);
    expect(plainInferRequest(body)).toBe(body);
  });

  it('over random bodies, whatever it accepts InferRequest parses to the same request', () => {
    const { rand, pick } = seeded(7);
    const scalar = () => pick<unknown>([1, -2.5, 0, 'x', '', true, false, null, [1], { a: 1 }, 2 ** 60, 1.5, -1]);
    const maybe = (p: number, make: () => unknown, other: () => unknown = scalar) => (rand() < p ? make() : other());
    const params = () => {
      const m: Record<string, unknown> = {};
      for (let i = Math.floor(rand() * 3); i > 0; i--) m[pick(['a', 'binary_data', 'sibyl_routing_key', 'é'])] = pick<unknown>([true, 1, 'x', null, [], 2.5]);
      return m;
    };
    const tensor = () => {
      const t: Record<string, unknown> = {};
      if (rand() < 0.95) t.name = maybe(0.9, () => pick(['x', 'features', '']));
      if (rand() < 0.95) t.datatype = maybe(0.9, () => pick(['FP32', 'BYTES', 'INT64']));
      if (rand() < 0.95) t.shape = maybe(0.9, () => Array.from({ length: Math.floor(rand() * 3) }, () => pick<unknown>([1, 2, 0, 20, 1, 1, -1, 1.5, '2'])));
      if (rand() < 0.2) t.parameters = maybe(0.9, params);
      if (rand() < 0.9) t.data = maybe(0.9, () => Array.from({ length: Math.floor(rand() * 5) }, () => (rand() < 0.9 ? pick<unknown>([1, 0.5, 'a', true]) : scalar())));
      if (rand() < 0.03) t.extra = 1;
      return t;
    };
    let accepted = 0;
    let declined = 0;
    for (let n = 0; n < 3000; n++) {
      const body: Record<string, unknown> = {};
      if (rand() < 0.95) body.inputs = maybe(0.95, () => Array.from({ length: Math.floor(rand() * 3) }, () => maybe(0.97, tensor)));
      if (rand() < 0.3) body.id = maybe(0.8, () => pick(['r-1', '']));
      if (rand() < 0.3) body.parameters = maybe(0.8, params);
      if (rand() < 0.3) body.outputs = maybe(0.9, () => Array.from({ length: Math.floor(rand() * 3) }, () => (rand() < 0.9 ? { name: pick<unknown>(['y', 'y', 3]), ...(rand() < 0.3 ? { parameters: params() } : {}) } : scalar())));
      if (rand() < 0.02) body.other = 1;
      const plain = plainInferRequest(structuredClone(body));
      if (plain === undefined) {
        declined++;
        continue;
      }
      accepted++;
      const parsed = InferRequest.safeParse(structuredClone(body));
      expect(parsed.success, JSON.stringify(body)).toBe(true);
      expect(plain, JSON.stringify(body)).toEqual(parsed.data);
    }
    // Both kinds were exercised.
    expect(accepted).toBeGreaterThan(300);
    expect(declined).toBeGreaterThan(300);
  });
});
