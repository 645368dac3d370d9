/**
 * The route table: an immutable snapshot of what this gateway serves, swapped whole on deploy. `resolve` maps
 * (model, version | alias | '') to one loaded model version.
 *
 * A version's lifetime: the pipeline `acquire`s the route it resolved and `release`s it when the request (and its
 * log) is done; a version retired by a swap is disposed once its last in-flight request releases it.
 */
import type { LoadedModel } from '../../runtimes/contract.ts';
import type { Manifest, OutputSpec } from '../../runtimes/manifest.ts';
import { outputSpecs } from '../../runtimes/manifest.ts';
import { SibylError } from '../../runtimes/errors.ts';
import { compileFeaturePlan, type FeaturePlan } from '../pipeline/feature-plan.ts';

export class Route {
  readonly model: string;
  readonly version: string;
  readonly manifest: Manifest;
  readonly plan: FeaturePlan;
  readonly outputs: readonly OutputSpec[];
  readonly loaded: LoadedModel;
  /** Content hash of the bundle. */
  readonly hash: string;
  #inflight = 0;
  #retired = false;
  #disposed: Promise<void> | undefined;

  constructor(manifest: Manifest, loaded: LoadedModel, hash: string) {
    this.model = manifest.name;
    this.version = manifest.version;
    this.manifest = manifest;
    this.plan = compileFeaturePlan(manifest);
    this.outputs = outputSpecs(manifest);
    this.loaded = loaded;
    this.hash = hash;
  }

  acquire(): void {
    this.#inflight++;
  }

  release(): void {
    if (--this.#inflight === 0 && this.#retired) void this.#dispose();
  }

  /** Marks the route out of service; it is disposed when no request holds it. Resolves once disposed. */
  retire(): Promise<void> {
    this.#retired = true;
    return this.#inflight === 0 ? this.#dispose() : new Promise((resolve) => this.#waiters.push(resolve));
  }

  #waiters: (() => void)[] = [];

  #dispose(): Promise<void> {
    this.#disposed ??= this.loaded.dispose().finally(() => {
      for (const w of this.#waiters.splice(0)) w();
    });
    return this.#disposed;
  }
}

export interface ModelEntry {
  readonly name: string;
  readonly versions: ReadonlyMap<string, Route>;
  readonly defaultVersion: string;
  /** Alias to version. */
  readonly aliases: ReadonlyMap<string, string>;
}

export class RouteTable {
  readonly #models: ReadonlyMap<string, ModelEntry>;

  constructor(models: readonly ModelEntry[]) {
    for (const m of models) {
      if (!m.versions.has(m.defaultVersion)) throw new Error(`model ${m.name}: default version ${m.defaultVersion} is not loaded`);
      for (const [alias, v] of m.aliases) {
        if (!m.versions.has(v)) throw new Error(`model ${m.name}: alias ${alias} points at version ${v}, which is not loaded`);
      }
    }
    this.#models = new Map(models.map((m) => [m.name, m]));
  }

  /** The route for a model and a version, alias or '' (the default). Throws NOT_FOUND naming what was asked for. */
  resolve(model: string, version: string): Route {
    const entry = this.#models.get(model);
    if (!entry) throw new SibylError('NOT_FOUND', `model "${model}" not found`);
    const wanted = version || entry.defaultVersion;
    const route = entry.versions.get(wanted) ?? entry.versions.get(entry.aliases.get(wanted) ?? '');
    if (!route) throw new SibylError('NOT_FOUND', `model "${model}" has no version or alias "${version}"`);
    return route;
  }

  model(name: string): ModelEntry | undefined {
    return this.#models.get(name);
  }

  models(): IterableIterator<ModelEntry> {
    return this.#models.values();
  }

  routes(): Route[] {
    return [...this.#models.values()].flatMap((m) => [...m.versions.values()]);
  }
}

/** Holds the current table; `swap` replaces it atomically and retires the routes the new table no longer has. */
export class RouteTableRef {
  #current: RouteTable;
  constructor(initial: RouteTable) {
    this.#current = initial;
  }
  get current(): RouteTable {
    return this.#current;
  }
  async swap(next: RouteTable): Promise<void> {
    const previous = this.#current;
    this.#current = next;
    const kept = new Set(next.routes());
    await Promise.all(previous.routes().filter((r) => !kept.has(r)).map((r) => r.retire()));
  }
}
