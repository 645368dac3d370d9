/**
 * The upload gate, in its own process: good bundles pass with their manifest and hash; hostile zips, broken models,
 * mismatched manifests, external data outside the bundle and failing test cases are refused with their own
 * messages; a validation process that runs out of time or memory, or is killed mid-way, is a rejection and this
 * process lives on; nothing stays in the work directory and nothing appears outside it.
 */
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createUploadValidator, type UploadValidator } from '../../../control-tower/validation/index.ts';
import { bundleZip, ESCAPING_WEIGHTS, externalDataBundle, hostileCorpus, hostileModels, makeZip, withManifest } from './hostile-zips.ts';

const OUTSIDE = 'sibyl-evil.txt';
let root: string;
let workDir: string;
let validator: UploadValidator;
beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'sibyl-validate-'));
  workDir = join(root, 'work');
  validator = createUploadValidator({ workDir });
});
afterAll(async () => {
  await validator.close();
  await rm(root, { recursive: true, force: true });
});

type Outcome = { code: string; message: string };
async function outcome(zip: Buffer, v = validator): Promise<Outcome> {
  return v.validate(zip).then(
    () => ({ code: 'accepted', message: '' }),
    (e: Outcome) => ({ code: e.code, message: e.message }),
  );
}

/** Nothing left in the work directory, nothing written beside it or at the zip-slip targets. */
function expectNothingLeft(): void {
  expect(readdirSync(workDir)).toEqual([]);
  expect(readdirSync(root)).toEqual(['work']);
  expect(existsSync(join('/tmp', OUTSIDE))).toBe(false);
  expect(existsSync(join(tmpdir(), OUTSIDE))).toBe(false);
}

