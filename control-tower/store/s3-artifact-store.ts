/**
 * The ArtifactStore in an S3 bucket (or an S3-compatible endpoint): objects `{prefix}ab/abcdef….zip`. S3 writes an
 * object whole or not at all, so readers never see a partial artifact. Errors other than "not found" (credentials,
 * network, a missing bucket) come through as the AWS SDK's errors.
 */
import { GetObjectCommand, HeadObjectCommand, PutObjectCommand, S3Client, type S3ClientConfig } from '@aws-sdk/client-s3';
import { isSha256 } from '../../core/names.ts';
import { checkArtifact, type ArtifactStore } from './artifact-store.ts';

export interface S3ArtifactStoreOptions {
  bucket: string;
  /** Key prefix, e.g. "bundles/" (default ""). */
  prefix?: string;
  region: string;
  /** An S3-compatible endpoint (moto, MinIO); path-style addressing is used with it. */
  endpoint?: string;
  /** Default: the SDK's credential chain (environment, profile, instance role). */
  credentials?: S3ClientConfig['credentials'];
  /** Per-call time limit in milliseconds (default 30000). */
  timeoutMs?: number;
}

export function createS3ArtifactStore(options: S3ArtifactStoreOptions): ArtifactStore & { close(): void } {
  const client = new S3Client({
    region: options.region,
    ...(options.endpoint ? { endpoint: options.endpoint, forcePathStyle: true } : {}),
    ...(options.credentials ? { credentials: options.credentials } : {}),
  });
  const prefix = options.prefix ?? '';
  const timeoutMs = options.timeoutMs ?? 30_000;
  const keyOf = (sha256: string) => `${prefix}${sha256.slice(0, 2)}/${sha256}.zip`;

  async function has(sha256: string): Promise<boolean> {
    if (!isSha256(sha256)) return false;
    try {
      await client.send(new HeadObjectCommand({ Bucket: options.bucket, Key: keyOf(sha256) }), { abortSignal: AbortSignal.timeout(timeoutMs) });
      return true;
    } catch (err) {
      if (isNotFound(err)) return false;
      throw err;
    }
  }

  return {
    async put(sha256, bytes) {
      checkArtifact(sha256, bytes);
      if (await has(sha256)) return;
      await client.send(
        new PutObjectCommand({ Bucket: options.bucket, Key: keyOf(sha256), Body: bytes, ContentType: 'application/zip', ContentLength: bytes.byteLength }),
        { abortSignal: AbortSignal.timeout(timeoutMs) },
      );
    },

    async get(sha256) {
      if (!isSha256(sha256)) return undefined;
      try {
        const out = await client.send(new GetObjectCommand({ Bucket: options.bucket, Key: keyOf(sha256) }), {
          abortSignal: AbortSignal.timeout(timeoutMs),
        });
        return out.Body ? await out.Body.transformToByteArray() : new Uint8Array();
      } catch (err) {
        if (isNotFound(err)) return undefined;
        throw err;
      }
    },

    has,

    close() {
      client.destroy();
    },
  };
}

function isNotFound(err: unknown): boolean {
  // HEAD answers a bare 404 ("NotFound"), GET names the cause ("NoSuchKey"; a missing bucket is "NoSuchBucket").
  const name = (err as { name?: unknown }).name;
  return name === 'NoSuchKey' || name === 'NotFound';
}
