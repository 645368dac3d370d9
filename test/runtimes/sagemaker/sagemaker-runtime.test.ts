/**
 * The sagemaker runtime with the real AWS SDK against a local server imitating the SageMaker runtime API: the
 * conformance suite (JSON and CSV), then an endpoint that is slow, hangs, throttles, fails or refuses on purpose.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { FeatureRow, ModelBundle } from '../../../runtimes/contract.ts';
import { SibylError } from '../../../core/errors.ts';
import type { Manifest } from '../../../runtimes/manifest.ts';
import { createSageMakerRuntime, type SageMakerLoadedModel, type SageMakerRuntimeOptions } from '../../../runtimes/sagemaker/sagemaker-runtime.ts';
import { expectRowsClose, runtimeConformance, type BundleVariant } from '../runtime.case.ts';
import { score, startFakeEndpoint, type FakeEndpoint } from './fake-endpoint.ts';
import { bundle, credentials, scoreManifest } from './fixtures.ts';

const rows: FeatureRow[] = [
  { a: 1, b: 2, c: 3 },
  { a: -1.5, b: 0, c: 0.25 },
  { a: 100, b: -7, c: 2 },
  { a: 0, b: 0, c: 0 },
];
const expected = (r: FeatureRow) => score([r.a as number, r.b as number, (r.c as number | undefined) ?? 1]);
const outputNames = (m: Manifest) => (m.outputs ?? []).map((o) => o.name);

let fake: FakeEndpoint;
beforeAll(async () => {
  fake = await startFakeEndpoint();
});
afterAll(() => fake.close());

/**
 * The bad variants change the section after validation (validateManifest refuses both already): the runtime checks
 * its settings again at load, for manifests that did not come through the schema.
 */
function variantBundle(sagemaker: Record<string, unknown>) {
  const changed = (change: Record<string, unknown>): ModelBundle => {
    const b = bundle(scoreManifest(sagemaker));
    return { ...b, manifest: { ...b.manifest, sagemaker: { ...b.manifest.sagemaker, ...change } as Manifest['sagemaker'] } };
  };
  return (variant: BundleVariant): ModelBundle => {
    if (variant === 'missing-file') return changed({ endpoint: undefined });
    if (variant === 'mismatched') return changed({ features: ['a', 'b', 'nope'] });
    return bundle(scoreManifest(sagemaker));
  };
}

runtimeConformance('sagemaker (JSON)', () => createSageMakerRuntime({ endpointUrl: fake.url, credentials }), variantBundle({}), rows, outputNames);
runtimeConformance('sagemaker (CSV)', () => createSageMakerRuntime({ endpointUrl: fake.url, credentials }), variantBundle({ contentType: 'text/csv' }), rows, outputNames);

async function failureOf(p: Promise<unknown>): Promise<SibylError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err, 'expected a rejection').toBeInstanceOf(SibylError);
  return err as SibylError;
}

const open = () => ({ signal: new AbortController().signal });
const deadline = (ms: number) => ({ signal: AbortSignal.timeout(ms) });

