/**
 * The packaged function under the Runtime Interface Emulator following a cell of a real control tower whose bundles
 * are in S3 (moto): at init it reads the cell's state from the tower and the bundle zips from the bucket, checks
 * their hashes, loads and warms them. A version published after the function started is served within the
 * configured check interval (SIBYL_LAMBDA_SYNC_INTERVAL_MS) while invocations keep coming, and no invocation fails
 * meanwhile; also after a freeze during which the function's connection to the tower was closed.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3';
import { startTestTower, type TestTower } from '../../control-tower/api/tower.ts';
import { bundleZip, makeZip, withManifest } from '../../control-tower/validation/hostile-zips.ts';
import { httpApiEvent, predictCases, readable, resultAnswer } from '../http-cases.ts';
import { startFunction, type EmulatedFunction } from '../../../loadtest/lambda/emulator.ts';
import { packagedFunction, tempDir } from './common.ts';

const CELL = 'lambda-cell';
const INTERVAL_MS = 2000;
const ENDPOINT = process.env.SIBYL_TEST_AWS_ENDPOINT ?? 'http://127.0.0.1:5055';
const REGION = 'eu-west-1';
const BUCKET = `sibyl-lambda-${randomBytes(4).toString('hex')}`;
const aws = { AWS_REGION: REGION, AWS_ENDPOINT_URL: ENDPOINT, AWS_ACCESS_KEY_ID: 'test', AWS_SECRET_ACCESS_KEY: 'test' };

let tower: TestTower;
let towerUrl: string;
let fn: EmulatedFunction;

async function upload(zip: Buffer): Promise<void> {
  const res = await fetch(`${towerUrl}/v1/models?cells=${CELL}`, { method: 'POST', body: zip, headers: { authorization: `Bearer ${tower.tower.adminToken}`, 'content-type': 'application/zip' } });
  if (res.status !== 201) throw new Error(`upload answered ${res.status}: ${await res.text()}`);
}

beforeAll(async () => {
  const s3 = new S3Client({ region: REGION, endpoint: ENDPOINT, forcePathStyle: true, credentials: { accessKeyId: 'test', secretAccessKey: 'test' } });
  await s3.send(new CreateBucketCommand({ Bucket: BUCKET, CreateBucketConfiguration: { LocationConstraint: REGION } }));
  s3.destroy();
  // The tower's S3 client reads its credentials from the environment.
  Object.assign(process.env, { AWS_ACCESS_KEY_ID: 'test', AWS_SECRET_ACCESS_KEY: 'test' });
  tower = await startTestTower({ SIBYL_CELLS: CELL, SIBYL_S3_BUCKET: BUCKET, AWS_REGION: REGION, AWS_ENDPOINT_URL: ENDPOINT });
  const { port } = await tower.tower.start();
  towerUrl = `http://127.0.0.1:${port}`;
  await upload(await bundleZip('delivery-eta', '1'));
  await upload(await bundleZip('delivery-eta', '2'));
  fn = await startFunction(packagedFunction(), 'index.handler', {
    ...aws,
    SIBYL_CELL: CELL,
    SIBYL_CONTROL_TOWER_URL: towerUrl,
    SIBYL_TOWER_TOKEN: await tower.token('viewer'),
    SIBYL_S3_BUCKET: BUCKET,
    SIBYL_LAMBDA_SYNC_INTERVAL_MS: String(INTERVAL_MS),
    SIBYL_PREDICTION_LOG: 'off',
    SIBYL_LOG_LEVEL: 'info',
    SIBYL_DATA_DIR: tempDir('lambda-data'),
  });
}, 180_000);
afterAll(async () => {
  await fn?.stop();
  await tower?.stop();
});

const predict = async (id: string) => readable(resultAnswer(await fn.invoke(httpApiEvent({ ...predictCases()[0]!, headers: { ...predictCases()[0]!.headers, 'x-request-id': id } }))));

describe('the function following a control tower, bundles from S3', () => {
  it('serves the cell the tower deployed, read from the tower and the bucket at init', async () => {
    const got = await predict('tower-first');
    expect(got.status).toBe(200);
    expect(got.body).toMatchObject({ model: 'delivery-eta', version: '2' });
    expect(fn.output()).toMatch(/"source":"tower\+s3"/);
  });

  /** Publishes `version` of delivery-eta as the default; resolves with the ms until an invocation answered from it. */
  async function publishAndWait(version: string): Promise<number> {
    const zip = await makeZip(withManifest('delivery-eta', '1', (m) => m.replace(/^version: .*$/m, `version: '${version}'`).replace(/^default: .*$/m, 'default: true')));
    await upload(zip);
    const published = performance.now();
    for (let i = 0; performance.now() - published < INTERVAL_MS + 10_000; i++) {
      const got = await predict(`tower-${version}-${i}`);
      expect(got.status, JSON.stringify(got.body)).toBe(200);
      if ((got.body as { version: string }).version === version) return performance.now() - published;
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(`version ${version} not served within ${INTERVAL_MS + 10_000} ms`);
  }

  it('serves a version published after it started within the check interval, failing no invocation meanwhile', async () => {
    const ms = await publishAndWait('3');
    // The check that finds it starts at most INTERVAL_MS after the previous one; the invocation that starts it
    // returns once version 3 is loaded, so the next one serves it. Loading takes well under a second here.
    expect(ms).toBeLessThan(INTERVAL_MS + 1500);
    process.stdout.write(`version 3 served ${Math.round(ms)} ms after it was published (interval ${INTERVAL_MS} ms)\n`);
  });

  it('still does after a freeze that closed its connection to the tower', async () => {
    const pid = fn.runtimePid()!;
    const towerPort = new URL(towerUrl).port;
    fn.freeze();
    try {
      const out = execFileSync('ss', ['-tnpH', 'state', 'established']).toString();
      let closed = 0;
      for (const line of out.split('\n').filter((l) => l.includes(`pid=${pid},`) && l.includes(`:${towerPort} `))) {
        const local = /\S+:(\d+)\s+\S+:\d+\s+users:/.exec(line)?.[1];
        if (local) execFileSync('ss', ['-K', '-tn', 'sport', '=', `:${local}`, 'dport', '=', `:${towerPort}`]);
        if (local) closed++;
      }
      expect(closed, 'connections to the tower closed during the freeze').toBeGreaterThan(0);
      await new Promise((r) => setTimeout(r, INTERVAL_MS));
    } finally {
      fn.thaw();
    }
    const ms = await publishAndWait('4');
    expect(ms).toBeLessThan(INTERVAL_MS + 1500);
  });
});
