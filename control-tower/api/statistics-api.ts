/**
 * Serving statistics and drift: each gateway replica reports its recent window per model version (GatewayReport
 * `statistics`); here the live replicas of a cell are merged (stats/summary.ts), set beside the version's training
 * statistics and scored for drift (stats/view.ts), per cell and version.
 *
 *   GET /v1/models/{name}/statistics[?cell=C]                    every version reported, per cell
 *   GET /v1/models/{name}/versions/{v}/statistics[?cell=C]       one version, per cell
 *   GET /metrics                                                 Prometheus text, every model (no token, like /healthz)
 *
 * A replica whose last report is older than `staleAfterMs` is left out, as a replica that is gone.
 */
import { fromJson, type JsonValue } from '@bufbuild/protobuf';
import type { Hono } from 'hono';
import { VersionStatisticsSchema, type VersionStatistics } from '../../proto/gen/sibyl/v1/statistics_pb.js';
import { z } from 'zod';
import { TrainingStatistics, ValueStatistics } from '../../runtimes/manifest-fields.ts';
import { mergeVersionStatistics } from '../../stats/summary.ts';
import { statisticsView, type CellVersionStatistics, type DriftSettings } from '../../stats/view.ts';
import type { MetadataStore } from '../store/index.ts';
import { requireRole, type TowerEnv } from './http.ts';

export interface StatisticsApiDeps {
  readonly store: MetadataStore;
  readonly drift: DriftSettings;
  /** Reports older than this are left out, ms (default 120 000, as the cells' staleness). */
  readonly staleAfterMs?: number;
  readonly logger?: { warn?(obj: object, msg: string): void };
  /** More Prometheus text for `GET /metrics` (the rollouts' gauges, control-tower/rollout/metrics.ts). */
  readonly moreMetrics?: () => Promise<string>;
}

const num = z.number();
const ValueViewSchema = z.object({
  kind: z.enum(['numeric', 'categorical']),
  count: num.describe('rows seen'),
  defaulted: z.record(z.string(), num).describe('rows whose value was the declared default, by reason: missing, late, down'),
  defaultedShare: num,
  values: num.describe('values summarized (count less defaulted and invalid)'),
  mean: num.optional(),
  variance: num.optional(),
  min: num.optional(),
  max: num.optional(),
  quantiles: z.object({ p1: num, p5: num, p25: num, p50: num, p75: num, p95: num, p99: num }).optional().describe('each within 1% (relative) of the true quantile'),
  categories: z.record(z.string(), num).optional(),
  other: num.optional(),
  training: ValueStatistics.optional().describe("the manifest's training statistics of this value"),
  drift: z
    .object({
      method: z.enum(['psi-histogram', 'psi-categories']),
      psi: num,
      threshold: num,
      drifted: z.boolean(),
      bins: z.array(z.object({ bin: z.string(), training: num, serving: num })),
    })
    .optional(),
  noDrift: z.string().optional().describe('why there is no drift score'),
});

/** The answer of both statistics calls (stats/view.ts, CellVersionStatistics), for the OpenAPI document. */
export const StatisticsAnswer = z.object({
  model: z.string(),
  version: z.string().optional(),
  statistics: z.array(
    z.object({
      cell: z.string(),
      replicas: z.array(z.string()),
      model: z.string(),
      version: z.string(),
      windowStart: z.string().optional(),
      windowEnd: z.string().optional(),
      rows: num,
      threshold: num,
      thresholdFrom: z.enum(['manifest', 'tower']),
      drifted: z.array(z.string()).describe('features.NAME and outputs.NAME over the threshold'),
      sketchAccuracy: num,
      features: z.record(z.string(), ValueViewSchema),
      outputs: z.record(z.string(), ValueViewSchema),
    }),
  ),
});

export function mountStatisticsApi(app: Hono<TowerEnv>, deps: StatisticsApiDeps): void {
  app.get('/v1/models/:name/statistics', async (c) => {
    requireRole(c, 'viewer');
    const name = c.req.param('name');
    await deps.store.getModel(name);
    return c.json({ model: name, statistics: await collect(deps, { model: name, cell: c.req.query('cell') }) });
  });

  app.get('/v1/models/:name/versions/:version/statistics', async (c) => {
    requireRole(c, 'viewer');
    const name = c.req.param('name');
    const version = c.req.param('version');
    await deps.store.getVersion(name, version);
    return c.json({ model: name, version, statistics: await collect(deps, { model: name, version, cell: c.req.query('cell') }) });
  });

  app.get('/metrics', async () => {
    const text = prometheusText(await collect(deps, {})) + ((await deps.moreMetrics?.()) ?? '');
    return new Response(text, { headers: { 'content-type': 'text/plain; version=0.0.4; charset=utf-8' } });
  });
}

