/**
 * The onnx runtime: one onnxruntime-node InferenceSession per loaded model version, created with tuned options
 * (see session-options.ts), checked against the manifest's tensor mapping, and warmed with one run.
 *
 * `predict` packs rows into typed arrays in the manifest's column order and unpacks the fetched outputs per row.
 * A run computes on the calling thread and cannot be interrupted once started, so the signal is checked just
 * before it. Batches of at least `offloadRows` rows (manifest `onnx.offloadRows`, else calibrated at load to the
 * batch size whose inline run would stall the event loop for `stallBudgetMs`) run on a worker thread instead.
 *
 * Inline calls coalesce. When the model is idle, the calls made by the current callback and its microtasks (the
 * requests whose features came back in one Redis read, say) share one run, flushed by `process.nextTick`: a lone call
 * runs as soon as the code that made it yields, so an idle gateway answers as fast as before. When a run is already
 * pending, the model is under concurrent load: calls wait for the check phase (`setImmediate`), so every request of
 * the poll phase shares the next run, at the cost of one loop iteration. A run's fixed cost (binding, tensors, the
 * setImmediate onnxruntime-node defers each run to) is most of it for a small model (numbers in runtimes/onnx/README.md). Rows of different calls never affect each other: every
 * plan has a dynamic batch dimension, and a run that fails is repeated call by call, so one call's bad input fails
 * that call alone.
 *
 * A model whose graph is one tree-ensemble regressor or binary classifier runs inline as a compiled forest (forest.ts)
 * instead, once it has answered what the session answers, bit for bit (forestDifferences has the one exception), on
 * probe rows at load (`forestFor`); the session stays for the worker threads' batches and as the reference
 * (runtimes/onnx/README.md, "Compiled tree ensembles").
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import ort from 'onnxruntime-node';
import type { FeatureRow, LoadedModel, ModelBundle, OutputRow, PredictContext, Runtime } from '../contract.ts';
import { SibylError } from '../../core/errors.ts';
import { abortError } from './abort-error.ts';
import { classify, compileForest, probeRows, withinOneFloat32Step, type Forest, type ForestScoring } from './forest.ts';
import { readTreeEnsemble, type TreeEnsemble } from './tree-ensemble.ts';
import { resolveBundleFile } from './bundle-files.ts';
import { tunedSessionOptions } from './session-options.ts';
import { ONNX_TREES, type OnnxTrees } from './options-from-env.ts';
import { buildPlan, packInputs, unpackOutputs, type RawTensor, type TensorPlan } from './tensor-plan.ts';
import { OnnxWorkerPool } from './worker-pool.ts';

export interface OnnxRuntimeOptions {
  /** Intra-op threads per session when the manifest does not set `onnx.intraOpThreads` (default 1). */
  readonly intraOpThreads?: number;
  /** `auto` (default): big batches run on a worker thread; `never`: every run is inline on the calling thread. */
  readonly offload?: 'auto' | 'never';
  /** Worker threads shared by all models of this runtime for offloaded batches (default 1). */
  readonly workers?: number;
  /** Milliseconds an inline run may stall the event loop; calibrates each model's offload threshold (default 1). */
  readonly stallBudgetMs?: number;
  /** Most rows one coalesced inline run takes (default 64; 1 turns coalescing off). Never more than `offloadRows - 1`. */
  readonly coalesceRows?: number;
  /**
   * `compiled` (default): a model that is a lone tree-ensemble regressor or binary classifier runs inline as a
   * compiled forest (forest.ts) once it has matched onnxruntime on every probe row; `onnxruntime`: every model runs
   * on onnxruntime.
   */
  readonly trees?: OnnxTrees;
}

export interface OnnxRuntime extends Runtime {
  readonly kind: 'onnx';
  load(bundle: ModelBundle): Promise<OnnxLoadedModel>;
  /** Stops the worker threads (models stay usable inline until disposed). Idempotent. */
  close(): Promise<void>;
}

