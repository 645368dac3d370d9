/**
 * Rollouts from the command line (the tower's /v1/rollouts calls; ARCHITECTURE.md, "Rollouts"):
 *
 *   sibyl rollout MODEL VERSION --waves canary=cell-a;eu=cell-b,cell-c --bake 5m [--mode default|split --weight N]
 *         [--max-error-rate R] [--max-p99-ratio X] [--p99-slack-ms MS] [--max-disagreement R] [--max-mean-abs-diff D]
 *         [--min-requests N] [--rollback wave|all] [--apply-timeout 5m] [--report-timeout 1m] [--wait]
 *   sibyl rollout status ID            sibyl rollout halt ID [--reason TEXT]            sibyl rollouts [--model M] [--active]
 *
 * `--waves`: waves separated by ";", each NAME=CELL,CELL or a single cell (a wave named after it); without ";" or
 * "=", each comma-separated cell is a wave of its own (`--waves canary,eu,us` for cells named so).
 * `--wait` follows the rollout, a line per change on stderr, and exits 1 when it halts.
 */
import { Command, Option } from 'commander';
import { towerCall, type TowerOptions } from './tower-client.ts';
import { withTower } from './tower.ts';

type Opts = TowerOptions & Record<string, unknown>;

const print = (v: unknown) => void process.stdout.write(`${JSON.stringify(v, null, 2)}\n`);

/** `--waves` as the API's list of { name, cells }. Throws a one-line message for a malformed list. */
export function parseWaves(text: string): { name: string; cells: string[] }[] {
  const s = text.trim();
  if (!s) throw new Error('--waves: name at least one wave');
  if (!s.includes(';') && !s.includes('=')) return s.split(',').map((c) => c.trim()).filter(Boolean).map((c) => ({ name: c, cells: [c] }));
  return s
    .split(';')
    .map((w) => w.trim())
    .filter(Boolean)
    .map((w) => {
      const eq = w.indexOf('=');
      if (eq < 0) return { name: w, cells: [w] };
      const name = w.slice(0, eq).trim();
      const cells = w.slice(eq + 1).split(',').map((c) => c.trim()).filter(Boolean);
      if (!name || cells.length === 0) throw new Error(`--waves: "${w}" is not NAME=CELL[,CELL...]`);
      return { name, cells };
    });
}

/** A duration: `500ms`, `2s`, `5m`, `1h30m`, or a number of milliseconds. */
export function parseDuration(text: string, flag: string): number {
  const s = text.trim();
  if (/^[0-9]+$/.test(s)) return Number(s);
  const units: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
  let total = 0;
  let rest = s;
  while (rest) {
    const m = /^([0-9]+(?:\.[0-9]+)?)(ms|s|m|h)/.exec(rest);
    if (!m) throw new Error(`${flag}: "${text}" is not a duration like 500ms, 2s, 5m or 1h30m`);
    total += Number(m[1]) * units[m[2]!]!;
    rest = rest.slice(m[0].length);
  }
  return Math.round(total);
}

function num(v: unknown, flag: string): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isFinite(n)) throw new Error(`${flag}: "${String(v)}" is not a number`);
  return n;
}

type RolloutJson = { id: number; state: string; wave: number; currentWave: string; haltReason?: string; waves: { name: string; cells: string[]; status: string; bakeEndsAt?: string; guards?: { guard: string; passed: boolean; detail: string }[] }[] };