/** Pids of this process's validation children (from /proc). */
function validationChildren(): number[] {
  const pids: number[] = [];
  for (const p of readdirSync('/proc')) {
    if (!/^\d+$/.test(p)) continue;
    try {
      const stat = readFileSync(`/proc/${p}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid === process.pid && readFileSync(`/proc/${p}/cmdline`, 'utf8').includes('validation-child.ts')) pids.push(Number(p));
    } catch {
      // the process ended while we looked
    }
  }
  return pids;
}

async function killChildMidway(signal: NodeJS.Signals): Promise<Outcome> {
  const pending = outcome(await bundleZip('eta-risk', '1'));
  let pids: number[] = [];
  for (let i = 0; i < 2000 && pids.length === 0; i++) {
    pids = validationChildren();
    if (pids.length === 0) await new Promise((r) => setTimeout(r, 2));
  }
  expect(pids).toHaveLength(1);
  process.kill(pids[0]!, signal);
  return pending;
}

describe('upload validation', () => {
  it('accepts the shipped bundles: their models load and their test cases pass', async () => {
    const times: number[] = [];
    for (const [model, version] of [['delivery-eta', '2'], ['eta-risk', '1'], ['tabular-mlp', '1']] as const) {
      const zip = await bundleZip(model, version);
      const t0 = performance.now();
      const v = await validator.validate(zip);
      times.push(performance.now() - t0);
      expect(v.manifest).toMatchObject({ name: model, version });
      expect(v.manifest.tests.length).toBeGreaterThan(0);
      expect(v.sha256).toBe(createHash('sha256').update(zip).digest('hex'));
      expect(v.sizeBytes).toBe(zip.byteLength);
    }
    console.info(`validation, one child process each: ${times.map((t) => `${t.toFixed(0)} ms`).join(', ')}`);
    expectNothingLeft();
  });

  it('accepts an ONNX model whose external data lies inside the bundle', async () => {
    const v = await validator.validate(await externalDataBundle());
    expect(v.manifest.name).toBe('external');
    expectNothingLeft();
  });

  it('refuses every zip of the hostile corpus with its own message', async () => {
    const corpus = (await hostileCorpus(OUTSIDE)).filter((c) => !c.limits);
    const t0 = performance.now();
    const results = await Promise.all(corpus.map((c) => outcome(c.zip)));
    console.info(`${corpus.length} hostile zips refused in ${(performance.now() - t0).toFixed(0)} ms, 2 processes at a time`);
    corpus.forEach((c, i) => {
      expect(results[i]!.code, c.name).toBe('INVALID_ARGUMENT');
      expect(results[i]!.message, c.name).toMatch(c.message);
    });
    expectNothingLeft();
  }, 240_000);

  it('refuses broken models, mismatched manifests, failing tests and external data outside the bundle, each with its own message', async () => {
    // The escaping model's weights exist where it points, so only the containment check can refuse it.
    const target = join(workDir, 'x', ESCAPING_WEIGHTS);
    await mkdir(dirname(target), { recursive: true });
    await writeFile(target, Buffer.alloc(16));
    const models = await hostileModels();
    try {
      for (const c of models) {
        const r = await outcome(c.zip);
        expect(r.code, c.name).toBe('INVALID_ARGUMENT');
        expect(r.message, c.name).toMatch(c.message);
        expect(r.message, c.name).not.toContain(workDir);
      }
    } finally {
      await rm(dirname(target), { recursive: true });
    }
    expectNothingLeft();
  }, 120_000);

  it('shows every failing case of a bundle with expected and actual values', async () => {
    const zip = await makeZip(withManifest('eta-risk', '1', (m) => m.replaceAll('is_late: 1', 'is_late: 0').replaceAll('is_late: 0', 'is_late: 2')));
    const r = await outcome(zip);
    expect(r.code).toBe('INVALID_ARGUMENT');
    expect(r.message).toMatch(/^3 of 3 test cases failed:\ntest case "expected row 0":\n {2}- is_late: expected 2, got [01] \(off by [12]\.00; tolerance 0\.00001\)\ntest case "expected row 1":/);
  });

  it('spells out the first 20 failing cases and counts the rest', async () => {
    const cases = Array.from({ length: 25 }, (_, i) => `  - { name: case ${i}, features: {}, expected: { output: 999 } }`);
    const zip = await makeZip(withManifest('tabular-mlp', '1', (m) => `${m.replace(/^tests:[\s\S]*$/m, '')}tests:\n${cases.join('\n')}\n`));
    const r = await outcome(zip);
    expect(r.code).toBe('INVALID_ARGUMENT');
    expect(r.message).toMatch(/^25 of 25 test cases failed:\n/);
    expect(r.message).toContain('test case "case 19":\n  - output: expected 999, got ');
    expect(r.message).not.toContain('test case "case 20"');
    expect(r.message).toMatch(/\n\(and 5 more failing cases\)$/);
  });

  it('refuses a runtime this control tower does not have', async () => {
    const zip = await makeZip([{ name: 'sibyl.yaml', data: 'name: r\nversion: "1"\nruntime: sagemaker\noutputs: [{ name: score }]\nsagemaker: { endpoint: x }\ntests: [{ name: t, features: {}, expected: { score: 1 } }]\n' }]);
    const r = await outcome(zip);
    expect(r.code).toBe('INVALID_ARGUMENT');
    expect(r.message).toMatch(/runtime: "sagemaker" is not available|sagemaker/);
  });

  it('applies its zip limits', async () => {
    const strict = createUploadValidator({ workDir, limits: { maxEntries: 2 } });
    expect(await outcome(await bundleZip('tabular-mlp', '1'), strict)).toEqual({ code: 'INVALID_ARGUMENT', message: 'bundle: 3 entries, more than the limit of 2' });
    await strict.close();
    expectNothingLeft();
  });

  it('rejects a validation that runs out of time with INVALID_ARGUMENT naming the budget and its setting (it would fail again: not a retry)', async () => {
    const slow = createUploadValidator({ workDir, timeoutMs: 50, timeoutSetting: 'SIBYL_VALIDATION_TIMEOUT_MS' });
    expect(await outcome(await bundleZip('tabular-mlp', '1'), slow)).toEqual({
      code: 'INVALID_ARGUMENT',
      message: 'the validation took longer than 50 ms (SIBYL_VALIDATION_TIMEOUT_MS); the bundle was rejected: its model must load and pass its test cases within that time',
    });
    await slow.close();
    expectNothingLeft();
  });

  it('rejects a validation that runs out of memory with INVALID_ARGUMENT naming the heap limit', async () => {
    // A manifest under the 1 MiB cap whose parse needs ~150 MiB of heap, against a 64 MiB limit.
    const lines = Array.from({ length: 9000 }, (_, i) => `  - { name: c${i}, features: { basket_value: ${Math.random()} }, expected: { output: ${Math.random()} } }`);
    const zip = await makeZip(withManifest('tabular-mlp', '1', (m) => `${m.replace(/^tests:[\s\S]*$/m, '')}tests:\n${lines.join('\n')}\n`));
    const small = createUploadValidator({ workDir, maxOldSpaceMb: 64 });
    expect(await outcome(zip, small)).toEqual({
      code: 'INVALID_ARGUMENT',
      message: 'the validation ran out of memory (heap limit 64 MiB); the bundle was rejected: its manifest, model and test cases must fit in that heap',
    });
    await small.close();
    expectNothingLeft();
  });

  it('survives a validation process killed mid-way (SIGKILL, SIGSEGV) and goes on validating', async () => {
    for (const signal of ['SIGKILL', 'SIGSEGV'] as const) {
      const r = await killChildMidway(signal);
      expect(r.code, signal).toBe('INVALID_ARGUMENT');
      expect(r.message, signal).toContain(`the validation process died (signal ${signal}) before it finished`);
    }
    expect((await validator.validate(await bundleZip('tabular-mlp', '1'))).manifest.name).toBe('tabular-mlp');
    expectNothingLeft();
  });

  it('runs at most maxConcurrent processes; the others wait their turn', async () => {
    const one = createUploadValidator({ workDir, maxConcurrent: 1 });
    const zip = await bundleZip('tabular-mlp', '1');
    let most = 0;
    const watch = setInterval(() => (most = Math.max(most, validationChildren().length)), 5);
    try {
      const results = await Promise.all([one.validate(zip), one.validate(zip), one.validate(zip)]);
      expect(results.map((r) => r.manifest.name)).toEqual(['tabular-mlp', 'tabular-mlp', 'tabular-mlp']);
    } finally {
      clearInterval(watch);
    }
    expect(most).toBe(1);
    await one.close();
    expectNothingLeft();
  });

  it('close() rejects the validations in flight and refuses new ones with UNAVAILABLE', async () => {
    const v = createUploadValidator({ workDir, maxConcurrent: 1 });
    const zip = await bundleZip('tabular-mlp', '1');
    const inFlight = [outcome(zip, v), outcome(zip, v)];
    while (validationChildren().length === 0) await new Promise((r) => setTimeout(r, 2));
    await v.close();
    for (const r of await Promise.all(inFlight)) expect(r.code).toBe('UNAVAILABLE');
    expect(await outcome(zip, v)).toEqual({ code: 'UNAVAILABLE', message: 'the upload validator is closed' });
    expectNothingLeft();
  });
});
