/** Loads bundles with their runtimes and assembles a route table (default versions and aliases). */
import type { ModelBundle } from '../../runtimes/contract.ts';
import type { Runtimes } from '../../runtimes/index.ts';
import { defaultVersionOf, type Deployment } from '../bundle/local-bundles.ts';
import { Route, RouteTable, type ModelEntry, type ShadowTarget } from './route-table.ts';
import { TrafficSplit } from './traffic-split.ts';

export interface LoadLog {
  warn(obj: object, msg: string): void;
  info(obj: object, msg: string): void;
}

/**
 * Loads every bundle (in parallel per model) and builds the table. A bundle whose runtime is not available or
 * whose load fails is left out and logged; a model left with no version is left out. Aliases pointing at a version
 * that did not load are dropped with a warning.
 */
export async function loadRouteTable(bundles: readonly ModelBundle[], deployment: Deployment, runtimes: Runtimes, log: LoadLog): Promise<RouteTable> {
  const byModel = new Map<string, ModelBundle[]>();
  for (const b of bundles) {
    const list = byModel.get(b.manifest.name) ?? [];
    list.push(b);
    byModel.set(b.manifest.name, list);
  }
  const entries: ModelEntry[] = [];
  for (const [name, list] of byModel) {
    const versions = new Map<string, Route>();
    for (const b of list) {
      const runtime = runtimes.byKind.get(b.manifest.runtime);
      if (!runtime) {
        log.warn({ model: name, version: b.manifest.version, runtime: b.manifest.runtime }, 'runtime not available; version not served');
        continue;
      }
      try {
        const started = performance.now();
        const loaded = await runtime.load(b);
        versions.set(b.manifest.version, new Route(b.manifest, loaded, b.hash));
        log.info({ model: name, version: b.manifest.version, runtime: runtime.kind, ms: Math.round(performance.now() - started) }, 'model loaded');
      } catch (err) {
        log.warn({ model: name, version: b.manifest.version, err: (err as Error).message }, 'model failed to load; version not served');
      }
    }
    if (versions.size === 0) continue;
    let defaultVersion = defaultVersionOf(name, list.filter((b) => versions.has(b.manifest.version)), deployment);
    if (!versions.has(defaultVersion)) {
      const fallback = defaultVersionOf(name, list.filter((b) => versions.has(b.manifest.version)), { models: {} });
      log.warn({ model: name, wanted: defaultVersion, using: fallback }, 'default version not loaded; using another');
      defaultVersion = fallback;
    }
    const aliases = new Map<string, string>();
    for (const [alias, v] of Object.entries(deployment.models[name]?.aliases ?? {})) {
      if (versions.has(v)) aliases.set(alias, v);
      else log.warn({ model: name, alias, version: v }, 'alias points at a version that is not loaded; dropped');
    }
    let split: TrafficSplit | undefined;
    const arms = deployment.models[name]?.split;
    if (arms) {
      const missing = arms.filter((a) => !versions.has(a.version));
      if (missing.length) log.warn({ model: name, versions: missing.map((a) => a.version) }, 'split names versions that are not loaded; split dropped');
      else {
        try {
          split = new TrafficSplit(arms.map((a) => ({ arm: a.arm ?? a.version, version: a.version, weight: a.weight })));
        } catch (err) {
          log.warn({ model: name, err: (err as Error).message }, 'invalid split; dropped');
        }
      }
    }
    const shadows: ShadowTarget[] = (deployment.models[name]?.shadows ?? []).map((t) => ({ model: t.model ?? name, version: t.version }));
    entries.push({ name, versions, defaultVersion, aliases, split, shadows });
  }
  return new RouteTable(withLoadedShadows(entries, log));
}

/** Drops (with a warning) shadows whose model or version is not in the table. */
export function withLoadedShadows(entries: readonly ModelEntry[], log: LoadLog): ModelEntry[] {
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
