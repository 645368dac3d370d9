/**
 * The one execution step: runs one resolved model version on a request's rows. The live path, shadows, warm-up and
 * the upload gate's test cases all call it, so a version is served exactly the way its gate ran it
 * (ARCHITECTURE.md, "The path of one prediction").
 *
 * In order: the version's own rows (its declared features and entities; values already read for another version
 * of the request are reused), enrichment from the feature store (one round trip, defaults for what is missing or
 * late), the abort check, composition (a composed rule first gets its models' outputs: run here on the same
 * request, or given by a test case), the runtime call (timed), and the check that one output row came back per
 * input row. Errors are SibylErrors: the request's own (INVALID_ARGUMENT), the runtime's, DEADLINE_EXCEEDED or
 * CANCELLED when the signal fired or the caller went away (`cancelled`, asked before the store is read and again
 * before the model runs: work for a client that has gone is skipped), FAILED_PRECONDITION when a composed model is
 * not served.
 */
import { SibylError, toSibylError } from '../core/errors.ts';
import type { FeatureRow, OutputRow, Scalar } from '../runtimes/contract.ts';
import { enrich, rowsFor, type Enriched, type InputRow, type KnownRows } from './feature-plan.ts';
import type { FeatureStore } from './feature-store.ts';
import type { ModelVersion, VersionResolver } from './model-version.ts';

/** Most levels of composition (a composed model that is itself a composed rule, ...). Cycles are refused at upload. */
export const MAX_DEPTH = 4;

export interface ExecutionDeps {
  readonly store: FeatureStore;
  /** Key prefix of the store's hashes (`{prefix}:{entity}:{id}`). */
  readonly featurePrefix: string;
  /** Deadline of the store round trip, ms; late features get their defaults. */
  readonly featureTimeoutMs: number;
  /** Told of every runtime call (composed models' too): the runtime kind, 'OK' or the error code, seconds. */
  readonly onRuntimeCall?: (runtime: string, code: string, seconds: number) => void;
  /** Told when the store failed or was late for a version's reads. */
  readonly onStoreFailure?: (model: string, reason: 'timeout' | 'error') => void;
}

export interface ExecuteOptions {
  /** The request's deadline or cancellation. */
  readonly signal: AbortSignal;
  /**
   * True once the caller has gone away (a gRPC client cancelled the call, or its connection closed): asked before
   * the store is read and before the model runs, which are then skipped (CANCELLED). A function the door answers
   * from its own state, not a signal: linking a signal per request to the shared deadline signal costs 0.6-9 µs.
   */
  readonly cancelled?: (() => boolean) | undefined;
  /** Where a composed rule's models are resolved: the same route table snapshot the version came from. */
  readonly resolver?: VersionResolver | undefined;
  /** A composed rule's models' outputs per row, given instead of run (a test case's `models`). */
  readonly models?: readonly Readonly<Record<string, OutputRow>>[] | undefined;
  /** Rows already enriched for another version of this request (the live one, for a shadow). */
  readonly known?: KnownRows | undefined;
}

export interface Execution {
  /** The complete feature rows the runtime got. */
  readonly rows: FeatureRow[];
  /** Per row, the features that fell back to their defaults. */
  readonly defaulted: string[][];
  /** One output row per input row. */
  readonly outputs: OutputRow[];
  /** `performance.now()` when enrichment ended (the dispatch stage starts there). */
  readonly enrichedAt: number;
  /** The runtime call's duration (composition included), ms. */
  readonly modelMs: number;
  /** Why the store's values were not used (its features then got their defaults): undefined when it answered or was not read. */
  readonly storeFailure?: 'timeout' | 'error' | undefined;
}

/** Runs `version` on `input`. The caller holds (`acquire`s) `version`; composed models are held here. */
export function execute(version: ModelVersion, input: readonly InputRow[], deps: ExecutionDeps, options: ExecuteOptions): Promise<Execution> {
  return run(version, input, deps, options, 0);
}

async function run(version: ModelVersion, input: readonly InputRow[], deps: ExecutionDeps, options: ExecuteOptions, depth: number): Promise<Execution> {
  const { signal, cancelled } = options;
  if (cancelled?.()) throw callerGone();
  const composes = version.composed.length !== 0;
  let own: readonly InputRow[] = input;
  if (options.known) own = rowsFor(version.plan, input, options.known);
  else if (composes) own = rowsFor(version.plan, checkComposedRequest(version, input, options.resolver), undefined);
  const enriched: Enriched = await enrich(version.plan, own, deps.store, deps.featurePrefix, deps.featureTimeoutMs);
  if (enriched.storeFailure) deps.onStoreFailure?.(version.model, enriched.storeFailure);
  const enrichedAt = performance.now();
  if (signal.aborted) throw abortError(signal);
  if (cancelled?.()) throw callerGone();

  let models = options.models;
  if (composes && models === undefined) {
    if (!options.resolver) throw new SibylError('FAILED_PRECONDITION', `rule ${version.model}/${version.version} composes other models; none are given and none can be run here`);
    models = await composedOutputs(version, input, enriched, deps, options, depth);
  }

  const started = performance.now();
  let outputs: OutputRow[];
  try {
    outputs = await version.loaded.predict(enriched.rows, models ? { signal, models } : { signal });
    if (outputs.length !== enriched.rows.length) {
      throw new SibylError('INTERNAL', `${version.model}/${version.version} returned ${outputs.length} output rows for ${enriched.rows.length} input rows`);
    }
  } catch (err) {
    const e = signal.aborted && !(err instanceof SibylError) ? abortError(signal) : toSibylError(err);
    deps.onRuntimeCall?.(version.manifest.runtime, e.code, (performance.now() - started) / 1000);
    throw e;
  }
  const ended = performance.now();
  deps.onRuntimeCall?.(version.manifest.runtime, 'OK', (ended - started) / 1000);
  return { rows: enriched.rows, defaulted: enriched.defaulted, outputs, enrichedAt, modelMs: ended - enrichedAt, storeFailure: enriched.storeFailure };
}

