/**
 * The contract every runtime implements. Nothing here knows about the gateway. (Which runtimes there are: the
 * descriptors in registry.ts.)
 *
 * Lifecycle: `load` once per model version (expensive: sessions, compiled scripts, clients), `predict` many times
 * concurrently (cheap), `dispose` once after the last `predict` has settled.
 */
import type { Manifest } from './manifest.ts';

/** A scalar feature or output value. Tensors with more than one element per row are number arrays. */
export type Scalar = number | string | boolean;
export type Value = Scalar | readonly number[] | readonly string[];

/** One row of features, keyed by feature name, after enrichment: every feature the manifest declares is present. */
export type FeatureRow = Record<string, Scalar>;
/** One row of outputs, keyed by the output names the manifest declares. */
export type OutputRow = Record<string, Value>;

/** A model version unpacked on local disk, its manifest validated. */
export interface ModelBundle {
  readonly manifest: Manifest;
  /** Absolute directory holding the bundle's files (the manifest's file names are relative to it). */
  readonly dir: string;
  /** sha256 of the bundle's zip, hex (a models directory's bundle: of the directory's deterministic zip). */
  readonly hash: string;
}

export interface PredictContext {
  /** Aborted when the request's deadline passes or the client goes away. */
  readonly signal: AbortSignal;
  /** Composed rules only: per row, the outputs of the models the rule composes, by their `as` name. */
  readonly models?: readonly Readonly<Record<string, OutputRow>>[];
}

export interface LoadedModel {
  /**
   * One output row per input row, in order. Rejects with a SibylError (see core/errors.ts) whose code says what
   * failed; the rejection never carries host internals to the caller.
   */
  predict(rows: readonly FeatureRow[], ctx: PredictContext): Promise<OutputRow[]>;
  /** Frees the session, isolate or client. Called once, after in-flight predictions settle. */
  dispose(): Promise<void>;
}

export interface Runtime {
  /** Its descriptor's kind: the manifests it loads say `runtime: <kind>`. */
  readonly kind: string;
  /** Loads and warms a model. Rejects with INVALID_ARGUMENT when the bundle does not fit this runtime. */
  load(bundle: ModelBundle): Promise<LoadedModel>;
}
