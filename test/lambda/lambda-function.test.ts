/**
 * The Lambda function in process (the emulator suite runs the packaged function under the real Runtime Interface
 * Emulator): every predict door answers through HTTP API, ALB and REST API events exactly as the listening server
 * answers the same requests; bad requests get the same 4xx; events that are not HTTP get a 400 in the server's
 * error body; an invocation returns only once its records are delivered and its shadows have run.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { loadLambdaConfig } from '../../lambda/lambda-config.ts';
import { createLambdaFunction, type LambdaFunction } from '../../lambda/lambda-function.ts';
import { packageBundles } from '../../lambda/packaging/package-bundles.ts';
import type { PredictionSink, SinkStats } from '../../gateway/log/prediction-sink.ts';
import type { PredictionRecord } from '../../gateway/log/prediction-record.ts';
import { startGateway, type TestGateway } from '../helpers/gateway.ts';
import { MODELS_DIR } from '../helpers/expected.ts';
import { makeModelsDir } from '../helpers/models-dir.ts';
import { albEvent, badCases, httpApiEvent, MAX_BODY_BYTES, predictCases, readable, restApiEvent, resultAnswer, serverAnswer } from './http-cases.ts';

const env = {
  SIBYL_MODELS_DIR: MODELS_DIR,
  SIBYL_FEATURES_FILE: join(MODELS_DIR, 'features.jsonl'),
  SIBYL_MAX_BODY_BYTES: String(MAX_BODY_BYTES),
  SIBYL_LOG_LEVEL: 'warn',
};
const silent = pino({ level: 'silent' });

/** A sink whose records are delivered only when flushed, some milliseconds later (like a broker's acknowledgement). */
function slowSink(ackMs: number): PredictionSink & { delivered: PredictionRecord[] } {
  const pending: PredictionRecord[] = [];
  const delivered: PredictionRecord[] = [];
  const stats = (): SinkStats => ({ accepted: pending.length + delivered.length, delivered: delivered.length, spilled: 0, lost: 0, pending: pending.length });
  return {
    kind: 'memory',
    delivered,
    write: (r) => void pending.push(r),
    flush: () => new Promise<void>((resolve) => setTimeout(() => (delivered.push(...pending.splice(0)), resolve()), ackMs)),
    shutdown: () => Promise.resolve(),
    stats,
  };
}

function lambdaConfig(extra: Record<string, string> = {}) {
  const taskRoot = mkdtempSync(join(tmpdir(), 'sibyl-lambda-task-'));
  return loadLambdaConfig({ ...env, SIBYL_DATA_DIR: join(taskRoot, 'tmp'), ...extra }, taskRoot);
}

let server: TestGateway;
let fn: LambdaFunction;
beforeAll(async () => {
  server = await startGateway({ ...env, SIBYL_PREDICTION_LOG: 'off' });
  fn = await createLambdaFunction(lambdaConfig({ SIBYL_PREDICTION_LOG: 'off' }), { logger: silent });
});
afterAll(async () => {
  await fn?.close();
  await server?.stop();
});