/** `ctx.models` for each row: the composed models run concurrently on the same request. */
async function composedOutputs(
  rule: ModelVersion,
  input: readonly InputRow[],
  enriched: Enriched,
  deps: ExecutionDeps,
  options: ExecuteOptions,
  depth: number,
): Promise<Record<string, OutputRow>[]> {
  if (depth + 1 > MAX_DEPTH) throw new SibylError('FAILED_PRECONDITION', `models composed more than ${MAX_DEPTH} deep (a cycle?)`);
  const parts = resolveParts(rule, options.resolver!);
  // Each composed model reuses what the rule already read (not its defaults) and reads the rest itself.
  const partOptions: ExecuteOptions = { signal: options.signal, cancelled: options.cancelled, resolver: options.resolver, known: enriched };
  const outputs = await Promise.all(
    parts.map(async ({ version }) => {
      version.acquire();
      try {
        return (await run(version, input, deps, partOptions, depth + 1)).outputs;
      } finally {
        version.release();
      }
    }),
  );
  return input.map((_, i) => {
    const m: Record<string, OutputRow> = {};
    for (let j = 0; j < parts.length; j++) m[parts[j]!.as] = outputs[j]![i]!;
    return m;
  });
}

interface Part {
  readonly as: string;
  readonly version: ModelVersion;
}

/** The versions a composed rule composes, resolved by `resolver`. FAILED_PRECONDITION when one is not served. */
export function resolveComposed(rule: ModelVersion, resolver: VersionResolver): ModelVersion[] {
  return resolveParts(rule, resolver).map((p) => p.version);
}

/** The versions a composed rule names. FAILED_PRECONDITION when one is not served. */
function resolveParts(rule: ModelVersion, resolver: VersionResolver): Part[] {
  return rule.composed.map((c) => {
    try {
      return { as: c.as, version: resolver.resolve(c.model, c.version) };
    } catch {
      throw new SibylError('FAILED_PRECONDITION', `rule ${rule.model}/${rule.version} composes ${c.model}${c.version ? `/${c.version}` : ''}, which is not served here`);
    }
  });
}

/**
 * A request to a composed rule may carry the features and entities of the rule and of any model it composes; one
 * that none of them declares is INVALID_ARGUMENT, as for any model. Returns `input`.
 */
function checkComposedRequest(rule: ModelVersion, input: readonly InputRow[], resolver: VersionResolver | undefined): readonly InputRow[] {
  const plans = [rule.plan];
  if (resolver) for (const p of resolveParts(rule, resolver)) plans.push(p.version.plan);
  for (let i = 0; i < input.length; i++) {
    const src = input[i]!;
    for (const name in src.features) {
      if (!plans.some((p) => p.byName.has(name))) throw new SibylError('INVALID_ARGUMENT', `rows[${i}].features.${name}: neither the rule nor the models it composes have a feature "${name}"`);
    }
    for (const e in src.entities) {
      if (!plans.some((p) => p.entities.has(e))) throw new SibylError('INVALID_ARGUMENT', `rows[${i}].entities.${e}: neither the rule nor the models it composes have an entity "${e}"`);
    }
  }
  return input;
}

/** The error for a request whose signal fired: its reason when it is a SibylError, else by the kind of abort. */
export function abortError(signal: AbortSignal): SibylError {
  const reason: unknown = signal.reason;
  if (reason instanceof SibylError) return reason;
  return (reason as Error | undefined)?.name === 'TimeoutError'
    ? new SibylError('DEADLINE_EXCEEDED', 'the request deadline passed')
    : new SibylError('CANCELLED', 'the request was cancelled');
}

/** The error of a request whose caller went away before its model ran. */
function callerGone(): SibylError {
  return new SibylError('CANCELLED', 'the client cancelled the request');
}

/** A row of features as given whole (a test case's): every declared feature present, as a request row. */
export function inlineRow(features: Readonly<Record<string, Scalar>>): InputRow {
  return { entities: {}, features };
}
