/**
 * Seeds Redis with the feature population (models/features.jsonl) under a key prefix: with `sibyl features load`
 * (cli/sibyl.ts) when the CLI is present, else with a pipelined HSET here (same layout: `{prefix}:{entity}:{id}`,
 * one field per feature, values as strings). Returns how it was done and how many entities were written.
 */
import { existsSync } from 'node:fs';
import { Redis } from 'ioredis';
import { readPopulation } from './population.ts';
import { run } from './processes.ts';

export async function seedRedis(url: string, prefix: string, modelsDir = 'models'): Promise<string> {
  if (existsSync('cli/sibyl.ts')) {
    try {
      const out = await run('node', ['cli/sibyl.ts', 'features', 'load', `${modelsDir}/features.jsonl`, '--redis-url', url, '--prefix', prefix]);
      return `sibyl features load: ${out.trim()}`;
    } catch (err) {
      process.stderr.write(`sibyl features load failed, seeding directly: ${(err as Error).message.split('\n')[0]}\n`);
    }
  }
  const pop = readPopulation(modelsDir);
  const redis = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 1 });
  try {
    await redis.connect();
    const p = redis.pipeline();
    for (const r of pop.rows) p.hset(`${prefix}:${r.entity}:${r.id}`, Object.fromEntries(Object.entries(r.features).map(([k, v]) => [k, String(v)])));
    const results = (await p.exec()) ?? [];
    const failed = results.find(([err]) => err);
    if (failed) throw failed[0];
    return `loadtest seeder: ${pop.rows.length} entities`;
  } finally {
    redis.disconnect();
  }
}
