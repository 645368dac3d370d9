/**
 * The sagemaker runtime with the real AWS SDK (signing, endpoint resolution, restJson1) against moto's
 * InvokeEndpoint. moto answers each new request with the next reply queued through
 * `POST /moto-api/static/sagemaker/endpoint-results` (per account and region), the same reply again for a repeated
 * request (same body, Accept and X-Amzn-SageMaker-* headers), and a fixed body ("body", Content-Type
 * "content_type") when its queue is empty.
 *
 * moto is shared by other suites, so this file never resets it: it uses a region of its own, gives every loaded model
 * custom attributes unique to the run (so no request repeats an earlier one), and drains replies a failed earlier
 * run may have left queued.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { InvokeEndpointCommand, SageMakerRuntimeClient } from '@aws-sdk/client-sagemaker-runtime';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FeatureRow } from '../../../runtimes/contract.ts';
import { SibylError } from '../../../core/errors.ts';
import { createSageMakerRuntime, type SageMakerLoadedModel } from '../../../runtimes/sagemaker/sagemaker-runtime.ts';
import { bundle, credentials, scoreManifest } from './fixtures.ts';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const ENDPOINT = process.env.SIBYL_TEST_AWS_ENDPOINT ?? 'http://127.0.0.1:5055';
const REGION = 'ap-southeast-3';
const OTHER_REGION = 'me-central-1';
const RUN = randomBytes(4).toString('hex');
const rows: FeatureRow[] = [
  { a: 1, b: 2, c: 3 },
  { a: -1, b: 0, c: 0.5 },
];

interface MotoReply {
  Body: string;
  ContentType?: string;
}

async function queue(region: string, ...results: MotoReply[]): Promise<void> {
  const res = await fetch(`${ENDPOINT}/moto-api/static/sagemaker/endpoint-results`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ region, results }),
  });
  expect(res.status).toBe(201);
}

/** Takes replies off moto's queue for `region` until it answers with its fixed body (the queue is empty). */
async function drain(region: string): Promise<void> {
  const client = new SageMakerRuntimeClient({ region, endpoint: ENDPOINT, credentials });
  try {
    for (let i = 0; i < 200; i++) {
      const out = await client.send(new InvokeEndpointCommand({ EndpointName: 'drain', Body: Buffer.from(`drain-${RUN}-${i}`) }));
      if (Buffer.from(out.Body).toString() === 'body') return;
    }
    throw new Error(`moto's SageMaker queue for ${region} did not drain`);
  } finally {
    client.destroy();
  }
}

const runtime = createSageMakerRuntime({ endpointUrl: ENDPOINT, credentials });
const models: SageMakerLoadedModel[] = [];
let n = 0;
async function load(sagemaker: Record<string, unknown> = {}): Promise<SageMakerLoadedModel> {
  const model = await runtime.load(bundle(scoreManifest({ region: REGION, endpoint: 'scorer', customAttributes: `run=${RUN}-${++n}`, ...sagemaker })));
  models.push(model);
  return model;
}
const ctx = () => ({ signal: AbortSignal.timeout(10_000) });

beforeAll(async () => {
  // Started by scripts/test.sh; when this file runs alone, start moto here (idempotent).
  if (!process.env.SIBYL_TEST_AWS_ENDPOINT) execFileSync('bash', ['scripts/services/moto.sh', 'start'], { cwd: ROOT, stdio: 'ignore' });
  await drain(REGION);
  await drain(OTHER_REGION);
});
afterAll(async () => {
  await Promise.all(models.map((m) => m.dispose()));
});

describe('sagemaker runtime against moto', () => {
  it('JSON: InvokeEndpoint through the real SDK, the JSON answer decoded into the declared outputs', async () => {
    const model = await load();
    await queue(REGION, { Body: JSON.stringify({ predictions: [{ score: 14, label: 1 }, { score: 0.5, label: 0 }] }), ContentType: 'application/json' });
    expect(await model.predict(rows, ctx())).toEqual([
      { score: 14, label: 1 },
      { score: 0.5, label: 0 },
    ]);
  });

  it('CSV: the CSV answer decoded, one line per row', async () => {
    const model = await load({ contentType: 'text/csv' });
    await queue(REGION, { Body: '14,1\n0.5,0\n', ContentType: 'text/csv' });
    expect(await model.predict(rows, ctx())).toEqual([
      { score: 14, label: 1 },
      { score: 0.5, label: 0 },
    ]);
  });

  it('decodes by the declared accept when the response has no usable Content-Type', async () => {
    const model = await load({ contentType: 'text/csv' });
    // moto sends a reply queued without ContentType as the string "None".
    await queue(REGION, { Body: '[[3,1],[-3,0]]' });
    const json = await load({ contentType: 'text/csv', accept: 'application/json' });
    expect(await json.predict(rows, ctx())).toEqual([
      { score: 3, label: 1 },
      { score: -3, label: 0 },
    ]);
    await queue(REGION, { Body: '7,1\n8,1' });
    expect(await model.predict(rows, ctx())).toEqual([
      { score: 7, label: 1 },
      { score: 8, label: 1 },
    ]);
  });

  it('calls the region the manifest names', async () => {
    const elsewhere = await load({ region: OTHER_REGION });
    const here = await load();
    await queue(REGION, { Body: JSON.stringify([[1, 1], [2, 1]]), ContentType: 'application/json' });
    // The other region's moto backend has nothing queued: it answers its fixed body, which is no valid answer.
    const e = await elsewhere.predict(rows, ctx()).then(
      () => undefined,
      (err: unknown) => err,
    );
    expect(e).toBeInstanceOf(SibylError);
    expect((e as SibylError).code).toBe('INTERNAL');
    expect((e as SibylError).message).toContain('does not match the declared outputs');
    expect(await here.predict(rows, ctx())).toEqual([
      { score: 1, label: 1 },
      { score: 2, label: 1 },
    ]);
  });

  it('a batch and its rows one by one come back in order from separately queued replies', async () => {
    const model = await load();
    await queue(
      REGION,
      { Body: JSON.stringify({ predictions: [[10, 1], [20, 1], [30, 1]] }), ContentType: 'application/json' },
      { Body: JSON.stringify({ predictions: [[10, 1]] }), ContentType: 'application/json' },
      { Body: JSON.stringify({ predictions: [[20, 1]] }), ContentType: 'application/json' },
    );
    const batch = await model.predict([rows[0]!, rows[1]!, { a: 5, b: 5, c: 5 }], ctx());
    expect(batch.map((r) => r.score)).toEqual([10, 20, 30]);
    expect((await model.predict([rows[0]!], ctx()))[0]).toEqual({ score: 10, label: 1 });
    expect((await model.predict([rows[1]!], ctx()))[0]).toEqual({ score: 20, label: 1 });
    expect(model.counters).toMatchObject({ calls: 3, attempts: 3, retries: 0 });
  });
});
