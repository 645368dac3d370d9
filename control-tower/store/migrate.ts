/**
 * Schema migrations: the numbered SQL files in ./migrations (`0001_name.sql`, ...), applied in order, each once,
 * each in its own transaction together with its row in `schema_migrations`. Safe to run at every start and from
 * several processes at once: a transaction-scoped advisory lock makes concurrent starters wait for each other.
 */
import { readdir, readFile } from 'node:fs/promises';
import type { Sql } from './sql.ts';

const MIGRATIONS_DIR = new URL('./migrations/', import.meta.url);
/** Advisory lock key for migrations (any constant shared by every starter). */
const LOCK_KEY = 7_406_001;

export interface Migration {
  readonly id: number;
  readonly name: string;
  readonly sql: string;
}

/** The migrations shipped with this code, in order. Throws on a misnamed file or a duplicate number. */
export async function loadMigrations(dir: URL = MIGRATIONS_DIR): Promise<Migration[]> {
  const files = (await readdir(dir)).filter((f) => f.endsWith('.sql')).sort();
  const out: Migration[] = [];
  for (const file of files) {
    const m = /^(\d{4})_([a-z0-9_]+)\.sql$/.exec(file);
    if (!m) throw new Error(`migration file ${file} must be named NNNN_name.sql`);
    const id = Number(m[1]);
    if (out.some((x) => x.id === id)) throw new Error(`two migrations numbered ${id}`);
    out.push({ id, name: m[2]!, sql: await readFile(new URL(file, dir), 'utf8') });
  }
  return out;
}

/** Applies the migrations not applied yet; resolves with the ids it applied (empty when up to date). */
export async function migrate(sql: Sql, migrations?: readonly Migration[]): Promise<number[]> {
  const all = migrations ?? (await loadMigrations());
  const applied: number[] = [];
  for (const migration of all) {
    const done = await sql.transaction(async (tx) => {
      await tx.query('SELECT pg_advisory_xact_lock($1)', [LOCK_KEY]);
      await tx.exec(`CREATE TABLE IF NOT EXISTS schema_migrations (
        id integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())`);
      const rows = await tx.query('SELECT 1 FROM schema_migrations WHERE id = $1', [migration.id]);
      if (rows.length > 0) return false;
      await tx.exec(migration.sql);
      await tx.query('INSERT INTO schema_migrations (id, name) VALUES ($1, $2)', [migration.id, migration.name]);
      return true;
    });
    if (done) applied.push(migration.id);
  }
  return applied;
}
