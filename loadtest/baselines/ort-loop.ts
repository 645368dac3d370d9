#!/usr/bin/env node
/**
 * The model's ceiling: a raw onnxruntime-node `session.run` loop, one row per run, one run at a time, with the
 * session options the gateway uses (runtimes/onnx/session-options.ts), on the rows of the same seeded request mix.
 * Each run creates its input tensor (as the gateway must). Prints a JSON result on stdout.
 *
 *   node loadtest/baselines/ort-loop.ts --model delivery-eta --version 2 --duration 5 [--warmup 1]
 */
import { parseArgs } from 'node:util';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { tunedSessionOptions } from '../../runtimes/onnx/session-options.ts';
import { newHistogram, recordMs, summarize } from '../lib/histogram.ts';
import { buildPool } from '../lib/requests.ts';
import { ModelInferRequestSchema } from '../../proto/gen/inference/open_inference_grpc_pb.js';
import { fromBinary } from '@bufbuild/protobuf';

const { values } = parseArgs({
  options: {
    model: { type: 'string', default: 'delivery-eta' },
    version: { type: 'string', default: '2' },
    duration: { type: 'string', default: '5' },
    warmup: { type: 'string', default: '1' },
    seed: { type: 'string', default: '42' },
  },
});
const model = values.model;
const mix = model === 'tabular-mlp' ? 'mlp-tensor' : 'eta-inline';
// The OIP gRPC encoding carries each row's feature vector in input order; reuse it so the rows are the load's rows.
const pool = buildPool({ protocol: 'oip-grpc', mix, seed: Number(values.seed), size: 2048 });
const rows = pool.requests.map((r) => Float32Array.from(fromBinary(ModelInferRequestSchema, r.body).inputs[0]!.contents!.fp32Contents));
const session = await ort.InferenceSession.create(join('models', model, values.version, 'model.onnx'), tunedSessionOptions(1));
const input = session.inputNames[0]!;
const width = rows[0]!.length;

async function loop(seconds: number, record: boolean) {
  const h = newHistogram();
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  const end = t0 + seconds * 1000;
  let n = 0;
  while (performance.now() < end) {
    const s = performance.now();
    await session.run({ [input]: new ort.Tensor('float32', rows[n % rows.length]!, [1, width]) });
    if (record) recordMs(h, performance.now() - s);
    n++;
  }
  const wall = performance.now() - t0;
  const c = process.cpuUsage(cpu0);
  return { runs: n, throughput: Math.round((n / wall) * 1000 * 10) / 10, latency: summarize(h), cpu: Math.round(((c.user + c.system) / 1000 / wall) * 1000) / 1000 };
}

await loop(Number(values.warmup), false);
const r = await loop(Number(values.duration), true);
process.stdout.write(`${JSON.stringify({ model, version: values.version, ...r })}\n`);
await session.release();
