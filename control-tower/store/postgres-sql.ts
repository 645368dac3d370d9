/** The `Sql` for a real PostgreSQL server: a node-postgres pool, one client per transaction, a listener client. */
import pg from 'pg';
import type { Sql, SqlQueryable } from './sql.ts';

/** SQLSTATEs after which a whole transaction may simply run again. */
const RETRYABLE = new Set(['40001', '40P01']); // serialization_failure, deadlock_detected
const ATTEMPTS = 3;

/** Opens a pool to `url` (connections are made lazily: the first query fails when the server is away). */
export function openPostgres(options: { url: string; max?: number }): Sql {
  const pool = new pg.Pool({ connectionString: options.url, max: options.max ?? 10 });
  // An idle client that loses its server emits here; without a handler it would crash the process.
  pool.on('error', () => {});
  const listeners = new Map<string, Set<(payload: string) => void>>();
  let listener: pg.Client | undefined;
  let listenerReady: Promise<pg.Client> | undefined;
  let closing = false;
  let closed: Promise<void> | undefined;

  function wrap(q: pg.Pool | pg.PoolClient): SqlQueryable {
    return {
      async query<T>(text: string, params?: readonly unknown[]): Promise<T[]> {
        const result = await q.query(text, params ? [...params] : undefined);
        return result.rows as T[];
      },
      async exec(text: string): Promise<void> {
        await q.query(text);
      },
    };
  }
  const outer = wrap(pool);

  async function connectListener(): Promise<pg.Client> {
    const client = new pg.Client({ connectionString: options.url });
    client.on('notification', (msg) => {
      for (const fn of listeners.get(msg.channel) ?? []) fn(msg.payload ?? '');
    });
    client.on('error', () => {
      // Reconnect in the background and listen again on every channel.
      client.end().catch(() => {});
      if (listener === client) {
        listener = undefined;
        listenerReady = undefined;
        if (!closing && listeners.size > 0) setTimeout(() => void ensureListener().catch(() => {}), 1000).unref();
      }
    });
    await client.connect();
    for (const channel of listeners.keys()) await client.query(`LISTEN ${quoteIdent(channel)}`);
    listener = client;
    return client;
  }
  function ensureListener(): Promise<pg.Client> {
    listenerReady ??= connectListener().catch((err: unknown) => {
      listenerReady = undefined;
      throw err;
    });
    return listenerReady;
  }

  return {
    kind: 'postgres',
    query: outer.query,
    exec: outer.exec,
    async transaction<T>(fn: (tx: SqlQueryable) => Promise<T>): Promise<T> {
      for (let attempt = 1; ; attempt++) {
        const client = await pool.connect();
        let broken = false;
        try {
          await client.query('BEGIN');
          const result = await fn(wrap(client));
          await client.query('COMMIT');
          return result;
        } catch (err) {
          await client.query('ROLLBACK').catch(() => {
            broken = true;
          });
          const code = (err as { code?: unknown }).code;
          if (attempt < ATTEMPTS && typeof code === 'string' && RETRYABLE.has(code)) continue;
          throw err;
        } finally {
          client.release(broken);
        }
      }
    },
    async listen(channel, onPayload) {
      let set = listeners.get(channel);
      const first = !set;
      if (!set) listeners.set(channel, (set = new Set()));
      set.add(onPayload);
      const client = await ensureListener();
      if (first && listener === client) await client.query(`LISTEN ${quoteIdent(channel)}`);
      return async function unlistenPostgres() {
        const current = listeners.get(channel);
        if (!current?.delete(onPayload) || current.size > 0) return;
        listeners.delete(channel);
        if (listener && !closing) await listener.query(`UNLISTEN ${quoteIdent(channel)}`).catch(() => {});
      };
    },
    close() {
      closing = true;
      closed ??= (async () => {
        const client = listener;
        listener = undefined;
        if (client) await client.end().catch(() => {});
        await pool.end();
      })();
      return closed;
    },
  };
}

function quoteIdent(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}
