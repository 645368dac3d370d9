/**
 * Replay against a real broker (scripts/services/kafka.sh): a gateway logs a known set of predictions to a topic of
 * its own (delivery-eta version 1, single and multi-row requests, plus eta-risk records that a delivery-eta replay
 * must leave out), then:
 * - replayed against version 1, the version that answered: every row, every output identical (100% agreement);
 * - replayed against version 2: the differences are those of an offline computation, version 2 run by the Python
 *   onnxruntime (.venv-models, scripts/models/venv.sh) on the same features against the logged outputs: the mean,
 *   the maximum and the rows that differ most, with their values;
 * - the same through `sibyl replay` (a child process) and through the control tower's API (its replay process).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Admin } from '@platformatic/kafka';
import { TEST_BROKERS } from '../log/records.ts';
import { postJson, startGateway, type TestGateway } from '../helpers/gateway.ts';
import { expectedFor, MODELS_DIR } from '../helpers/expected.ts';
import { startTestTower, type TestTower } from '../control-tower/api/tower.ts';
import { zipDirectory } from '../../runtimes/bundle/zip-dir.ts';
import { runReplay } from '../../replay/run-replay.ts';
import type { ReplayReport } from '../../replay/replay.ts';

const ROOT = new URL('../../', import.meta.url).pathname;
const PYTHON = `${ROOT}.venv-models/bin/python`;
const topic = `sibyl.test.replay.${randomUUID()}`;
const eta = expectedFor('delivery-eta', '1').rows;
/** Per logged row (request order): its features (every feature, store ones included) and the output logged. */
const logged: { features: Record<string, number>; output: number; requestId: string }[] = [];
let gw: TestGateway;
let otherModelRecords = 0;

beforeAll(async () => {
  execFileSync('bash', [`${ROOT}scripts/models/venv.sh`], { stdio: 'inherit', timeout: 900_000 });
  const admin = new Admin({ clientId: 'replay-test', bootstrapBrokers: TEST_BROKERS });
  await admin.createTopics({ topics: [topic], partitions: 3, replicas: 1 });
  await admin.close();
  gw = await startGateway({ KAFKA_BROKERS: TEST_BROKERS.join(','), SIBYL_KAFKA_TOPIC: topic, SIBYL_CELL: 'cell-replay' });
  // 50 rows of version 1: the first 20 one per request, the rest in requests of 10.
  const requests = [...eta.slice(0, 20).map((r) => [r]), ...[20, 30, 40].map((i) => eta.slice(i, i + 10))];
  for (const rows of requests) {
    const res = await postJson(`${gw.http}/v1/models/delivery-eta/versions/1:predict`, { rows: rows.map((r) => ({ entities: r.entities, features: r.request })) });
    expect(res.status).toBe(200);
    rows.forEach((r, i) => logged.push({ features: r.features, output: res.json.results[i].outputs.eta_minutes, requestId: res.json.requestId }));
  }
  for (const r of expectedFor('eta-risk', '1').rows.slice(0, 5)) {
    expect((await postJson(`${gw.http}/v1/models/eta-risk:predict`, { rows: [{ entities: r.entities, features: r.request }] })).status).toBe(200);
    otherModelRecords++;
  }
  await gw.gateway.sink.flush();
}, 900_000);
afterAll(async () => {
  await gw?.stop();
});

/** Version 2's outputs on the logged rows' features, by the Python onnxruntime (float32 input, as served). */
function offlineVersion2(): number[] {
  const names = (JSON.parse(execFileSync(PYTHON, ['-c', 'import sys,yaml,json; m=yaml.safe_load(open(sys.argv[1])); print(json.dumps(m["onnx"]["inputs"][0]["features"]))', `${MODELS_DIR}delivery-eta/2/sibyl.yaml`]).toString()) as string[]);
  const script = [
    'import sys, json, numpy as np, onnxruntime as ort',
    'rows = json.load(sys.stdin)',
    "s = ort.InferenceSession(sys.argv[1], providers=['CPUExecutionProvider'])",
    "x = np.array(rows, dtype=np.float32)",
    "out = s.run(None, {s.get_inputs()[0].name: x})[0].reshape(-1)",
    'print(json.dumps([float(v) for v in out]))',
  ].join('\n');
  const input = JSON.stringify(logged.map((l) => names.map((n) => l.features[n])));
  return JSON.parse(spawnSync(PYTHON, ['-c', script, `${MODELS_DIR}delivery-eta/2/model.onnx`], { input, maxBuffer: 1 << 24 }).stdout.toString()) as number[];
}

