/**
 * The control tower's storage, public surface: the SQL seam (PGlite or PostgreSQL), the metadata store over it,
 * and the artifact stores for bundle zips.
 *
 *   const sql = await openSql({ databaseUrl: env.DATABASE_URL, dataDir: '.data/control-tower/db' });
 *   const store = await createMetadataStore(sql);        // applies migrations, listens for revision bumps
 *   await store.ensureCells(config.cells);
 *   const artifacts = createLocalArtifactStore('.data/control-tower/bundles');
 *   ...
 *   await store.close(); await sql.close();
 */
export { openSql, openPglite, openPostgres, type Sql, type SqlQueryable, type SqlOptions } from './sql.ts';
export { migrate, loadMigrations, type Migration } from './migrate.ts';
export { createMetadataStore, type MetadataStoreOptions } from './metadata-store.ts';
export type * from './metadata-types.ts';
export { ROLES } from './metadata-types.ts';
export type * from './rollout-types.ts';
export { FINISHED, ROLLOUT_STATES } from './rollout-types.ts';
export { createLocalArtifactStore, checkArtifact, sha256Hex, type ArtifactStore } from './artifact-store.ts';
export { createS3ArtifactStore, type S3ArtifactStoreOptions } from './s3-artifact-store.ts';
export { REVISION_CHANNEL } from './change-context.ts';
