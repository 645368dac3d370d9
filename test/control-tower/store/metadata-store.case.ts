/**
 * The one MetadataStore suite, run against every backend (PGlite, PostgreSQL) by the *.test.ts files beside it.
 * Each test gets an empty schema and a new store; concurrency tests use a second connection where the backend has one.
 */
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { toJson } from '@bufbuild/protobuf';
import { CellStateSchema } from '../../../proto/gen/sibyl/v1/deployment_pb.js';
import { createMetadataStore, type MetadataStore } from '../../../control-tower/store/metadata-store.ts';
import { loadMigrations, migrate } from '../../../control-tower/store/migrate.ts';
import type { Sql } from '../../../control-tower/store/sql.ts';

export interface Backend {
  /** A new, empty database. */
  fresh(): Promise<FreshDatabase>;
}
export interface FreshDatabase {
  sql: Sql;
  /** Another independent connection (pool) to the same database; undefined when the backend has only one. */
  connectAgain?: () => Promise<Sql>;
  drop(): Promise<void>;
}

const TABLES = 'audit_log, api_tokens, gateway_reports, cell_shadows, cell_splits, cell_aliases, cell_defaults, deployments, cells, model_versions, models';
const SHA_A = 'a'.repeat(64);
const SHA_B = 'b'.repeat(64);
const sha = (n: number) => n.toString(16).padStart(64, '0');
const manifest = (name: string, version: string) => ({ name, version, runtime: 'onnx', features: [{ name: 'x', dtype: 'float32' }] });

