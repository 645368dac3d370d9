/**
 * The control tower's limits: uploads validated at once (a burst is queued, then refused with 429), the body size
 * of every other call, conditional bundle downloads (If-None-Match → 304), and a validation out of time (400 naming
 * its budget: the same bundle would fail again, so it is no 429).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { UploadValidator } from '../../../control-tower/api/index.ts';
import { limitValidations } from '../../../control-tower/api/index.ts';
import { SibylError } from '../../../core/errors.ts';
import { bundleZip } from '../../runtimes/bundle/zips.ts';
import { startTestTower, type TestTower } from './tower.ts';

/** A validator whose calls wait until released, then reject with INVALID_ARGUMENT "held". */
function heldValidator() {
  const held: (() => void)[] = [];
  let started = 0;
  const validator: UploadValidator = {
    async validate() {
      started++;
      await new Promise<void>((resolve) => held.push(resolve));
      throw new SibylError('INVALID_ARGUMENT', 'held');
    },
    inspect: () => Promise.reject(new SibylError('UNIMPLEMENTED', 'not used here')),
    close: async () => undefined,
  };
  return {
    validator,
    started: () => started,
    releaseOne: () => held.shift()?.(),
    waitFor: async (n: number) => {
      const deadline = Date.now() + 10_000;
      while (started < n && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    },
  };
}

describe('limitValidations', () => {
  it('runs at most `concurrency` at once, queues `queue` more in order, and refuses the rest with RESOURCE_EXHAUSTED', async () => {
    const h = heldValidator();
    const gate = limitValidations(h.validator, { concurrency: 2, queue: 1 });
    const calls = [1, 2, 3].map(() => gate.validate(Buffer.from('z')).catch((e: SibylError) => e.message));
    await expect(gate.validate(Buffer.from('z'))).rejects.toMatchObject({ code: 'RESOURCE_EXHAUSTED', message: expect.stringContaining('retry later') });
    await h.waitFor(2);
    expect(h.started()).toBe(2);
    h.releaseOne();
    await h.waitFor(3);
    expect(h.started()).toBe(3);
    h.releaseOne();
    h.releaseOne();
    expect(await Promise.all(calls)).toEqual(['held', 'held', 'held']);
    // Slots come back: a new call starts at once.
    const again = gate.validate(Buffer.from('z')).catch((e: SibylError) => e.message);
    await h.waitFor(4);
    h.releaseOne();
    expect(await again).toBe('held');
  });
});

describe('control tower limits', () => {
  let t: TestTower;
  const h = heldValidator();
  beforeAll(async () => {
    t = await startTestTower({}, { validator: h.validator, validations: { concurrency: 1, queue: 1 } });
  }, 60_000);
  afterAll(() => t?.stop());

  it('answers a burst of uploads beyond the validation queue with 429 RESOURCE_EXHAUSTED at once', async () => {
    const zip = await bundleZip('tabular-mlp', '1');
    const post = () => t.call('POST', '/v1/models', { body: zip, headers: { 'content-type': 'application/zip' } });
    const first = post();
    const second = post();
    await h.waitFor(1);
    const third = await post();
    expect(third).toMatchObject({ status: 429, json: { code: 'RESOURCE_EXHAUSTED', message: expect.stringContaining('retry later') } });
    h.releaseOne();
    await h.waitFor(2);
    h.releaseOne();
    expect((await first).json).toEqual({ code: 'INVALID_ARGUMENT', message: 'held' });
    expect((await second).json).toEqual({ code: 'INVALID_ARGUMENT', message: 'held' });
  });

  it('refuses a JSON body over 4 MiB with INVALID_ARGUMENT and stores nothing', async () => {
    const huge = { replica: 'gw-big', revision: '1', errors: [{ model: 'm', version: '1', message: 'x'.repeat(5 * 1024 * 1024) }] };
    const res = await t.call('POST', '/v1/cells/cell-a/reports', { json: huge, token: await t.token('viewer') });
    expect(res).toMatchObject({ status: 400, json: { code: 'INVALID_ARGUMENT', message: expect.stringContaining('limit of 4194304 bytes') } });
    expect(await t.tower.store.reports('cell-a')).toEqual([]);
  });

  it('answers a bundle download with 304 when the client already holds it', async () => {
    const zip = await bundleZip('tabular-mlp', '1');
    const { createHash } = await import('node:crypto');
    const sha = createHash('sha256').update(zip).digest('hex');
    await t.tower.artifacts.put(sha, zip);
    const full = await t.call('GET', `/v1/bundles/${sha}`);
    expect(full.status).toBe(200);
    expect(full.res.headers.get('etag')).toBe(`"${sha}"`);
    const cached = await t.call('GET', `/v1/bundles/${sha}`, { headers: { 'if-none-match': `"${sha}"` } });
    expect(cached.status).toBe(304);
    expect(cached.res.headers.get('etag')).toBe(`"${sha}"`);
    const other = await t.call('GET', `/v1/bundles/${sha}`, { headers: { 'if-none-match': `"${'0'.repeat(64)}"` } });
    expect(other.status).toBe(200);
    expect((await t.call('GET', `/v1/bundles/${'1'.repeat(64)}`, { headers: { 'if-none-match': `"${'1'.repeat(64)}"` } })).status).toBe(404);
  });
});

describe('validation budget', () => {
  it('answers an upload whose validation runs out of time with 400 naming the budget and its setting, not 429', async () => {
    const slow = await startTestTower({ SIBYL_VALIDATION_TIMEOUT_MS: '50' });
    try {
      const res = await slow.call('POST', '/v1/models', { body: await bundleZip('tabular-mlp', '1'), headers: { 'content-type': 'application/zip' } });
      expect(res).toMatchObject({
        status: 400,
        json: { code: 'INVALID_ARGUMENT', message: expect.stringContaining('the validation took longer than 50 ms (SIBYL_VALIDATION_TIMEOUT_MS)') },
      });
      expect(res.res.headers.get('retry-after')).toBeNull();
      expect(slow.bundleFiles()).toEqual([]);
    } finally {
      await slow.stop();
    }
  }, 60_000);
});
