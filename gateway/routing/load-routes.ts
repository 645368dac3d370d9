/** Loads bundles with their runtimes and assembles a route table (default versions and aliases). */
import type { ModelBundle } from '../../runtimes/contract.ts';
import type { Runtimes } from '../../runtimes/index.ts';
import { defaultVersionOf, type Deployment } from '../bundle/local-bundles.ts';
import { Route, RouteTable, type ModelEntry } from './route-table.ts';

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
    entries.push({ name, versions, defaultVersion, aliases });
  }
  return new RouteTable(entries);
}
