/**
 * Replay of logged traffic against a candidate version: the LIVE records of a model from the prediction log
 * (their rows' enriched features as the live version saw them, so no feature store is read and none needs to
 * travel in time) run through the one execution step (execution/execute.ts) on the candidate, as inline rows with
 * the `inlineOnly` store like a test case's, and compared with the logged outputs by the comparison shadows use
 * (execution/comparison.ts): agreement of labels, the distribution of absolute differences of numbers, latency and
 * errors; plus, per output, the rows that differ most.
 *
 * A candidate feature the logged row does not have, or had at its default (the live store missed it), gets the
 * candidate's own default, as a shadow would; both are counted per feature. Records are taken once each by
 * prediction id (the log is at-least-once); failed executions, shadow records, other models, other cells and
 * records outside [fromMs, toMs) are counted and left out. Rows run `batchRows` at a time (one execute() call, one
 * session run); a batch that fails runs again row by row so that only the bad rows count as errors. A composed
 * rule cannot be a candidate (its models are not run here): every row fails with FAILED_PRECONDITION.
 */
import { toSibylError } from '../core/errors.ts';
import type { OutputRow, Scalar } from '../runtimes/contract.ts';
import { VersionComparison, type ComparisonSnapshot } from '../execution/comparison.ts';
import { execute, type ExecutionDeps } from '../execution/execute.ts';
import type { InputRow } from '../execution/feature-plan.ts';
import { inlineOnly } from '../execution/feature-store.ts';
import type { ModelVersion } from '../execution/model-version.ts';

export interface ReplayOptions {
  /** The model whose live records are replayed (the candidate may be another model's version). */
  readonly model: string;
  /** Only records served by this cell. */
  readonly cell?: string | undefined;
  /** Only records whose request arrived in [fromMs, toMs), ms since the epoch. */
  readonly fromMs?: number | undefined;
  readonly toMs?: number | undefined;
  /** Stop after this many rows. */
  readonly limit?: number | undefined;
  /** Rows per execution (default 256). */
  readonly batchRows?: number;
  /** Rows kept per output among those that differ most (default 10). */
  readonly top?: number;
  /** Deadline of one execution, ms (default 30 000). */
  readonly timeoutMs?: number;
  readonly signal?: AbortSignal | undefined;
  /** Told after each execution. */
  readonly onProgress?: (p: { readonly records: number; readonly rows: number }) => void;
}

/** A row among those that differ most for one output. */
export interface DifferingRow {
  readonly difference: number;
  readonly requestId: string;
  readonly predictionId: string;
  readonly time: string;
  readonly cell: string;
  /** The live version that answered. */
  readonly version: string;
  /** The row's index in its request. */
  readonly row: number;
  readonly logged: unknown;
  readonly candidate: unknown;
  /** The features the candidate ran on. */
  readonly features: Readonly<Record<string, Scalar>>;
}

export interface ReplayReport {
  readonly model: string;
  readonly candidate: { readonly model: string; readonly version: string };
  readonly filters: { readonly cell?: string; readonly from?: string; readonly to?: string; readonly limit?: number };
  /** Log records read, and why those not replayed were left out. */
  readonly records: {
    readonly read: number;
    readonly replayed: number;
    readonly duplicates: number;
    readonly otherModel: number;
    readonly notLive: number;
    readonly failed: number;
    readonly otherCell: number;
    readonly outsideWindow: number;
    readonly unreadable: number;
  };
  /** Rows run on the candidate. */
  readonly rows: number;
  /** Rows per live version that answered them. */
  readonly liveVersions: Readonly<Record<string, number>>;
  /** Rows per candidate feature the log did not hold (the candidate's default was used). */
  readonly featuresNotLogged: Readonly<Record<string, number>>;
  /** Rows per candidate feature logged at the live version's default (the candidate's default was used). */
  readonly featuresDefaultedInLog: Readonly<Record<string, number>>;
  readonly batchRows: number;
  /** The shadows' comparison: executions (batches), errors by code, latency per execution, per output differences. */
  readonly comparison: ComparisonSnapshot;
  /** Per output, the rows that differ most, largest first (labels: rows that disagree). */
  readonly largestDifferences: Readonly<Record<string, readonly DifferingRow[]>>;
  readonly durationMs: number;
  readonly rowsPerSecond: number;
}

