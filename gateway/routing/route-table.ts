/**
 * The route table: an immutable snapshot of what this gateway serves, swapped whole on deploy. `resolve` maps
 * (model, version | alias | '') to one loaded model version.
 *
 * A version's lifetime: the pipeline `acquire`s the route it resolved and `release`s it when the request (and its
 * log) is done; a version retired by a swap is disposed once its last in-flight request releases it.
 */
import type { LoadedModel } from '../../runtimes/contract.ts';
import type { Manifest } from '../../runtimes/manifest.ts';
import { SibylError } from '../../core/errors.ts';
import { ModelVersion, type VersionResolver } from '../../execution/model-version.ts';
import type { TrafficSplit } from './traffic-split.ts';

/** The live route of a request and the split arm that chose it ('' when no split did). */
export interface Selection {
  readonly route: Route;
  readonly arm: string;
}

/** A loaded version as the route table serves it: the model version plus its bundle's content hash. */
export class Route extends ModelVersion {
  /** Content hash of the bundle. */
  readonly hash: string;
  /** This route selected without a split (preallocated: selecting costs no allocation). */
  readonly direct: Selection;

  constructor(manifest: Manifest, loaded: LoadedModel, hash: string) {
    super(manifest, loaded);
    this.hash = hash;
    this.direct = { route: this, arm: '' };
  }
}

export interface ModelEntry {
  readonly name: string;
  readonly versions: ReadonlyMap<string, Route>;
  readonly defaultVersion: string;
  /** Alias to version. */
  readonly aliases: ReadonlyMap<string, string>;
  /** Weighted arms among loaded versions, used when a request names no version (instead of the default). */
  readonly split?: TrafficSplit | undefined;
  /** Run after each live response of this model, on the same features; never change the response. */
  readonly shadows?: readonly ShadowTarget[] | undefined;
}

/** A shadow: a version of this model or of another model with compatible features ('' = that model's default). */
export interface ShadowTarget {
  readonly model: string;
  readonly version: string;
}

interface Compiled {
  readonly entry: ModelEntry;
  readonly defaultSelection: Selection;
  /** Parallel to entry.split.arms. */
  readonly armSelections: readonly Selection[];
  readonly shadowRoutes: readonly Route[];
}

export class RouteTable implements VersionResolver {
  readonly #models: ReadonlyMap<string, ModelEntry>;
  readonly #compiled: ReadonlyMap<string, Compiled>;

  /** Throws Error when a default, alias, split arm or shadow names a version that is not in the table. */
  constructor(models: readonly ModelEntry[]) {
    for (const m of models) {
      if (!m.versions.has(m.defaultVersion)) throw new Error(`model ${m.name}: default version ${m.defaultVersion} is not loaded`);
      for (const [alias, v] of m.aliases) {
        if (!m.versions.has(v)) throw new Error(`model ${m.name}: alias ${alias} points at version ${v}, which is not loaded`);
      }
      for (const a of m.split?.arms ?? []) {
        if (!m.versions.has(a.version)) throw new Error(`model ${m.name}: split arm ${a.arm} names version ${a.version}, which is not loaded`);
      }
    }
    this.#models = new Map(models.map((m) => [m.name, m]));
    const compiled = new Map<string, Compiled>();
    for (const m of models) {
      const shadowRoutes = (m.shadows ?? []).map((t) => {
        const target = this.#models.get(t.model);
        const route = target?.versions.get(t.version || target.defaultVersion);
        if (!route) throw new Error(`model ${m.name}: shadow ${t.model}/${t.version || '(default)'} is not loaded`);
        return route;
      });
      compiled.set(m.name, {
        entry: m,
        defaultSelection: m.versions.get(m.defaultVersion)!.direct,
        armSelections: (m.split?.arms ?? []).map((a) => ({ route: m.versions.get(a.version)!, arm: a.arm })),
        shadowRoutes,
      });
    }
    this.#compiled = compiled;
  }

  /**
   * The live route of a request: the named version or alias when there is one; else the split's arm (sticky by
   * `routingKey`); else the default version. Throws NOT_FOUND naming what was asked for.
   */
  select(model: string, version: string, routingKey: string): Selection {
    if (version !== '') return this.resolve(model, version).direct;
    const c = this.#compiled.get(model);
    if (!c) throw new SibylError('NOT_FOUND', `model "${model}" not found`);
    const split = c.entry.split;
    if (!split) return c.defaultSelection;
    return c.armSelections[split.pickIndex(model, routingKey)]!;
  }

  /** The shadow routes of a model, in declared order (empty when it has none or is unknown). */
  shadowsOf(model: string): readonly Route[] {
    return this.#compiled.get(model)?.shadowRoutes ?? NO_ROUTES;
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

const NO_ROUTES: readonly Route[] = Object.freeze([]);

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
