import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { CreateBucketCommand, HeadObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sha256Hex } from '../../../control-tower/store/artifact-store.ts';
import { createS3ArtifactStore } from '../../../control-tower/store/s3-artifact-store.ts';
import { describeArtifactStore } from './artifact-store.case.ts';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const ENDPOINT = process.env.SIBYL_TEST_AWS_ENDPOINT ?? 'http://127.0.0.1:5055';
const REGION = 'eu-west-1';
const credentials = { accessKeyId: 'test', secretAccessKey: 'test' };
const BUCKET = `sibyl-bundles-${randomBytes(4).toString('hex')}`;
const admin = new S3Client({ region: REGION, endpoint: ENDPOINT, forcePathStyle: true, credentials });
const stores: { close(): void }[] = [];

beforeAll(async () => {
  // Started by scripts/test.sh; when this file runs alone, start moto here (idempotent).
  if (!process.env.SIBYL_TEST_AWS_ENDPOINT) execFileSync('bash', ['scripts/services/moto.sh', 'start'], { cwd: ROOT, stdio: 'ignore' });
  await admin.send(new CreateBucketCommand({ Bucket: BUCKET, CreateBucketConfiguration: { LocationConstraint: REGION } }));
});
afterAll(() => {
  for (const s of stores) s.close();
  admin.destroy();
});

function open(bucket = BUCKET, prefix = `run-${randomBytes(4).toString('hex')}/`) {
  const store = createS3ArtifactStore({ bucket, prefix, region: REGION, endpoint: ENDPOINT, credentials });
  stores.push(store);
  return store;
}

describeArtifactStore('S3 on moto', async () => open());

describe('S3 artifact store', () => {
  it('stores objects under {prefix}ab/<sha256>.zip as application/zip', async () => {
    const store = open(BUCKET, 'bundles/');
    const bytes = randomBytes(64);
    const sha = sha256Hex(bytes);
    await store.put(sha, bytes);
    const head = await admin.send(new HeadObjectCommand({ Bucket: BUCKET, Key: `bundles/${sha.slice(0, 2)}/${sha}.zip` }));
    expect(head.ContentLength).toBe(64);
    expect(head.ContentType).toBe('application/zip');
  });

  it('fails loudly when the bucket does not exist instead of answering "not stored"', async () => {
    const store = open('no-such-bucket-sibyl');
    const bytes = randomBytes(16);
    await expect(store.put(sha256Hex(bytes), bytes)).rejects.toMatchObject({ name: 'NoSuchBucket' });
    await expect(store.get(sha256Hex(bytes))).rejects.toMatchObject({ name: 'NoSuchBucket' });
  });
});