/** Extra information for tests and benchmarks; not part of the Runtime contract. */
export interface OnnxLoadedModel extends LoadedModel {
  /** Batches of at least this many rows run on a worker thread (Infinity: never). */
  readonly offloadRows: number;
  /** Inline runs so far (a coalesced run counts once, however many calls it served). */
  readonly runs: number;
  /** What runs it inline: the compiled forest, or onnxruntime and why not the forest. */
  readonly engine: { readonly kind: 'forest'; readonly trees: number; readonly nodes: number; readonly scoring: ForestScoring } | { readonly kind: 'onnxruntime'; readonly why: string };
}

/** Fewer rows than this never go to a worker: the thread hop (~0.1 ms) would cost more than it saves. */
const MIN_OFFLOAD_ROWS = 64;
const CALIBRATION_ROWS = 256;
const COALESCE_ROWS = 64;
/** Probe rows per onnxruntime run when a compiled forest is checked (~1 ms of the loop for a 250-tree model). */
const PROBE_CHUNK = 64;

export function createOnnxRuntime(opts: OnnxRuntimeOptions = {}): OnnxRuntime {
  // onnxruntime 1.30's Linux build starts its own telemetry (Microsoft's 1DS SDK) with the first session, which
  // leaves an empty /tmp/mat-debug-<pid>.log behind every process. ORT_DISABLE_TELEMETRY, read when that first
  // session is made, turns it off (seen: no file). An operator's own setting wins.
  process.env['ORT_DISABLE_TELEMETRY'] ??= '1';
  const offload = opts.offload ?? 'auto';
  const stallBudgetMs = opts.stallBudgetMs ?? 1;
  const coalesceRows = opts.coalesceRows ?? COALESCE_ROWS;
  const trees = opts.trees ?? 'compiled';
  if (!ONNX_TREES.includes(trees)) throw new Error(`onnx runtime: trees must be one of ${ONNX_TREES.join(', ')}, not ${String(trees)}`);
  let pool: OnnxWorkerPool | undefined;
  let loads = 0;
  const getPool = (): OnnxWorkerPool => (pool ??= new OnnxWorkerPool(opts.workers ?? 1));

  async function load(bundle: ModelBundle): Promise<OnnxLoadedModel> {
    const { manifest } = bundle;
    const onnx = manifest.onnx;
    if (manifest.runtime !== 'onnx' || !onnx) throw new SibylError('INVALID_ARGUMENT', `runtime: is ${manifest.runtime}, not onnx`);
    const modelPath = await resolveBundleFile(bundle.dir, onnx.file);
    const options = tunedSessionOptions(onnx.intraOpThreads ?? opts.intraOpThreads ?? 1);
    let session: ort.InferenceSession;
    try {
      session = await ort.InferenceSession.create(modelPath, options);
    } catch (err) {
      const detail = String((err as Error)?.message ?? err).split(path.dirname(modelPath)).join('<bundle>').slice(0, 400);
      throw new SibylError('INVALID_ARGUMENT', `onnx.file: "${onnx.file}" could not be loaded: ${detail}`, { cause: err });
    }
    try {
      const plan = buildPlan(manifest, session);
      const defaults: FeatureRow = Object.fromEntries(manifest.features.map((f) => [f.name, f.default]));
      await runInline(session, plan, [defaults]).catch((err: unknown) => {
        throw new SibylError('INVALID_ARGUMENT', `onnx model failed its warm-up run: ${(err as Error).message}`, { cause: err });
      });
      let offloadRows = Infinity;
      if (offload === 'auto') offloadRows = onnx.offloadRows ?? (await calibrate(session, plan, defaults, stallBudgetMs));
      const key = `${manifest.name}@${manifest.version}#${++loads}`;
      if (offloadRows !== Infinity) getPool().register(key, modelPath, options);
      const engine = trees === 'compiled' ? await forestFor(modelPath, session, plan) : ({ kind: 'onnxruntime', why: 'trees: onnxruntime' } as const);
      return loadedModel(session, plan, offloadRows, Math.max(1, Math.min(coalesceRows, offloadRows - 1)), key, () => pool, engine);
    } catch (err) {
      await session.release();
      throw err;
    }
  }

  return {
    kind: 'onnx',
    load,
    async close() {
      await pool?.close();
      pool = undefined;
    },
  };
}

