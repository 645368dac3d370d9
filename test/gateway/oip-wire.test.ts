/**
 * The Open Inference Protocol's ModelInfer messages read and written without protobuf-es on the common path
 * (gateway/transport/oip/oip-wire.ts): what `readInferRequest` accepts must give the request protobuf-es's
 * `fromBinary` and the door's `parseInfer` give (the same tensors, hence the same rows or the same error), and
 * `inferResponseBinary` must write byte for byte what protobuf-es writes for the response the door built with it
 * before. What the direct reader declines goes to protobuf-es.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { create, fromBinary, toBinary } from '@bufbuild/protobuf';
import { ModelInferRequestSchema, ModelInferResponseSchema, type ModelInferRequest } from '../../proto/gen/inference/open_inference_grpc_pb.js';
import { parseInfer } from '../../gateway/transport/grpc/oip-grpc.ts';
import { inferResponseBinary, readInferRequest, type InferRequest } from '../../gateway/transport/oip/oip-wire.ts';
import { signatureOf } from '../../gateway/transport/oip/signature.ts';
import { DEFAULTED_PARAMETER, defaultedParameter, encodeRaw, tensorsFromResults } from '../../gateway/transport/oip/tensors.ts';
import type { PredictOutput } from '../../gateway/pipeline/pipeline.ts';
import { Route } from '../../gateway/routing/route-table.ts';
import { parseManifest } from '../../runtimes/manifest.ts';
import type { LoadedModel } from '../../runtimes/contract.ts';
import { MODELS_DIR } from '../helpers/expected.ts';
import { seeded } from '../helpers/seeded.ts';

const version = (manifest: object | string) => new Route(parseManifest(typeof manifest === 'string' ? manifest : JSON.stringify(manifest)), {} as LoadedModel, 'test');
/** delivery-eta/2: one packed FP32 input `features` of 20 columns, or a tensor per feature; one scalar output. */
const ETA = version(readFileSync(`${MODELS_DIR}delivery-eta/2/sibyl.yaml`, 'utf8'));
const ETA_FEATURES = ETA.manifest.features.map((f) => f.name);
/** A rule with an entity, features of several types, and outputs of every kind the door writes. */
const RULE = version({
  name: 'mixed',
  version: '1',
  runtime: 'rules',
  features: [
    { name: 'x', dtype: 'float64', source: 'request', default: 0 },
    { name: 'n', dtype: 'int32', source: 'request', default: 0 },
    { name: 'f', dtype: 'float32', source: 'request', default: 0 },
    { name: 'label', dtype: 'string', source: 'request', default: '' },
    { name: 'zone_load', dtype: 'float64', source: 'store', entity: 'zone', default: 0 },
  ],
  outputs: [
    { name: 'score', dtype: 'float64' },
    { name: 'tag', dtype: 'string' },
    { name: 'flag', dtype: 'bool' },
    { name: 'count', dtype: 'int64' },
    { name: 'probs', dtype: 'float32', kind: 'vector' },
  ],
  rules: { file: 'rule.js' },
});

function viaProtobuf(bytes: Buffer): InferRequest {
  return parseInfer(fromBinary(ModelInferRequestSchema, bytes), { startMs: 0, timeoutMs: 100, requestId: undefined, traceparent: undefined, tracestate: undefined });
}

/** What the entry sees of a request: its fields, and the rows it gives each model (or the error it throws). */
function fields(p: InferRequest) {
  const rowsOf = (v: Route) => {
    try {
      return p.rows(v, []);
    } catch (err) {
      return `${(err as Error).name}: ${(err as Error).message}`;
    }
  };
  return { model: p.model, version: p.version, routingKey: p.routingKey, requestId: p.requestId, timeoutMs: p.timeoutMs, outputs: p.outputs, eta: rowsOf(ETA), rule: rowsOf(RULE) };
}

const bytesOf = (msg: Parameters<typeof create<typeof ModelInferRequestSchema>>[1]) => Buffer.from(toBinary(ModelInferRequestSchema, create(ModelInferRequestSchema, msg)));
const fp32 = (xs: number[]) => Buffer.from(new Float32Array(xs).buffer);
const PACKED = ETA_FEATURES.map((_, i) => i * 1.25 - 3);