/** Merged statistics per (cell, model, version) that match `filter`, sorted by cell, model, version. */
export async function collect(deps: StatisticsApiDeps, filter: { model?: string; version?: string; cell?: string | undefined }): Promise<CellVersionStatistics[]> {
  const staleAfterMs = deps.staleAfterMs ?? 120_000;
  const now = Date.now();
  const cells = filter.cell ? [filter.cell] : (await deps.store.listCells()).map((x) => x.name);
  const training = new Map<string, Promise<TrainingStatistics | undefined>>();
  const trainingOf = (model: string, version: string) => {
    const key = `${model}/${version}`;
    let t = training.get(key);
    if (!t) {
      t = deps.store.getVersion(model, version).then(
        (v) => {
          const parsed = TrainingStatistics.safeParse((v.manifest as { statistics?: unknown } | null)?.statistics);
          return parsed.success ? parsed.data : undefined;
        },
        () => undefined,
      );
      training.set(key, t);
    }
    return t;
  };
  const out: CellVersionStatistics[] = [];
  for (const cell of cells) {
    const groups = new Map<string, { stats: VersionStatistics[]; replicas: string[] }>();
    for (const r of await deps.store.reports(cell)) {
      if (now - r.received.getTime() > staleAfterMs) continue;
      for (const json of r.statistics ?? []) {
        let s: VersionStatistics;
        try {
          s = fromJson(VersionStatisticsSchema, json as JsonValue, { ignoreUnknownFields: true });
        } catch (err) {
          deps.logger?.warn?.({ cell, replica: r.replica, err: (err as Error).message }, 'unreadable statistics in a gateway report; left out');
          continue;
        }
        if ((filter.model && s.model !== filter.model) || (filter.version && s.version !== filter.version)) continue;
        const key = `${s.model}\u0000${s.version}`;
        let g = groups.get(key);
        if (!g) groups.set(key, (g = { stats: [], replicas: [] }));
        g.stats.push(s);
        g.replicas.push(r.replica);
      }
    }
    for (const g of groups.values()) {
      let merged: VersionStatistics;
      try {
        merged = mergeVersionStatistics(g.stats);
      } catch (err) {
        deps.logger?.warn?.({ cell, err: (err as Error).message }, 'gateway statistics that do not merge; left out');
        continue;
      }
      const view = statisticsView(merged, await trainingOf(merged.model, merged.version), deps.drift);
      out.push({ cell, replicas: g.replicas.sort(), ...view });
    }
  }
  const cmp = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);
  return out.sort((a, b) => cmp(a.cell, b.cell) || cmp(a.model, b.model) || cmp(a.version, b.version));
}

/**
 * The statistics as Prometheus gauges (text format 0.0.4), labels cell, model, version and, per value, kind
 * (feature | output) and name:
 *   sibyl_serving_rows                 rows answered in the merged window
 *   sibyl_drift_psi                    the value's PSI against its training statistics (when scored)
 *   sibyl_drift_threshold              the threshold applied to the version
 *   sibyl_drifted                      1 when the value's PSI is over the threshold, else 0
 *   sibyl_defaulted_ratio              share of rows whose value was the declared default
 */
export function prometheusText(all: readonly CellVersionStatistics[]): string {
  const families: Record<string, { help: string; lines: string[] }> = {
    sibyl_serving_rows: { help: 'Rows a model version answered in the merged recent window of a cell.', lines: [] },
    sibyl_drift_psi: { help: "Population stability index of a feature's or output's serving values against the version's training statistics.", lines: [] },
    sibyl_drift_threshold: { help: 'PSI above which a feature or output of the version counts as drifted.', lines: [] },
    sibyl_drifted: { help: 'Whether the PSI of a feature or output is over the threshold (1) or not (0).', lines: [] },
    sibyl_defaulted_ratio: { help: 'Share of rows whose value was the declared default (missing, store late or down).', lines: [] },
  };
  const line = (family: string, labels: Record<string, string>, value: number) => {
    const l = Object.entries(labels)
      .map(([k, v]) => `${k}="${v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n')}"`)
      .join(',');
    families[family]!.lines.push(`${family}{${l}} ${value}`);
  };
  for (const s of all) {
    const base = { cell: s.cell, model: s.model, version: s.version };
    line('sibyl_serving_rows', base, s.rows);
    line('sibyl_drift_threshold', base, s.threshold);
    for (const [kind, values] of [['feature', s.features], ['output', s.outputs]] as const) {
      for (const [name, v] of Object.entries(values)) {
        const labels = { ...base, kind, name };
        if (v.drift) {
          line('sibyl_drift_psi', labels, v.drift.psi);
          line('sibyl_drifted', labels, v.drift.drifted ? 1 : 0);
        }
        line('sibyl_defaulted_ratio', labels, v.defaultedShare);
      }
    }
  }
  return Object.entries(families)
    .map(([name, f]) => `# HELP ${name} ${f.help}\n# TYPE ${name} gauge\n${f.lines.join('\n')}${f.lines.length ? '\n' : ''}`)
    .join('');
}