/** A call waiting for the next coalesced run. */
interface Waiting {
  readonly rows: readonly FeatureRow[];
  readonly signal: AbortSignal;
  readonly resolve: (out: OutputRow[]) => void;
  readonly reject: (err: unknown) => void;
}

function loadedModel(
  session: ort.InferenceSession,
  plan: TensorPlan,
  offloadRows: number,
  coalesceRows: number,
  key: string,
  pool: () => OnnxWorkerPool | undefined,
  engine: Engine,
): OnnxLoadedModel {
  const forest = engine.kind === 'forest' ? engine.forest : undefined;
  const labelOutputs = engine.kind === 'forest' ? engine.labelOutputs : [];
  let disposed = false;
  let inflight = 0;
  let drained: (() => void) | undefined;
  let waiting: Waiting[] = [];
  let flushScheduled = false;
  let runs = 0;
  /**
   * Runs started and not finished: onnxruntime-node defers each run to a setImmediate. A forest's run is done when it
   * returns, so it counts as running until the loop's next check phase: the model ran in this poll phase, and the
   * calls after it in the phase are concurrent load, as with onnxruntime.
   */
  let running = 0;
  /**
   * The forest's input matrix, filled anew by each run: a run reads it and returns before the next can start. A new
   * Float32Array per run of 20 features (80 bytes, past what V8 keeps on its heap) was an ArrayBuffer per request:
   * ~350 ns in a loop, against ~45 ns for a view of this one.
   */
  let forestInput = new Float32Array(0);

  async function run(rows: readonly FeatureRow[]): Promise<Record<string, RawTensor>> {
    runs++;
    if (forest) {
      if (running === 0) {
        running = 1;
        setImmediate(() => (running = 0));
      }
      const size = rows.length * forest.width;
      if (forestInput.length < size) forestInput = new Float32Array(Math.max(size, 16 * forest.width));
      return runForest(forest, plan, labelOutputs, rows, forestInput);
    }
    running++;
    try {
      return await runInline(session, plan, rows);
    } finally {
      running--;
    }
  }

  async function predict(rows: readonly FeatureRow[], ctx: PredictContext): Promise<OutputRow[]> {
    if (disposed) throw new SibylError('FAILED_PRECONDITION', 'model version is unloaded');
    if (ctx.signal.aborted) throw abortError(ctx.signal);
    const n = rows.length;
    if (n === 0) return [];
    inflight++;
    try {
      const workers = n >= offloadRows ? pool() : undefined;
      if (workers) return unpackOutputs(plan, await runOffloaded(workers, key, plan, rows, ctx.signal), n);
      if (n >= coalesceRows) return unpackOutputs(plan, await run(rows), n);
      return await new Promise<OutputRow[]>(function wait(resolve, reject) {
        waiting.push({ rows, signal: ctx.signal, resolve, reject });
        if (flushScheduled) return;
        flushScheduled = true;
        // An idle model runs at once (after this callback's microtasks). A model with a run pending is under
        // concurrent load: gather until the check phase, so every request of this poll phase shares the next run.
        if (running === 0) process.nextTick(flush);
        else setImmediate(flush);
      });
    } finally {
      if (--inflight === 0 && drained) drained();
    }
  }

  /** Runs every waiting call, in runs of at most `coalesceRows` rows (a call is never split). */
  function flush(): void {
    flushScheduled = false;
    const calls = waiting;
    waiting = [];
    let batch: Waiting[] = [];
    let batchRows = 0;
    for (const call of calls) {
      if (call.signal.aborted) {
        call.reject(abortError(call.signal));
        continue;
      }
      if (batchRows + call.rows.length > coalesceRows) {
        void runCalls(batch, batchRows);
        batch = [];
        batchRows = 0;
      }
      batch.push(call);
      batchRows += call.rows.length;
    }
    if (batch.length) void runCalls(batch, batchRows);
  }

  async function runCalls(calls: readonly Waiting[], total: number): Promise<void> {
    if (calls.length === 1) {
      const call = calls[0]!;
      try {
        call.resolve(unpackOutputs(plan, await run(call.rows), total));
      } catch (err) {
        call.reject(err);
      }
      return;
    }
    const rows: FeatureRow[] = new Array(total);
    let k = 0;
    for (const call of calls) for (const row of call.rows) rows[k++] = row;
    let out: OutputRow[];
    try {
      out = unpackOutputs(plan, await run(rows), total);
    } catch {
      // Which call's rows made the run fail is unknown: run each alone, so only that call gets the error.
      for (const call of calls) void runCalls([call], call.rows.length);
      return;
    }
    for (let i = 0, start = 0; i < calls.length; i++) {
      const call = calls[i]!;
      const end = start + call.rows.length;
      call.resolve(out.slice(start, end));
      start = end;
    }
  }

  async function dispose(): Promise<void> {
    if (disposed) return;
    disposed = true;
    if (inflight > 0) await new Promise<void>((resolve) => (drained = resolve));
    pool()?.unregister(key);
    await session.release();
  }

  return {
    predict,
    dispose,
    offloadRows,
    get runs() {
      return runs;
    },
    engine: engine.kind === 'forest' ? { kind: 'forest', trees: engine.forest.trees, nodes: engine.forest.nodes, scoring: engine.forest.scoring } : engine,
  };
}

