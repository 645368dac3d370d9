/**
 * The rollout driver over the real metadata store (PGlite in memory: the same SQL as PostgreSQL), with an injected
 * clock and gateway reports made up from the tower's desired state, so every step is deterministic: a healthy
 * version moves through two waves; a failing one halts in the canary and its cell is restored while the next
 * wave's cells never get it; a driver that stops mid-bake is replaced by another that finishes the bake from the
 * stored times without applying a wave twice; one lease holder at a time; an operator's halt; split mode; a version
 * that does not load.
 */
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { create, toJson } from '@bufbuild/protobuf';
import { VersionStatisticsSchema } from '../../../proto/gen/sibyl/v1/statistics_pb.js';
import { createRolloutDriver, type RolloutDriver } from '../../../control-tower/rollout/driver.ts';
import { DEFAULT_GUARDS } from '../../../control-tower/rollout/guards.ts';
import { createMetadataStore } from '../../../control-tower/store/metadata-store.ts';
import { openPglite, type Sql } from '../../../control-tower/store/sql.ts';
import type { MetadataStore, Rollout, RolloutSpec, StoredReport } from '../../../control-tower/store/index.ts';
import { newSketch, sketchMessage } from '../../../stats/sketch.ts';

const CELLS = ['cell-a', 'cell-b', 'cell-c'];
const T0 = Date.parse('2026-12-03T12:00:00Z');

/** How each version behaves when served: its failed share and latency, ms. */
type Behaviour = Record<string, { failRate: number; latencyMs: number; loadError?: string }>;

let sql: Sql;
let store: MetadataStore;
let now: number;
let behaviour: Behaviour;
const reports = new Map<string, StoredReport>();
/** Per cell and version, requests served so far (the gateways' window). */
const served = new Map<string, { ok: number; failed: number; latencyMs: number }>();
const drivers: RolloutDriver[] = [];

beforeAll(async () => {
  sql = await openPglite();
  store = await createMetadataStore(sql);
  await store.ensureCells(CELLS);
}, 60_000);
afterAll(async () => {
  await store?.close();
  await sql?.close();
});

beforeEach(async () => {
  // One database for the file (PGlite's start is seconds on a busy machine), emptied before each test.
  await sql.exec(`TRUNCATE rollouts, rollout_lease, cell_shadows, cell_splits, cell_aliases, cell_defaults, deployments, model_versions, models, audit_log, gateway_reports RESTART IDENTITY;
    UPDATE cells SET revision = 1;`);
  for (const [v, c] of [['1', 'a'], ['2', 'b'], ['3', 'c']] as const) {
    await store.addVersion({ name: 'm', version: v, sha256: c.repeat(64), runtime: 'rules', manifest: {}, sizeBytes: 1, actor: 't' });
  }
  await store.setDefault('m', '1', CELLS, 't');
  now = T0;
  behaviour = { '1': { failRate: 0, latencyMs: 4 }, '2': { failRate: 0, latencyMs: 4.5 }, '3': { failRate: 0.5, latencyMs: 4 } };
  reports.clear();
  served.clear();
});
afterEach(async () => {
  for (const d of drivers.splice(0)) await d.stop();
});

/** The store as the driver sees it, with the made-up reports. */
const view = (): MetadataStore => ({ ...store, reports: async (cell: string) => [...reports.values()].filter((r) => r.cell === cell) });

function driver(holder = 'tower-1'): RolloutDriver {
  const d = createRolloutDriver({ store: view(), holder, now: () => now, leaseMs: 60_000 });
  drivers.push(d);
  return d;
}

