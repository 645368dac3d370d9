/** The embedded `Sql`: PGlite in this process, file-backed under a data directory or in memory. */
import { mkdir } from 'node:fs/promises';
import { PGlite, type Transaction } from '@electric-sql/pglite';
import type { Sql, SqlQueryable } from './sql.ts';

/** Opens (and on first use initialises) a PGlite database; `dataDir` absent → in memory, gone at close. */
export async function openPglite(options: { dataDir?: string } = {}): Promise<Sql> {
  if (options.dataDir) await mkdir(options.dataDir, { recursive: true });
  const db = await PGlite.create(options.dataDir);
  let closed: Promise<void> | undefined;

  function wrap(q: PGlite | Transaction): SqlQueryable {
    return {
      async query<T>(text: string, params?: readonly unknown[]): Promise<T[]> {
        const result = await q.query<T>(text, params ? [...params] : undefined);
        return result.rows;
      },
      async exec(text: string): Promise<void> {
        await q.exec(text);
      },
    };
  }
  const outer = wrap(db);

  return {
    kind: 'pglite',
    query: outer.query,
    exec: outer.exec,
    transaction<T>(fn: (tx: SqlQueryable) => Promise<T>): Promise<T> {
      return db.transaction((tx) => fn(wrap(tx)));
    },
    async listen(channel, onPayload) {
      const unlisten = await db.listen(channel, onPayload);
      return async function unlistenPglite() {
        if (!db.closed) await unlisten();
      };
    },
    close() {
      closed ??= db.close();
      return closed;
    },
  };
}
