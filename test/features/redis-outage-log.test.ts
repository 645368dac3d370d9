/**
 * The gateway's feature store logs each Redis outage and recovery once, with what it does about it, against a
 * private redis-server that dies, comes back, freezes (SIGSTOP) and thaws. Counts log lines while reads go on.
 */
import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { loadConfig } from '../../gateway/config.ts';
import { createFeatureStore } from '../../gateway/parts.ts';
import type { FeatureStore } from '../../execution/feature-store.ts';
import { RedisProcess, sleep } from './redis-process.ts';

const lines: { level: number; msg: string; reason?: string }[] = [];
const sink = new Writable({
  write(chunk: Buffer, _enc, done) {
    for (const l of chunk.toString().split('\n')) if (l.trim()) lines.push(JSON.parse(l) as (typeof lines)[number]);
    done();
  },
});
const logger = pino({ level: 'info' }, sink);
const down = () => lines.filter((l) => l.msg.startsWith('feature store: redis unavailable'));
const back = () => lines.filter((l) => l.msg.startsWith('feature store: redis back'));

let redis: RedisProcess;
let store: FeatureStore;
/** Reads every 20 ms, as traffic would (a frozen server is only noticed while commands wait). */
let reader: NodeJS.Timeout;

async function until(check: () => boolean, ms: number, what: string): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}: ${JSON.stringify(lines)}`);
    await sleep(50);
  }
}

beforeAll(async () => {
  redis = await RedisProcess.start();
  store = await createFeatureStore(loadConfig({ REDIS_URL: redis.url }), logger);
  reader = setInterval(() => void store.read([{ key: 'sibyl:r:1', fields: ['a'] }], 5).catch(() => {}), 20);
}, 30_000);

afterAll(async () => {
  clearInterval(reader);
  await store?.close();
  await redis?.dispose();
});

describe('feature store outage log', () => {
  it('says once that Redis is down and what the gateway does, and once that it is back: killed, then frozen', async () => {
    await until(() => store.healthy, 10_000, 'the first connection');
    expect(down()).toHaveLength(0);

    await redis.stop();
    await until(() => down().length === 1, 10_000, 'the outage line');
    // Reconnection attempts keep failing meanwhile: still one line.
    await sleep(1500);
    expect(down()).toHaveLength(1);
    expect(down()[0]!.msg).toContain('declared defaults');
    await redis.start();
    await until(() => back().length === 1, 10_000, 'the recovery line');

    redis.freeze();
    try {
      await until(() => down().length === 2, 15_000, 'the frozen server to be noticed');
      await sleep(1500);
      expect(down()).toHaveLength(2);
    } finally {
      redis.thaw();
    }
    await until(() => back().length === 2, 15_000, 'the recovery after the thaw');
    await sleep(500);
    console.log(`redis outage log: ${down().length} down line(s), ${back().length} back line(s), ${lines.length} line(s) in all`);
    expect(down()).toHaveLength(2);
    expect(back()).toHaveLength(2);
  }, 90_000);
});
