import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll } from 'vitest';
import { openPostgres, type Sql } from '../../../control-tower/store/sql.ts';
import { describeMetadataStore } from './metadata-store.case.ts';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const URL_ = process.env.SIBYL_TEST_DATABASE_URL ?? 'postgres://sibyl@127.0.0.1:25432/sibyl_test';
let admin: Sql;

beforeAll(() => {
  // Started by scripts/test.sh; when this file runs alone, start the server here (idempotent).
  if (!process.env.SIBYL_TEST_DATABASE_URL) execFileSync('bash', ['scripts/services/postgres.sh', 'start'], { cwd: ROOT, stdio: 'ignore' });
  admin = openPostgres({ url: URL_, max: 2 });
});
afterAll(async () => {
  await admin?.close();
});

/** A URL for another database on the same server. */
function withDatabase(url: string, name: string): string {
  const u = new URL(url);
  u.pathname = `/${name}`;
  return u.toString();
}

describeMetadataStore('PostgreSQL', {
  async fresh() {
    const name = `sibyl_t_${randomBytes(6).toString('hex')}`;
    await admin.exec(`CREATE DATABASE ${name}`);
    const url = withDatabase(URL_, name);
    const opened: Sql[] = [openPostgres({ url })];
    return {
      sql: opened[0]!,
      async connectAgain() {
        const sql = openPostgres({ url });
        opened.push(sql);
        return sql;
      },
      async drop() {
        for (const sql of opened) await sql.close();
        await admin.exec(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      },
    };
  },
});
