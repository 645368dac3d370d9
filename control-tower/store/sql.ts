/**
 * The SQL seam under the control tower's metadata: one small interface, two implementations that run the same SQL.
 * PGlite (PostgreSQL compiled to WebAssembly, in process) is the embedded default; a real PostgreSQL server is used
 * when a database URL is configured. Parameters are positional (`$1`, `$2`, ...). Value types as returned by both:
 * text → string, int4 → number, int8 → string or bigint or number (convert with `Number`), jsonb → parsed JSON,
 * timestamptz → Date, boolean → boolean.
 */
import { openPglite } from './pglite-sql.ts';
import { openPostgres } from './postgres-sql.ts';

/** What a statement can run on: the database itself or an open transaction. */
export interface SqlQueryable {
  /** Runs one statement with positional parameters and returns its rows. Rejects with the driver's error. */
  query<T = Record<string, unknown>>(text: string, params?: readonly unknown[]): Promise<T[]>;
  /** Runs a script of one or more statements without parameters (migrations). */
  exec(text: string): Promise<void>;
}

export interface Sql extends SqlQueryable {
  readonly kind: 'pglite' | 'postgres';
  /**
   * Runs `fn` in one transaction (READ COMMITTED; take row locks with SELECT ... FOR UPDATE where order matters):
   * committed when `fn` resolves, rolled back when it rejects (the rejection passes through). On PostgreSQL a
   * transaction that fails with a serialization failure or a deadlock is retried from the start (up to 3 attempts),
   * so `fn` must have no side effects outside `tx`. On PGlite transactions and queries run one at a time.
   * Never call the outer `Sql` from inside `fn`: on PGlite that waits for the transaction itself.
   */
  transaction<T>(fn: (tx: SqlQueryable) => Promise<T>): Promise<T>;
  /**
   * Subscribes to NOTIFY on `channel` (payloads sent by `pg_notify` from any connection, delivered after the
   * sender's commit). Resolves once listening; the returned function unsubscribes. On PostgreSQL a dedicated
   * connection listens and reconnects after an error (notifications sent while it is away are lost).
   */
  listen(channel: string, onPayload: (payload: string) => void): Promise<() => Promise<void>>;
  /** Closes the database (PGlite) or the pool (PostgreSQL). Idempotent. */
  close(): Promise<void>;
}

export interface SqlOptions {
  /** A PostgreSQL URL (`postgres://user:pass@host:port/db`): use that server. */
  databaseUrl?: string;
  /** Without a URL: the PGlite data directory (created on first open, ~3-4 s for initdb); absent: in memory. */
  dataDir?: string;
  /** PostgreSQL pool size; default 10. */
  maxConnections?: number;
}

/** Opens the database the options name: PostgreSQL when `databaseUrl` is set, else PGlite. */
export async function openSql(options: SqlOptions): Promise<Sql> {
  if (options.databaseUrl) {
    return openPostgres({ url: options.databaseUrl, ...(options.maxConnections ? { max: options.maxConnections } : {}) });
  }
  return openPglite(options.dataDir ? { dataDir: options.dataDir } : {});
}

export { openPglite, openPostgres };
