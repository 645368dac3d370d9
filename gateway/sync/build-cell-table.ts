/**
 * Builds the route table for a cell's desired state (CellState) from versions already loaded, keyed by bundle hash:
 * the one place that decides defaults, fallbacks, aliases, splits and shadows, whether the state came from the
 * control tower or from a models directory.
 */
import type { CellState } from '../../proto/gen/sibyl/v1/deployment_pb.js';
import { compareVersions } from '../../core/versions.ts';
import { RouteTable, type ModelEntry, type Route, type UnservedModel } from '../routing/route-table.ts';
import { TrafficSplit } from '../routing/traffic-split.ts';

export interface LoadLog {
  warn(obj: object, msg: string): void;
}

/** A model whose wanted default version is not loaded, and the version that serves its default instead. */
export interface DefaultFallback {
  readonly model: string;
  readonly wanted: string;
  readonly using: string;
}

export interface CellTable {
  readonly table: RouteTable;
  readonly fallbacks: readonly DefaultFallback[];
}

/**
 * Every deployed version whose bundle hash is in `loaded` (and whose route is that model and version) is served.
 * A model with no loaded version is left out. When the wanted default is not loaded, the default is the
 * `previous` table's default of that model if it is still deployed and loaded, else the highest loaded version.
 * Aliases to versions not loaded are dropped; a split naming one is dropped whole (its requests go to the
 * default); shadows not loaded are dropped. Each drop is logged. Never throws for a consistent `loaded` map.
 *
 * Deployed versions not loaded go into the table as unserved, with their error from `errors` (by bundle hash), so
 * that requests for them, for aliases to them, and for a default no loaded version stands in for, are UNAVAILABLE
 * naming that error rather than NOT_FOUND.
 */
export function buildCellTable(
  state: CellState,
  loaded: ReadonlyMap<string, Route>,
  previous: RouteTable | undefined,
  log: LoadLog,
  errors: ReadonlyMap<string, string> = new Map(),
): CellTable {
  const entries: ModelEntry[] = [];
  const unserved: UnservedModel[] = [];
  const fallbacks: DefaultFallback[] = [];
  for (const m of state.models) {
    const versions = new Map<string, Route>();
    const out = new Map<string, string>();
    for (const v of m.versions) {
      const route = loaded.get(v.bundleSha256);
      if (route && route.model === m.name && route.version === v.version) versions.set(v.version, route);
      else out.set(v.version, errors.get(v.bundleSha256) ?? 'not loaded');
    }
    if (out.size) {
      const aliases = new Map(Object.entries(m.aliases).filter(([, v]) => out.has(v)));
      unserved.push({ name: m.name, defaultVersion: m.defaultVersion, versions: out, aliases });
    }
    if (versions.size === 0) {
      log.warn({ model: m.name }, 'no version of the model is loaded; model not served');
      continue;
    }
    let defaultVersion = m.defaultVersion;
    if (!versions.has(defaultVersion)) {
      const before = previous?.model(m.name)?.defaultVersion;
      defaultVersion = before !== undefined && versions.has(before) ? before : [...versions.keys()].sort(compareVersions).at(-1)!;
      fallbacks.push({ model: m.name, wanted: m.defaultVersion, using: defaultVersion });
      log.warn({ model: m.name, wanted: m.defaultVersion, using: defaultVersion }, 'default version not loaded; using another');
    }
    const aliases = new Map<string, string>();
    for (const [alias, v] of Object.entries(m.aliases)) {
      if (versions.has(v)) aliases.set(alias, v);
      else log.warn({ model: m.name, alias, version: v }, 'alias points at a version that is not loaded; dropped');
    }
    let split: TrafficSplit | undefined;
    if (m.split.length) {
      const missing = m.split.filter((a) => !versions.has(a.version));
      if (missing.length) log.warn({ model: m.name, versions: missing.map((a) => a.version) }, 'split names versions that are not loaded; split dropped');
      else {
        try {
          split = new TrafficSplit(m.split.map((a) => ({ arm: a.arm || a.version, version: a.version, weight: a.weight })));
        } catch (err) {
          log.warn({ model: m.name, err: (err as Error).message }, 'invalid split; dropped');
        }
      }
    }
    const shadows = m.shadows.map((t) => ({ model: t.model || m.name, version: t.version }));
    entries.push({ name: m.name, versions, defaultVersion, aliases, split, shadows });
  }
  return { table: new RouteTable(withLoadedShadows(entries, log), unserved), fallbacks };
}

/** Drops (with a warning) shadows whose model or version is not in the table. */
function withLoadedShadows(entries: readonly ModelEntry[], log: LoadLog): ModelEntry[] {
  const byName = new Map(entries.map((e) => [e.name, e]));
  return entries.map((e) => {
    const shadows = (e.shadows ?? []).filter((t) => {
      const target = byName.get(t.model);
      const ok = target !== undefined && target.versions.has(t.version || target.defaultVersion);
      if (!ok) log.warn({ model: e.name, shadow: `${t.model}/${t.version || '(default)'}` }, 'shadow is not loaded; dropped');
      return ok;
    });
    return { ...e, shadows };
  });
}
