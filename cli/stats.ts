/**
 * `sibyl stats MODEL [VERSION] [--cell C] [--json]`: a model's serving statistics and drift as the control tower
 * merged them from its gateways' reports (GET /v1/models/{name}[/versions/{v}]/statistics). By default one table
 * per cell and version: per feature and output, rows, defaulted share (and why), mean, median, the 1st and 99th
 * percentiles, the training mean, the PSI against the training statistics and whether it is over the threshold.
 * `--json`: the API's answer as is.
 */
import { Command, Option } from 'commander';
import type { CellVersionStatistics, ValueView } from '../stats/view.ts';
import { towerCall, type TowerOptions } from './tower-client.ts';
import { withTower } from './tower.ts';

type Opts = TowerOptions & { cell?: string; json?: boolean };

export function statsCommand(): Command {
  return withTower(
    new Command('stats')
      .description("a model's serving statistics per cell and version, and their drift from the training statistics")
      .argument('<model>')
      .argument('[version]')
      .addOption(new Option('--cell <cell>', 'only this cell'))
      .option('--json', 'print the API answer as JSON')
      .action(async (model: string, version: string | undefined, o: Opts) => {
        const q = o.cell ? `?cell=${encodeURIComponent(o.cell)}` : '';
        const path = `/v1/models/${encodeURIComponent(model)}${version ? `/versions/${encodeURIComponent(version)}` : ''}/statistics${q}`;
        const answer = (await towerCall(o, 'GET', path)) as { statistics: CellVersionStatistics[] };
        process.stdout.write(o.json ? `${JSON.stringify(answer, null, 2)}\n` : formatStatistics(answer.statistics));
      }),
  );
}

/** The statistics as text tables, one per cell and version. */
export function formatStatistics(all: readonly CellVersionStatistics[]): string {
  if (all.length === 0) return 'no serving statistics reported yet (no live gateway has served this model in its window)\n';
  const blocks = all.map((s) => {
    const head =
      `${s.model} version ${s.version} in cell ${s.cell}: ${s.rows} rows from ${s.replicas.length} replica(s), ${s.windowStart ?? '?'} to ${s.windowEnd ?? '?'}\n` +
      `drift: PSI over ${s.threshold} (${s.thresholdFrom}) is drifted; ${s.drifted.length ? `DRIFTED: ${s.drifted.join(', ')}` : 'nothing drifted'}\n`;
    const rows: string[][] = [['', 'name', 'values', 'defaulted', 'mean', 'p1', 'p50', 'p99', 'train mean', 'PSI', '']];
    for (const [kind, values] of [['feature', s.features], ['output', s.outputs]] as const) {
      for (const [name, v] of Object.entries(values)) rows.push(row(kind, name, v));
    }
    return head + table(rows);
  });
  return `${blocks.join('\n')}`;
}

function row(kind: string, name: string, v: ValueView): string[] {
  const reasons = Object.entries(v.defaulted)
    .filter(([, n]) => n > 0)
    .map(([r, n]) => `${r} ${n}`)
    .join(', ');
  const defaulted = v.defaultedShare > 0 ? `${pct(v.defaultedShare)} (${reasons})` : '0';
  const num = (x: number | undefined) => (x === undefined ? '' : fmt(x));
  const categories = v.kind === 'categorical' ? Object.entries(v.categories ?? {}).sort((a, b) => b[1] - a[1]).slice(0, 3).map(([k, n]) => `${k}:${pct(n / Math.max(1, v.values))}`).join(' ') : '';
  return [
    kind,
    name,
    String(v.values),
    defaulted,
    v.kind === 'numeric' ? num(v.mean) : categories,
    num(v.quantiles?.p1),
    num(v.quantiles?.p50),
    num(v.quantiles?.p99),
    num(v.training?.mean),
    v.drift ? fmt(v.drift.psi) : '-',
    v.drift?.drifted ? 'DRIFTED' : v.drift ? '' : (v.noDrift ?? ''),
  ];
}

function fmt(x: number): string {
  return Math.abs(x) >= 1000 || x === Math.trunc(x) ? String(Math.round(x * 100) / 100) : x.toPrecision(4);
}

function pct(x: number): string {
  return `${(x * 100).toFixed(1)}%`;
}

function table(rows: readonly string[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return rows.map((r) => r.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd()).join('\n') + '\n';
}
