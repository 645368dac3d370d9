/**
 * How a runtime describes itself to the rest of Sibyl (ARCHITECTURE.md, "Plug-ins and roles"). Each runtime's
 * folder exports one descriptor (`runtimes/<kind>/descriptor.ts`); runtimes/registry.ts lists them, and everything
 * that depends on which runtimes exist (the manifest's `runtime:` values and sections, output names, the Open
 * Inference Protocol metadata, composition, the Runtime instances) is derived from that list. Nothing outside
 * runtimes/ names a kind.
 *
 * A descriptor file must be light to import: it is loaded by everything that parses a manifest (the tower, the
 * CLI), so it imports no native module and no runtime implementation; `create` imports those when the first model
 * loads (see lazy-runtime.ts). It imports its building blocks from manifest-fields.ts, never from manifest.ts or
 * registry.ts (they import the descriptors).
 */
import type { z } from 'zod';
import type { Runtime } from './contract.ts';
import type { Dtype, ManifestCore, OutputSpec } from './manifest-fields.ts';

/** Reports one problem of a manifest: its path from the manifest's root, and a message that reads after the path. */
export type ReportIssue = (path: readonly (string | number)[], message: string) => void;

/** A model a composed model receives the outputs of (`ctx.models[as]` in a rule). */
export interface ComposedModel {
  readonly model: string;
  /** Version or alias; '' for the model's default. */
  readonly version: string;
  readonly as: string;
}

/** An Open Inference Protocol input tensor that packs several features as its columns: shape [rows, features.length]. */
export interface PackedInput {
  readonly name: string;
  /** The tensor's element type. */
  readonly dtype: Dtype;
  /** The features of its columns, in order. */
  readonly features: readonly string[];
}

/** A runtime as a gateway holds it: the contract, plus `close` for runtime-wide resources (worker threads). */
export interface PluggedRuntime extends Runtime {
  /** Stops runtime-wide resources; models must be disposed first. Idempotent. */
  close(): Promise<void>;
}

/**
 * One runtime. `S` is the zod schema of its manifest section, `O` the options of its factory.
 *
 * The functions that take `settings` are called only for a manifest of this kind that has the section, with the
 * section as the schema parsed it (defaults filled). The schema must parse its own output to the same value (no
 * transforms): the helpers parse stored manifests again.
 */
export interface RuntimeDescriptor<K extends string = string, S extends z.ZodType = z.ZodType, O = unknown> {
  /** The manifest's `runtime:` value, and the key of this runtime's section (`onnx:`, `rules:`...). */
  readonly kind: K;
  /** The schema of the section. A manifest of another kind that has this section is refused. */
  readonly settings: S;
  /** Whether a manifest of this kind must have the section (else every setting has a default). */
  readonly settingsRequired: boolean;
  /**
   * Checks of the section against the rest of the manifest (the features it names, say), run once the manifest's
   * shape is valid; paths are from the manifest's root. Every problem is reported, none thrown.
   */
  check?(settings: z.output<S>, manifest: ManifestCore, report: ReportIssue): void;
  /**
   * Set when the section declares the model's outputs (`declaredAt`, e.g. 'onnx.outputs', names where): the
   * manifest's top-level `outputs:` is then refused. Unset: the top-level `outputs:` is required and is the outputs.
   */
  readonly outputs?: {
    readonly declaredAt: string;
    of(settings: z.output<S>): OutputSpec[];
  };
  /** How a model of this kind looks over the Open Inference Protocol. */
  readonly oip: {
    /** The metadata's `platform` (KServe and Triton name the backend this way, e.g. 'onnxruntime_onnx'). */
    readonly platform: string;
    /** Input tensors that pack several features (none when absent); a request may still send a tensor per feature. */
    packedInputs?(settings: z.output<S>): PackedInput[];
  };
  /**
   * Set when a model of this kind runs other models first and receives their outputs: `declaredAt` names the list
   * in the manifest (e.g. 'rules.models'; upload errors point at `${declaredAt}.${i}.model`), `of` reads it, in order.
   */
  readonly composes?: {
    readonly declaredAt: string;
    of(settings: z.output<S>): ComposedModel[];
  };
  /**
   * Makes the runtime; called once per gateway or validation process. Cheap and synchronous: the implementation
   * is imported when the first model loads. Throws (INVALID_ARGUMENT) on options it cannot use.
   */
  create(options?: O): PluggedRuntime;
}

/** Identity, for inference: `kind` stays a literal and `settings` types the functions' parameters. */
export function defineRuntime<const K extends string, S extends z.ZodType, O = undefined>(descriptor: RuntimeDescriptor<K, S, O>): RuntimeDescriptor<K, S, O> {
  return Object.freeze(descriptor);
}
