/** A control tower for the Lambda benchmarks: the demo models deployed to one cell, bundles in a moto S3 bucket. */
import { randomBytes } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT } from './emulator.ts';

export interface BenchTower {
  /** The function's environment to follow the cell with bundles from the bucket. */
  readonly env: Record<string, string>;
  stop(): Promise<void>;
}

/** A tower (PGlite) with the demo models uploaded to `cell`, bundles in a new bucket on moto (SIBYL_TEST_AWS_ENDPOINT). */
export async function startTower(cell: string): Promise<BenchTower> {
  const { CreateBucketCommand, S3Client } = await import('@aws-sdk/client-s3');
  const { loadTowerConfig } = await import('../../control-tower/config.ts');
  const { createControlTower } = await import('../../control-tower/server.ts');
  const { pino } = await import('pino');
  const { zipDirectory } = await import('../../runtimes/bundle/zip-dir.ts');
  const endpoint = process.env.SIBYL_TEST_AWS_ENDPOINT ?? 'http://127.0.0.1:5055';
  const region = 'eu-west-1';
  const bucket = `sibyl-bench-${randomBytes(4).toString('hex')}`;
  const s3 = new S3Client({ region, endpoint, forcePathStyle: true, credentials: { accessKeyId: 'test', secretAccessKey: 'test' } });
  await s3.send(new CreateBucketCommand({ Bucket: bucket, CreateBucketConfiguration: { LocationConstraint: region } }));
  s3.destroy();
  Object.assign(process.env, { AWS_ACCESS_KEY_ID: 'test', AWS_SECRET_ACCESS_KEY: 'test' });
  const dataDir = mkdtempSync(join(tmpdir(), 'sibyl-bench-tower-'));
  const config = loadTowerConfig({ SIBYL_DATA_DIR: dataDir, SIBYL_CELLS: cell, SIBYL_TOWER_HOST: '127.0.0.1', SIBYL_TOWER_PORT: '0', SIBYL_LOG_LEVEL: 'silent', SIBYL_S3_BUCKET: bucket, AWS_REGION: region, AWS_ENDPOINT_URL: endpoint });
  const tower = await createControlTower(config, { logger: pino({ level: 'silent' }) });
  const { port } = await tower.start();
  const url = `http://127.0.0.1:${port}`;
  for (const b of ['delivery-eta/1', 'delivery-eta/2', 'eta-risk/1', 'tabular-mlp/1']) {
    const res = await fetch(`${url}/v1/models?cells=${cell}`, { method: 'POST', body: await zipDirectory(join(ROOT, 'models', b)), headers: { authorization: `Bearer ${tower.adminToken}`, 'content-type': 'application/zip' } });
    if (res.status !== 201) throw new Error(`upload ${b}: ${res.status} ${await res.text()}`);
  }
  return {
    env: { SIBYL_CELL: cell, SIBYL_CONTROL_TOWER_URL: url, SIBYL_TOWER_TOKEN: tower.adminToken, SIBYL_S3_BUCKET: bucket, AWS_REGION: region, AWS_ENDPOINT_URL: endpoint, AWS_ACCESS_KEY_ID: 'test', AWS_SECRET_ACCESS_KEY: 'test' },
    stop: () => tower.stop(),
  };
}

