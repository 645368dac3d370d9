/**
 * The package's native parts under the Runtime Interface Emulator: a composed rule runs in its sandbox process
 * (isolated-vm's Linux x64 prebuild and sandbox-process.mjs from the zip), and a batch above a model's
 * `offloadRows` runs on the ONNX worker thread (onnx-worker.mjs); both answer as a listening gateway does.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGateway, type TestGateway } from '../../helpers/gateway.ts';
import { expectedFor, MODELS_DIR } from '../../helpers/expected.ts';
import { makeModelsDir } from '../../helpers/models-dir.ts';
import { GUARD, writeRule } from '../../helpers/rule-dirs.ts';
import { httpApiEvent, readable, resultAnswer, serverAnswer, type HttpCase } from '../http-cases.ts';
import { startFunction, type EmulatedFunction } from '../../../loadtest/lambda/emulator.ts';
import { bundlesOf, packagedFunction, tempDir } from './common.ts';

let server: TestGateway;
let fn: EmulatedFunction;

beforeAll(async () => {
  const models = makeModelsDir({ bundles: ['delivery-eta/1', 'delivery-eta/2', 'eta-risk/1', 'tabular-mlp/1'], deployment: { models: { 'delivery-eta': { default: '2' } } } });
  writeRule(models, GUARD.manifest, GUARD.source);
  // Batches of 64 rows or more go to the worker thread, whatever the calibration at load would say.
  const manifest = join(models, 'tabular-mlp/1/sibyl.yaml');
  writeFileSync(manifest, readFileSync(manifest, 'utf8').replace(/^onnx:\n/m, 'onnx:\n  offloadRows: 64\n'));
  const env = { SIBYL_PREDICTION_LOG: 'off', SIBYL_LOG_LEVEL: 'warn', SIBYL_FEATURES_FILE: join(MODELS_DIR, 'features.jsonl') };
  server = await startGateway({ ...env, SIBYL_MODELS_DIR: models });
  fn = await startFunction(packagedFunction(), 'index.handler', { ...env, SIBYL_FEATURES_FILE: join(packagedFunction(), 'features.jsonl'), SIBYL_BUNDLES_DIR: await bundlesOf(models), SIBYL_DATA_DIR: tempDir('lambda-data') });
}, 180_000);
afterAll(async () => {
  await fn?.stop();
  await server?.stop();
});

const json = (v: unknown) => Buffer.from(JSON.stringify(v));
const post = (name: string, path: string, body: unknown): HttpCase => ({ name, method: 'POST', path, headers: { 'content-type': 'application/json', 'x-request-id': name }, body: json(body), status: 200 });

describe('native parts of the package', () => {
  it('runs a composed rule in its sandbox process, as the server does', async () => {
    const eta = expectedFor('delivery-eta', '2').rows;
    const risk = expectedFor('eta-risk', '1').rows;
    const rows = risk.slice(0, 4).map((r, i) => ({ entities: { ...eta[i]!.entities, ...r.entities }, features: { ...eta[i]!.request, ...r.request, vip: i % 2 === 0 } }));
    const c = post('rules-guard', '/v1/models/late-guard:predict', { rows });
    const want = readable(await serverAnswer(server.http, c));
    expect(want.status).toBe(200);
    expect(readable(resultAnswer(await fn.invoke(httpApiEvent(c))))).toEqual(want);
    // The rule ran in a sandbox process of its own, started from the package's sandbox-process.mjs.
    const children = execFileSync('ps', ['-o', 'args=', '--ppid', String(fn.runtimePid())]).toString();
    expect(children).toContain(join(packagedFunction(), 'sandbox-process.mjs'));
  });

  it('runs a batch above offloadRows on the ONNX worker thread, as the server does', async () => {
    const mlp = expectedFor('tabular-mlp', '1').rows;
    const columns = ['basket_value', 'distance_km', 'hour_of_day', 'is_raining', 'basket_size', 'eta_minutes'];
    const rows = Array.from({ length: 200 }, (_, i) => mlp[i % mlp.length]!);
    const c = post('worker-batch', '/v2/models/tabular-mlp/infer', { inputs: [{ name: 'input', datatype: 'FP32', shape: [rows.length, 6], data: rows.flatMap((r) => columns.map((k) => r.request[k]!)) }] });
    const want = readable(await serverAnswer(server.http, c));
    expect(want.status).toBe(200);
    expect(readable(resultAnswer(await fn.invoke(httpApiEvent(c))))).toEqual(want);
  });
});