function expectVersion2(report: ReplayReport, rows = logged.length): void {
  const reference = offlineVersion2().slice(0, rows);
  const diffs = reference.map((v, i) => Math.abs(logged[i]!.output - v));
  expect(report.rows).toBe(rows);
  expect(report.comparison.errors).toEqual({});
  const c = report.comparison.outputs.eta_minutes!;
  expect(c.kind).toBe('number');
  if (c.kind !== 'number') return;
  expect(c.count).toBe(rows);
  expect(Math.abs(c.meanAbsDiff - diffs.reduce((a, b) => a + b, 0) / rows)).toBeLessThan(1e-5);
  // The histogram keeps 2 significant digits; its max is the largest difference to that precision.
  const max = Math.max(...diffs);
  expect(Math.abs(c.absDiff.max - max)).toBeLessThanOrEqual(0.01 * max + 1e-6);
  // The rows that differ most: the same rows, the same differences and values as offline.
  const top = report.largestDifferences.eta_minutes!;
  const order = diffs.map((d, i) => ({ d, i })).sort((a, b) => b.d - a.d).slice(0, top.length);
  expect(top.map((t) => t.difference)).toEqual(order.map((o) => expect.closeTo(o.d, 5)));
  for (const [k, t] of top.entries()) {
    const i = order[k]!.i;
    expect(t.logged).toBe(logged[i]!.output);
    expect(t.candidate as number).toBeCloseTo(reference[i]!, 5);
    expect(t.requestId).toBe(logged[i]!.requestId);
  }
}

describe('replay of logged traffic', () => {
  it('against the version that answered: every row identical', async () => {
    const report = await runReplay(await zipDirectory(`${MODELS_DIR}delivery-eta/1`), { model: 'delivery-eta', brokers: TEST_BROKERS, topic, batchRows: 16 });
    expect(report.records).toMatchObject({ read: 23 + otherModelRecords, replayed: 23, otherModel: otherModelRecords, notLive: 0, failed: 0 });
    expect(report.rows).toBe(50);
    expect(report.liveVersions).toEqual({ '1': 50 });
    expect(report.featuresNotLogged).toEqual({});
    expect(report.comparison.errors).toEqual({});
    expect(report.comparison.outputs.eta_minutes).toMatchObject({ kind: 'number', count: 50, meanAbsDiff: 0, absDiff: { max: 0 } });
    expect(report.largestDifferences).toEqual({});
  }, 120_000);

  it('against another version: the differences of an offline computation with the Python onnxruntime', async () => {
    const report = await runReplay(await zipDirectory(`${MODELS_DIR}delivery-eta/2`), { model: 'delivery-eta', brokers: TEST_BROKERS, topic, cell: 'cell-replay' });
    expectVersion2(report);
    // Nothing else matches: another cell, a window in the past.
    const none = await runReplay(await zipDirectory(`${MODELS_DIR}delivery-eta/2`), { model: 'delivery-eta', brokers: TEST_BROKERS, topic, cell: 'elsewhere', fromMs: Date.now() - 3_600_000, toMs: Date.now() - 1_800_000 });
    expect(none.rows).toBe(0);
    expect(none.records.replayed).toBe(0);
  }, 120_000);

  it('from the command line: sibyl replay with a limit', () => {
    const out = spawnSync(process.execPath, [`${ROOT}cli/sibyl.ts`, 'replay', 'delivery-eta', '--candidate', '2', '--bundle', `${MODELS_DIR}delivery-eta/2`, '--brokers', TEST_BROKERS.join(','), '--topic', topic, '--limit', '20'], { timeout: 120_000 });
    expect(out.status, out.stderr.toString()).toBe(0);
    const report = JSON.parse(out.stdout.toString()) as ReplayReport;
    expect(report.rows).toBe(20);
    expect(out.stderr.toString()).toMatch(/replayed 20 rows .* against delivery-eta\/2/);
    // The first 20 requests are one row each: the first partitions' records, so any 20 of the logged rows.
    expect(report.comparison.outputs.eta_minutes!.count).toBe(20);
  }, 120_000);

  describe('started through the control tower', () => {
    let t: TestTower;
    beforeAll(async () => {
      t = await startTestTower({ SIBYL_CELLS: 'cell-replay', KAFKA_BROKERS: TEST_BROKERS.join(','), SIBYL_KAFKA_TOPIC: topic });
      const res = await t.call('POST', '/v1/models', { body: await zipDirectory(`${MODELS_DIR}delivery-eta/2`), headers: { 'content-type': 'application/zip' } });
      expect(res.status).toBe(201);
    }, 120_000);
    afterAll(async () => t?.stop());

    it('runs in its own process and reports the same comparison', async () => {
      const started = await t.call('POST', '/v1/models/delivery-eta/replays', { json: { candidate: '2' } });
      expect(started.status).toBe(202);
      expect(started.json).toMatchObject({ id: expect.any(String), status: 'running', candidate: { model: 'delivery-eta', version: '2' } });
      let job: any;
      for (let i = 0; i < 600; i++) {
        job = (await t.call('GET', `/v1/models/delivery-eta/replays/${started.json.id}`)).json;
        if (job.status !== 'running') break;
        await new Promise((r) => setTimeout(r, 100));
      }
      expect(job.status, JSON.stringify(job.error)).toBe('done');
      expectVersion2(job.report);
      expect((await t.call('GET', '/v1/models/delivery-eta/replays')).json.replays.map((r: any) => r.id)).toContain(started.json.id);
      // A version the tower does not hold.
      expect((await t.call('POST', '/v1/models/delivery-eta/replays', { json: { candidate: '9' } })).status).toBe(404);
    }, 120_000);
  });
});