/** A compiled forest, with the graph outputs that read a classifier's label (the others read its scores); or onnxruntime, and why. */
type Engine = { readonly kind: 'forest'; readonly forest: Forest; readonly labelOutputs: readonly string[] } | { readonly kind: 'onnxruntime'; readonly why: string };

/**
 * The compiled forest for a model that is a lone tree ensemble (a regressor, or a binary classifier: forest.ts) fed by
 * the plan's one float32 matrix and read by the plan's outputs, once it has matched the session bit for bit on every
 * probe row; else why not.
 */
async function forestFor(modelPath: string, session: ort.InferenceSession, plan: TensorPlan): Promise<Engine> {
  const read = readTreeEnsemble(await readFile(modelPath));
  if ('unsupported' in read) return { kind: 'onnxruntime', why: read.unsupported };
  const e = read.ensemble;
  const input = plan.inputs[0]!;
  if (plan.inputs.length !== 1 || input.name !== e.input || input.dtype !== 'float32' || input.rank !== 2 || input.features.length !== e.width) {
    return { kind: 'onnxruntime', why: 'the manifest\'s inputs are not the ensemble\'s one float32 matrix' };
  }
  if (!plan.fetches.every((name) => e.outputs.includes(name) || e.labelOutputs.includes(name))) return { kind: 'onnxruntime', why: 'an output the ensemble does not produce' };
  const compiled = compileForest(e);
  if ('unsupported' in compiled) return { kind: 'onnxruntime', why: compiled.unsupported };
  const { differ, rows } = await forestDifferences(compiled.forest, session, e);
  if (differ > 0) return { kind: 'onnxruntime', why: `the compiled forest differed from onnxruntime on ${differ} of ${rows} probe rows` };
  return { kind: 'forest', forest: compiled.forest, labelOutputs: e.labelOutputs };
}

/**
 * On how many probe rows (forest.ts probeRows: three per branch node) a forest's outputs differ from the session's,
 * bits compared (NaN equals NaN): the scores (a classifier's probabilities), and a classifier's label; and of how many
 * rows. A LOGISTIC classifier's probabilities may be one float32 step apart: they pass through e^x, which the C
 * library onnxruntime calls does not always round correctly (forest.ts `logistic`). onnxruntime runs them
 * `PROBE_CHUNK` rows at a time, so that checking a large ensemble while the gateway serves holds the event loop for
 * about a millisecond at a time.
 */