/** Each cell's one gateway serves 100 requests with what the cell's desired state says, then reports (at `now`). */
async function serveAndReport(): Promise<void> {
  for (const cell of CELLS) {
    const state = await store.cellState(cell);
    const m = state.models.find((x) => x.name === 'm');
    const errors = (m?.versions ?? []).filter((v) => behaviour[v.version]!.loadError).map((v) => ({ model: 'm', version: v.version, message: behaviour[v.version]!.loadError! }));
    const loaded = (m?.versions ?? []).filter((v) => !behaviour[v.version]!.loadError);
    const arms = m?.split.length ? m.split.map((a) => [a.version, a.weight] as const) : m ? [[m.defaultVersion, 1] as const] : [];
    const total = arms.reduce((t, [, w]) => t + w, 0);
    for (const [version, weight] of arms) {
      const b = behaviour[version]!;
      if (b.loadError) continue;
      const n = Math.round((100 * weight) / total);
      const key = `${cell}/${version}`;
      const s = served.get(key) ?? { ok: 0, failed: 0, latencyMs: b.latencyMs };
      const failed = Math.round(n * b.failRate);
      served.set(key, { ok: s.ok + n - failed, failed: s.failed + failed, latencyMs: b.latencyMs });
    }
    const statistics = [...served]
      .filter(([k]) => k.startsWith(`${cell}/`))
      .map(([k, s]) => {
        const sketch = newSketch();
        for (let i = 0; i < s.ok + s.failed; i++) sketch.accept(s.latencyMs);
        return toJson(VersionStatisticsSchema, create(VersionStatisticsSchema, { model: 'm', version: k.slice(cell.length + 1), requests: BigInt(s.ok), errors: s.failed ? { INTERNAL: BigInt(s.failed) } : {}, latencyMs: sketchMessage(sketch) }));
      });
    reports.set(cell, { cell, replica: `${cell}-gw`, revision: Number(state.revision), loaded: loaded.map((v) => ({ model: 'm', version: v.version, bundleSha256: v.bundleSha256 })), errors, statistics, received: new Date(now) });
  }
}

const SPEC: RolloutSpec = { mode: 'default', bakeMs: 2000, guards: { ...DEFAULT_GUARDS, minRequests: 50 }, rollback: 'wave', applyTimeoutMs: 30_000, reportTimeoutMs: 10_000 };
const start = (version: string, spec: Partial<RolloutSpec> = {}) =>
  store.createRollout({ model: 'm', version, waves: [{ name: 'canary', cells: ['cell-a'] }, { name: 'rest', cells: ['cell-b', 'cell-c'] }], spec: { ...SPEC, ...spec }, actor: 'alice' });
const get = (r: Rollout) => store.getRollout(r.id);
const defaults = async () => Object.fromEntries(await Promise.all(CELLS.map(async (c) => [c, (await store.cellState(c)).models.find((m) => m.name === 'm')?.defaultVersion])));
const audit = async (action: string) => (await store.auditLog({ limit: 1000 })).filter((e) => e.action === action);

/** Ticks, serving and reporting between ticks, `stepMs` apart, until `done` holds (at most `max` ticks). */
async function runUntil(d: RolloutDriver, r: Rollout, done: (r: Rollout) => boolean, stepMs = 250, max = 100): Promise<Rollout> {
  for (let i = 0; i < max; i++) {
    await serveAndReport();
    await d.tick();
    const cur = await get(r);
    if (done(cur)) return cur;
    now += stepMs;
  }
  throw new Error(`rollout ${r.id} stuck in ${(await get(r)).state}`);
}