describe('the same answers as the server', () => {
  it.each(predictCases().map((c) => [c.name, c] as const))('%s: HTTP API (2.0) event', async (_name, c) => {
    const want = await serverAnswer(server.http, c);
    expect(want.status).toBe(c.status);
    const got = resultAnswer(await fn.invoke(httpApiEvent(c)));
    expect(readable(got)).toEqual(readable(want));
  });

  it.each(badCases().map((c) => [c.name, c] as const))('%s: the same 4xx', async (_name, c) => {
    const want = await serverAnswer(server.http, c);
    expect(want.status).toBe(c.status);
    const got = resultAnswer(await fn.invoke(httpApiEvent(c)));
    expect(readable(got)).toEqual(readable(want));
  });

  it('answers ALB (single and multi-value headers), REST API (1.0), staged HTTP API and base64 bodies alike', async () => {
    for (const c of [...predictCases().slice(0, 5), badCases()[0]!]) {
      const want = readable(await serverAnswer(server.http, c));
      const alb = await fn.invoke(albEvent(c));
      expect(alb).toHaveProperty('statusDescription');
      expect(readable(resultAnswer(alb))).toEqual(want);
      const multi = await fn.invoke(albEvent(c, true));
      expect(multi).toHaveProperty('multiValueHeaders');
      expect(readable(resultAnswer(multi))).toEqual(want);
      expect(readable(resultAnswer(await fn.invoke(restApiEvent(c))))).toEqual(want);
      expect(readable(resultAnswer(await fn.invoke(httpApiEvent(c, { stage: 'prod' }))))).toEqual(want);
      expect(readable(resultAnswer(await fn.invoke(httpApiEvent(c, { base64: true }))))).toEqual(want);
    }
  });

  it('sends binary answers base64-encoded and JSON answers as text', async () => {
    const binary = predictCases().find((c) => c.name.includes('binary'))!;
    const result = (await fn.invoke(httpApiEvent(binary))) as { isBase64Encoded: boolean; headers: Record<string, string> };
    expect(result.isBase64Encoded).toBe(true);
    expect(result.headers['inference-header-content-length']).toBeDefined();
    const plain = (await fn.invoke(httpApiEvent(predictCases()[0]!))) as { isBase64Encoded: boolean };
    expect(plain.isBase64Encoded).toBe(false);
  });
});

describe('events that are not HTTP requests', () => {
  it.each([
    ['an empty object', {}],
    ['an S3 notification', { Records: [{ eventSource: 'aws:s3' }] }],
    ['a string', 'hello'],
    ['a 2.0 event without a method', { version: '2.0', rawPath: '/v1/models/x:predict', requestContext: {} }],
  ])('%s: 400 INVALID_ARGUMENT in the server error body', async (_name, event) => {
    const got = readable(resultAnswer(await fn.invoke(event)));
    expect(got.status).toBe(400);
    expect(got.body).toMatchObject({ code: 'INVALID_ARGUMENT', message: expect.stringContaining('not an HTTP event') });
  });

  it('a body marked base64 that is not: 400', async () => {
    const event = { ...httpApiEvent(predictCases()[0]!), body: '{"rows": []}', isBase64Encoded: true };
    const got = readable(resultAnswer(await fn.invoke(event)));
    expect(got.status).toBe(400);
    expect(got.body).toMatchObject({ code: 'INVALID_ARGUMENT', message: expect.stringContaining('base64') });
  });
});

describe('nothing left for after the return', () => {
  it('returns once the live and shadow records are delivered and the shadow has run', async () => {
    const models = makeModelsDir({
      bundles: ['delivery-eta/1', 'delivery-eta/2', 'eta-risk/1'],
      deployment: { models: { 'delivery-eta': { default: '2', shadows: [{ version: '1' }] } } },
    });
    const sink = slowSink(30);
    const shadowed = await createLambdaFunction(lambdaConfig({ SIBYL_MODELS_DIR: models }), { logger: silent, sink });
    try {
      for (let i = 0; i < 3; i++) {
        const c = predictCases()[0]!;
        const result = resultAnswer(await shadowed.invoke(httpApiEvent({ ...c, headers: { ...c.headers, 'x-request-id': `settle-${i}` } })));
        expect(result.status).toBe(200);
        // At return: delivered, not just written, and the shadow's record is there too.
        const mine = sink.delivered.filter((r) => r.requestId === `settle-${i}`);
        expect(mine.map((r) => `${r.role}:${r.version}`).sort()).toEqual(['ROLE_LIVE:2', 'ROLE_SHADOW:1']);
        expect(shadowed.last?.settled).toBe(true);
        expect(shadowed.last!.settleMs).toBeGreaterThanOrEqual(25);
      }
      expect(shadowed.gateway.shadowStats.snapshot()[0]).toMatchObject({ executed: 3, shed: 0 });
    } finally {
      await shadowed.close();
    }
  });

  it('a flush that takes longer than SIBYL_LAMBDA_FLUSH_TIMEOUT_MS does not hold the invocation', async () => {
    const sink = slowSink(2000);
    const f = await createLambdaFunction(lambdaConfig({ SIBYL_LAMBDA_FLUSH_TIMEOUT_MS: '50' }), { logger: silent, sink });
    try {
      const t = performance.now();
      expect(resultAnswer(await f.invoke(httpApiEvent(predictCases()[0]!))).status).toBe(200);
      expect(performance.now() - t).toBeLessThan(1000);
      expect(f.last?.settled).toBe(false);
    } finally {
      await f.close();
    }
  });

  it('lowers the request deadline to the invocation remaining time', async () => {
    // A feature store that answers after 50 ms: the request outlives a deadline of a few milliseconds.
    const store = { kind: 'slow', healthy: true, read: () => new Promise<never[]>((r) => setTimeout(() => r([]), 50)), write: async () => {}, close: async () => {} };
    const f = await createLambdaFunction(lambdaConfig({ SIBYL_PREDICTION_LOG: 'off', SIBYL_FEATURE_TIMEOUT_MS: '1000' }), { logger: silent, store });
    try {
      const c = predictCases()[0]!;
      expect(resultAnswer(await f.invoke(httpApiEvent(c), { getRemainingTimeInMillis: () => 60_000 })).status).toBe(200);
      // 205 ms remaining leaves 5 ms for the request (100 ms each for settling and returning).
      const late = readable(resultAnswer(await f.invoke(httpApiEvent(c), { getRemainingTimeInMillis: () => 205 })));
      expect(late.status).toBe(504);
      expect(late.body).toMatchObject({ code: 'DEADLINE_EXCEEDED' });
    } finally {
      await f.close();
    }
  });
});