/** A logged row as the prediction record holds it (ProtoJSON). */
interface LoggedRow {
  readonly entities?: Readonly<Record<string, string>>;
  readonly features?: Readonly<Record<string, unknown>>;
  readonly outputs?: Readonly<Record<string, unknown>>;
  readonly defaultedFeatures?: readonly string[];
}

interface LoggedRecord {
  readonly predictionId?: string;
  readonly requestId?: string;
  readonly time?: string;
  readonly cell?: string;
  readonly model?: string;
  readonly version?: string;
  readonly role?: string;
  readonly rows?: readonly LoggedRow[];
  readonly error?: unknown;
}

/** Where a pending row came from. */
interface Origin {
  readonly record: LoggedRecord;
  readonly row: number;
}

const DEPS: ExecutionDeps = { store: inlineOnly, featurePrefix: '', featureTimeoutMs: 0 };

/** Replays `batches` of log message values (CloudEvents or bare records) against `candidate`. */
export async function replay(candidate: ModelVersion, batches: AsyncIterable<readonly string[]>, options: ReplayOptions): Promise<ReplayReport> {
  const started = performance.now();
  const batchRows = Math.max(1, options.batchRows ?? 256);
  const top = options.top ?? 10;
  const limit = options.limit ?? Number.POSITIVE_INFINITY;
  const comparison = new VersionComparison(candidate, candidate);
  const counts = { read: 0, replayed: 0, duplicates: 0, otherModel: 0, notLive: 0, failed: 0, otherCell: 0, outsideWindow: 0, unreadable: 0 };
  const liveVersions: Record<string, number> = {};
  const notLogged: Record<string, number> = {};
  const defaultedInLog: Record<string, number> = {};
  const largest = new Map<string, DifferingRow[]>();
  const seen = new Set<string>();
  // A cheap test before parsing: the record's model field as the sink writes it.
  const modelNeedle = `"model":${JSON.stringify(options.model)}`;
  let rows = 0;

  let inputs: InputRow[] = [];
  let logged: OutputRow[] = [];
  let origins: Origin[] = [];

  const keep = (output: string, d: DifferingRow) => {
    let list = largest.get(output);
    if (!list) largest.set(output, (list = []));
    if (list.length >= top && d.difference <= list[list.length - 1]!.difference) return;
    let i = list.length;
    while (i > 0 && list[i - 1]!.difference < d.difference) i--;
    list.splice(i, 0, d);
    if (list.length > top) list.pop();
  };

  async function run(batchInputs: InputRow[], batchLogged: OutputRow[], batchOrigins: Origin[]): Promise<void> {
    const t0 = performance.now();
    try {
      const result = await execute(candidate, batchInputs, DEPS, { signal: AbortSignal.timeout(options.timeoutMs ?? 30_000) });
      comparison.recordSuccess(performance.now() - t0, batchLogged, result.outputs, (i, output, difference) => {
        if (!(difference > 0) || !Number.isFinite(difference)) return;
        const o = batchOrigins[i]!;
        keep(output, {
          difference,
          requestId: o.record.requestId ?? '',
          predictionId: o.record.predictionId ?? '',
          time: o.record.time ?? '',
          cell: o.record.cell ?? '',
          version: o.record.version ?? '',
          row: o.row,
          logged: batchLogged[i]![output],
          candidate: result.outputs[i]![output],
          features: batchInputs[i]!.features,
        });
      });
    } catch (err) {
      if (batchInputs.length > 1) {
        // Only the rows that fail count as errors.
        for (let i = 0; i < batchInputs.length; i++) await run([batchInputs[i]!], [batchLogged[i]!], [batchOrigins[i]!]);
        return;
      }
      comparison.recordError(performance.now() - t0, toSibylError(err).code);
    }
  }

  async function flush(): Promise<void> {
    if (inputs.length === 0) return;
    const [i, l, o] = [inputs, logged, origins];
    inputs = [];
    logged = [];
    origins = [];
    await run(i, l, o);
    options.onProgress?.({ records: counts.replayed, rows });
  }

  outer: for await (const values of batches) {
    for (const value of values) {
      if (options.signal?.aborted) break outer;
      counts.read++;
      if (!value.includes(modelNeedle)) {
        counts.otherModel++;
        continue;
      }
      let record: LoggedRecord;
      try {
        record = recordOf(JSON.parse(value));
      } catch {
        counts.unreadable++;
        continue;
      }
      if (record.model !== options.model) counts.otherModel++;
      else if (record.role !== 'ROLE_LIVE') counts.notLive++;
      else if (record.error) counts.failed++;
      else if (options.cell && record.cell !== options.cell) counts.otherCell++;
      else if (!inWindow(record.time, options.fromMs, options.toMs)) counts.outsideWindow++;
      else if (record.predictionId && seen.has(record.predictionId)) counts.duplicates++;
      else {
        if (record.predictionId) seen.add(record.predictionId);
        counts.replayed++;
        const recordRows = record.rows ?? [];
        for (let r = 0; r < recordRows.length && rows < limit; r++) {
          inputs.push(candidateRow(candidate, recordRows[r]!, notLogged, defaultedInLog));
          logged.push((recordRows[r]!.outputs ?? {}) as OutputRow);
          origins.push({ record, row: r });
          rows++;
          const v = record.version ?? '';
          liveVersions[v] = (liveVersions[v] ?? 0) + 1;
          if (inputs.length >= batchRows) await flush();
        }
        if (rows >= limit) break outer;
      }
    }
  }
  await flush();
  const durationMs = performance.now() - started;
  return {
    model: options.model,
    candidate: { model: candidate.model, version: candidate.version },
    filters: {
      ...(options.cell ? { cell: options.cell } : {}),
      ...(options.fromMs !== undefined ? { from: new Date(options.fromMs).toISOString() } : {}),
      ...(options.toMs !== undefined ? { to: new Date(options.toMs).toISOString() } : {}),
      ...(Number.isFinite(limit) ? { limit } : {}),
    },
    records: counts,
    rows,
    liveVersions,
    featuresNotLogged: notLogged,
    featuresDefaultedInLog: defaultedInLog,
    batchRows,
    comparison: comparison.snapshot(),
    largestDifferences: Object.fromEntries(largest),
    durationMs,
    rowsPerSecond: durationMs > 0 ? Math.round((rows / durationMs) * 1000) : 0,
  };
}

