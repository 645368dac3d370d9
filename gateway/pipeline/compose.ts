/**
 * Composition: a rule's manifest may name other models (`rules.models`); before the rule runs, the gateway runs
 * them on the same request and hands the rule their outputs per row as `ctx.models[as]`. A request to a composed
 * rule may carry the features and entity ids of any of its models: each model (the rule too) takes the ones it
 * declares, reuses the values another already read, and reads the rest from the store on its own. The composed
 * models run concurrently, resolved in the same route table snapshot as the rule. A composed model may itself be a
 * composed rule, down to MAX_DEPTH; cycles are refused at upload, and the depth bounds what a deployment could
 * still assemble.
 */
import type { FeatureRow, OutputRow, Scalar } from '../../runtimes/contract.ts';
import { SibylError } from '../../core/errors.ts';
import type { FeatureStore } from '../features/feature-store.ts';
import type { Route, RouteTable } from '../routing/route-table.ts';
import { enrich, type FeaturePlan, type InputRow } from './feature-plan.ts';

export const MAX_DEPTH = 4;

export interface ComposeDeps {
  readonly store: FeatureStore;
  readonly featurePrefix: string;
  readonly featureTimeoutMs: number;
}

interface Part {
  readonly as: string;
  readonly route: Route;
}

/** The routes a composed rule names, resolved in `table`. FAILED_PRECONDITION when one is not served here. */
export function resolveComposed(table: RouteTable, rule: Route): Part[] {
  return rule.composed.map((c) => {
    try {
      return { as: c.as, route: table.resolve(c.model, c.version) };
    } catch {
      throw new SibylError('FAILED_PRECONDITION', `rule ${rule.model}/${rule.version} composes ${c.model}${c.version ? `/${c.version}` : ''}, which this gateway does not serve`);
    }
  });
}

/**
 * The rows the rule itself takes: the request's features and entities that the rule declares. A feature or entity
 * that neither the rule nor any model it composes declares is INVALID_ARGUMENT, as for any model.
 */
export function ruleRows(rule: Route, parts: readonly Part[], input: readonly InputRow[]): InputRow[] {
  const plans = [rule.plan, ...parts.map((p) => p.route.plan)];
  return input.map((src, i) => {
    const features: Record<string, Scalar> = {};
    for (const name in src.features) {
      if (rule.plan.byName.has(name)) features[name] = src.features[name]!;
      else if (!plans.some((p) => p.byName.has(name))) throw new SibylError('INVALID_ARGUMENT', `rows[${i}].features.${name}: neither the rule nor the models it composes have a feature "${name}"`);
    }
    const entities: Record<string, string> = {};
    for (const e in src.entities) {
      if (rule.plan.entities.has(e)) entities[e] = src.entities[e]!;
      else if (!plans.some((p) => p.entities.has(e))) throw new SibylError('INVALID_ARGUMENT', `rows[${i}].entities.${e}: neither the rule nor the models it composes have an entity "${e}"`);
    }
    return { entities, features };
  });
}

/** `ctx.models` for each row. Rejects with a composed model's error. */
export async function composedOutputs(
  table: RouteTable,
  parts: readonly Part[],
  input: readonly InputRow[],
  known: readonly FeatureRow[],
  knownDefaulted: readonly (readonly string[])[],
  deps: ComposeDeps,
  signal: AbortSignal,
  depth = 1,
): Promise<Record<string, OutputRow>[]> {
  if (depth > MAX_DEPTH) throw new SibylError('FAILED_PRECONDITION', `models composed more than ${MAX_DEPTH} deep (a cycle?)`);
  const outputs = await Promise.all(
    parts.map(async ({ route }) => {
      route.acquire();
      try {
        const rows = rowsFor(route.plan, input, known, knownDefaulted);
        const enriched = await enrich(route.plan, rows, deps.store, deps.featurePrefix, deps.featureTimeoutMs);
        let models: Record<string, OutputRow>[] | undefined;
        if (route.composed.length) {
          models = await composedOutputs(table, resolveComposed(table, route), input, enriched.rows, enriched.defaulted, deps, signal, depth + 1);
        }
        return await route.loaded.predict(enriched.rows, models ? { signal, models } : { signal });
      } finally {
        route.release();
      }
    }),
  );
  return input.map((_, i) => {
    const m: Record<string, OutputRow> = {};
    parts.forEach((p, j) => (m[p.as] = outputs[j]![i]!));
    return m;
  });
}

/** A composed model's rows: the request's values it declares, else values already read (not defaulted ones). */
function rowsFor(plan: FeaturePlan, input: readonly InputRow[], known: readonly FeatureRow[], knownDefaulted: readonly (readonly string[])[]): InputRow[] {
  return input.map((src, i) => {
    const k = known[i]!;
    const skip = knownDefaulted[i] ?? [];
    const features: Record<string, Scalar> = {};
    for (const f of plan.features) {
      const fromRequest = src.features[f.name];
      if (fromRequest !== undefined) features[f.name] = fromRequest;
      else if (k[f.name] !== undefined && !skip.includes(f.name)) features[f.name] = k[f.name]!;
    }
    const entities: Record<string, string> = {};
    for (const e in src.entities) if (plan.entities.has(e)) entities[e] = src.entities[e]!;
    return { entities, features };
  });
}
