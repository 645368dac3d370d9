import { execFile, execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from './redis-process.ts';

const REDIS_URL = process.env.SIBYL_TEST_REDIS_URL ?? 'redis://127.0.0.1:6399';
const PREFIX = `sibyl-cli-test-${process.pid}-${Date.now().toString(36)}`;
const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const fixture = (name: string) => fileURLToPath(new URL(`./fixtures/${name}`, import.meta.url));

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `sibyl ...args` with this Node (24), as a user would run cli/sibyl.ts. */
function sibyl(...args: string[]): Promise<Run> {
  return new Promise((resolve) => {
    execFile(process.execPath, ['cli/sibyl.ts', ...args], { cwd: ROOT, env: { ...process.env, REDIS_URL: undefined } }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

describe('sibyl features load', () => {
  let redis: Redis;
  let tmp: string;
  beforeAll(async () => {
    if (!process.env.SIBYL_TEST_REDIS_URL) execFileSync('bash', ['scripts/services/redis.sh', 'start'], { cwd: ROOT, stdio: 'ignore' });
    redis = new Redis(REDIS_URL, { lazyConnect: true });
    await redis.connect();
    tmp = mkdtempSync(join(tmpdir(), 'sibyl-cli-'));
  });
  afterAll(async () => {
    const keys = await redis.keys(`${PREFIX}*`);
    if (keys.length) await redis.del(...keys);
    await redis.quit();
    rmSync(tmp, { recursive: true, force: true });
  });

  it('loads JSON lines into hashes under the prefix and reports what it wrote', async () => {
    const prefix = `${PREFIX}-jsonl`;
    const run = await sibyl('features', 'load', fixture('features.jsonl'), '--redis-url', REDIS_URL, '--prefix', prefix);
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(/loaded 3 entities \(7 fields\)/);
    expect(await redis.hgetall(`${prefix}:restaurant:r1`)).toEqual({ prep_time_avg_7d: '14.2', orders_last_30m: '11', cuisine: 'thai', is_open: 'true' });
    expect(await redis.hgetall(`${prefix}:restaurant:r2`)).toEqual({ prep_time_avg_7d: '9.5', orders_last_30m: '0' });
    expect(await redis.hgetall(`${prefix}:customer:42`)).toEqual({ orders_30d: '3' });
  });

  it('loads CSV, by extension or by --format, in several pipelined batches', async () => {
    const prefix = `${PREFIX}-csv`;
    const run = await sibyl('features', 'load', fixture('features.csv'), '--redis-url', REDIS_URL, '--prefix', prefix, '--batch-size', '2');
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(/loaded 3 entities \(6 fields\)/);
    expect(await redis.hgetall(`${prefix}:customer:42`)).toEqual({ cuisine: 'sushi, ramen' });

    const unnamed = join(tmp, 'features.txt');
    writeFileSync(unnamed, 'entity,id,score\nrestaurant,r9,0.5\n');
    const run2 = await sibyl('features', 'load', unnamed, '--format', 'csv', '--redis-url', REDIS_URL, '--prefix', prefix);
    expect(run2.code).toBe(0);
    expect(await redis.hget(`${prefix}:restaurant:r9`, 'score')).toBe('0.5');
  });

  it('loads a file larger than one batch completely', async () => {
    const prefix = `${PREFIX}-big`;
    const file = join(tmp, 'big.jsonl');
    const lines = Array.from({ length: 2500 }, (_, i) => JSON.stringify({ entity: 'restaurant', id: `r${i}`, features: { a: i, b: i / 2 } }));
    writeFileSync(file, lines.join('\n') + '\n');
    const run = await sibyl('features', 'load', file, '--redis-url', REDIS_URL, '--prefix', prefix);
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(/loaded 2500 entities \(5000 fields\)/);
    expect(await redis.hmget(`${prefix}:restaurant:r2499`, 'a', 'b')).toEqual(['2499', '1249.5']);
    expect((await redis.keys(`${prefix}:restaurant:*`)).length).toBe(2500);
  });

  it('fails on a bad row with its line and problem, and writes nothing', async () => {
    const prefix = `${PREFIX}-bad`;
    const run = await sibyl('features', 'load', fixture('bad-value.jsonl'), '--redis-url', REDIS_URL, '--prefix', prefix);
    expect(run.code).not.toBe(0);
    expect(run.stderr).toMatch(/bad-value\.jsonl:2: feature "prep_time_avg_7d" must be/);
    expect(await redis.exists(`${prefix}:restaurant:r1`)).toBe(0);

    const csv = await sibyl('features', 'load', fixture('bad-row.csv'), '--redis-url', REDIS_URL, '--prefix', prefix);
    expect(csv.code).not.toBe(0);
    expect(csv.stderr).toMatch(/bad-row\.csv:3: /);
    expect(await redis.exists(`${prefix}:restaurant:r1`)).toBe(0);
  });

  it('fails clearly on a missing file, a bad option and an unreachable Redis', async () => {
    const missing = await sibyl('features', 'load', join(tmp, 'nope.jsonl'), '--redis-url', REDIS_URL);
    expect(missing.code).not.toBe(0);
    expect(missing.stderr).toMatch(/nope\.jsonl: cannot read the file/);

    const badFormat = await sibyl('features', 'load', fixture('features.csv'), '--format', 'xml');
    expect(badFormat.code).not.toBe(0);
    expect(badFormat.stderr).toMatch(/Allowed choices are csv, jsonl/);

    const port = await freePort();
    const down = await sibyl('features', 'load', fixture('features.csv'), '--redis-url', `redis://127.0.0.1:${port}`, '--connect-timeout-ms', '500');
    expect(down.code).not.toBe(0);
    expect(down.stderr).toMatch(new RegExp(`cannot reach Redis at redis://127.0.0.1:${port}`));
  });
});
