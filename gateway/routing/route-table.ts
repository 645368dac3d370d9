/**
 * The route table: an immutable snapshot of what this gateway serves, swapped whole on deploy. `resolve` maps
 * (model, version | alias | '') to one loaded model version. It also knows the versions that are deployed but not
 * served here (they failed to download or load), so that a request for one is UNAVAILABLE naming why, not
 * NOT_FOUND: the model exists, this replica cannot run it.
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

/**
 * A model's deployed versions that this gateway does not serve, each with the error that kept it out, and the
 * aliases that point at them. Requests that resolve to one answer UNAVAILABLE with that error.
 */
export interface UnservedModel {
  readonly name: string;
  /** The deployed default version ('' when none). */
  readonly defaultVersion: string;
  /** Version to the error that kept it out (a download or load error). */
  readonly versions: ReadonlyMap<string, string>;
  /** Alias to version, for aliases of the deployed state whose version is not served. */
  readonly aliases: ReadonlyMap<string, string>;
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
  readonly #unserved: ReadonlyMap<string, UnservedModel>;

  /**
   * `unserved`: what is deployed but not served, by model (a model may be in both lists: some versions served).
   * Throws Error when a default, alias, split arm or shadow names a version that is not in the table.
   */
  constructor(models: readonly ModelEntry[], unserved: readonly UnservedModel[] = []) {
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
    this.#unserved = new Map(unserved.map((u) => [u.name, u]));
  }

  /**
   * The live route of a request: the named version or alias when there is one; else the split's arm (sticky by
   * `routingKey`); else the default version. Throws NOT_FOUND naming what was asked for, or UNAVAILABLE naming the
   * error of the deployed version it resolves to when this gateway does not serve that version.
   */
  select(model: string, version: string, routingKey: string): Selection {
    if (version !== '') return this.resolve(model, version).direct;
    const c = this.#compiled.get(model);
    if (!c) throw this.#missing(model, '');
    const split = c.entry.split;
    if (!split) return c.defaultSelection;
    return c.armSelections[split.pickIndex(model, routingKey)]!;
  }

  /** The shadow routes of a model, in declared order (empty when it has none or is unknown). */
  shadowsOf(model: string): readonly Route[] {
    return this.#compiled.get(model)?.shadowRoutes ?? NO_ROUTES;
  }

  /**
   * The route for a model and a version, alias or '' (the default). Throws NOT_FOUND naming what was asked for, or
   * UNAVAILABLE naming the error of a deployed version this gateway does not serve.
   */
  resolve(model: string, version: string): Route {
    const entry = this.#models.get(model);
    if (!entry) throw this.#missing(model, version);
    const wanted = version || entry.defaultVersion;
    const route = entry.versions.get(wanted) ?? entry.versions.get(entry.aliases.get(wanted) ?? '');
    if (!route) throw this.#missing(model, version);
    return route;
  }

  /** The deployed versions of a model this gateway does not serve, with their errors (undefined when none). */
  unserved(model: string): UnservedModel | undefined {
    return this.#unserved.get(model);
  }

  /** Why (model, version | alias | '') has no route: UNAVAILABLE with the load error when it is deployed, else NOT_FOUND. */
  #missing(model: string, asked: string): SibylError {
    const u = this.#unserved.get(model);
    const served = this.#models.has(model);
    if (u) {
      const version = asked === '' ? u.defaultVersion : u.versions.has(asked) ? asked : u.aliases.get(asked);
      const error = version === undefined ? undefined : u.versions.get(version);
      if (version !== undefined && error !== undefined) {
        const what = asked === '' ? `its default version "${version}"` : asked === version ? `version "${version}"` : `alias "${asked}" (version "${version}")`;
        return new SibylError('UNAVAILABLE', `model "${model}": ${what} is deployed but failed to load on this gateway: ${error}`);
      }
      if (!served && asked === '') {
        // No version served and no default deployed: the model is still there, name why each version is out.
        const all = [...u.versions].map(([v, e]) => `version "${v}": ${e}`).join('; ');
        return new SibylError('UNAVAILABLE', `model "${model}" is deployed but none of its versions loaded on this gateway: ${all}`);
      }
    }
    if (!served && !u) return new SibylError('NOT_FOUND', `model "${model}" not found`);
    return new SibylError('NOT_FOUND', `model "${model}" has no version or alias "${asked}"`);
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
