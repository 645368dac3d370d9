/**
 * Versions that fail to load fail once: a replica remembers a version whose bundle did not unpack, load or warm up
 * (by bundle hash) and does not load it again on every revision. A change that does not touch it applies in the
 * usual time however many versions failed; the failed version is retried alone with a backoff, or at once under a
 * new bundle hash. Requests for it (by version, alias, or as the default with nothing else loaded) answer
 * UNAVAILABLE naming its load error on every door, and the replica reports the error with the version.
 */
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createRuntimes, type Runtimes } from '../../../runtimes/index.ts';
import { PredictionService } from '../../../proto/gen/sibyl/v1/predict_pb.js';
import { GRPCInferenceService } from '../../../proto/gen/inference/open_inference_grpc_pb.js';
import { MODELS_DIR } from '../../helpers/expected.ts';
import { postJson, type TestGateway } from '../../helpers/gateway.ts';
import type { GatewayParts } from '../../../gateway/gateway.ts';
import { bundleOf, deployed, type TestBundle } from './bundles.ts';
import { startTestTower, type ModelInit, type TestTower } from './test-tower.ts';
import { CELL, predict, towerGateway, waitFor } from './sync-helpers.ts';

let eta1: TestBundle;
let eta2: TestBundle;
let risk1: TestBundle;
let tower: TestTower | undefined;
const gateways: TestGateway[] = [];

/** delivery-eta/2's model under another version whose first test case expects 99.5: it loads, then fails warm-up. */
async function failingEta(version: string, expected = '99.5'): Promise<TestBundle> {
  const manifest = readFileSync(join(MODELS_DIR, 'delivery-eta/2/sibyl.yaml'), 'utf8')
    .replace(/^version: .*$/m, `version: '${version}'`)
    .replace(/^default: true$/m, 'default: false')
    .replace(/eta_minutes: [0-9.]+/, `eta_minutes: ${expected}`);
  const b = await bundleOf('delivery-eta', '2', { 'sibyl.yaml': Buffer.from(manifest) });
  return { ...b, version };
}

/** eta-risk/1 whose first case expects is_late 0 where the model says 1: the model loads, warm-up fails. */
async function failingRisk(): Promise<TestBundle> {
  const manifest = readFileSync(join(MODELS_DIR, 'eta-risk/1/sibyl.yaml'), 'utf8').replace('is_late: 1', 'is_late: 0');
  return bundleOf('eta-risk', '1', { 'sibyl.yaml': Buffer.from(manifest) });
}

/**
 * The real runtimes, counting loads per model/version; `slowMs(id)` delays a load by that much first (the hostile
 * bundles took over a second each to fail: a fast failure would hide the cost of loading them on every revision).
 */
function countingRuntimes(slowMs: (id: string) => number = () => 0): { runtimes: Runtimes; loads: Map<string, number> } {
  const inner = createRuntimes();
  const loads = new Map<string, number>();
  const runtimes: Runtimes = {
    byKind: new Map(
      [...inner.byKind].map(([kind, r]) => [
        kind,
        {
          kind,
          async load(bundle) {
            const id = `${bundle.manifest.name}/${bundle.manifest.version}`;
            loads.set(id, (loads.get(id) ?? 0) + 1);
            const ms = slowMs(id);
            if (ms > 0) await new Promise((resolve) => setTimeout(resolve, ms));
            return r.load(bundle);
          },
        },
      ]),
    ),
    close: () => inner.close(),
  };
  return { runtimes, loads };
}

beforeAll(async () => {
  [eta1, eta2, risk1] = await Promise.all([bundleOf('delivery-eta', '1'), bundleOf('delivery-eta', '2'), bundleOf('eta-risk', '1')]);
});

async function freshTower(bundles: readonly TestBundle[]): Promise<TestTower> {
  tower = await startTestTower(CELL);
  for (const b of [eta1, eta2, risk1, ...bundles]) tower.bundles.set(b.sha, b.zip);
  return tower;
}

async function gateway(parts: GatewayParts = {}, loadRetry = { baseMs: 60_000, maxMs: 60_000 }): Promise<TestGateway> {
  const gw = await towerGateway(tower!, {}, { ...parts, sync: { backoff: { baseMs: 100, maxMs: 1000 }, loadRetry } });
  gateways.push(gw);
  return gw;
}