describe('OIP gRPC: reading a ModelInferRequest in its wire form', () => {
  it.each([
    ['the suite\'s request (one packed FP32 tensor)', { modelName: 'delivery-eta', inputs: [{ name: 'features', datatype: 'FP32', shape: [1n, 20n], contents: { fp32Contents: PACKED } }] }],
    ['every field it reads', { modelName: 'delivery-eta', modelVersion: '2', id: 'req-1', inputs: [{ name: 'features', datatype: 'FP32', shape: [2n, 20n], contents: { fp32Contents: [...PACKED, ...PACKED.map((x) => -x)] } }], outputs: [{ name: 'eta_minutes' }] }],
    ['a tensor per feature, of several types, and an entity', {
      modelName: 'mixed',
      inputs: [
        { name: 'zone', datatype: 'BYTES', shape: [2n], contents: { bytesContents: [Buffer.from('z-3'), Buffer.from('зона')] } },
        { name: 'x', datatype: 'FP64', shape: [2n, 1n], contents: { fp64Contents: [1e300, -0] } },
        { name: 'n', datatype: 'INT32', shape: [2n], contents: { intContents: [0, 2 ** 31 - 1] } },
        { name: 'f', datatype: 'FP32', shape: [2n], contents: { fp32Contents: [0.1, NaN] } },
        { name: 'label', datatype: 'BYTES', shape: [2n], contents: { bytesContents: [Buffer.from(''), Buffer.from('é')] } },
      ],
    }],
    ['raw contents', { modelName: 'delivery-eta', inputs: [{ name: 'features', datatype: 'FP32', shape: [1n, 20n] }], rawInputContents: [fp32(PACKED)] }],
    ['raw contents of several types', {
      inputs: [
        { name: 'x', datatype: 'FP64', shape: [1n] },
        { name: 'zone', datatype: 'BYTES', shape: [1n] },
      ],
      rawInputContents: [Buffer.from(new Float64Array([2.5]).buffer), Buffer.from([3, 0, 0, 0, 0x7a, 0x2d, 0x39])],
    }],
    ['a shape that does not fit (the same error)', { inputs: [{ name: 'features', datatype: 'FP32', shape: [1n, 19n], contents: { fp32Contents: PACKED } }] }],
    ['no inputs (the same error)', { modelName: 'delivery-eta' }],
    ['an empty contents message', { inputs: [{ name: 'features', datatype: 'FP32', shape: [1n, 20n], contents: {} }] }],
    ['requested outputs, one unnamed', { outputs: [{ name: 'eta_minutes' }, { name: '' }], inputs: [{ name: 'features', datatype: 'FP32', shape: [1n, 20n], contents: { fp32Contents: PACKED } }] }],
  ] as [string, Parameters<typeof bytesOf>[0]][])('reads %s as protobuf-es and the door decode it', (_, msg) => {
    const bytes = bytesOf(msg);
    const direct = readInferRequest(bytes, 100);
    expect(direct).toBeDefined();
    expect(fields(direct!)).toEqual(fields(viaProtobuf(bytes)));
  });

  it('leaves parameters, other contents, both kinds of contents, unknown fields and malformed bytes to protobuf-es', () => {
    const input = { name: 'features', datatype: 'FP32', shape: [1n, 20n], contents: { fp32Contents: PACKED } };
    const declined: [string, Buffer][] = [
      ['a routing key parameter', bytesOf({ parameters: { sibyl_routing_key: { parameterChoice: { case: 'stringParam', value: 'k' } } }, inputs: [input] })],
      ['an input parameter', bytesOf({ inputs: [{ ...input, parameters: { a: { parameterChoice: { case: 'boolParam', value: true } } } }] })],
      ['an output parameter', bytesOf({ inputs: [input], outputs: [{ name: 'eta_minutes', parameters: { a: { parameterChoice: { case: 'int64Param', value: 1n } } } }] })],
      ['contents of another type', bytesOf({ inputs: [{ ...input, contents: { fp32Contents: PACKED, intContents: [1] } }] })],
      ['INT64 contents', bytesOf({ inputs: [{ name: 'n', datatype: 'INT64', shape: [1n], contents: { int64Contents: [1n] } }] })],
      ['a negative INT32', bytesOf({ inputs: [{ name: 'n', datatype: 'INT32', shape: [1n], contents: { intContents: [-1] } }] })],
      ['BOOL contents', bytesOf({ inputs: [{ name: 'b', datatype: 'BOOL', shape: [1n], contents: { boolContents: [true] } }] })],
      ['contents and raw contents', bytesOf({ inputs: [input], rawInputContents: [fp32(PACKED)] })],
      ['raw contents for some inputs only', bytesOf({ inputs: [input, { name: 'x', datatype: 'FP64', shape: [1n] }], rawInputContents: [fp32(PACKED)] })],
      ['no contents at all', bytesOf({ inputs: [{ name: 'features', datatype: 'FP32', shape: [1n, 20n] }] })],
      ['a BYTES element that is not UTF-8', bytesOf({ inputs: [{ name: 'zone', datatype: 'BYTES', shape: [1n], contents: { bytesContents: [Buffer.from([0xff])] } }] })],
      ['an unknown field', Buffer.concat([bytesOf({ inputs: [input] }), Buffer.from([0x40, 0x01])])],
      ['a truncated message', bytesOf({ inputs: [input] }).subarray(0, 30)],
      ['a shape dimension past 32 bits', bytesOf({ inputs: [{ ...input, shape: [2n ** 40n, 20n] }] })],
    ];
    for (const [what, bytes] of declined) expect(readInferRequest(bytes, 100), what).toBeUndefined();
    // An unpacked shape (legal protobuf: each dimension its own varint field).
    const unpacked = Buffer.from([0x2a, 0x0a, 0x0a, 0x01, 0x78, 0x12, 0x04, 0x46, 0x50, 0x36, 0x34, 0x18, 0x01]);
    expect(fromBinary(ModelInferRequestSchema, unpacked).inputs[0]!.shape).toEqual([1n]);
    expect(readInferRequest(unpacked, 100)).toBeUndefined();
  });

  it('a raw tensor that does not fit its datatype is refused with the same error either way', () => {
    const bytes = bytesOf({ inputs: [{ name: 'features', datatype: 'FP32', shape: [1n, 20n] }], rawInputContents: [Buffer.alloc(7)] });
    expect(() => readInferRequest(bytes, 100)).toThrow('input "features": 7 bytes is not a whole number of FP32 elements');
    expect(() => viaProtobuf(bytes)).toThrow('input "features": 7 bytes is not a whole number of FP32 elements');
  });

  it('over random messages and random damage to them, whatever it accepts protobuf-es and the door decode to the same request', () => {
    const { rand, pick } = seeded(5);
    const str = () => pick(['', 'a', 'features', 'x', 'zone', 'é', 'n']);
    const tensor = (): ModelInferRequest['inputs'][number] | object => {
      const rows = Math.floor(rand() * 3);
      const name = pick(['features', 'x', 'n', 'f', 'zone', 'label', 'nope']);
      const width = name === 'features' ? 20 : 1;
      const shape = width === 1 && rand() < 0.5 ? [BigInt(rows)] : [BigInt(rows), BigInt(width)];
      const count = rows * width + (rand() < 0.1 ? 1 : 0);
      const datatype = pick(['FP32', 'FP32', 'FP64', 'INT32', 'BYTES', 'INT64']);
      const contents =
        datatype === 'FP32' ? { fp32Contents: Array.from({ length: count }, () => rand() * 100 - 50) }
        : datatype === 'FP64' ? { fp64Contents: Array.from({ length: count }, () => rand() * 1e6) }
        : datatype === 'INT32' ? { intContents: Array.from({ length: count }, () => Math.floor(rand() * 1000) - (rand() < 0.1 ? 5000 : 0)) }
        : datatype === 'BYTES' ? { bytesContents: Array.from({ length: count }, () => Buffer.from(str())) }
        : { int64Contents: Array.from({ length: count }, () => BigInt(Math.floor(rand() * 10))) };
      return { name, datatype, shape, contents };
    };
    let accepted = 0;
    let declined = 0;
    for (let n = 0; n < 3000; n++) {
      const msg = {
        modelName: str(),
        modelVersion: pick(['', '2']),
        id: str(),
        inputs: Array.from({ length: Math.floor(rand() * 4) }, tensor),
        outputs: rand() < 0.3 ? [{ name: pick(['eta_minutes', 'score', '', 'nope']) }] : [],
      } as Parameters<typeof bytesOf>[0];
      const bytes = bytesOf(msg);
      if (rand() < 0.2 && bytes.length > 0) bytes[Math.floor(rand() * bytes.length)] = Math.floor(rand() * 256);
      const b = rand() < 0.1 ? bytes.subarray(0, Math.floor(rand() * bytes.length)) : bytes;
      let direct: InferRequest | undefined | Error;
      try {
        direct = readInferRequest(b, 100);
      } catch (err) {
        direct = err as Error;
      }
      if (direct === undefined) {
        declined++;
        continue;
      }
      accepted++;
      let protobuf: InferRequest | Error;
      try {
        protobuf = viaProtobuf(b);
      } catch (err) {
        protobuf = err as Error;
      }
      if (direct instanceof Error) {
        expect(protobuf, b.toString('hex')).toBeInstanceOf(Error);
        expect((protobuf as Error).message, b.toString('hex')).toBe(direct.message);
        continue;
      }
      expect(protobuf, b.toString('hex')).not.toBeInstanceOf(Error);
      expect(fields(direct), b.toString('hex')).toEqual(fields(protobuf as InferRequest));
    }
    expect(accepted).toBeGreaterThan(1000);
    expect(declined).toBeGreaterThan(300);
  });
});