describe('packaged bundles', () => {
  it('serves the models directory packaged as state.json and zips, with the same answers', async () => {
    const root = mkdtempSync(join(tmpdir(), 'sibyl-lambda-pkg-'));
    const written = await packageBundles(MODELS_DIR, 'local', join(root, 'bundles'));
    expect(written).toEqual(['delivery-eta/1', 'delivery-eta/2', 'eta-risk/1', 'tabular-mlp/1']);
    const config = loadLambdaConfig({ ...env, SIBYL_MODELS_DIR: join(root, 'no-such-dir'), SIBYL_DATA_DIR: join(root, 'tmp'), SIBYL_PREDICTION_LOG: 'off' }, root);
    const packaged = await createLambdaFunction(config, { logger: silent });
    try {
      expect(packaged.init.source).toBe('packaged');
      for (const c of predictCases()) expect(readable(resultAnswer(await packaged.invoke(httpApiEvent(c))))).toEqual(readable(await serverAnswer(server.http, c)));
    } finally {
      await packaged.close();
    }
  });
});

describe('configuration', () => {
  it('reports every invalid variable, the gateway and the function together', () => {
    expect(() => loadLambdaConfig({ SIBYL_MAX_ROWS: 'many', SIBYL_LAMBDA_FLUSH_TIMEOUT_MS: '-1' }, '/var/task')).toThrow(/SIBYL_MAX_ROWS[\s\S]*SIBYL_LAMBDA_FLUSH_TIMEOUT_MS/);
  });

  it('uses /tmp, the packaged features and no admission control by default', () => {
    const c = loadLambdaConfig({ AWS_LAMBDA_FUNCTION_NAME: 'sibyl', AWS_LAMBDA_LOG_STREAM_NAME: '2026/03/12/[$LATEST]abc' }, '/var/task');
    expect(c.gateway.sync.cacheDir).toBe('/tmp/sibyl/cache/local');
    expect(c.gateway.featureStore).toMatchObject({ kind: 'memory', seedFile: '/var/task/features.jsonl' });
    expect(c.gateway.admission).toEqual({ maxInflight: 512, maxLagMs: 60000, queueMs: 0, targetUtilization: 0.9, maxTurnMs: 0, lateShare: 0 });
    expect(c.gateway.sync.replica).toBe('sibyl/2026/03/12/[$LATEST]abc');
    expect(c.bundlesDir).toBe('/var/task/bundles');
  });
});