/** Polls the rollout until it finishes, writing a line to stderr whenever its state or wave changes. */
async function follow(o: Opts, id: number): Promise<RolloutJson> {
  let last = '';
  for (;;) {
    const r = (await towerCall(o, 'GET', `/v1/rollouts/${id}`)) as RolloutJson;
    const w = r.waves[r.wave]!;
    const now = `${r.state} ${r.wave}`;
    if (now !== last) {
      last = now;
      const where = `wave ${r.wave + 1}/${r.waves.length} ${w.name} (${w.cells.join(', ')})`;
      const extra = r.state === 'baking' && w.bakeEndsAt ? ` until ${w.bakeEndsAt}` : r.state === 'halted' ? `: ${r.haltReason ?? ''}` : '';
      process.stderr.write(`rollout ${r.id}: ${r.state === 'completed' ? `completed, ${r.waves.length} wave(s) passed` : `${r.state}, ${where}${extra}`}\n`);
    }
    if (r.state === 'completed' || r.state === 'halted') return r;
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
}

export function rolloutCommands(): Command[] {
  const rollout = withTower(
    new Command('rollout')
      // `rollout status ID --wait`: options after a subcommand's name are the subcommand's.
      .enablePositionalOptions()
      .description("move a version through waves of cells, baking each and checking guards from the gateways' reports; halts and restores on a breach")
      .argument('<model>')
      .argument('<version>')
      .option('--waves <waves>', 'waves: "canary=cell-a;eu=cell-b,cell-c", or "a,b,c" for one cell per wave')
      .option('--bake <duration>', 'how long each wave serves before its check (e.g. 5m, 30s)')
      .addOption(new Option('--mode <mode>', 'default: the version becomes the default; split: it gets --weight %').choices(['default', 'split']).default('default'))
      .option('--weight <percent>', 'split mode: the new version\'s share of requests, 0-100 exclusive')
      .option('--max-error-rate <ratio>', 'largest failed share of its requests, 0..1 (default 0.01)')
      .option('--max-p99-ratio <x>', "largest p99 as a multiple of the previous version's (default 1.5)")
      .option('--p99-slack-ms <ms>', '... or the previous p99 plus this, whichever is larger (default 5)')
      .option('--max-disagreement <ratio>', 'when it ran as a shadow: largest disagreeing share of label outputs (default 0.1)')
      .option('--max-mean-abs-diff <d>', 'when it ran as a shadow: largest mean |difference| of numeric outputs (default: not checked)')
      .option('--min-requests <n>', 'fewest requests of the new version to judge a wave (default 20)')
      .addOption(new Option('--rollback <scope>', "on a halt, restore the wave's cells or every wave's").choices(['wave', 'all']).default('wave'))
      .option('--apply-timeout <duration>', "longest wait for a wave's gateways to serve the change (default 5m)")
      .option('--report-timeout <duration>', 'longest wait after a bake for every gateway to report (default 1m)')
      .option('--wait', 'follow the rollout until it completes (exit 0) or halts (exit 1)')
      .action(async (model: string, version: string, o: Opts) => {
        // Checked here, not as required options: commander would ask the subcommands (status, halt) for them too.
        if (o.waves === undefined || o.bake === undefined) throw new Error(`rollout: --waves and --bake are required (sibyl rollout ${model} ${version} --waves canary=cell-a;eu=cell-b --bake 5m)`);
        const guards = Object.fromEntries(
          Object.entries({
            maxErrorRate: num(o.maxErrorRate, '--max-error-rate'),
            maxP99Ratio: num(o.maxP99Ratio, '--max-p99-ratio'),
            p99SlackMs: num(o.p99SlackMs, '--p99-slack-ms'),
            maxDisagreement: num(o.maxDisagreement, '--max-disagreement'),
            maxMeanAbsDiff: num(o.maxMeanAbsDiff, '--max-mean-abs-diff'),
            minRequests: num(o.minRequests, '--min-requests'),
          }).filter(([, v]) => v !== undefined),
        );
        const body = {
          model,
          version,
          waves: parseWaves(String(o.waves)),
          bakeMs: parseDuration(String(o.bake), '--bake'),
          mode: o.mode,
          ...(o.weight !== undefined ? { weight: num(o.weight, '--weight') } : {}),
          ...(Object.keys(guards).length ? { guards } : {}),
          rollback: o.rollback,
          ...(o.applyTimeout !== undefined ? { applyTimeoutMs: parseDuration(String(o.applyTimeout), '--apply-timeout') } : {}),
          ...(o.reportTimeout !== undefined ? { reportTimeoutMs: parseDuration(String(o.reportTimeout), '--report-timeout') } : {}),
        };
        const created = (await towerCall(o, 'POST', '/v1/rollouts', { json: body })) as RolloutJson;
        if (!o.wait) return print(created);
        const done = await follow(o, created.id);
        print(done);
        if (done.state === 'halted') throw new Error(`rollout ${done.id} halted: ${done.haltReason ?? ''}`);
      }),
  );
  rollout.addCommand(
    withTower(
      new Command('status')
        .description("a rollout: state, current wave, each wave's figures and guards, the reason for a halt")
        .argument('<id>')
        .option('--wait', 'follow it until it completes or halts')
        .action(async (id: string, o: Opts) => {
          if (!o.wait) return print(await towerCall(o, 'GET', `/v1/rollouts/${encodeURIComponent(id)}`));
          const done = await follow(o, Number(id));
          print(done);
          if (done.state === 'halted') throw new Error(`rollout ${done.id} halted: ${done.haltReason ?? ''}`);
        }),
    ),
  );
  rollout.addCommand(
    withTower(
      new Command('halt')
        .description("halt a rollout: the current wave's cells restored, no later wave started")
        .argument('<id>')
        .option('--reason <text>', 'why, for the audit log')
        .action(async (id: string, o: Opts) =>
          print(await towerCall(o, 'POST', `/v1/rollouts/${encodeURIComponent(id)}:halt`, { json: o.reason ? { reason: String(o.reason) } : {} })),
        ),
    ),
  );
  const list = withTower(
    new Command('rollouts')
      .description('rollouts, newest first')
      .option('--model <name>', 'only this model')
      .option('--active', 'only unfinished ones')
      .option('--limit <n>', 'at most this many', '50')
      .action(async (o: Opts) => {
        const q = new URLSearchParams({ limit: String(o.limit) });
        if (o.model) q.set('model', String(o.model));
        if (o.active) q.set('active', 'true');
        print(await towerCall(o, 'GET', `/v1/rollouts?${q}`));
      }),
  );
  return [rollout, list];
}
