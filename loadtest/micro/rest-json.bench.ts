/**
 * CPU per call of Sibyl REST's JSON work, outside any server, for the suite's S1 request (delivery-eta, 7 request
 * features and 3 entities) and its answer: the body parsed (`parseJson`), then read into the pipeline's
 * ParsedRequest either through protobuf-es (`fromJson` + `toParsedRequest`, the fallback) or directly
 * (`plainPredictRequest`, what the door does first); the answer written through protobuf-es (`toPredictResponse` +
 * `toJsonString`) or directly (`predictResponseJson`). And the OIP REST benchmark's infer request (delivery-eta's 20
 * features as one FP32 tensor) read through zod (`InferRequest`, the fallback) or directly (`plainInferRequest`).
 * Rounds alternate; CPU from process.cpuUsage per round; medians
 * printed, with the range.
 *
 * Run: node loadtest/micro/rest-json.bench.ts [callsPerRound=50000] [rounds=7]
 */
import { fromJson, toJsonString, type JsonValue } from '@bufbuild/protobuf';
import { PredictRequestSchema, PredictResponseSchema } from '../../proto/gen/sibyl/v1/predict_pb.js';
import { plainPredictRequest, predictResponseJson, toParsedRequest, toPredictResponse } from '../../gateway/transport/sibyl-api.ts';
import { parseJson } from '../../gateway/transport/rest-common.ts';
import { InferRequest, plainInferRequest } from '../../gateway/transport/oip/oip-rest-schemas.ts';
import { buildPool } from '../lib/requests.ts';
import { runCases } from './cpu-cases.ts';

const N = Number(process.argv[2] ?? 50_000);
const ROUNDS = Number(process.argv[3] ?? 7);

const s1 = buildPool({ protocol: 'sibyl-rest', mix: 'eta-store', seed: 42 }).requests.map((r) => new Uint8Array(r.body));
const oip = buildPool({ protocol: 'oip-rest', mix: 'eta-inline', seed: 42 }).requests.map((r) => new Uint8Array(r.body));
const output = {
  requestId: '6f1c8a52-8a43-4a7e-b1a8-2f3c5d7e9a10',
  model: 'delivery-eta',
  version: '2',
  arm: '',
  results: [{ outputs: { eta_minutes: 31.25 }, defaulted: [] }],
  route: undefined as never,
};

let sink = 0;
const cases: Record<string, (i: number) => void> = {
  'S1 body parsed (parseJson)': (i) => {
    sink += (parseJson(s1[i % s1.length]!) as { rows: unknown[] }).rows.length;
  },
  'S1 parsed + fromJson + toParsedRequest (protobuf-es)': (i) => {
    sink += toParsedRequest(fromJson(PredictRequestSchema, parseJson(s1[i % s1.length]!) as JsonValue), 1000).model.length;
  },
  'S1 parsed + plainPredictRequest (direct)': (i) => {
    sink += plainPredictRequest(parseJson(s1[i % s1.length]!), 1000)!.model.length;
  },
  'OIP eta-inline parsed (parseJson)': (i) => {
    sink += (parseJson(oip[i % oip.length]!) as { inputs: unknown[] }).inputs.length;
  },
  'OIP eta-inline parsed + InferRequest (zod)': (i) => {
    sink += InferRequest.parse(parseJson(oip[i % oip.length]!)).inputs.length;
  },
  'OIP eta-inline parsed + plainInferRequest (direct)': (i) => {
    sink += plainInferRequest(parseJson(oip[i % oip.length]!) as Record<string, unknown>)!.inputs.length;
  },
  'answer: toPredictResponse + toJsonString (protobuf-es)': () => {
    sink += toJsonString(PredictResponseSchema, toPredictResponse(output)).length;
  },
  'answer: predictResponseJson (direct)': () => {
    sink += predictResponseJson(output).length;
  },
};

runCases(cases, N, ROUNDS);
if (sink === 42) console.log('');
