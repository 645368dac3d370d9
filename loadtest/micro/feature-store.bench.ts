/**
 * Feature-store reads against the real Redis: 3 lookups x 7 fields per read (one request's enrichment), with
 * 1, 16 and 64 concurrent readers, side by side in one run:
 *   memory          the in-process store (floor: no network)
 *   raw-pipeline    a bare ioredis client, one explicit pipeline of 3 HMGET per read, no deadline, no wrapper
 *                   (what a general client costs; the store has its own connection,
 *                   gateway/features/resp-connection.ts)
 *   store-auto      createRedisFeatureStore, auto-pipelining on (the default): concurrent reads share writes
 *   store-noauto    createRedisFeatureStore, auto-pipelining off: one explicit pipeline per read
 *   store-auto-nct  auto-pipelining on, commandTimeoutMs 0 (host deadline and socket timeout only)
 * Rounds are interleaved (variant order rotates) and the median round's throughput is reported; latencies are
 * merged over all rounds. `cpu µs/read` is this process's user+system CPU per read (Redis's own CPU excluded).
 *
 * Needs the Redis of scripts/services/redis.sh (or SIBYL_TEST_REDIS_URL).
 * Run: node loadtest/micro/feature-store.bench.ts [msPerRound=1000] [rounds=3]
 */
import { Redis } from 'ioredis';
import type { FeatureLookup, FeatureStore } from '../../execution/feature-store.ts';
import { createMemoryFeatureStore } from '../../gateway/features/memory-feature-store.ts';
import { createRedisFeatureStore } from '../../gateway/features/redis-feature-store.ts';
import { newHistogram, recordMs, summarize, type Histogram } from '../lib/histogram.ts';

const MS_PER_ROUND = Number(process.argv[2] ?? 1000);
const ROUNDS = Number(process.argv[3] ?? 3);
const CONCURRENCY = [1, 16, 64];
const URL = process.env.SIBYL_TEST_REDIS_URL ?? 'redis://127.0.0.1:6399';
const PREFIX = `sibyl-bench-${process.pid}`;
const ENTITIES = ['restaurant', 'customer', 'area'];
const IDS = 1000;
const FIELDS = ['f0', 'f1', 'f2', 'f3', 'f4', 'f5', 'f6'];
const TIMEOUT_MS = 1000;

type Reader = (lookups: readonly FeatureLookup[]) => Promise<unknown>;

/** The lookups of one request: one entity of each kind, ids spread over the key space. */
function lookupsFor(n: number): FeatureLookup[] {
  return ENTITIES.map((entity, k) => ({ key: `${PREFIX}:${entity}:${(n * 7 + k * 13) % IDS}`, fields: FIELDS }));
}

async function seed(store: FeatureStore): Promise<void> {
  const entries = [];
  for (const entity of ENTITIES) {
    for (let id = 0; id < IDS; id++) {
      entries.push({ key: `${PREFIX}:${entity}:${id}`, fields: Object.fromEntries(FIELDS.map((f, j) => [f, String(id * 0.5 + j)])) });
    }
  }
  await store.write(entries);
}

/** `concurrency` readers loop for `ms`; returns reads per second and CPU µs per read, records latencies. */
async function round(read: Reader, concurrency: number, ms: number, hist: Histogram | undefined): Promise<{ rps: number; cpuUs: number }> {
  const requests = Array.from({ length: 64 }, (_, n) => lookupsFor(n));
  let done = 0;
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  const end = t0 + ms;
  async function reader(r: number): Promise<void> {
    let n = r;
    while (performance.now() < end) {
      const start = performance.now();
      await read(requests[n++ & 63]!);
      if (hist) recordMs(hist, performance.now() - start);
      done++;
    }
  }
  await Promise.all(Array.from({ length: concurrency }, (_, r) => reader(r)));
  const elapsed = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  return { rps: (done / elapsed) * 1000, cpuUs: (cpu.user + cpu.system) / done };
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

async function main(): Promise<void> {
  const memory = createMemoryFeatureStore();
  const auto = createRedisFeatureStore({ url: URL });
  const noauto = createRedisFeatureStore({ url: URL, autoPipelining: false });
  const autoNct = createRedisFeatureStore({ url: URL, commandTimeoutMs: 0 });
  const raw = new Redis(URL, { enableOfflineQueue: true });
  await Promise.all([auto.ready(10_000), noauto.ready(10_000), autoNct.ready(10_000)]);
  await Promise.all([seed(memory), seed(auto)]);

  const variants: { name: string; read: Reader }[] = [
    { name: 'memory', read: (l) => memory.read(l, TIMEOUT_MS) },
    {
      name: 'raw-pipeline',
      read: (l) => {
        const p = raw.pipeline();
        for (const x of l) p.hmget(x.key, ...x.fields);
        return p.exec();
      },
    },
    { name: 'store-auto', read: (l) => auto.read(l, TIMEOUT_MS) },
    { name: 'store-noauto', read: (l) => noauto.read(l, TIMEOUT_MS) },
    { name: 'store-auto-nct', read: (l) => autoNct.read(l, TIMEOUT_MS) },
  ];

  // Check the answers once before timing anything.
  const check = (await auto.read(lookupsFor(1), TIMEOUT_MS)) as string[][];
  if (check[0]?.[6] !== String(((1 * 7) % IDS) * 0.5 + 6)) throw new Error(`unexpected answer ${JSON.stringify(check)}`);

  console.log(`feature store reads: ${ENTITIES.length} lookups x ${FIELDS.length} fields, ${URL}, node ${process.version}, ${ROUNDS} rounds x ${MS_PER_ROUND} ms`);
  console.log('concurrency  variant         reads/s   cpu µs/read  p50 ms  p99 ms  p99.9 ms');
  for (const c of CONCURRENCY) {
    for (const v of variants) await round(v.read, c, Math.min(200, MS_PER_ROUND), undefined); // warm-up
    const results = new Map(variants.map((v) => [v.name, { rps: [] as number[], cpu: [] as number[], hist: newHistogram() }]));
    for (let r = 0; r < ROUNDS; r++) {
      for (let k = 0; k < variants.length; k++) {
        const v = variants[(k + r) % variants.length]!;
        const res = results.get(v.name)!;
        const { rps, cpuUs } = await round(v.read, c, MS_PER_ROUND, res.hist);
        res.rps.push(rps);
        res.cpu.push(cpuUs);
      }
    }
    for (const v of variants) {
      const res = results.get(v.name)!;
      const s = summarize(res.hist);
      console.log(
        `${String(c).padStart(11)}  ${v.name.padEnd(14)} ${median(res.rps).toFixed(0).padStart(9)} ${median(res.cpu).toFixed(1).padStart(12)} ${s.p50.toFixed(3).padStart(7)} ${s.p99.toFixed(3).padStart(7)} ${s.p999.toFixed(3).padStart(9)}`,
      );
    }
  }

  let cursor = '0';
  do {
    const [next, keys] = await raw.scan(cursor, 'MATCH', `${PREFIX}:*`, 'COUNT', 1000);
    if (keys.length) await raw.del(...keys);
    cursor = next;
  } while (cursor !== '0');
  await Promise.all([auto.close(), noauto.close(), autoNct.close(), memory.close(), raw.quit()]);
}

await main();
