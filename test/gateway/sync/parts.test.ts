/** The pieces of gateway sync on their own: bundle cache, tower client, backoff, zip unpacking. */
import { describe, expect, it, afterAll } from 'vitest';
import { existsSync, mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { create } from '@bufbuild/protobuf';
import yazl from 'yazl';
import { CellStateSchema, GatewayReportSchema } from '../../../proto/gen/sibyl/v1/deployment_pb.js';
import { openBundleCache, sha256Hex } from '../../../gateway/sync/bundle-cache.ts';
import { backoffMs } from '../../../gateway/sync/backoff.ts';
import { createTowerClient } from '../../../gateway/sync/tower-client.ts';
import { openBundleZip } from '../../../runtimes/bundle/index.ts';
import { SibylError } from '../../../core/errors.ts';
import { bundleOf, deployed } from './bundles.ts';
import { startTestTower } from './test-tower.ts';
import { CELL } from './sync-helpers.ts';

const tmp = () => mkdtempSync(join(tmpdir(), 'sibyl-sync-'));

async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (err) {
    return err instanceof SibylError ? err.code : `not a SibylError: ${String(err)}`;
  }
  return 'resolved';
}

describe('bundle cache', () => {
  it('stores a zip only when its bytes hash to the name, and reads it back', async () => {
    const cache = await openBundleCache(tmp());
    const bytes = Buffer.from('zip bytes');
    const sha = sha256Hex(bytes);
    expect(await codeOf(cache.put(sha, Buffer.from('other bytes')))).toBe('DATA_LOSS');
    expect(readdirSync(join(cache.dir, 'bundles'))).toEqual([]);
    await cache.put(sha, bytes);
    expect(readdirSync(join(cache.dir, 'bundles'))).toEqual([`${sha}.zip`]);
    expect(await cache.get(sha)).toEqual(bytes);
  });

  it('drops a cached zip that was changed on disk', async () => {
    const cache = await openBundleCache(tmp());
    const bytes = Buffer.from('zip bytes');
    const sha = sha256Hex(bytes);
    await cache.put(sha, bytes);
    writeFileSync(join(cache.dir, 'bundles', `${sha}.zip`), 'tampered');
    expect(await cache.get(sha)).toBeUndefined();
    expect(existsSync(join(cache.dir, 'bundles', `${sha}.zip`))).toBe(false);
  });

  it('refuses a hash that is not 64 hex digits (no path tricks)', async () => {
    const cache = await openBundleCache(tmp());
    expect(await codeOf(cache.put('../state', Buffer.from('x')))).toBe('INVALID_ARGUMENT');
    expect(() => cache.unpackDir('../../etc')).toThrow(SibylError);
  });

  it('keeps the last state, and prunes bundles no longer named', async () => {
    const cache = await openBundleCache(tmp());
    expect(await cache.readState()).toBeUndefined();
    const a = Buffer.from('a');
    const b = Buffer.from('b');
    await cache.put(sha256Hex(a), a);
    await cache.put(sha256Hex(b), b);
    const state = create(CellStateSchema, { cell: 'c', revision: 7n, models: [{ name: 'm', defaultVersion: '1', versions: [{ version: '1', bundleSha256: sha256Hex(a) }] }] });
    await cache.writeState(state);
    expect(await cache.readState()).toEqual(state);
    await cache.prune(new Set([sha256Hex(a)]));
    expect(readdirSync(join(cache.dir, 'bundles'))).toEqual([`${sha256Hex(a)}.zip`]);
    expect(readdirSync(cache.dir).filter((f) => f.includes('.tmp-'))).toEqual([]);
  });
});