describe('rollout driver', () => {
  it('moves a healthy version through both waves: applied, served, baked, checked, passed; then completed', async () => {
    const d = driver();
    await serveAndReport();
    const r = await start('2');
    await d.tick();
    let cur = await get(r);
    expect(cur).toMatchObject({ state: 'applying', wave: 0 });
    expect(cur.waves[0]).toMatchObject({ status: 'applying', previous: { 'cell-a': { defaultVersion: '1', split: [], deployed: false } }, revisions: { 'cell-a': 3 } });
    expect(await defaults()).toEqual({ 'cell-a': '2', 'cell-b': '1', 'cell-c': '1' });

    // No gateway has served the change yet: still applying.
    now += 100;
    await d.tick();
    expect((await get(r)).state).toBe('applying');
    await serveAndReport();
    await d.tick();
    cur = await get(r);
    expect(cur.state).toBe('baking');
    expect(cur.waves[0]!.bakeStartedAt).toBe(new Date(T0 + 100).toISOString());
    expect(cur.waves[0]!.bakeEndsAt).toBe(new Date(T0 + 2100).toISOString());

    now += 1999;
    await serveAndReport();
    await d.tick();
    expect((await get(r)).state).toBe('baking');
    now += 1;
    await d.tick();
    // The last report came before the bake ended: the check waits for the next one.
    expect((await get(r)).state).toBe('checking');
    await d.tick();
    expect((await get(r)).state).toBe('checking');
    now += 50;
    await serveAndReport();
    await d.tick();
    cur = await get(r);
    expect(cur.waves[0]).toMatchObject({ status: 'passed', figures: { version: { requests: 300, errorRate: 0 }, previous: { requests: 100, versions: ['1'] } } });
    expect(cur.waves[0]!.guards!.every((g) => g.passed)).toBe(true);
    // The next wave is applied in the same pass.
    expect(cur).toMatchObject({ state: 'applying', wave: 1 });
    expect(await defaults()).toEqual({ 'cell-a': '2', 'cell-b': '2', 'cell-c': '2' });

    cur = await runUntil(d, r, (x) => x.state === 'completed');
    expect(cur.waves.map((w) => w.status)).toEqual(['passed', 'passed']);
    expect(cur.finished).toBeInstanceOf(Date);
    expect((await audit('rollout.wave.apply')).map((e) => e.details.wave)).toEqual(['rest', 'canary']);
    expect(await audit('rollout.complete')).toHaveLength(1);
  });

  it('halts a version that fails in the canary: its cell restored, the next wave never started', async () => {
    const d = driver();
    const r = await start('3');
    const cur = await runUntil(d, r, (x) => x.state === 'halted');
    expect(cur.wave).toBe(0);
    expect(cur.haltReason).toMatch(/^wave canary failed its check: errorRate: error rate 50% \(\d+ of \d+ requests: \d+ INTERNAL\), at most 1% allowed$/);
    expect(cur.waves[0]).toMatchObject({ status: 'failed', figures: { version: { errorRate: 0.5 } }, restoredAt: expect.any(String) });
    expect(cur.waves[1]).toEqual({ name: 'rest', cells: ['cell-b', 'cell-c'], status: 'pending' });
    expect(await defaults()).toEqual({ 'cell-a': '1', 'cell-b': '1', 'cell-c': '1' });
    // Undeployed where the rollout had deployed it, and never deployed in the second wave's cells.
    expect((await store.getVersion('m', '3')).cells).toEqual([]);
    expect((await audit('default.set')).filter((e) => e.target === 'm/3').map((e) => e.details.cells)).toEqual([['cell-a']]);
    expect(await audit('rollout.halt')).toMatchObject([{ actor: `rollout ${r.id}`, details: { wave: 'canary', restored: ['cell-a'] } }]);
    // Halted is final: more ticks change nothing.
    now += 60_000;
    await d.tick();
    expect(await get(r)).toMatchObject({ state: 'halted', updated: cur.updated });
  });

  it('resumes a bake after the driving tower stops: the next driver keeps the stored bake times and applies no wave twice', async () => {
    const first = driver('tower-1');
    const r = await start('2');
    const baking = await runUntil(first, r, (x) => x.state === 'baking');
    await first.stop();
    const revision = await store.cellRevision('cell-a');

    now += 1000;
    const second = driver('tower-2');
    await serveAndReport();
    await second.tick();
    const still = await get(r);
    expect(still.state).toBe('baking');
    expect(still.waves[0]!.bakeStartedAt).toBe(baking.waves[0]!.bakeStartedAt);
    expect(await store.cellRevision('cell-a')).toBe(revision);

    const done = await runUntil(second, r, (x) => x.state === 'completed');
    expect(done.waves[0]!.bakeEndsAt).toBe(baking.waves[0]!.bakeEndsAt);
    expect((await audit('rollout.wave.apply')).map((e) => e.details.wave).sort()).toEqual(['canary', 'rest']);
    expect((await audit('default.set')).filter((e) => e.target === 'm/2')).toHaveLength(2);
  });

  it('lets one lease holder drive at a time', async () => {
    const one = driver('tower-1');
    const two = driver('tower-2');
    await serveAndReport();
    await one.tick();
    const r = await start('2');
    await two.tick();
    expect((await get(r)).state).toBe('pending');
    await one.tick();
    expect((await get(r)).state).toBe('applying');
    await one.stop();
    await two.tick();
    await serveAndReport();
    await two.tick();
    expect((await get(r)).state).toBe('baking');
  });

  it("halts on an operator's word mid-bake, restoring the wave's cells; a finished rollout cannot be halted again", async () => {
    const d = driver();
    const r = await start('2');
    await runUntil(d, r, (x) => x.state === 'baking');
    const halted = await store.haltRollout(r.id, undefined, { reason: 'halted by bob: looks off', actor: 'bob' }, new Date(now));
    expect(halted).toMatchObject({ state: 'halted', haltReason: 'halted by bob: looks off', waves: [{ status: 'halted', reason: 'halted by bob: looks off' }, { status: 'pending' }] });
    expect(await defaults()).toEqual({ 'cell-a': '1', 'cell-b': '1', 'cell-c': '1' });
    await expect(store.haltRollout(r.id, undefined, { reason: 'again', actor: 'bob' }, new Date(now))).rejects.toMatchObject({ code: 'FAILED_PRECONDITION' });
    await expect(start('3')).resolves.toMatchObject({ state: 'pending' });
  });

  it('restores every applied wave with rollback "all"', async () => {
    behaviour['2'] = { failRate: 0, latencyMs: 4 };
    const d = driver();
    const r = await start('2', { rollback: 'all' });
    await runUntil(d, r, (x) => x.wave === 1 && x.state === 'baking');
    expect(await defaults()).toEqual({ 'cell-a': '2', 'cell-b': '2', 'cell-c': '2' });
    const halted = await store.haltRollout(r.id, undefined, { reason: 'stop', actor: 'bob' }, new Date(now));
    expect(halted!.waves.map((w) => [w.status, typeof w.restoredAt])).toEqual([
      ['passed', 'string'],
      ['halted', 'string'],
    ]);
    expect(await defaults()).toEqual({ 'cell-a': '1', 'cell-b': '1', 'cell-c': '1' });
  });

  it('in split mode gives the version its weight beside the default, and takes the split away on a halt', async () => {
    const d = driver();
    const r = await start('3', { mode: 'split', weight: 20 });
    await d.tick();
    const state = (await store.cellState('cell-a')).models[0]!;
    expect(state.defaultVersion).toBe('1');
    expect(state.split.map((a) => ({ arm: a.arm, version: a.version, weight: a.weight }))).toEqual([
      { arm: '1', version: '1', weight: 80 },
      { arm: '3', version: '3', weight: 20 },
    ]);
    const halted = await runUntil(d, r, (x) => x.state === 'halted');
    expect(halted.waves[0]!.figures!.version.requests).toBeGreaterThan(50);
    const after = (await store.cellState('cell-a')).models[0]!;
    expect(after.split).toEqual([]);
    expect(after.versions.map((v) => v.version)).toEqual(['1']);
  });

  it('halts when a gateway of the wave cannot load the version by the apply timeout', async () => {
    behaviour['2'] = { failRate: 0, latencyMs: 1, loadError: 'rule.js does not compile' };
    const d = driver();
    const r = await start('2', { applyTimeoutMs: 5000 });
    const halted = await runUntil(d, r, (x) => x.state === 'halted');
    expect(halted.haltReason).toBe('wave canary: m/2 failed to load in cell cell-a (replica cell-a-gw): rule.js does not compile');
    // It waited the apply timeout for a retry that would load it.
    expect(now - T0).toBeGreaterThan(5000);
    expect(await defaults()).toEqual({ 'cell-a': '1', 'cell-b': '1', 'cell-c': '1' });
  });

  it('refuses a second unfinished rollout of a model, and malformed waves', async () => {
    await start('2');
    await expect(start('3')).rejects.toMatchObject({ code: 'FAILED_PRECONDITION', message: expect.stringMatching(/unfinished rollout/) });
    await expect(store.createRollout({ model: 'm', version: '2', waves: [{ name: 'a', cells: ['cell-a'] }, { name: 'b', cells: ['cell-a'] }], spec: SPEC, actor: 'x' })).rejects.toMatchObject({
      code: 'INVALID_ARGUMENT',
      message: 'invalid rollout: waves[1].cells: cell-a is in wave a already',
    });
    await expect(store.createRollout({ model: 'm', version: '2', waves: [{ name: 'a', cells: ['nowhere'] }], spec: SPEC, actor: 'x' })).rejects.toMatchObject({ code: 'NOT_FOUND' });
  });
});
