/**
 * The services a benchmark tool runs a gateway against (Redis, and the Kafka broker unless the log is off), started
 * from scripts/services and placed as the suite places them: pinned to the load core, Redis in the real-time class
 * and the broker at nice 19. One place for every tool, so that a figure from the A/B, the long-task, the by-thread,
 * the overload or the gRPC tool was measured in the setting of the suite's (loadtest/README.md, "The standard
 * suite"). Left where the scheduler puts them, Redis and the broker run on the gateway's core too.
 */
import { run, setAffinity, setPriority } from './processes.ts';
import { BENCH_LOAD_CORE } from './bench-gateway.ts';

export interface BenchServices {
  /** Redis's pid, when known (the suite samples its CPU). */
  readonly redisPid: number | undefined;
  /** What could not be placed, for the report. */
  readonly notes: readonly string[];
  /** Gives both their earlier cores and scheduling class back. Call once, at the end. */
  restore(): void;
}

export async function startBenchServices(opts: { kafka: boolean }): Promise<BenchServices> {
  await run('bash', ['scripts/services/redis.sh', 'start']);
  if (opts.kafka) await run('bash', ['scripts/services/kafka.sh', 'start']);
  const redisPid = Number((await run('bash', ['-c', 'cat .data/services/redis/redis.pid']).catch(() => '')).trim()) || undefined;
  const kafkaPid = opts.kafka ? Number(/pid=(\d+)/.exec(await run('bash', ['scripts/services/kafka.sh', 'status']).catch(() => ''))?.[1]) : NaN;
  const notes: string[] = [];
  const undo: (() => void)[] = [];
  const services: [string, number][] = [['redis', redisPid ?? 0], ...(opts.kafka ? ([['kafka', kafkaPid]] as [string, number][]) : [])];
  for (const [name, pid] of services) {
    if (!pid) {
      notes.push(`${name}: pid unknown, not pinned`);
      continue;
    }
    const before = setAffinity(pid, BENCH_LOAD_CORE);
    if (before) undo.push(() => void setAffinity(pid, before));
    // In a deployment Redis and the Kafka broker have hosts of their own; here they share core 0 with the load
    // generator. Redis runs ahead of the generator (real-time class) so that a busy generator does not make it answer
    // late; the broker, whose work is off the request path, yields to both (nice 19).
    const restore = setPriority(pid, name === 'redis' ? 'realtime' : 'background');
    if (restore) undo.push(restore);
    else notes.push(`${name}: scheduling priority could not be set (chrt/renice missing or not allowed)`);
  }
  let restored = false;
  return {
    redisPid,
    notes,
    restore() {
      if (restored) return;
      restored = true;
      for (const u of undo) u();
    },
  };
}
