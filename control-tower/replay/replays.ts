/**
 * Replays started from the control tower's API: each runs in a process of its own (replay/replay-child.ts), which
 * loads the candidate's bundle from the tower's store, reads the prediction log from KAFKA_BROKERS with a consumer
 * group of its own and reports back, so a candidate model that misbehaves, and the replay's CPU, stay out of the
 * tower. At most `maxRunning` run at once (more: RESOURCE_EXHAUSTED), each within `timeoutMs`. Jobs live in memory:
 * the last `keep` are listed, a tower restart forgets them.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { SibylError } from '../../core/errors.ts';
import type { ReplayReport } from '../../replay/replay.ts';
import type { ReplayChildMessage, ReplayChildRequest } from '../../replay/replay-child.ts';
import type { ArtifactStore, MetadataStore } from '../store/index.ts';

export interface ReplayRequest {
  /** The model whose live records are replayed. */
  readonly model: string;
  readonly candidate: { readonly model: string; readonly version: string };
  readonly cell?: string | undefined;
  readonly fromMs?: number | undefined;
  readonly toMs?: number | undefined;
  readonly limit?: number | undefined;
}

export interface ReplayJob {
  readonly id: string;
  readonly model: string;
  readonly candidate: { readonly model: string; readonly version: string };
  readonly filters: { readonly cell?: string; readonly from?: string; readonly to?: string; readonly limit?: number };
  readonly startedBy: string;
  readonly started: Date;
  status: 'running' | 'done' | 'failed';
  ended?: Date;
  progress: { records: number; rows: number };
  report?: ReplayReport;
  error?: { code: string; message: string };
}

export interface ReplaysOptions {
  readonly store: MetadataStore;
  readonly artifacts: ArtifactStore;
  /** The prediction log; no brokers: replays are refused (FAILED_PRECONDITION). */
  readonly brokers: readonly string[];
  readonly topic: string;
  /** Where candidates' zips are written for their process. */
  readonly workDir: string;
  /** Deadline of one replay process, ms (default 600 000). */
  readonly timeoutMs?: number;
  /** Replays running at once (default 1). */
  readonly maxRunning?: number;
  /** Finished jobs remembered (default 50). */
  readonly keep?: number;
}

export interface Replays {
  /** Starts a replay; resolves once its process is started. NOT_FOUND: no such candidate version. */
  start(request: ReplayRequest, actor: string): Promise<ReplayJob>;
  /** A job of `model`; NOT_FOUND when there is none. */
  get(model: string, id: string): ReplayJob;
  /** The jobs of `model`, newest first. */
  list(model: string): ReplayJob[];
  /** Kills running replays. */
  close(): Promise<void>;
}

const CHILD = new URL('../../replay/replay-child.ts', import.meta.url).pathname;

export function createReplays(o: ReplaysOptions): Replays {
  const jobs: ReplayJob[] = [];
  const running = new Map<string, ChildProcess>();
  const workDir = resolve(o.workDir);
  const timeoutMs = o.timeoutMs ?? 600_000;

  function finish(job: ReplayJob, outcome: { report: ReplayReport } | { error: { code: string; message: string } }): void {
    if (job.status !== 'running') return;
    job.ended = new Date();
    if ('report' in outcome) {
      job.status = 'done';
      job.report = outcome.report;
    } else {
      job.status = 'failed';
      job.error = outcome.error;
    }
    const done = jobs.filter((j) => j.status !== 'running');
    const keep = o.keep ?? 50;
    if (done.length > keep) for (const j of done.slice(keep)) jobs.splice(jobs.indexOf(j), 1);
  }

  return {
    async start(request, actor) {
      if (o.brokers.length === 0) throw new SibylError('FAILED_PRECONDITION', 'this control tower reads no prediction log: set KAFKA_BROKERS (and SIBYL_KAFKA_TOPIC) to start replays here, or run sibyl replay with --brokers');
      // Jobs still running, not processes: a job is done when its report arrives, a moment before its process has
      // exited, and a client that saw it done may start the next one at once.
      const active = jobs.reduce((n, j) => (j.status === 'running' ? n + 1 : n), 0);
      if (active >= (o.maxRunning ?? 1)) throw new SibylError('RESOURCE_EXHAUSTED', `${active} replay(s) running; try again when one has ended`);
      const version = await o.store.getVersion(request.candidate.model, request.candidate.version);
      const zip = await o.artifacts.get(version.sha256);
      if (!zip) throw new SibylError('NOT_FOUND', `the bundle of ${request.candidate.model}/${request.candidate.version} is missing from the store`);
      const job: ReplayJob = {
        id: randomUUID(),
        model: request.model,
        candidate: request.candidate,
        filters: {
          ...(request.cell ? { cell: request.cell } : {}),
          ...(request.fromMs !== undefined ? { from: new Date(request.fromMs).toISOString() } : {}),
          ...(request.toMs !== undefined ? { to: new Date(request.toMs).toISOString() } : {}),
          ...(request.limit !== undefined ? { limit: request.limit } : {}),
        },
        startedBy: actor,
        started: new Date(),
        status: 'running',
        progress: { records: 0, rows: 0 },
      };
      await mkdir(workDir, { recursive: true });
      const zipFile = join(workDir, `${job.id}.zip`);
      await writeFile(zipFile, zip, { mode: 0o600 });
      const childRequest: ReplayChildRequest = {
        zipFile,
        options: { model: request.model, cell: request.cell, fromMs: request.fromMs, toMs: request.toMs, limit: request.limit, brokers: [...o.brokers], topic: o.topic, groupId: `sibyl-replay-${job.id}` },
      };
      const child = fork(CHILD, [JSON.stringify(childRequest)], {
        execArgv: ['--disable-warning=ExperimentalWarning'],
        stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
        env: { ...process.env, NODE_OPTIONS: '' },
        serialization: 'json',
      });
      let stderr = '';
      child.stderr?.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-4096)));
      running.set(job.id, child);
      jobs.unshift(job);
      const timer = setTimeout(() => {
        finish(job, { error: { code: 'DEADLINE_EXCEEDED', message: `the replay took longer than ${timeoutMs} ms (SIBYL_REPLAY_TIMEOUT_MS)` } });
        child.kill('SIGKILL');
      }, timeoutMs);
      child.on('message', (m: ReplayChildMessage) => {
        if (m.kind === 'progress') job.progress = { records: m.records, rows: m.rows };
        else if (m.kind === 'done') finish(job, { report: m.report });
        else finish(job, { error: { code: m.code, message: m.message } });
      });
      child.on('close', (code, signal) => {
        clearTimeout(timer);
        running.delete(job.id);
        finish(job, { error: { code: 'INTERNAL', message: `the replay process ended (${signal ? `signal ${signal}` : `exit code ${code}`}) without a report${stderr ? `: ${stderr.trim().split('\n').pop()}` : ''}` } });
        void rm(zipFile, { force: true }).catch(() => undefined);
      });
      return job;
    },
    get(model, id) {
      const job = jobs.find((j) => j.id === id && j.model === model);
      if (!job) throw new SibylError('NOT_FOUND', `no replay ${id} of ${model}`);
      return job;
    },
    list: (model) => jobs.filter((j) => j.model === model),
    async close() {
      const ending = [...running.values()].map((c) => new Promise<void>((r) => (c.exitCode !== null ? r() : (c.once('close', () => r()), c.kill('SIGKILL')))));
      await Promise.all(ending);
    },
  };
}