export function describeMetadataStore(label: string, backend: Backend): void {
  describe(`MetadataStore on ${label}`, () => {
    let db: FreshDatabase;
    let store: MetadataStore;
    const extra: { close(): Promise<void> }[] = [];

    beforeAll(async () => {
      db = await backend.fresh();
      await migrate(db.sql);
    });
    afterAll(async () => {
      await db?.drop();
    });
    beforeEach(async () => {
      await db.sql.exec(`TRUNCATE ${TABLES} RESTART IDENTITY CASCADE`);
      store = await createMetadataStore(db.sql);
    });
    afterEach(async () => {
      await store.close();
      for (const c of extra.splice(0).reverse()) await c.close();
    });

    async function addVersion(name: string, version: string, sha256 = sha(Number.parseInt(version.replace(/\D/g, '') || '0', 10) + 1)) {
      return store.addVersion({ name, version, sha256, runtime: 'onnx', manifest: manifest(name, version), sizeBytes: 1234, actor: 'alice' });
    }
    async function revisions(): Promise<Record<string, number>> {
      return Object.fromEntries((await store.listCells()).map((c) => [c.name, c.revision]));
    }
    async function auditCount(): Promise<number> {
      return (await store.auditLog({ limit: 1000 })).length;
    }

    describe('migrations', () => {
      it('apply once, are a no-op the second time, and concurrent starters apply each exactly once', async () => {
        const fresh = await backend.fresh();
        try {
          const second = fresh.connectAgain ? await fresh.connectAgain() : fresh.sql;
          const shipped = (await loadMigrations()).map((m) => m.id);
          expect(shipped.slice(0, 3)).toEqual([1, 2, 3]);
          const [a, b] = await Promise.all([migrate(fresh.sql), migrate(second)]);
          expect([...a, ...b].sort((x, y) => x - y)).toEqual(shipped);
          expect(await migrate(fresh.sql)).toEqual([]);
          const rows = await fresh.sql.query<{ id: number }>('SELECT id FROM schema_migrations ORDER BY id');
          expect(rows.map((r) => r.id)).toEqual(shipped);
          if (second !== fresh.sql) await second.close();
        } finally {
          await fresh.drop();
        }
      });

      it('run at store creation without changing an up-to-date schema', async () => {
        const again = await createMetadataStore(db.sql);
        await again.close();
        expect(await migrate(db.sql)).toEqual([]);
      });
    });

    describe('versions', () => {
      it('adds a version, and the same bytes again return it with created: false and no second audit row', async () => {
        const first = await store.addVersion({ name: 'eta', version: 'v1', sha256: SHA_A, runtime: 'onnx', manifest: manifest('eta', 'v1'), sizeBytes: 42, actor: 'alice' });
        expect(first.created).toBe(true);
        expect(first.version).toMatchObject({ name: 'eta', version: 'v1', sha256: SHA_A, runtime: 'onnx', sizeBytes: 42, createdBy: 'alice', manifest: manifest('eta', 'v1') });
        expect(first.version.created).toBeInstanceOf(Date);
        expect(first.version.retired).toBeUndefined();
        const again = await store.addVersion({ name: 'eta', version: 'v1', sha256: SHA_A, runtime: 'onnx', manifest: manifest('eta', 'v1'), sizeBytes: 42, actor: 'bob' });
        expect(again.created).toBe(false);
        expect(again.version).toEqual(first.version);
        const audit = await store.auditLog();
        expect(audit.filter((e) => e.action === 'version.add')).toHaveLength(1);
        expect(audit[0]).toMatchObject({ actor: 'alice', action: 'version.add', target: 'eta/v1', details: { sha256: SHA_A, runtime: 'onnx', sizeBytes: 42 } });
      });

      it('rejects the same version with other bytes: ALREADY_EXISTS', async () => {
        await store.addVersion({ name: 'eta', version: 'v1', sha256: SHA_A, runtime: 'onnx', manifest: {}, sizeBytes: 1, actor: 'alice' });
        await expect(store.addVersion({ name: 'eta', version: 'v1', sha256: SHA_B, runtime: 'onnx', manifest: {}, sizeBytes: 1, actor: 'alice' })).rejects.toMatchObject({
          code: 'ALREADY_EXISTS',
        });
        expect((await store.getVersion('eta', 'v1')).sha256).toBe(SHA_A);
      });

      it('rejects malformed input: INVALID_ARGUMENT naming each problem', async () => {
        const err = await store
          .addVersion({ name: 'Bad Name', version: '../v1', sha256: 'ABC', runtime: '', manifest: {}, sizeBytes: -1, actor: 'alice' })
          .catch((e: unknown) => e);
        expect(err).toMatchObject({ code: 'INVALID_ARGUMENT' });
        const message = (err as Error).message;
        for (const word of ['name', 'version', 'sha256', 'runtime', 'sizeBytes']) expect(message).toContain(word);
        expect(await store.listModels()).toEqual([]);
      });

      it('of concurrent adds of one version exactly one creates it (same bytes: the others get it back)', async () => {
        const second = db.connectAgain ? await db.connectAgain() : db.sql;
        if (second !== db.sql) extra.push(second);
        const other = await createMetadataStore(second);
        extra.push(other);
        const results = await Promise.all(
          Array.from({ length: 8 }, (_, i) =>
            (i % 2 ? other : store).addVersion({ name: 'race', version: 'v1', sha256: SHA_A, runtime: 'onnx', manifest: {}, sizeBytes: 1, actor: `u${i}` }),
          ),
        );
        expect(results.filter((r) => r.created)).toHaveLength(1);
        expect(new Set(results.map((r) => r.version.createdBy)).size).toBe(1);
        expect((await store.auditLog()).filter((e) => e.action === 'version.add')).toHaveLength(1);
      });

      it('of concurrent adds of one version with different bytes exactly one wins, the others get ALREADY_EXISTS', async () => {
        const second = db.connectAgain ? await db.connectAgain() : db.sql;
        if (second !== db.sql) extra.push(second);
        const other = await createMetadataStore(second);
        extra.push(other);
        const settled = await Promise.allSettled(
          Array.from({ length: 8 }, (_, i) =>
            (i % 2 ? other : store).addVersion({ name: 'race', version: 'v1', sha256: sha(i), runtime: 'onnx', manifest: {}, sizeBytes: 1, actor: `u${i}` }),
          ),
        );
        const won = settled.filter((s) => s.status === 'fulfilled');
        expect(won).toHaveLength(1);
        for (const s of settled) if (s.status === 'rejected') expect(s.reason).toMatchObject({ code: 'ALREADY_EXISTS' });
        const stored = await store.getVersion('race', 'v1');
        expect(won[0]!.status === 'fulfilled' && won[0]!.value.version.sha256).toBe(stored.sha256);
      });

      it('lists models and reads a model and a version; unknown ones are NOT_FOUND', async () => {
        await store.ensureCells(['a', 'b']);
        await addVersion('eta', 'v1');
        await addVersion('eta', 'v2');
        await addVersion('churn', 'v1');
        await store.deploy('eta', 'v1', ['a'], 'alice');
        await store.deploy('eta', 'v2', 'all', 'alice');
        await store.setAlias('eta', 'canary', 'v2', ['a'], 'alice');

        const models = await store.listModels();
        expect(models.map((m) => [m.name, m.versions])).toEqual([
          ['churn', ['v1']],
          ['eta', ['v1', 'v2']],
        ]);
        const eta = await store.getModel('eta');
        expect(eta.versions.map((v) => [v.version, v.cells])).toEqual([
          ['v1', ['a']],
          ['v2', ['a', 'b']],
        ]);
        expect(eta.cells).toEqual([
          { cell: 'a', versions: ['v1', 'v2'], defaultVersion: 'v1', aliases: { canary: 'v2' }, split: [], shadows: [] },
          { cell: 'b', versions: ['v2'], defaultVersion: 'v2', aliases: {}, split: [], shadows: [] },
        ]);
        expect(await store.getVersion('eta', 'v2')).toMatchObject({ name: 'eta', version: 'v2', cells: ['a', 'b'], manifest: manifest('eta', 'v2') });
        await expect(store.getModel('nope')).rejects.toMatchObject({ code: 'NOT_FOUND' });
        await expect(store.getVersion('nope', 'v1')).rejects.toMatchObject({ code: 'NOT_FOUND', message: expect.stringContaining('model nope') });
        await expect(store.getVersion('eta', 'v9')).rejects.toMatchObject({ code: 'NOT_FOUND', message: expect.stringContaining('version v9') });
      });
    });

    describe('cells and desired state', () => {
      it('creates configured cells once at revision 1 and rejects bad names', async () => {
        const cells = await store.ensureCells(['b', 'a', 'a']);
        expect(cells.map((c) => [c.name, c.revision])).toEqual([
          ['a', 1],
          ['b', 1],
        ]);
        await store.ensureCells(['a', 'c']);
        expect(await revisions()).toEqual({ a: 1, b: 1, c: 1 });
        expect((await store.auditLog()).filter((e) => e.action === 'cell.create').map((e) => e.target).sort()).toEqual(['a', 'b', 'c']);
        await expect(store.ensureCells(['Bad_Cell'])).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
      });

      it('deploy to one cell bumps only that cell, makes the first version the default, and writes one audit row', async () => {
        await store.ensureCells(['a', 'b']);
        await addVersion('eta', 'v1');
        const result = await store.deploy('eta', 'v1', ['a'], 'alice');
        expect(result).toEqual({ cells: [{ cell: 'a', revision: 2 }] });
        expect(await revisions()).toEqual({ a: 2, b: 1 });
        const state = await store.cellState('a');
        expect(state).toMatchObject({
          cell: 'a',
          revision: 2n,
          models: [{ name: 'eta', defaultVersion: 'v1', aliases: {}, versions: [{ version: 'v1', bundleSha256: sha(2), runtime: 'onnx', sizeBytes: 1234n }] }],
        });
        expect((await store.cellState('b')).models).toEqual([]);
        const [entry] = await store.auditLog({ limit: 1 });
        expect(entry).toMatchObject({ actor: 'alice', action: 'deploy', target: 'eta/v1', details: { cells: ['a'], defaultSet: ['a'] } });
      });

      it('deploying where already deployed changes nothing: no bump, no audit row', async () => {
        await store.ensureCells(['a', 'b']);
        await addVersion('eta', 'v1');
        await store.deploy('eta', 'v1', ['a'], 'alice');
        const before = await auditCount();
        expect(await store.deploy('eta', 'v1', ['a'], 'alice')).toEqual({ cells: [] });
        expect(await store.deploy('eta', 'v1', 'all', 'alice')).toEqual({ cells: [{ cell: 'b', revision: 2 }] });
        expect(await revisions()).toEqual({ a: 2, b: 2 });
        expect(await auditCount()).toBe(before + 1);
      });

      it('deploy errors: unknown cell, model or version NOT_FOUND; empty cell list INVALID_ARGUMENT; nothing bumped', async () => {
        await store.ensureCells(['a']);
        await addVersion('eta', 'v1');
        await expect(store.deploy('eta', 'v1', ['a', 'zz'], 'alice')).rejects.toMatchObject({ code: 'NOT_FOUND', message: expect.stringContaining('zz') });
        await expect(store.deploy('nope', 'v1', ['a'], 'alice')).rejects.toMatchObject({ code: 'NOT_FOUND' });
        await expect(store.deploy('eta', 'v2', ['a'], 'alice')).rejects.toMatchObject({ code: 'NOT_FOUND' });
        await expect(store.deploy('eta', 'v1', [], 'alice')).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
        expect(await revisions()).toEqual({ a: 1 });
        expect((await store.cellState('a')).models).toEqual([]);
        await expect(store.cellState('zz')).rejects.toMatchObject({ code: 'NOT_FOUND' });
        await expect(store.cellRevision('zz')).rejects.toMatchObject({ code: 'NOT_FOUND' });
      });

      it('the desired state is the CellState wire message', async () => {
        await store.ensureCells(['a']);
        await addVersion('eta', 'v1');
        await addVersion('eta', 'v2');
        await store.deploy('eta', 'v1', ['a'], 'alice');
        await store.setAlias('eta', 'next', 'v2', ['a'], 'alice');
        const json = toJson(CellStateSchema, await store.cellState('a')) as Record<string, unknown>;
        expect(json).toMatchObject({
          cell: 'a',
          revision: '3',
          models: [
            {
              name: 'eta',
              defaultVersion: 'v1',
              aliases: { next: 'v2' },
              versions: [
                { version: 'v1', bundleSha256: sha(2), runtime: 'onnx', sizeBytes: '1234' },
                { version: 'v2', bundleSha256: sha(3), runtime: 'onnx', sizeBytes: '1234' },
              ],
            },
          ],
        });
        expect(typeof json.updated).toBe('string');
      });

      it('setDefault deploys where missing, applies to every cell with the model when no cells are named, and bumps only changed cells', async () => {
        await store.ensureCells(['a', 'b', 'c']);
        await addVersion('eta', 'v1');
        await addVersion('eta', 'v2');
        await store.deploy('eta', 'v1', ['a', 'b'], 'alice');
        const result = await store.setDefault('eta', 'v2', undefined, 'bob');
        expect(result.cells.map((c) => c.cell)).toEqual(['a', 'b']);
        expect(await revisions()).toEqual({ a: 3, b: 3, c: 1 });
        for (const cell of ['a', 'b']) {
          const [m] = (await store.cellState(cell)).models;
          expect(m).toMatchObject({ defaultVersion: 'v2' });
          expect(m!.versions.map((v) => v.version)).toEqual(['v1', 'v2']);
        }
        expect(await store.setDefault('eta', 'v2', ['a'], 'bob')).toEqual({ cells: [] });
        expect((await store.auditLog({ limit: 1 }))[0]).toMatchObject({ actor: 'bob', action: 'default.set', target: 'eta/v2', details: { cells: ['a', 'b'], deployed: ['a', 'b'] } });
      });

      it('setDefault of a model deployed nowhere without cells is FAILED_PRECONDITION; unknown model NOT_FOUND', async () => {
        await store.ensureCells(['a']);
        await addVersion('eta', 'v1');
        await expect(store.setDefault('eta', 'v1', undefined, 'bob')).rejects.toMatchObject({ code: 'FAILED_PRECONDITION' });
        await expect(store.setDefault('nope', 'v1', undefined, 'bob')).rejects.toMatchObject({ code: 'NOT_FOUND' });
        expect(await store.setDefault('eta', 'v1', ['a'], 'bob')).toEqual({ cells: [{ cell: 'a', revision: 2 }] });
      });

      it('undeploy refuses a default or alias target that other versions depend on, and removes the last version with its default', async () => {
        await store.ensureCells(['a']);
        await addVersion('eta', 'v1');
        await addVersion('eta', 'v2');
        await store.deploy('eta', 'v1', ['a'], 'alice');
        await store.deploy('eta', 'v2', ['a'], 'alice');
        await store.setAlias('eta', 'beta', 'v2', ['a'], 'alice');
        const rev = await store.cellRevision('a');
        const audits = await auditCount();
        await expect(store.undeploy('eta', 'v1', ['a'], 'alice')).rejects.toMatchObject({ code: 'FAILED_PRECONDITION', message: expect.stringContaining('default') });
        await expect(store.undeploy('eta', 'v2', 'all', 'alice')).rejects.toMatchObject({ code: 'FAILED_PRECONDITION', message: expect.stringContaining('alias beta') });
        expect(await store.cellRevision('a')).toBe(rev);
        expect(await auditCount()).toBe(audits);

        await store.deleteAlias('eta', 'beta', undefined, 'alice');
        expect(await store.undeploy('eta', 'v2', ['a'], 'alice')).toEqual({ cells: [{ cell: 'a', revision: rev + 2 }] });
        expect((await store.cellState('a')).models).toMatchObject([{ name: 'eta', defaultVersion: 'v1', aliases: {}, split: [], shadows: [], versions: [{ version: 'v1' }] }]);
        await store.setAlias('eta', 'stable', 'v1', ['a'], 'alice');
        await store.undeploy('eta', 'v1', ['a'], 'alice');
        expect((await store.cellState('a')).models).toEqual([]);
        expect(await store.undeploy('eta', 'v1', ['a'], 'alice')).toEqual({ cells: [] });
        expect((await store.auditLog({ limit: 1 }))[0]).toMatchObject({ action: 'undeploy', target: 'eta/v1', details: { cells: ['a'] } });
      });

      it('splits: set (deploying the arms where missing), replace, clear; bad arms INVALID_ARGUMENT; arms block undeploy and retire', async () => {
        await store.ensureCells(['a', 'b']);
        await addVersion('eta', 'v1');
        await addVersion('eta', 'v2');
        await store.deploy('eta', 'v1', 'all', 'alice');
        const rev = await revisions();
        const result = await store.setSplit('eta', [{ version: 'v1', weight: 90 }, { version: 'v2', weight: 10, arm: 'canary' }], ['a'], 'alice');
        expect(result).toEqual({ cells: [{ cell: 'a', revision: rev.a! + 1 }] });
        const state = await store.cellState('a');
        expect(state.models[0]).toMatchObject({
          defaultVersion: 'v1',
          split: [{ arm: 'v1', version: 'v1', weight: 90 }, { arm: 'canary', version: 'v2', weight: 10 }],
          versions: [expect.objectContaining({ version: 'v1' }), expect.objectContaining({ version: 'v2' })],
        });
        expect((await store.cellState('b')).models[0]!.split).toEqual([]);
        const json = toJson(CellStateSchema, state) as any;
        expect(json.models[0].split).toEqual([{ arm: 'v1', version: 'v1', weight: 90 }, { arm: 'canary', version: 'v2', weight: 10 }]);
        expect((await store.auditLog({ limit: 1 }))[0]).toMatchObject({ action: 'split.set', target: 'eta', details: { cells: ['a'], deployed: ['a'] } });

        // The same split again changes nothing.
        expect(await store.setSplit('eta', [{ version: 'v1', weight: 90 }, { version: 'v2', weight: 10, arm: 'canary' }], ['a'], 'alice')).toEqual({ cells: [] });
        const audits = await auditCount();
        for (const bad of [
          [{ version: 'v1', weight: -1 }],
          [{ version: 'v1', weight: 0 }],
          [{ version: 'v1', weight: 1 }, { version: 'v1', weight: 1 }],
          [{ version: 'v1', weight: Number.NaN }],
          [{ version: 'v1', weight: 1, arm: '../x' }],
        ]) {
          await expect(store.setSplit('eta', bad, ['a'], 'alice')).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
        }
        await expect(store.setSplit('eta', [{ version: 'v9', weight: 1 }], ['a'], 'alice')).rejects.toMatchObject({ code: 'NOT_FOUND' });
        expect(await auditCount()).toBe(audits);

        await expect(store.undeploy('eta', 'v2', ['a'], 'alice')).rejects.toMatchObject({ code: 'FAILED_PRECONDITION', message: expect.stringContaining('split arm canary') });
        await expect(store.retireVersion('eta', 'v2', 'alice')).rejects.toMatchObject({ code: 'FAILED_PRECONDITION', message: expect.stringContaining('split arm canary') });
        await store.setSplit('eta', [], ['a'], 'alice');
        expect((await store.cellState('a')).models[0]!.split).toEqual([]);
        await store.undeploy('eta', 'v2', ['a'], 'alice');
      });

      it('shadows: set (deploying them where missing), replace, clear; a shadowed version cannot be undeployed or retired', async () => {
        await store.ensureCells(['a', 'b']);
        await addVersion('eta', 'v1');
        await addVersion('eta', 'v2');
        await addVersion('risk', 'r1');
        await store.deploy('eta', 'v1', 'all', 'alice');
        await store.setShadows('eta', [{ model: 'eta', version: 'v2' }, { model: 'risk', version: 'r1' }], undefined, 'alice');
        for (const cell of ['a', 'b']) {
          const models = (await store.cellState(cell)).models;
          expect(models.map((m) => m.name)).toEqual(['eta', 'risk']);
          expect(models[0]).toMatchObject({ defaultVersion: 'v1', shadows: [{ model: 'eta', version: 'v2' }, { model: 'risk', version: 'r1' }] });
          expect(models[1]).toMatchObject({ defaultVersion: 'r1', versions: [expect.objectContaining({ version: 'r1' })] });
        }
        const json = toJson(CellStateSchema, await store.cellState('a')) as any;
        expect(json.models[0].shadows).toEqual([{ model: 'eta', version: 'v2' }, { model: 'risk', version: 'r1' }]);
        expect((await store.getModel('eta')).cells[0]).toMatchObject({ shadows: [{ model: 'eta', version: 'v2' }, { model: 'risk', version: 'r1' }] });

        await expect(store.undeploy('risk', 'r1', ['a'], 'alice')).rejects.toMatchObject({ code: 'FAILED_PRECONDITION', message: expect.stringContaining('shadow of eta') });
        await expect(store.retireVersion('eta', 'v2', 'alice')).rejects.toMatchObject({ code: 'FAILED_PRECONDITION', message: expect.stringContaining('shadow of eta') });
        await expect(store.setShadows('eta', [{ model: 'risk', version: 'r1' }, { model: 'risk', version: 'r1' }], ['a'], 'alice')).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
        await expect(store.setShadows('eta', [{ model: 'nope', version: '1' }], ['a'], 'alice')).rejects.toMatchObject({ code: 'NOT_FOUND' });

        await store.setShadows('eta', [{ model: 'risk', version: 'r1' }], ['a'], 'alice');
        expect((await store.cellState('a')).models[0]!.shadows).toMatchObject([{ model: 'risk', version: 'r1' }]);
        expect((await store.auditLog({ limit: 1 }))[0]).toMatchObject({ action: 'shadows.set', target: 'eta', details: { cells: ['a'] } });
        await store.setShadows('eta', [], ['a'], 'alice');
        expect((await store.cellState('a')).models[0]!.shadows).toEqual([]);
        await store.undeploy('risk', 'r1', ['a'], 'alice');
        // The last version of a model leaves the cell with its own shadow list.
        await store.undeploy('eta', 'v2', ['b'], 'alice').catch(() => undefined);
      });

      it('aliases: set (deploying where missing), move, delete; malformed or version-named aliases INVALID_ARGUMENT; unknown NOT_FOUND', async () => {
        await store.ensureCells(['a', 'b']);
        await addVersion('eta', 'v1');
        await addVersion('eta', 'v2');
        await store.deploy('eta', 'v1', 'all', 'alice');
        expect((await store.setAlias('eta', 'canary', 'v2', ['b'], 'alice')).cells.map((c) => c.cell)).toEqual(['b']);
        expect((await store.getModel('eta')).cells.map((c) => [c.cell, c.versions, c.aliases])).toEqual([
          ['a', ['v1'], {}],
          ['b', ['v1', 'v2'], { canary: 'v2' }],
        ]);
        expect((await store.setAlias('eta', 'canary', 'v1', undefined, 'alice')).cells.map((c) => c.cell)).toEqual(['a', 'b']);
        expect(await store.setAlias('eta', 'canary', 'v1', undefined, 'alice')).toEqual({ cells: [] });
        await expect(store.setAlias('eta', 'v2', 'v1', ['a'], 'alice')).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
        await expect(store.setAlias('eta', 'bad alias', 'v1', ['a'], 'alice')).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
        await expect(store.setAlias('eta', 'x', 'v9', ['a'], 'alice')).rejects.toMatchObject({ code: 'NOT_FOUND' });

        expect((await store.deleteAlias('eta', 'canary', ['a'], 'alice')).cells.map((c) => c.cell)).toEqual(['a']);
        await expect(store.deleteAlias('eta', 'canary', ['a'], 'alice')).rejects.toMatchObject({ code: 'NOT_FOUND' });
        await expect(store.deleteAlias('nope', 'canary', undefined, 'alice')).rejects.toMatchObject({ code: 'NOT_FOUND' });
        expect((await store.deleteAlias('eta', 'canary', undefined, 'alice')).cells.map((c) => c.cell)).toEqual(['b']);
        expect((await store.auditLog({ limit: 1 }))[0]).toMatchObject({ action: 'alias.delete', target: 'eta', details: { alias: 'canary', cells: ['b'] } });
      });

      it('retire: refused while a default, then undeploys everywhere, blocks deploys, and is a no-op the second time', async () => {
        await store.ensureCells(['a', 'b']);
        await addVersion('eta', 'v1');
        await addVersion('eta', 'v2');
        await store.deploy('eta', 'v1', 'all', 'alice');
        await store.deploy('eta', 'v2', 'all', 'alice');
        await expect(store.retireVersion('eta', 'v1', 'root')).rejects.toMatchObject({ code: 'FAILED_PRECONDITION', message: expect.stringContaining('default in a') });
        await store.setDefault('eta', 'v2', undefined, 'alice');
        const before = await revisions();
        const result = await store.retireVersion('eta', 'v1', 'root');
        expect(result).toEqual({ cells: [{ cell: 'a', revision: before.a! + 1 }, { cell: 'b', revision: before.b! + 1 }] });
        expect((await store.cellState('a')).models[0]!.versions.map((v) => v.version)).toEqual(['v2']);
        const v1 = await store.getVersion('eta', 'v1');
        expect(v1.retired).toBeInstanceOf(Date);
        expect(v1).toMatchObject({ retiredBy: 'root', cells: [] });
        await expect(store.deploy('eta', 'v1', ['a'], 'alice')).rejects.toMatchObject({ code: 'FAILED_PRECONDITION' });
        await expect(store.setDefault('eta', 'v1', ['a'], 'alice')).rejects.toMatchObject({ code: 'FAILED_PRECONDITION' });
        expect(await store.retireVersion('eta', 'v1', 'root')).toEqual({ cells: [] });
        expect((await store.auditLog()).filter((e) => e.action === 'version.retire')).toEqual([
          expect.objectContaining({ actor: 'root', target: 'eta/v1', details: { undeployedFrom: ['a', 'b'] } }),
        ]);
        await expect(store.retireVersion('eta', 'v9', 'root')).rejects.toMatchObject({ code: 'NOT_FOUND' });
        // Same bytes again: the retired version comes back unchanged, still retired.
        const again = await addVersion('eta', 'v1');
        expect(again.created).toBe(false);
        expect(again.version.retired).toBeInstanceOf(Date);
      });

      it('concurrent changes to the same cells all land, each with its own revision (no lost update, no deadlock)', async () => {
        await store.ensureCells(['a', 'b', 'c']);
        const second = db.connectAgain ? await db.connectAgain() : db.sql;
        if (second !== db.sql) extra.push(second);
        const other = await createMetadataStore(second);
        extra.push(other);
        for (let i = 1; i <= 6; i++) await addVersion('eta', `v${i}`);
        const results = await Promise.all(
          Array.from({ length: 6 }, (_, i) => (i % 2 ? other : store).deploy('eta', `v${i + 1}`, i % 3 === 0 ? 'all' : ['c', 'b', 'a'], `u${i}`)),
        );
        expect(await revisions()).toEqual({ a: 7, b: 7, c: 7 });
        for (const cell of ['a', 'b', 'c']) {
          const seen = results.map((r) => r.cells.find((c) => c.cell === cell)!.revision).sort((x, y) => x - y);
          expect(seen).toEqual([2, 3, 4, 5, 6, 7]);
        }
        expect((await store.auditLog()).filter((e) => e.action === 'deploy')).toHaveLength(6);
      });

      it('a retire racing a default switch to the same version ends in exactly one of them', async () => {
        await store.ensureCells(['a']);
        const second = db.connectAgain ? await db.connectAgain() : db.sql;
        if (second !== db.sql) extra.push(second);
        const other = await createMetadataStore(second);
        extra.push(other);
        await addVersion('eta', 'v1');
        await addVersion('eta', 'v2');
        await store.deploy('eta', 'v1', ['a'], 'alice');
        const [retired, defaulted] = await Promise.allSettled([store.retireVersion('eta', 'v2', 'root'), other.setDefault('eta', 'v2', ['a'], 'bob')]);
        const v2 = await store.getVersion('eta', 'v2');
        const state = await store.cellState('a');
        if (retired.status === 'fulfilled') {
          expect(defaulted).toMatchObject({ status: 'rejected', reason: { code: 'FAILED_PRECONDITION' } });
          expect(v2.retired).toBeInstanceOf(Date);
          expect(state.models[0]!.defaultVersion).toBe('v1');
        } else {
          expect(retired.reason).toMatchObject({ code: 'FAILED_PRECONDITION' });
          expect(defaulted.status).toBe('fulfilled');
          expect(v2.retired).toBeUndefined();
          expect(state.models[0]!.defaultVersion).toBe('v2');
        }
      });
    });

    describe('revision wake-ups', () => {
      it('onRevision hears each committed bump of its cell only; a failed change is never heard', async () => {
        await store.ensureCells(['a', 'b']);
        await addVersion('eta', 'v1');
        await addVersion('eta', 'v2');
        const heard: number[] = [];
        const off = store.onRevision('a', (r) => heard.push(r));
        await store.deploy('eta', 'v1', ['b'], 'alice');
        await store.deploy('eta', 'v1', ['a'], 'alice');
        await expect(store.undeploy('eta', 'v9', ['a'], 'alice')).rejects.toMatchObject({ code: 'NOT_FOUND' });
        await store.setDefault('eta', 'v2', ['a'], 'alice');
        off();
        await store.deploy('eta', 'v2', ['b'], 'alice');
        await store.undeploy('eta', 'v1', ['a'], 'alice');
        expect(heard).toEqual([2, 3]);
      });

      it('waitForRevision answers at once when ahead, wakes on a change, and returns the current revision at timeout or abort', async () => {
        await store.ensureCells(['a']);
        await addVersion('eta', 'v1');
        expect(await store.waitForRevision('a', 0, { timeoutMs: 60_000 })).toBe(1);
        expect(await store.waitForRevision('a', 1, { timeoutMs: 20 })).toBe(1);
        const aborted = new AbortController();
        const pendingAbort = store.waitForRevision('a', 1, { timeoutMs: 60_000, signal: aborted.signal });
        aborted.abort();
        expect(await pendingAbort).toBe(1);
        const waiting = store.waitForRevision('a', 1, { timeoutMs: 60_000 });
        await store.deploy('eta', 'v1', ['a'], 'alice');
        expect(await waiting).toBe(2);
        await expect(store.waitForRevision('zz', 0, { timeoutMs: 10 })).rejects.toMatchObject({ code: 'NOT_FOUND' });
      });

      it('a change made through another store on the same database wakes a waiter (NOTIFY)', async () => {
        await store.ensureCells(['a']);
        await addVersion('eta', 'v1');
        const second = db.connectAgain ? await db.connectAgain() : db.sql;
        if (second !== db.sql) extra.push(second);
        const other = await createMetadataStore(second);
        extra.push(other);
        const waiting = store.waitForRevision('a', 1, { timeoutMs: 60_000 });
        await other.deploy('eta', 'v1', ['a'], 'alice');
        expect(await waiting).toBe(2);
      });
    });

    describe('audit log', () => {
      it('pages newest first with limit and before; bad limits are INVALID_ARGUMENT', async () => {
        await store.ensureCells(['a']);
        for (let i = 1; i <= 5; i++) await addVersion('eta', `v${i}`);
        const all = await store.auditLog();
        expect(all.map((e) => e.target)).toEqual(['eta/v5', 'eta/v4', 'eta/v3', 'eta/v2', 'eta/v1', 'a']);
        expect(all[0]!.time).toBeInstanceOf(Date);
        const page1 = await store.auditLog({ limit: 2 });
        const page2 = await store.auditLog({ limit: 2, before: page1[1]!.id });
        expect([...page1, ...page2].map((e) => e.target)).toEqual(['eta/v5', 'eta/v4', 'eta/v3', 'eta/v2']);
        await expect(store.auditLog({ limit: 0 })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
        await expect(store.auditLog({ limit: 1001 })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
      });

      it('filters by model (the model and its versions, not a model whose name starts the same), actor and action', async () => {
        await store.ensureCells(['a']);
        await addVersion('eta', 'v1');
        await addVersion('eta-risk', 'v1', sha(99));
        await store.deploy('eta', 'v1', ['a'], 'alice');
        await store.deploy('eta-risk', 'v1', ['a'], 'bob');
        await store.setSplit('eta', [{ version: 'v1', weight: 1 }], ['a'], 'bob');
        const targets = async (o: Parameters<MetadataStore['auditLog']>[0]) => (await store.auditLog(o)).map((e) => `${e.actor} ${e.action} ${e.target}`);
        expect(await targets({ model: 'eta', action: 'deploy' })).toEqual(['alice deploy eta/v1']);
        expect(await targets({ model: 'eta', actor: 'bob' })).toEqual(['bob split.set eta']);
        expect(await targets({ model: 'eta-risk', actor: 'bob' })).toEqual(['bob deploy eta-risk/v1']);
        expect(await targets({ model: 'et' })).toEqual([]);
        expect((await store.auditLog({ model: 'eta', limit: 2 })).map((e) => e.target)).toEqual(['eta', 'eta/v1']);
      });
    });

    describe('gateway reports', () => {
      it('keeps the latest report per replica with its received time; unknown cell NOT_FOUND', async () => {
        await store.ensureCells(['a', 'b']);
        const time = new Date('2026-01-02T03:04:05.000Z');
        await store.saveReport({ cell: 'a', replica: 'r2', revision: 3, loaded: [{ model: 'eta', version: 'v1', bundleSha256: SHA_A }], errors: [], time });
        await store.saveReport({ cell: 'a', replica: 'r1', revision: 2, loaded: [], errors: [{ model: 'eta', version: 'v2', message: 'bad' }] });
        const saved = await store.saveReport({ cell: 'a', replica: 'r1', revision: 4, loaded: [], errors: [] });
        expect(saved.received).toBeInstanceOf(Date);
        const reports = await store.reports('a');
        expect(reports.map((r) => [r.replica, r.revision, r.errors.length])).toEqual([
          ['r1', 4, 0],
          ['r2', 3, 0],
        ]);
        expect(reports[1]).toMatchObject({ cell: 'a', time, loaded: [{ model: 'eta', version: 'v1', bundleSha256: SHA_A }] });
        expect(reports[0]!.time).toBeUndefined();
        expect(await store.reports('b')).toEqual([]);
        await expect(store.saveReport({ cell: 'zz', replica: 'r1', revision: 1, loaded: [], errors: [] })).rejects.toMatchObject({ code: 'NOT_FOUND' });
        await expect(store.reports('zz')).rejects.toMatchObject({ code: 'NOT_FOUND' });
      });
    });

    describe('tokens', () => {
      it('authenticates a created token by its secret, stores only a hash, and forgets it once revoked', async () => {
        const created = await store.createToken({ name: 'ci', role: 'publisher', actor: 'root' });
        expect(created.token).toMatch(/^sibyl_[A-Za-z0-9_-]{43}$/);
        expect(await store.authenticate(created.token)).toEqual({ name: 'ci', role: 'publisher' });
        expect(await store.authenticate(created.token + 'x')).toBeUndefined();
        expect(await store.authenticate('')).toBeUndefined();
        const raw = await db.sql.query<{ token_hash: string }>('SELECT token_hash FROM api_tokens');
        expect(raw.map((r) => r.token_hash)).not.toContain(created.token);
        expect(JSON.stringify(await store.auditLog())).not.toContain(created.token);
        expect((await store.listTokens()).map((t) => [t.name, t.role, t.createdBy])).toEqual([['ci', 'publisher', 'root']]);

        await store.revokeToken('ci', 'root');
        expect(await store.authenticate(created.token)).toBeUndefined();
        expect(await store.listTokens()).toEqual([]);
        await expect(store.revokeToken('ci', 'root')).rejects.toMatchObject({ code: 'NOT_FOUND' });
        expect((await store.auditLog()).map((e) => e.action)).toEqual(['token.revoke', 'token.create']);
      });

      it('takes a given secret, refuses a live name twice (ALREADY_EXISTS) but allows it after revoke; bad input INVALID_ARGUMENT', async () => {
        const given = await store.createToken({ name: 'admin', role: 'admin', actor: 'config', token: 'dev-secret-0123456789' });
        expect(given.token).toBe('dev-secret-0123456789');
        expect(await store.authenticate('dev-secret-0123456789')).toEqual({ name: 'admin', role: 'admin' });
        await expect(store.createToken({ name: 'admin', role: 'viewer', actor: 'root' })).rejects.toMatchObject({ code: 'ALREADY_EXISTS' });
        await expect(store.createToken({ name: 'other', role: 'viewer', actor: 'root', token: 'dev-secret-0123456789' })).rejects.toMatchObject({ code: 'ALREADY_EXISTS' });
        await store.revokeToken('admin', 'root');
        const again = await store.createToken({ name: 'admin', role: 'viewer', actor: 'root' });
        expect(await store.authenticate(again.token)).toEqual({ name: 'admin', role: 'viewer' });
        await expect(store.createToken({ name: '', role: 'viewer', actor: 'root' })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
        await expect(store.createToken({ name: 'x', role: 'owner' as 'admin', actor: 'root' })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
        await expect(store.createToken({ name: 'x', role: 'viewer', actor: 'root', token: 'short' })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
      });
    });
  });
}
