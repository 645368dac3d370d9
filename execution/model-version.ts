/**
 * A loaded model version, ready to execute: its manifest, compiled feature plan, output specs, the runtime's
 * loaded model and, for a composed rule, the models it composes. Built once at load; never changed after.
 *
 * Lifetime: whoever executes a version `acquire`s it first and `release`s it when done (the request, its log, a
 * shadow, a composed call); a version that is `retire`d is disposed once its last holder releases it.
 */
import type { LoadedModel } from '../runtimes/contract.ts';
import type { ComposedModel } from '../runtimes/descriptor.ts';
import type { Manifest, OutputSpec } from '../runtimes/manifest.ts';
import { composedModelsOf, outputSpecs } from '../runtimes/registry.ts';
import { compileFeaturePlan, type FeaturePlan } from './feature-plan.ts';

export class ModelVersion {
  readonly model: string;
  readonly version: string;
  readonly manifest: Manifest;
  readonly plan: FeaturePlan;
  readonly outputs: readonly OutputSpec[];
  readonly loaded: LoadedModel;
  /** For a composed rule: the models whose outputs it receives, run first on the same request. */
  readonly composed: readonly ComposedModel[];
  #inflight = 0;
  #retired = false;
  #disposed: Promise<void> | undefined;
  #waiters: (() => void)[] = [];

  constructor(manifest: Manifest, loaded: LoadedModel) {
    this.model = manifest.name;
    this.version = manifest.version;
    this.manifest = manifest;
    this.plan = compileFeaturePlan(manifest);
    this.outputs = outputSpecs(manifest);
    this.loaded = loaded;
    // The runtime validated the settings at load; a manifest that got here cannot fail to parse them.
    this.composed = composedModelsOf(manifest);
  }

  acquire(): void {
    this.#inflight++;
  }

  release(): void {
    if (--this.#inflight === 0 && this.#retired) void this.#dispose();
  }

  /** Marks the version out of service; it is disposed when no one holds it. Resolves once disposed. */
  retire(): Promise<void> {
    this.#retired = true;
    return this.#inflight === 0 ? this.#dispose() : new Promise((resolve) => this.#waiters.push(resolve));
  }

  #dispose(): Promise<void> {
    this.#disposed ??= this.loaded.dispose().finally(() => {
      for (const w of this.#waiters.splice(0)) w();
    });
    return this.#disposed;
  }
}

/** Where a composed rule's models are found: the route table snapshot the rule was resolved in. */
export interface VersionResolver {
  /** The version for a model and a version, alias or '' (the default). Throws NOT_FOUND. */
  resolve(model: string, version: string): ModelVersion;
}
