/**
 * `sibyl replay MODEL --candidate [MODEL/]VERSION [--cell C] [--from TIME] [--to TIME] [--limit N]`: replays the
 * LIVE records of MODEL from the prediction-log topic against a candidate version and prints the comparison
 * (replay/replay.ts) as JSON, with a one-paragraph summary on stderr.
 *
 * Here (default): this process reads the broker (`--brokers`, KAFKA_BROKERS; `--topic`, SIBYL_KAFKA_TOPIC, default
 * sibyl.predictions) with a consumer group of its own, and runs the candidate's bundle: `--bundle FILE.zip|DIR`, or
 * downloaded from the control tower. `--on-tower`: the control tower runs it (POST /v1/models/{name}/replays) and
 * this waits for its report.
 *
 * TIME: an ISO 8601 date-time, or a time ago: 30m, 2h, 1d.
 */
import { readFile, stat } from 'node:fs/promises';
import { Command, Option } from 'commander';
import type { ReplayReport } from '../replay/replay.ts';
import { towerCall, type TowerOptions } from './tower-client.ts';
import { withTower } from './tower.ts';

type Opts = TowerOptions & {
  candidate: string;
  cell?: string;
  from?: string;
  to?: string;
  limit?: string;
  brokers?: string;
  topic: string;
  bundle?: string;
  batch: string;
  onTower?: boolean;
};

export function replayCommand(): Command {
  return withTower(
    new Command('replay')
      .description("replay a model's logged live traffic against a candidate version and compare (agreement, differences, latency, errors)")
      .argument('<model>', 'the model whose LIVE records are replayed')
      .requiredOption('--candidate <version>', 'VERSION of the model, or MODEL/VERSION')
      .option('--cell <cell>', 'only records served by this cell')
      .option('--from <time>', 'only requests from this time (ISO 8601, or 30m / 2h / 1d ago)')
      .option('--to <time>', 'only requests before this time')
      .option('--limit <n>', 'at most this many rows')
      .addOption(new Option('--brokers <list>', 'Kafka brokers of the prediction log').env('KAFKA_BROKERS'))
      .addOption(new Option('--topic <topic>', 'prediction-log topic').env('SIBYL_KAFKA_TOPIC').default('sibyl.predictions'))
      .option('--bundle <path>', "the candidate's bundle (zip or directory) instead of the control tower's")
      .option('--batch <rows>', 'rows per execution', '256')
      .option('--on-tower', 'let the control tower run it and wait for the report')
      .action(async (model: string, o: Opts) => {
        const [candidateModel, candidateVersion] = o.candidate.includes('/') ? [o.candidate.slice(0, o.candidate.indexOf('/')), o.candidate.slice(o.candidate.indexOf('/') + 1)] : [model, o.candidate];
        const fromMs = o.from ? parseTime(o.from, '--from') : undefined;
        const toMs = o.to ? parseTime(o.to, '--to') : undefined;
        const limit = o.limit ? positive(o.limit, '--limit') : undefined;
        let report: ReplayReport;
        if (o.onTower) {
          report = await onTower(o, model, { candidate: `${candidateModel}/${candidateVersion}`, cell: o.cell, from: fromMs && new Date(fromMs).toISOString(), to: toMs && new Date(toMs).toISOString(), limit });
        } else {
          // Imported here: the Kafka client and the runtimes would slow every other command's start by ~1 s.
          const [{ runReplay }, { zipDirectory }] = await Promise.all([import('../replay/run-replay.ts'), import('../runtimes/bundle/zip-dir.ts')]);
          const brokers = (o.brokers ?? '').split(',').map((b) => b.trim()).filter(Boolean);
          if (brokers.length === 0) throw new Error('replay: name the prediction log brokers (--brokers or KAFKA_BROKERS), or use --on-tower');
          const zip = o.bundle
            ? (await stat(o.bundle)).isDirectory()
              ? await zipDirectory(o.bundle)
              : await readFile(o.bundle)
            : Buffer.from((await towerCall(o, 'GET', `/v1/models/${encodeURIComponent(candidateModel)}/versions/${encodeURIComponent(candidateVersion)}/bundle`)) as Uint8Array);
          report = await runReplay(zip, { model, cell: o.cell, fromMs, toMs, limit, brokers, topic: o.topic, batchRows: positive(o.batch, '--batch') });
        }
        process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
        process.stderr.write(summary(report));
      }),
  );
}

/** Starts the replay on the tower and polls it until it ends. */
async function onTower(o: Opts, model: string, body: Record<string, unknown>): Promise<ReplayReport> {
  const started = (await towerCall(o, 'POST', `/v1/models/${encodeURIComponent(model)}/replays`, { json: body })) as { id: string };
  for (;;) {
    const r = (await towerCall(o, 'GET', `/v1/models/${encodeURIComponent(model)}/replays/${started.id}`)) as { status: string; report?: ReplayReport; error?: { code: string; message: string } };
    if (r.status === 'done') return r.report!;
    if (r.status === 'failed') throw new Error(`${r.error?.code ?? 'INTERNAL'}: ${r.error?.message ?? 'the replay failed'}`);
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
}

/** A line or two for people: rows, rate, errors and each output's comparison. */
export function summary(r: ReplayReport): string {
  const outputs = Object.entries(r.comparison.outputs).map(([name, c]) =>
    c.kind === 'label' ? `${name}: ${(c.agreement * 100).toFixed(2)}% agree` : `${name}: mean |diff| ${c.meanAbsDiff.toPrecision(3)}, p99 ${c.absDiff.p99.toPrecision(3)}, max ${c.absDiff.max.toPrecision(3)}`,
  );
  const errors = Object.entries(r.comparison.errors).map(([code, n]) => `${code} ${n}`);
  return (
    `replayed ${r.rows} rows of ${r.records.replayed} ${r.model} records against ${r.candidate.model}/${r.candidate.version} in ${(r.durationMs / 1000).toFixed(1)} s (${r.rowsPerSecond} rows/s)` +
    `${errors.length ? `; errors: ${errors.join(', ')}` : ''}\n${outputs.join('\n')}\n`
  );
}

function parseTime(v: string, flag: string): number {
  const ago = /^(\d+(?:\.\d+)?)(s|m|h|d)$/.exec(v);
  if (ago) return Date.now() - Number(ago[1]) * { s: 1e3, m: 60e3, h: 3600e3, d: 86400e3 }[ago[2] as 's' | 'm' | 'h' | 'd'];
  const t = Date.parse(v);
  if (Number.isNaN(t)) throw new Error(`replay: ${flag} ${v} is not an ISO 8601 time nor a time ago (30m, 2h, 1d)`);
  return t;
}

function positive(v: string, flag: string): number {
  const n = Number(v);
  if (!Number.isSafeInteger(n) || n < 1) throw new Error(`replay: ${flag} must be a positive integer, got ${v}`);
  return n;
}