export async function forestDifferences(forest: Forest, session: ort.InferenceSession, e: TreeEnsemble): Promise<{ differ: number; rows: number }> {
  const x = probeRows(e);
  const rows = x.length / e.width;
  const scoresName = e.outputs[0];
  const labelName = e.labelOutputs[0];
  const fetches = [scoresName, labelName].filter((n) => n !== undefined);
  let differ = 0;
  for (let start = 0; start < rows; start += PROBE_CHUNK) {
    const k = Math.min(PROBE_CHUNK, rows - start);
    const chunk = x.slice(start * e.width, (start + k) * e.width);
    const want = await session.run({ [e.input]: new ort.Tensor('float32', chunk, [k, e.width]) }, fetches);
    const got = forestOutputs(forest, chunk, k);
    const wantScores = scoresName === undefined ? undefined : (want[scoresName]!.data as Float32Array);
    const wantLabels = labelName === undefined ? undefined : (want[labelName]!.data as BigInt64Array);
    const perRow = got.scores.data.length / k;
    const same = forest.classes?.logistic && !forest.classes.allPositive ? withinOneFloat32Step : Object.is;
    for (let r = 0; r < k; r++) {
      let equal = wantLabels === undefined || wantLabels[r] === got.labels?.data[r];
      for (let j = r * perRow; equal && wantScores !== undefined && j < (r + 1) * perRow; j++) equal = same(wantScores[j], got.scores.data[j]);
      if (!equal) differ++;
    }
  }
  return { differ, rows };
}

/**
 * A forest's outputs for `rows` rows of `x`: its scores ([rows, 1], a classifier's two probabilities [rows, 2]) and a
 * classifier's labels ([rows]), typed as onnxruntime types them.
 */
function forestOutputs(forest: Forest, x: Float32Array, rows: number): { scores: RawTensor & { data: Float32Array }; labels?: RawTensor & { data: BigInt64Array } } {
  const scores = forest.predict(x, rows);
  if (!forest.classes) return { scores: { type: 'float32', data: scores, dims: [rows, 1] } };
  const { labels, probabilities } = classify(forest.classes, scores, rows);
  return { scores: { type: 'float32', data: probabilities, dims: [rows, 2] }, labels: { type: 'int64', data: labels, dims: [rows] } };
}

/** A run of the compiled forest: the plan's one input matrix in; under each output name, the ensemble's output it reads. */
function runForest(forest: Forest, plan: TensorPlan, labelOutputs: readonly string[], rows: readonly FeatureRow[], scratch: Float32Array): Record<string, RawTensor> {
  const x = packInputs(plan, rows, scratch)[0]!.data as Float32Array;
  const out = forestOutputs(forest, x, rows.length);
  const results: Record<string, RawTensor> = {};
  for (const name of plan.fetches) results[name] = out.labels && labelOutputs.includes(name) ? out.labels : out.scores;
  return results;
}

async function runInline(session: ort.InferenceSession, plan: TensorPlan, rows: readonly FeatureRow[]): Promise<Record<string, RawTensor>> {
  const packed = packInputs(plan, rows);
  const feeds: Record<string, ort.Tensor> = {};
  for (let i = 0; i < packed.length; i++) {
    const t = packed[i]!;
    feeds[plan.inputs[i]!.name] = new ort.Tensor(t.type as 'float32', t.data as Float32Array, t.dims);
  }
  try {
    return await session.run(feeds, plan.fetches);
  } catch (err) {
    throw new SibylError('INTERNAL', 'model run failed', { cause: err });
  }
}

function runOffloaded(pool: OnnxWorkerPool, key: string, plan: TensorPlan, rows: readonly FeatureRow[], signal: AbortSignal): Promise<Record<string, RawTensor>> {
  const packed = packInputs(plan, rows);
  const feeds: Record<string, RawTensor> = {};
  const transfer: ArrayBuffer[] = [];
  for (let i = 0; i < packed.length; i++) {
    const t = packed[i]!;
    feeds[plan.inputs[i]!.name] = t;
    if (!Array.isArray(t.data)) transfer.push((t.data as Float32Array).buffer as ArrayBuffer);
  }
  return pool.run(key, feeds, plan.fetches as string[], transfer, signal);
}

/** The smallest batch whose inline run would take `budgetMs`, from timing a batch of default rows (best of 3). */
async function calibrate(session: ort.InferenceSession, plan: TensorPlan, defaults: FeatureRow, budgetMs: number): Promise<number> {
  const rows = new Array<FeatureRow>(CALIBRATION_ROWS).fill(defaults);
  let best = Infinity;
  for (let i = 0; i < 3; i++) {
    const t0 = performance.now();
    await runInline(session, plan, rows);
    best = Math.min(best, performance.now() - t0);
  }
  const perRowMs = best / CALIBRATION_ROWS;
  return Math.max(MIN_OFFLOAD_ROWS, Math.ceil(budgetMs / perRowMs));
}