afterEach(async () => {
  for (const gw of gateways.splice(0)) await gw.stop();
  await tower?.close();
  tower = undefined;
});

/** Deploys `models` and resolves with the milliseconds until the replica serves that revision. */
async function timedDeploy(t: TestTower, gw: TestGateway, models: ModelInit[]): Promise<number> {
  const started = performance.now();
  const { revision } = t.deploy(models);
  await waitFor(`revision ${revision}`, () => gw.gateway.follower!.revision === revision, 120_000);
  return performance.now() - started;
}

const median = (xs: readonly number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

describe('versions that fail to load', () => {
  it('a cell with ten failed versions applies an unrelated alias change about as fast as a cell with none', async () => {
    const failing = await Promise.all(Array.from({ length: 10 }, (_, i) => failingEta(`f${i + 1}`)));
    const t = await freshTower(failing);
    const eta = (alias: string, extra: TestBundle[] = []): ModelInit => ({
      name: 'delivery-eta',
      versions: [deployed(eta1), deployed(eta2), ...extra.map(deployed)],
      defaultVersion: '2',
      aliases: { canary: alias },
    });
    // Each failing version takes 500 ms to load before its warm-up fails.
    const { runtimes, loads } = countingRuntimes((id) => (/\/f\d+$/.test(id) ? 500 : 0));
    const gw = await gateway({ runtimes });
    await timedDeploy(t, gw, [eta('1')]);

    const flips = async (extra: TestBundle[]) => {
      const ms: number[] = [];
      for (const alias of ['2', '1', '2', '1', '2']) {
        ms.push(await timedDeploy(t, gw, [eta(alias, extra)]));
        expect(await predict(gw, 'delivery-eta', 'canary')).toMatchObject({ status: 200, version: alias });
      }
      return ms;
    };
    const without = await flips([]);
    const firstFailure = await timedDeploy(t, gw, [eta('1', failing)]);
    expect(gw.gateway.follower!.errors.map((e) => e.version).sort()).toEqual(failing.map((b) => b.version).sort());
    const withFailures = await flips(failing);
    console.log(
      `alias change applied in ${median(without).toFixed(0)} ms (median of 5) with no failed version, ${median(withFailures).toFixed(0)} ms with 10 ` +
        `[${without.map((m) => m.toFixed(0)).join(', ')} | ${withFailures.map((m) => m.toFixed(0)).join(', ')}]; ` +
        `the revision that deployed the 10 failing versions took ${firstFailure.toFixed(0)} ms`,
    );
    expect(median(withFailures)).toBeLessThan(3 * median(without) + 1000);
    for (const b of failing) expect(loads.get(`delivery-eta/${b.version}`), b.version).toBe(1);
    // Still failed and still reported after every revision, with version and message.
    const r = t.reports.at(-1)!;
    expect(r.errors).toHaveLength(10);
    for (const e of r.errors) expect(e).toMatchObject({ model: 'delivery-eta', version: expect.stringMatching(/^f\d+$/), message: expect.stringContaining('warm-up: the first test case does not pass') });
  }, 240_000);

  it('a request for a failed default answers UNAVAILABLE naming the load error on every door; the replica reports it', async () => {
    const broken = await failingRisk();
    const t = await freshTower([broken]);
    t.deploy([
      { name: 'delivery-eta', versions: [deployed(eta1), deployed(eta2)], defaultVersion: '2' },
      { name: 'eta-risk', versions: [deployed(broken)], defaultVersion: '1', aliases: { stable: '1' } },
    ]);
    const gw = await gateway();
    await waitFor('a report', () => t.reports.length > 0);
    const error = /^model "eta-risk": its default version "1" is deployed but failed to load on this gateway: warm-up: the first test case does not pass as it did at upload:\ntest case "expected row 0":\n {2}- is_late: expected 0, got 1/;

    const rest = await predict(gw, 'eta-risk');
    expect(rest).toMatchObject({ status: 503, code: 'UNAVAILABLE', message: expect.stringMatching(error) });
    const named = await predict(gw, 'eta-risk', '1');
    expect(named).toMatchObject({ status: 503, code: 'UNAVAILABLE', message: expect.stringContaining('model "eta-risk": version "1" is deployed but failed to load') });
    const alias = await predict(gw, 'eta-risk', 'stable');
    expect(alias).toMatchObject({ status: 503, code: 'UNAVAILABLE', message: expect.stringContaining('alias "stable" (version "1") is deployed but failed to load') });
    // A version that is not deployed is still not found, and other models serve.
    expect(await predict(gw, 'eta-risk', '9')).toMatchObject({ status: 404, code: 'NOT_FOUND' });
    expect(await predict(gw, 'delivery-eta')).toMatchObject({ status: 200, version: '2' });

    const oipRest = await postJson(`${gw.http}/v2/models/eta-risk/infer`, { inputs: [{ name: 'distance_km', datatype: 'FP32', shape: [1], data: [1] }] });
    expect(oipRest.status).toBe(503);
    expect(JSON.stringify(oipRest.json)).toMatch(/failed to load on this gateway: warm-up/);
    const sibylGrpc = await gw.sibyl.call(PredictionService.method.predict, { model: 'eta-risk', rows: [{}] });
    expect(sibylGrpc).toMatchObject({ ok: false, code: 14, details: expect.stringMatching(error) });
    const ready = await gw.oip.call(GRPCInferenceService.method.modelReady, { name: 'eta-risk' });
    expect(ready).toMatchObject({ ok: false, code: 14 });

    const r = t.reports.at(-1)!;
    expect(r.errors).toEqual([expect.objectContaining({ model: 'eta-risk', version: '1', message: expect.stringContaining('is_late: expected 0, got 1') })]);
    expect(r.loaded.map((l) => `${l.model}/${l.version}`).sort()).toEqual(['delivery-eta/1', 'delivery-eta/2']);
  }, 60_000);

  it('is not loaded again on later revisions, and is loaded at once under a new bundle hash', async () => {
    const broken = await failingEta('3');
    const fixed = await failingEta('3', '30.814816416149515');
    const t = await freshTower([broken, fixed]);
    const { runtimes, loads } = countingRuntimes();
    const eta = (alias: string, v3: TestBundle): ModelInit => ({ name: 'delivery-eta', versions: [deployed(eta2), deployed(v3)], defaultVersion: '2', aliases: { canary: alias } });

    // Retries far away: revisions do not load it again.
    const gw = await gateway({ runtimes });
    await timedDeploy(t, gw, [eta('2', broken)]);
    for (const alias of ['3', '2', '3', '2']) await timedDeploy(t, gw, [eta(alias, broken)]);
    expect(loads.get('delivery-eta/3')).toBe(1);
    expect(await predict(gw, 'delivery-eta', 'canary')).toMatchObject({ status: 200, version: '2' });

    // Its bundle hash changes (a fixed bundle): loaded at once, served.
    await timedDeploy(t, gw, [eta('3', fixed)]);
    expect(loads.get('delivery-eta/3')).toBe(2);
    expect(await predict(gw, 'delivery-eta', 'canary')).toMatchObject({ status: 200, version: '3' });
    expect(gw.gateway.follower!.errors).toEqual([]);
  }, 120_000);

  it('retries a failed load on its own, with a growing delay, without a new revision', async () => {
    const broken = await failingEta('3');
    const t = await freshTower([broken]);
    const { runtimes, loads } = countingRuntimes();
    t.deploy([{ name: 'delivery-eta', versions: [deployed(eta2), deployed(broken)], defaultVersion: '2' }]);
    // About 200 ms after the first failure, 400 after the second, then 800 (jittered: half to all of it).
    const gw = await gateway({ runtimes }, { baseMs: 200, maxMs: 800 });
    await waitFor('three loads of version 3', () => (loads.get('delivery-eta/3') ?? 0) >= 3, 30_000);
    const before = loads.get('delivery-eta/3')!;
    const started = performance.now();
    await new Promise((r) => setTimeout(r, 1500));
    const retried = loads.get('delivery-eta/3')! - before;
    // From the third failure on the delay is 400-800 ms: at most one retry per 400 ms, plus one in flight; and
    // retries go on without a revision.
    expect(retried).toBeGreaterThanOrEqual(1);
    expect(retried).toBeLessThanOrEqual(Math.ceil((performance.now() - started) / 400) + 1);
    expect(t.state.revision).toBe(1n);
    expect(t.reports.at(-1)!.errors).toEqual([expect.objectContaining({ model: 'delivery-eta', version: '3' })]);
    expect(await predict(gw, 'delivery-eta')).toMatchObject({ status: 200, version: '2' });
  }, 60_000);
});