/** The answer as the door built it with protobuf-es before it wrote the wire form itself. */
function viaProtobufAnswer(out: PredictOutput, wanted: readonly string[]): string {
  const outputs = tensorsFromResults(signatureOf(out.route), out, wanted);
  const defaulted = defaultedParameter(out);
  const msg = create(ModelInferResponseSchema, {
    modelName: out.model,
    modelVersion: out.version,
    id: out.requestId,
    parameters: defaulted ? { [DEFAULTED_PARAMETER]: { parameterChoice: { case: 'stringParam', value: defaulted } } } : {},
    outputs: outputs.map((o) => ({ name: o.name, datatype: o.datatype, shape: o.shape.map(BigInt) })),
    rawOutputContents: outputs.map(encodeRaw),
  });
  return Buffer.from(toBinary(ModelInferResponseSchema, msg)).toString('hex');
}

function answer(route: Route, results: PredictOutput['results'], requestId = 'req-1'): PredictOutput {
  return { requestId, model: route.model, version: route.version, arm: '', results, route };
}

describe('OIP gRPC: writing a ModelInferResponse in its wire form', () => {
  it.each([
    ['the suite\'s answer', answer(ETA, [{ outputs: { eta_minutes: 31.25 }, defaulted: [] }]), []],
    ['several rows with defaults', answer(ETA, [{ outputs: { eta_minutes: -0 }, defaulted: ['kitchen_load'] }, { outputs: { eta_minutes: NaN }, defaulted: [] }]), ['eta_minutes']],
    ['no rows and no request id', answer(ETA, [], ''), []],
    ['every output kind', answer(RULE, [{ outputs: { score: 1e300, tag: 'ü'.repeat(50), flag: true, count: 2 ** 40, probs: [0.25, 0.75] }, defaulted: ['zone_load'] }, { outputs: { score: -1, tag: '', flag: false, count: -3, probs: [1, 0] }, defaulted: [] }]), []],
    ['some outputs, in the asked order', answer(RULE, [{ outputs: { score: 1, tag: 'a\ud800b', flag: true, count: 1, probs: [] }, defaulted: [] }]), ['tag', 'score']],
  ] as [string, PredictOutput, string[]][])('writes %s as protobuf-es does', (_, out, wanted) => {
    expect(inferResponseBinary(out, { outputs: wanted }).toString('hex')).toBe(viaProtobufAnswer(out, wanted));
  });

  it('an output the model does not have is INVALID_ARGUMENT', () => {
    expect(() => inferResponseBinary(answer(ETA, [{ outputs: { eta_minutes: 1 }, defaulted: [] }]), { outputs: ['nope'] })).toThrow('output "nope": model delivery-eta has no such output (it has eta_minutes)');
  });

  it('over random answers, the same bytes as protobuf-es', () => {
    const { rand, pick } = seeded(13);
    for (let n = 0; n < 2000; n++) {
      const results = Array.from({ length: Math.floor(rand() * 4) }, () => ({
        outputs: { score: rand() * 1e6 - 5e5, tag: pick(['', 'x', 'ñ', 'long'.repeat(40)]), flag: rand() < 0.5, count: Math.floor(rand() * 1e9), probs: Array.from({ length: 3 }, () => rand()) },
        defaulted: rand() < 0.3 ? [pick(['zone_load', 'é'])] : [],
      }));
      const wanted = rand() < 0.5 ? [] : [pick(['score', 'tag', 'flag', 'count', 'probs'])];
      const out = answer(RULE, results, pick(['', 'req-9']));
      expect(inferResponseBinary(out, { outputs: wanted }).toString('hex'), JSON.stringify(results)).toBe(viaProtobufAnswer(out, wanted));
    }
  });
});