describe('tower client', () => {
  let closeTower: (() => Promise<void>) | undefined;
  afterAll(() => closeTower?.());

  it('long-polls for the next revision, downloads bundles and posts reports with its token', async () => {
    const tower = await startTestTower(CELL);
    closeTower = tower.close;
    const eta1 = await bundleOf('delivery-eta', '1');
    tower.bundles.set(eta1.sha, eta1.zip);
    tower.deploy([{ name: 'delivery-eta', versions: [deployed(eta1)], defaultVersion: '1' }]);
    const client = createTowerClient({ url: tower.url, token: tower.token });

    expect((await client.cellState(CELL, 0n, 5_000)).revision).toBe(1n);
    const waiting = client.cellState(CELL, 1n, 10_000);
    setTimeout(() => tower.deploy([]), 100);
    const next = await waiting;
    expect(next.revision).toBe(2n);
    expect(next.models).toEqual([]);
    // No change within the wait: the same revision comes back.
    expect((await client.cellState(CELL, 2n, 100)).revision).toBe(2n);

    expect(sha256Hex(await client.bundle(eta1.sha))).toBe(eta1.sha);
    expect(await codeOf(client.bundle('0'.repeat(64)))).toBe('NOT_FOUND');
    await client.report(create(GatewayReportSchema, { cell: CELL, replica: 'r', revision: 2n }));
    expect(tower.reports.map((r) => r.replica)).toEqual(['r']);
    expect(tower.unauthorized).toBe(0);

    expect(await codeOf(createTowerClient({ url: tower.url, token: 'wrong' }).cellState(CELL, 0n, 0))).toBe('UNAUTHENTICATED');
    expect(await codeOf(createTowerClient({ url: tower.url, token: tower.token, maxBundleBytes: 1000 }).bundle(eta1.sha))).toBe('INVALID_ARGUMENT');
  });

  it('is UNAVAILABLE when the tower cannot be reached, CANCELLED when the caller aborts', async () => {
    const tower = await startTestTower(CELL);
    const url = tower.url;
    const client = createTowerClient({ url, token: tower.token });
    const ac = new AbortController();
    const polling = client.cellState(CELL, 0n, 10_000, ac.signal);
    setTimeout(() => ac.abort(), 50);
    expect(await codeOf(polling)).toBe('CANCELLED');
    await tower.close();
    expect(await codeOf(client.cellState(CELL, 0n, 0))).toBe('UNAVAILABLE');
  });
});

describe('backoff', () => {
  it('doubles from the base, stays under the cap, and jitters within the upper half', () => {
    expect(backoffMs(1, 100, 1000, () => 0)).toBe(50);
    expect(backoffMs(1, 100, 1000, () => 1)).toBe(100);
    expect(backoffMs(3, 100, 1000, () => 1)).toBe(400);
    expect(backoffMs(50, 100, 1000, () => 1)).toBe(1000);
    expect(backoffMs(50, 100, 1000, () => 0)).toBe(500);
  });
});

describe('bundle zip unpacking', () => {
  async function zipOf(entries: { name: string; data: string; mode?: number }[]): Promise<Buffer> {
    const zip = new yazl.ZipFile();
    for (const e of entries) zip.addBuffer(Buffer.from(e.data), e.name, e.mode ? { mode: e.mode } : {});
    zip.end();
    const chunks: Buffer[] = [];
    for await (const c of zip.outputStream) chunks.push(c as Buffer);
    return Buffer.concat(chunks);
  }

  it('unpacks a model bundle and hashes the zip', async () => {
    const b = await bundleOf('delivery-eta', '2');
    const dir = join(tmp(), 'out');
    const bundle = await openBundleZip(b.zip, dir);
    expect(bundle).toMatchObject({ dir, hash: b.sha, manifest: { name: 'delivery-eta', version: '2' } });
    expect(readdirSync(dir).sort()).toEqual(['expected.json', 'model.onnx', 'sibyl.yaml']);
  });

  it.each([
    ['a link', [{ name: 'sibyl.yaml', data: 'x' }, { name: 'link', data: '/etc/passwd', mode: 0o120777 }]],
    ['a duplicate name', [{ name: 'sibyl.yaml', data: 'x' }, { name: 'SIBYL.yaml', data: 'y' }]],
    ['no manifest', [{ name: 'model.onnx', data: 'x' }]],
    ['an invalid manifest', [{ name: 'sibyl.yaml', data: 'name: 1' }]],
  ])('rejects %s with INVALID_ARGUMENT and leaves no directory', async (_what, entries) => {
    const dir = join(tmp(), 'out');
    expect(await codeOf(openBundleZip(await zipOf(entries), dir))).toBe('INVALID_ARGUMENT');
    expect(existsSync(dir)).toBe(false);
  });

  it('rejects bytes that are not a zip', async () => {
    expect(await codeOf(openBundleZip(Buffer.from('not a zip'), join(tmp(), 'out')))).toBe('INVALID_ARGUMENT');
  });
});
