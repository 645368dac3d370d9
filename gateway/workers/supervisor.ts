/**
 * The supervisor of a gateway with several workers (SIBYL_WORKERS > 1; ARCHITECTURE.md, "Workers"). It serves no
 * request itself: it starts N worker processes, each a whole gateway (`gateway/main.ts` with SIBYL_WORKER_INDEX)
 * listening on the same two ports with SO_REUSEPORT, so the kernel spreads connections over them with no hop
 * through this process; and it
 *
 * - checks that the ports are free before it starts any (SO_REUSEPORT would let a second gateway on the same ports
 *   share them silently), and hands the write-ahead logs of workers that no longer exist to those that do
 *   (wal-adoption.ts);
 * - restarts a worker that exits while the pod is not stopping, after 0.25 s, doubling to 10 s while it keeps
 *   failing within 30 s of its start; the replacement has the same index, hence the same write-ahead log, bundle
 *   cache and replica name, and sends what its predecessor had not;
 * - tells every worker whether the whole pod is ready (every worker ready, not draining), which each serves on
 *   its readiness endpoints and gRPC health;
 * - collects every worker's metrics into one exposition for the worker asked for /metrics (pod-metrics.ts), with
 *   its own `sibyl_worker_restarts_total`;
 * - on `stop` (SIGTERM or SIGINT in main.ts) sends SIGTERM to every worker, which drains as a single gateway does
 *   (gateway/transport/drain.ts), and resolves with 0 once all have exited 0; workers still running at the drain
 *   timeout plus 10 s are killed. SIGHUP is passed on.
 *
 * A worker whose IPC channel closes (the supervisor died) drains and exits (worker-link.ts).
 */