/** The record inside a message value: a structured-mode CloudEvent's `data`, or the record itself (a file-sink line). */
function recordOf(parsed: unknown): LoggedRecord {
  const o = parsed as { specversion?: unknown; data?: unknown };
  if (typeof o !== 'object' || o === null) throw new SyntaxError('not a JSON object');
  return (o.specversion !== undefined && typeof o.data === 'object' && o.data !== null ? o.data : o) as LoggedRecord;
}

function inWindow(time: string | undefined, fromMs: number | undefined, toMs: number | undefined): boolean {
  if (fromMs === undefined && toMs === undefined) return true;
  const t = time ? Date.parse(time) : Number.NaN;
  if (Number.isNaN(t)) return false;
  return (fromMs === undefined || t >= fromMs) && (toMs === undefined || t < toMs);
}

/**
 * The candidate's row: each of its features from the logged row, unless absent or defaulted there (then the
 * candidate's default), as an inline row: every feature given, so the store is never read.
 */
function candidateRow(candidate: ModelVersion, row: LoggedRow, notLogged: Record<string, number>, defaultedInLog: Record<string, number>): InputRow {
  const features: Record<string, Scalar> = {};
  const logged = row.features ?? {};
  const defaulted = row.defaultedFeatures;
  for (const f of candidate.plan.features) {
    const v = logged[f.name];
    if (v === undefined || v === null) {
      notLogged[f.name] = (notLogged[f.name] ?? 0) + 1;
      features[f.name] = f.default;
    } else if (defaulted !== undefined && defaulted.length !== 0 && defaulted.includes(f.name)) {
      defaultedInLog[f.name] = (defaultedInLog[f.name] ?? 0) + 1;
      features[f.name] = f.default;
    } else {
      features[f.name] = v as Scalar;
    }
  }
  return { entities: {}, features };
}