describe('sagemaker runtime against a misbehaving endpoint', () => {
  const models: SageMakerLoadedModel[] = [];
  async function load(sagemaker: Record<string, unknown> = {}, opts: SageMakerRuntimeOptions = {}): Promise<SageMakerLoadedModel> {
    const runtime = createSageMakerRuntime({ endpointUrl: fake.url, credentials, backoff: { baseMs: 5, capMs: 20 }, ...opts });
    const model = await runtime.load(bundle(scoreManifest(sagemaker)));
    models.push(model);
    return model;
  }
  beforeEach(() => {
    fake.fallback = { kind: 'compute' };
    fake.requests.length = 0;
  });
  afterEach(async () => {
    await Promise.all(models.splice(0).map((m) => m.dispose()));
  });

  it('sends the rows in column order with the declared content type, accept and variant, over kept-alive connections', async () => {
    const model = await load({ variant: 'blue', features: ['c', 'b', 'a'], customAttributes: 'team=eta' });
    const before = fake.connections();
    for (let i = 0; i < 20; i++) await model.predict([rows[0]!], open());
    expect(fake.connections() - before).toBeLessThanOrEqual(2);
    const seen = fake.requests[0]!;
    expect(seen).toMatchObject({ endpoint: 'scorer-prod', contentType: 'application/json', accept: 'application/json', variant: 'blue' });
    expect(seen.body).toBe('{"instances":[[3,2,1]]}');
    // Column order c, b, a: the fake weighs columns 1, 2, 3.
    expect(await model.predict([rows[0]!], open())).toEqual([score([3, 2, 1])]);
  });

  it('answers CSV models from CSV responses', async () => {
    const model = await load({ contentType: 'text/csv' });
    expectRowsClose(await model.predict(rows, open()), rows.map(expected));
    expect(fake.requests.at(-1)).toMatchObject({ contentType: 'text/csv', accept: 'text/csv', body: '1,2,3\n-1.5,0,0.25\n100,-7,2\n0,0,0' });
  });

  it('waits for a slow endpoint within the deadline', async () => {
    const model = await load();
    fake.push({ kind: 'compute', delayMs: 150 });
    expectRowsClose(await model.predict([rows[1]!], deadline(5000)), [expected(rows[1]!)]);
  });

  it('aborts a hung call at the request deadline with DEADLINE_EXCEEDED and closes its connection', async () => {
    const model = await load();
    fake.fallback = { kind: 'hang' };
    const t0 = performance.now();
    const e = await failureOf(model.predict(rows, deadline(300)));
    const ms = performance.now() - t0;
    expect(e.code).toBe('DEADLINE_EXCEEDED');
    expect(ms).toBeGreaterThanOrEqual(250);
    expect(ms).toBeLessThan(5000);
    expect(fake.requests).toHaveLength(1); // a timeout is not retried
    await sleep(100);
    expect(fake.requests[0]!.abortedByClient).toBe(true);
  });

  it('bounds a hung call by sagemaker.timeoutMs when the request has no deadline', async () => {
    const model = await load({ timeoutMs: 300 });
    fake.fallback = { kind: 'hang' };
    const t0 = performance.now();
    const e = await failureOf(model.predict(rows, open()));
    expect(e.code).toBe('DEADLINE_EXCEEDED');
    expect(e.message).toContain('did not answer within 300 ms');
    expect(performance.now() - t0).toBeLessThan(5000);
  });

  it('answers CANCELLED when the caller goes away, and the endpoint sees the call dropped', async () => {
    const model = await load();
    fake.fallback = { kind: 'hang' };
    const ac = new AbortController();
    const p = model.predict(rows, { signal: ac.signal });
    await sleep(100);
    ac.abort();
    expect((await failureOf(p)).code).toBe('CANCELLED');
    await sleep(100);
    expect(fake.requests[0]!.abortedByClient).toBe(true);
  });

  it('retries throttling and answers once the endpoint accepts', async () => {
    const model = await load();
    fake.push({ kind: 'throttle' }, { kind: 'throttle', status: 429 });
    expectRowsClose(await model.predict(rows, deadline(5000)), rows.map(expected));
    expect(fake.requests).toHaveLength(3);
    expect(model.counters).toMatchObject({ attempts: 3, retries: 2, throttled: 2 });
  });

  it('gives up on throttling after maxAttempts with RESOURCE_EXHAUSTED', async () => {
    const model = await load({ maxAttempts: 4 });
    fake.fallback = { kind: 'throttle' };
    const e = await failureOf(model.predict(rows, deadline(5000)));
    expect(e.code).toBe('RESOURCE_EXHAUSTED');
    expect(fake.requests).toHaveLength(4);
    const once = await load({ maxAttempts: 1 });
    fake.requests.length = 0;
    expect((await failureOf(once.predict(rows, deadline(5000)))).code).toBe('RESOURCE_EXHAUSTED');
    expect(fake.requests).toHaveLength(1);
  });

  it('retries 5xx and gives up with UNAVAILABLE', async () => {
    const model = await load();
    fake.push({ kind: 'unavailable', status: 500 });
    expectRowsClose(await model.predict(rows, deadline(5000)), rows.map(expected));
    fake.fallback = { kind: 'unavailable' };
    fake.requests.length = 0;
    expect((await failureOf(model.predict(rows, deadline(5000)))).code).toBe('UNAVAILABLE');
    expect(fake.requests).toHaveLength(3);
  });

  it('never retries a ModelError: INTERNAL, without the model\'s message', async () => {
    const model = await load({ maxAttempts: 5 });
    fake.fallback = { kind: 'model-error', originalStatus: 500 };
    const e = await failureOf(model.predict(rows, deadline(5000)));
    expect(e.code).toBe('INTERNAL');
    expect(e.message).toContain('the model answered 500');
    expect(e.message).not.toContain('secret stack trace');
    expect(fake.requests).toHaveLength(1);
  });

  it('never retries a ValidationError: FAILED_PRECONDITION', async () => {
    const model = await load({ maxAttempts: 5 });
    fake.fallback = { kind: 'validation' };
    const e = await failureOf(model.predict(rows, deadline(5000)));
    expect(e.code).toBe('FAILED_PRECONDITION');
    expect(fake.requests).toHaveLength(1);
  });

  it('keeps retries inside the deadline: the backoff is cut short when the deadline passes', async () => {
    const model = await load({ maxAttempts: 5 }, { backoff: { baseMs: 2000, capMs: 2000 }, random: () => 1 });
    fake.fallback = { kind: 'throttle' };
    const t0 = performance.now();
    const e = await failureOf(model.predict(rows, deadline(300)));
    expect(e.code).toBe('DEADLINE_EXCEEDED');
    expect(performance.now() - t0).toBeLessThan(1900);
    expect(fake.requests).toHaveLength(1);
  });

  it('rejects a response that does not fit the declared outputs with INTERNAL', async () => {
    const model = await load();
    fake.push({ kind: 'reply', status: 200, contentType: 'application/json', body: '{"predictions":[{"score":1}]}' });
    expect((await failureOf(model.predict([rows[0]!], open()))).code).toBe('INTERNAL');
  });

  it('rejects rows that do not fit before calling the endpoint', async () => {
    const model = await load();
    const e = await failureOf(model.predict([{ a: 'x', b: 1, c: 1 }], open()));
    expect(e.code).toBe('INVALID_ARGUMENT');
    expect(fake.requests).toHaveLength(0);
  });

  describe('circuit breaker', () => {
    const breaker = { failureThreshold: 3, openMs: 400 };

    it('opens after repeated failures and then answers UNAVAILABLE fast without calling', async () => {
      const model = await load({ maxAttempts: 1 }, { breaker });
      fake.fallback = { kind: 'unavailable' };
      for (let i = 0; i < 3; i++) expect((await failureOf(model.predict(rows, deadline(5000)))).code).toBe('UNAVAILABLE');
      expect(fake.requests).toHaveLength(3);
      expect(model.breakerState()).toBe('open');
      const t0 = performance.now();
      for (let i = 0; i < 20; i++) {
        const e = await failureOf(model.predict(rows, deadline(5000)));
        expect(e.code).toBe('UNAVAILABLE');
        expect(e.message).toContain('circuit open');
      }
      expect(performance.now() - t0).toBeLessThan(1000);
      expect(fake.requests).toHaveLength(3);
      expect(model.counters.breakerRejected).toBe(20);
    });

    it('hung calls that hit their deadline open it too', async () => {
      const model = await load({ maxAttempts: 1 }, { breaker });
      fake.fallback = { kind: 'hang' };
      await Promise.all([0, 1, 2].map(() => failureOf(model.predict(rows, deadline(200)))));
      expect(model.breakerState()).toBe('open');
      expect((await failureOf(model.predict(rows, deadline(5000)))).code).toBe('UNAVAILABLE');
      expect(fake.requests).toHaveLength(3);
    });

    it('ModelError, ValidationError and cancelled calls do not open it', async () => {
      const model = await load({ maxAttempts: 1 }, { breaker });
      for (const kind of ['model-error', 'validation', 'model-error', 'validation'] as const) {
        fake.push({ kind });
        await failureOf(model.predict(rows, open()));
      }
      fake.fallback = { kind: 'hang' };
      for (let i = 0; i < 3; i++) {
        const ac = new AbortController();
        const p = model.predict(rows, { signal: ac.signal });
        await sleep(20);
        ac.abort();
        expect((await failureOf(p)).code).toBe('CANCELLED');
      }
      expect(model.breakerState()).toBe('closed');
    });

    it('closes again after a successful half-open probe, letting only the probe through meanwhile', async () => {
      const model = await load({ maxAttempts: 1 }, { breaker });
      fake.fallback = { kind: 'unavailable' };
      for (let i = 0; i < 3; i++) await failureOf(model.predict(rows, deadline(5000)));
      expect(model.breakerState()).toBe('open');
      await sleep(breaker.openMs + 50);
      expect(model.breakerState()).toBe('half-open');
      fake.fallback = { kind: 'compute', delayMs: 150 };
      fake.requests.length = 0;
      const probe = model.predict(rows, deadline(5000));
      await sleep(20);
      // While the probe is out, others are still refused without calling.
      expect((await failureOf(model.predict(rows, deadline(5000)))).code).toBe('UNAVAILABLE');
      expectRowsClose(await probe, rows.map(expected));
      expect(fake.requests).toHaveLength(1);
      expect(model.breakerState()).toBe('closed');
      fake.fallback = { kind: 'compute' };
      for (let i = 0; i < 5; i++) expectRowsClose(await model.predict(rows, deadline(5000)), rows.map(expected));
    });

    it('opens again when the half-open probe fails', async () => {
      const model = await load({ maxAttempts: 1 }, { breaker });
      fake.fallback = { kind: 'unavailable' };
      for (let i = 0; i < 3; i++) await failureOf(model.predict(rows, deadline(5000)));
      await sleep(breaker.openMs + 50);
      expect((await failureOf(model.predict(rows, deadline(5000)))).code).toBe('UNAVAILABLE'); // the probe
      expect(fake.requests).toHaveLength(4);
      expect(model.breakerState()).toBe('open');
      await failureOf(model.predict(rows, deadline(5000)));
      expect(fake.requests).toHaveLength(4);
    });

    it('is shared by the versions calling the same endpoint, and not by other endpoints', async () => {
      const runtime = createSageMakerRuntime({ endpointUrl: fake.url, credentials, breaker });
      const v1 = await runtime.load(bundle(scoreManifest({ maxAttempts: 1 })));
      const v2 = await runtime.load(bundle(scoreManifest({ maxAttempts: 1 }, { version: '2' })));
      const other = await runtime.load(bundle(scoreManifest({ maxAttempts: 1, endpoint: 'other-endpoint' })));
      models.push(v1, v2, other);
      fake.fallback = { kind: 'unavailable' };
      for (let i = 0; i < 3; i++) await failureOf(v1.predict(rows, deadline(5000)));
      expect(v2.breakerState()).toBe('open');
      expect((await failureOf(v2.predict(rows, deadline(5000)))).message).toContain('circuit open');
      fake.fallback = { kind: 'compute' };
      expectRowsClose(await other.predict(rows, deadline(5000)), rows.map(expected));
    });
  });
});
