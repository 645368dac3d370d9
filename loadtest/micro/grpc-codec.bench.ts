/**
 * CPU per call of the gRPC doors' codec work, outside any server: decoding the request message (protobuf-es
 * `fromBinary`), turning it into the pipeline's ParsedRequest, and building and encoding the answer (`create`,
 * `toBinary`, the copy into a Buffer) or, as Sibyl gRPC does first, reading and writing them directly
 * (`readPredictRequest`, `predictResponseBinary`; the OIP door's `readInferRequest`, `inferResponseBinary`), for the
 * suite's S4a request (Sibyl gRPC, delivery-eta, 7 request features and 3 entities), S4b request (OIP gRPC,
 * tabular-mlp, one FP32 tensor [1, 6]) and the peer comparison's P request (OIP gRPC, delivery-eta, one FP32 tensor
 * [1, 20]). Rounds alternate; CPU from process.cpuUsage per round; medians printed.
 *
 * Run: node loadtest/micro/grpc-codec.bench.ts [callsPerRound=50000] [rounds=7]
 */
import { readFileSync } from 'node:fs';
import { create, fromBinary, toBinary } from '@bufbuild/protobuf';
import { PredictRequestSchema, PredictResponseSchema } from '../../proto/gen/sibyl/v1/predict_pb.js';
import { ModelInferRequestSchema, ModelInferResponseSchema } from '../../proto/gen/inference/open_inference_grpc_pb.js';
import { predictResponseBinary, readPredictRequest, toParsedRequest, toPredictResponse } from '../../gateway/transport/sibyl-api.ts';
import { buildPool } from '../lib/requests.ts';
import { runCases } from './cpu-cases.ts';
import { parseInfer } from '../../gateway/transport/grpc/oip-grpc.ts';
import { inferResponseBinary, readInferRequest } from '../../gateway/transport/oip/oip-wire.ts';
import { signatureOf } from '../../gateway/transport/oip/signature.ts';
import { encodeRaw, tensorsFromResults } from '../../gateway/transport/oip/tensors.ts';
import { Route } from '../../gateway/routing/route-table.ts';
import { parseManifest } from '../../runtimes/manifest.ts';
import type { LoadedModel } from '../../runtimes/contract.ts';

const N = Number(process.argv[2] ?? 50_000);
const ROUNDS = Number(process.argv[3] ?? 7);

const s4a = buildPool({ protocol: 'sibyl-grpc', mix: 'eta-store', seed: 42 }).requests.map((r) => r.body);
const s4b = buildPool({ protocol: 'oip-grpc', mix: 'mlp-tensor', seed: 42 }).requests.map((r) => r.body);
const p = buildPool({ protocol: 'oip-grpc', mix: 'eta-inline', seed: 42 }).requests.map((r) => r.body);
const route = (id: string) => new Route(parseManifest(readFileSync(new URL(`../../models/${id}/sibyl.yaml`, import.meta.url), 'utf8')), {} as LoadedModel, 'bench');
const MLP = route('tabular-mlp/1');
const ETA = route('delivery-eta/2');
const CTX = { startMs: 0, timeoutMs: 1000, requestId: undefined, traceparent: undefined, tracestate: undefined };
const NO_OUTPUTS = { outputs: [] };
const mlpOutput = { requestId: '6f1c8a52-8a43-4a7e-b1a8-2f3c5d7e9a10', model: 'tabular-mlp', version: '1', arm: '', results: [{ outputs: { output: 4.5 }, defaulted: [] }], route: MLP };
const etaOut = { eta_minutes: 31.25 };
const output = { requestId: '6f1c8a52-8a43-4a7e-b1a8-2f3c5d7e9a10', model: 'delivery-eta', version: '2', arm: '', results: [{ outputs: etaOut, defaulted: [] }], route: undefined as never };

let sink = 0;
const cases: Record<string, (i: number) => void> = {
  'S4a decode (fromBinary PredictRequest)': (i) => {
    sink += fromBinary(PredictRequestSchema, s4a[i % s4a.length]!).rows.length;
  },
  'S4a decode, readUnknownFields false': (i) => {
    sink += fromBinary(PredictRequestSchema, s4a[i % s4a.length]!, { readUnknownFields: false }).rows.length;
  },
  'S4a decode + toParsedRequest': (i) => {
    sink += toParsedRequest(fromBinary(PredictRequestSchema, s4a[i % s4a.length]!), 1000).model.length;
  },
  'S4a read directly (readPredictRequest, the door first tries)': (i) => {
    sink += readPredictRequest(s4a[i % s4a.length]!, 1000)!.model.length;
  },
  'S4a answer written directly (predictResponseBinary, the door)': () => {
    sink += predictResponseBinary(output).byteLength;
  },
  'S4a answer (toPredictResponse + toBinary + Buffer.from)': () => {
    sink += Buffer.from(toBinary(PredictResponseSchema, toPredictResponse(output))).byteLength;
  },
  'S4a answer, toBinary without a copy': () => {
    const u8 = toBinary(PredictResponseSchema, toPredictResponse(output));
    sink += Buffer.from(u8.buffer, u8.byteOffset, u8.byteLength).byteLength;
  },
  'S4b decode (fromBinary ModelInferRequest)': (i) => {
    sink += fromBinary(ModelInferRequestSchema, s4b[i % s4b.length]!).inputs.length;
  },
  'S4b decode + parseInfer + rows (the door before)': (i) => {
    sink += parseInfer(fromBinary(ModelInferRequestSchema, s4b[i % s4b.length]!), CTX).rows(MLP, []).length;
  },
  'S4b read directly + rows (readInferRequest, the door now)': (i) => {
    sink += readInferRequest(s4b[i % s4b.length]!, 1000)!.rows(MLP, []).length;
  },
  'P decode + parseInfer + rows (the door before)': (i) => {
    sink += parseInfer(fromBinary(ModelInferRequestSchema, p[i % p.length]!), CTX).rows(ETA, []).length;
  },
  'P read directly + rows (readInferRequest, the door now)': (i) => {
    sink += readInferRequest(p[i % p.length]!, 1000)!.rows(ETA, []).length;
  },
  'S4b answer (tensorsFromResults + create + toBinary, the door before)': () => {
    const outputs = tensorsFromResults(signatureOf(MLP), mlpOutput, []);
    const msg = create(ModelInferResponseSchema, {
      modelName: mlpOutput.model,
      modelVersion: mlpOutput.version,
      id: mlpOutput.requestId,
      parameters: {},
      outputs: outputs.map((o) => ({ name: o.name, datatype: o.datatype, shape: o.shape.map(BigInt) })),
      rawOutputContents: outputs.map(encodeRaw),
    });
    sink += Buffer.from(toBinary(ModelInferResponseSchema, msg)).byteLength;
  },
  'S4b answer written directly (inferResponseBinary, the door now)': () => {
    sink += inferResponseBinary(mlpOutput, NO_OUTPUTS).byteLength;
  },
};

runCases(cases, N, ROUNDS);
if (sink === 42) console.log('');