import { fork, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import type { Logger } from 'pino';
import type { Config } from '../config.ts';
import { mergeExpositions } from './pod-metrics.ts';
import type { FromWorker, ToWorker } from './protocol.ts';
import { adoptOrphanLogs } from './wal-adoption.ts';

/** How long the supervisor waits for each worker's exposition, ms. */
const COLLECT_TIMEOUT_MS = 3_000;
/** Beyond the drain timeout: how long workers get to exit after SIGTERM before they are killed, ms. */
const EXIT_MARGIN_MS = 10_000;

export interface SupervisorOptions {
  readonly config: Config;
  readonly logger: Logger;
  /** The script each worker runs with this process's Node options (default: this process's own script). */
  readonly entry?: string;
  /** Restart delays, ms: the first, the most, and how long a worker must run for the delay to start over. */
  readonly restart?: { readonly firstMs: number; readonly maxMs: number; readonly stableMs: number };
}

export interface Supervisor {
  /** Worker pids by index (undefined while a worker is being restarted). */
  pids(): (number | undefined)[];
  /** Passes a signal on to every worker (SIGHUP: read the models directory again). */
  signal(signal: NodeJS.Signals): void;
  /** Drains every worker (SIGTERM); resolves with the exit code for the pod: 0 when every worker exited 0. Once. */
  stop(): Promise<number>;
  /** Kills every worker at once (a second SIGTERM). */
  kill(): void;
}

interface Slot {
  readonly index: number;
  child: ChildProcess | undefined;
  ready: boolean;
  /** Draining, its listeners closed. */
  stoppedAccepting: boolean;
  startedAt: number;
  delayMs: number;
  restarts: number;
  exitCode: number | null;
  timer: NodeJS.Timeout | undefined;
}

interface Collection {
  readonly asker: Slot;
  readonly askId: number;
  readonly waiting: Set<number>;
  readonly texts: Map<number, string>;
  readonly timer: NodeJS.Timeout;
}

export async function startSupervisor(o: SupervisorOptions): Promise<Supervisor> {
  const { config, logger } = o;
  const n = config.workers;
  const restart = o.restart ?? { firstMs: 250, maxMs: 10_000, stableMs: 30_000 };
  const entry = o.entry ?? process.argv[1]!;

  for (const port of [config.httpPort, config.grpcPort]) await checkFree(config.host, port);
  if (config.predictionLog.kind === 'kafka') {
    const base = config.predictionLog.walDir;
    for (const a of adoptOrphanLogs(base, Array.from({ length: n }, (_, i) => `${base}/${i}`))) {
      logger.warn(a, 'write-ahead log of a worker that no longer exists handed to a worker that does; its unacknowledged records will be sent');
    }
  }

  const slots: Slot[] = Array.from({ length: n }, (_, index) => ({ index, child: undefined, ready: false, stoppedAccepting: false, startedAt: 0, delayMs: restart.firstMs, restarts: 0, exitCode: null, timer: undefined }));
  let stopping: Promise<number> | undefined;
  let podReady = false;
  let nextCollection = 0;
  const collections = new Map<number, Collection>();
  let allExited: (() => void) | undefined;

  const send = (slot: Slot, m: ToWorker): void => {
    const c = slot.child;
    if (c?.connected) c.send(m, (err) => err && logger.debug({ err, worker: slot.index }, 'message to a worker not delivered'));
  };
  const updatePodReady = (force?: Slot): void => {
    const ready = stopping === undefined && slots.every((s) => s.child !== undefined && s.ready);
    if (ready !== podReady) {
      podReady = ready;
      logger.info({ ready }, ready ? 'every worker ready' : 'gateway not ready');
      for (const s of slots) send(s, { type: 'pod-ready', ready });
    } else if (force) send(force, { type: 'pod-ready', ready });
  };

  function spawnWorker(slot: Slot): void {
    slot.timer = undefined;
    const child = fork(entry, process.argv.slice(2), {
      env: { ...process.env, SIBYL_WORKER_INDEX: String(slot.index) },
      execArgv: process.execArgv,
      stdio: 'inherit',
    });
    slot.child = child;
    slot.ready = false;
    slot.stoppedAccepting = false;
    slot.startedAt = performance.now();
    logger.info({ worker: slot.index, workerPid: child.pid }, 'worker started');
    child.on('message', (m: FromWorker) => onMessage(slot, m));
    child.on('error', (err) => logger.error({ err, worker: slot.index }, 'worker process error'));
    child.once('exit', (code, signal) => onExit(slot, child, code, signal));
  }

  function onMessage(slot: Slot, m: FromWorker): void {
    switch (m.type) {
      case 'ready':
        slot.ready = m.ready;
        updatePodReady(slot);
        return;
      case 'pod-metrics':
        collect(slot, m.id);
        return;
      case 'stopped-accepting':
        slot.stoppedAccepting = true;
        // A worker stopping alone leaves at once: the others keep accepting its clients.
        if (stopping === undefined) send(slot, { type: 'all-stopped-accepting' });
        else allStoppedAcceptingCheck();
        return;
      case 'metrics': {
        const c = collections.get(m.id);
        if (!c || !c.waiting.delete(slot.index)) return;
        if (m.text !== null) c.texts.set(slot.index, m.text);
        if (c.waiting.size === 0) answer(m.id);
      }
    }
  }

  /** Every worker of the stopping pod has closed its listeners: they may move their clients away now. */
  function allStoppedAcceptingCheck(): void {
    if (stopping === undefined || !slots.every((s) => s.child === undefined || s.stoppedAccepting)) return;
    for (const s of slots) if (s.child) send(s, { type: 'all-stopped-accepting' });
  }

  function collect(asker: Slot, askId: number): void {
    const id = ++nextCollection;
    const live = slots.filter((s) => s.child?.connected);
    const c: Collection = { asker, askId, waiting: new Set(live.map((s) => s.index)), texts: new Map(), timer: setTimeout(() => answer(id), COLLECT_TIMEOUT_MS) };
    collections.set(id, c);
    for (const s of live) send(s, { type: 'collect', id });
  }

  function answer(id: number): void {
    const c = collections.get(id);
    if (!c) return;
    collections.delete(id);
    clearTimeout(c.timer);
    const parts = [...c.texts].sort(([a], [b]) => a - b).map(([worker, text]) => ({ worker, text }));
    send(c.asker, { type: 'pod-metrics', id: c.askId, text: mergeExpositions(parts, ownMetrics()) });
  }

  function ownMetrics(): string {
    return [
      '# HELP sibyl_workers Request-path processes this gateway runs (SIBYL_WORKERS).',
      '# TYPE sibyl_workers gauge',
      `sibyl_workers ${n}`,
      '# HELP sibyl_worker_restarts_total Workers restarted by the supervisor after they exited.',
      '# TYPE sibyl_worker_restarts_total counter',
      ...slots.map((s) => `sibyl_worker_restarts_total{worker="${s.index}"} ${s.restarts}`),
    ].join('\n');
  }

  function onExit(slot: Slot, child: ChildProcess, code: number | null, signal: NodeJS.Signals | null): void {
    if (slot.child !== child) return;
    slot.child = undefined;
    slot.ready = false;
    slot.exitCode = code;
    for (const [id, c] of collections) if (c.waiting.delete(slot.index) && c.waiting.size === 0) answer(id);
    if (stopping) {
      logger.info({ worker: slot.index, workerPid: child.pid, code, signal }, 'worker exited');
      allStoppedAcceptingCheck();
      if (slots.every((s) => s.child === undefined)) allExited?.();
      return;
    }
    updatePodReady();
    const ranMs = performance.now() - slot.startedAt;
    slot.delayMs = ranMs >= restart.stableMs ? restart.firstMs : slot.delayMs;
    logger.error({ worker: slot.index, workerPid: child.pid, code, signal, ranMs: Math.round(ranMs), restartInMs: slot.delayMs }, 'worker exited; restarting it');
    slot.restarts++;
    slot.timer = setTimeout(() => spawnWorker(slot), slot.delayMs);
    slot.delayMs = Math.min(restart.maxMs, slot.delayMs * 2);
  }

  for (const slot of slots) spawnWorker(slot);

  return {
    pids: () => slots.map((s) => s.child?.pid),
    signal(signal) {
      for (const s of slots) s.child?.kill(signal);
    },
    stop() {
      stopping ??= (async () => {
        updatePodReady();
        for (const s of slots) {
          if (s.timer) clearTimeout(s.timer);
          s.timer = undefined;
        }
        const exited = new Promise<void>((resolve) => {
          allExited = resolve;
          if (slots.every((s) => s.child === undefined)) resolve();
        });
        for (const s of slots) s.child?.kill('SIGTERM');
        let timer: NodeJS.Timeout | undefined;
        const late = new Promise<'late'>((resolve) => (timer = setTimeout(resolve, config.drainTimeoutMs + EXIT_MARGIN_MS, 'late')));
        if ((await Promise.race([exited, late])) === 'late') {
          logger.error({ workers: slots.filter((s) => s.child).map((s) => s.index) }, 'workers still running after the drain timeout; killing them');
          for (const s of slots) s.child?.kill('SIGKILL');
          await exited;
          return 1;
        }
        clearTimeout(timer);
        return slots.every((s) => s.exitCode === 0) ? 0 : 1;
      })();
      return stopping;
    },
    kill() {
      for (const s of slots) s.child?.kill('SIGKILL');
    },
  };
}

/**
 * Fails when something listens on `port` already. Workers bind with SO_REUSEPORT, which would let them join
 * another process's group on the same port (one with SO_REUSEPORT too) and share its connections.
 */
async function checkFree(host: string, port: number): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    const s = createServer();
    s.once('error', (err: NodeJS.ErrnoException) =>
      reject(err.code === 'EADDRINUSE' ? new Error(`port ${port} on ${host} is in use: another process listens on it`) : err),
    );
    s.listen({ host, port, exclusive: true }, () => s.close(() => resolve()));
  });
}
