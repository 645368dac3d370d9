/**
 * Rollouts (ARCHITECTURE.md, "Rollouts"): a version moved through waves of cells, each baked and checked against
 * guards from the gateways' reports; the tower's rollout driver (control-tower/rollout/driver.ts) moves them on.
 *
 *   POST /v1/rollouts               { model, version, waves: [{ name, cells }], bakeMs, mode?, weight?, guards?, rollback?,
 *                                     applyTimeoutMs?, reportTimeoutMs? }                          201 the rollout (publisher)
 *   GET  /v1/rollouts[?model=&active=true&limit=]                                                 the rollouts, newest first
 *   GET  /v1/rollouts/{id}                                                                        one rollout
 *   POST /v1/rollouts/{id}:halt     { reason? }                                                   halted, cells restored (publisher)
 */
import type { Hono } from 'hono';
import { z } from 'zod';
import { SibylError } from '../../core/errors.ts';
import { DEFAULT_GUARDS } from '../rollout/guards.ts';
import { ROLLOUT_STATES, type MetadataStore, type Rollout, type RolloutState } from '../store/index.ts';
import { parseBody, reply, requireRole, type TowerEnv } from './http.ts';
import { isoDate } from './schemas.ts';

/** Longest wait for a wave's gateways to serve the change, ms, unless the rollout says otherwise. */
export const DEFAULT_APPLY_TIMEOUT_MS = 300_000;
/** Longest wait after a bake for every live replica to report, ms (gateways report every 10 s by default). */
export const DEFAULT_REPORT_TIMEOUT_MS = 60_000;
const WEEK_MS = 7 * 24 * 3600 * 1000;

const Guards = z
  .object({
    maxErrorRate: z.number().min(0).max(1).optional().describe(`largest failed share of the new version's live requests, 0..1 (default ${DEFAULT_GUARDS.maxErrorRate})`),
    maxP99Ratio: z.number().min(1).optional().describe(`largest p99 latency as a multiple of the previous version's (default ${DEFAULT_GUARDS.maxP99Ratio})`),
    p99SlackMs: z.number().min(0).optional().describe(`... or the previous p99 plus this, ms, whichever is larger (default ${DEFAULT_GUARDS.p99SlackMs})`),
    maxDisagreement: z.number().min(0).max(1).optional().describe(`when it ran as a shadow: largest share of disagreeing label outputs (default ${DEFAULT_GUARDS.maxDisagreement})`),
    maxMeanAbsDiff: z.number().min(0).optional().describe('when it ran as a shadow: largest mean |difference| of a numeric output (default: not checked)'),
    minRequests: z.number().int().min(0).optional().describe(`fewest live requests of the new version to judge a wave (default ${DEFAULT_GUARDS.minRequests})`),
  })
  .strict()
  .meta({ id: 'RolloutGuards' });

/** The body of POST /v1/rollouts. */
export const RolloutBody = z
  .object({
    model: z.string().min(1),
    version: z.string().min(1),
    waves: z
      .array(z.object({ name: z.string().describe('a DNS label'), cells: z.array(z.string()).describe('cells of this wave') }).strict(), { error: 'waves: a list of { name, cells } is required' })
      .describe('in order; a cell in at most one wave'),
    bakeMs: z.number().int().min(0).max(WEEK_MS).describe('how long each wave serves before its check, ms'),
    mode: z.enum(['default', 'split']).optional().describe('default (the default): the version becomes the default in the wave\'s cells; split: it gets `weight` % of requests that name no version'),
    weight: z.number().optional().describe('split mode: percent, 0 < weight < 100'),
    guards: Guards.optional(),
    rollback: z.enum(['wave', 'all']).optional().describe('on a halt, restore the current wave\'s cells (wave, the default) or every wave\'s (all)'),
    applyTimeoutMs: z.number().int().positive().max(WEEK_MS).optional().describe(`longest wait for the wave's gateways to serve the change (default ${DEFAULT_APPLY_TIMEOUT_MS})`),
    reportTimeoutMs: z.number().int().positive().max(WEEK_MS).optional().describe(`longest wait after a bake for every live replica to report (default ${DEFAULT_REPORT_TIMEOUT_MS})`),
  })
  .strict()
  .meta({ id: 'RolloutBody' });

export const HaltBody = z.object({ reason: z.string().max(1000).optional() }).strict().meta({ id: 'HaltBody' });

const time = z.string().describe('ISO 8601');
const Figures = z.object({ requests: z.number(), errors: z.record(z.string(), z.number()), errorRate: z.number(), p99Ms: z.number().optional() });
const GuardResult = z.object({
  guard: z.enum(['traffic', 'errorRate', 'p99', 'shadowDisagreement', 'shadowMeanAbsDiff']),
  passed: z.boolean(),
  value: z.number().optional(),
  threshold: z.number().optional(),
  detail: z.string(),
});
const Wave = z.object({
  name: z.string(),
  cells: z.array(z.string()),
  status: z.enum(['pending', 'applying', 'baking', 'checking', 'passed', 'failed', 'halted']),
  previous: z
    .record(z.string(), z.object({ defaultVersion: z.string(), split: z.array(z.object({ arm: z.string(), version: z.string(), weight: z.number() })), deployed: z.boolean() }))
    .optional()
    .describe('per cell, what it held before the wave was applied'),
  revisions: z.record(z.string(), z.number().int()).optional().describe("per cell, its revision with the wave's change"),
  appliedAt: time.optional(),
  bakeStartedAt: time.optional(),
  bakeEndsAt: time.optional(),
  checkedAt: time.optional(),
  restoredAt: time.optional(),
  figures: z
    .object({
      replicas: z.array(z.string()),
      version: Figures,
      previous: Figures.extend({ versions: z.array(z.string()) }).optional(),
      shadow: z.object({ executed: z.number(), disagreement: z.number().optional(), meanAbsDiff: z.number().optional() }).optional(),
      perCell: z.array(z.object({ cell: z.string(), version: Figures, previous: Figures.optional() })),
    })
    .optional(),
  guards: z.array(GuardResult).optional(),
  reason: z.string().optional(),
});

export const RolloutAnswer = z
  .object({
    id: z.number().int(),
    model: z.string(),
    version: z.string(),
    state: z.enum(ROLLOUT_STATES as [RolloutState, ...RolloutState[]]),
    wave: z.number().int().describe('index of the current wave'),
    currentWave: z.string(),
    mode: z.enum(['default', 'split']),
    weight: z.number().optional(),
    bakeMs: z.number().int(),
    guards: z.object({ maxErrorRate: z.number(), maxP99Ratio: z.number(), p99SlackMs: z.number(), maxDisagreement: z.number(), maxMeanAbsDiff: z.number().optional(), minRequests: z.number() }),
    rollback: z.enum(['wave', 'all']),
    applyTimeoutMs: z.number().int(),
    reportTimeoutMs: z.number().int(),
    waves: z.array(Wave),
    haltReason: z.string().optional(),
    createdBy: z.string(),
    createdAt: isoDate,
    updatedAt: isoDate,
    finishedAt: isoDate.optional(),
  })
  .meta({ id: 'Rollout' });

export const RolloutList = z.object({ rollouts: z.array(RolloutAnswer) }).meta({ id: 'RolloutList', description: 'newest first' });

export function rolloutJson(r: Rollout): z.output<typeof RolloutAnswer> {
  return {
    id: r.id,
    model: r.model,
    version: r.version,
    state: r.state,
    wave: r.wave,
    currentWave: r.waves[r.wave]?.name ?? '',
    mode: r.spec.mode,
    ...(r.spec.weight !== undefined ? { weight: r.spec.weight } : {}),
    bakeMs: r.spec.bakeMs,
    guards: r.spec.guards,
    rollback: r.spec.rollback,
    applyTimeoutMs: r.spec.applyTimeoutMs,
    reportTimeoutMs: r.spec.reportTimeoutMs,
    waves: r.waves as z.output<typeof RolloutAnswer>['waves'],
    ...(r.haltReason !== undefined ? { haltReason: r.haltReason } : {}),
    createdBy: r.createdBy,
    createdAt: r.created,
    updatedAt: r.updated,
    ...(r.finished ? { finishedAt: r.finished } : {}),
  };
}

export function mountRolloutsApi(app: Hono<TowerEnv>, store: MetadataStore): void {
  app.post('/v1/rollouts', async (c) => {
    const p = requireRole(c, 'publisher');
    const b = await parseBody(c, RolloutBody);
    const mode = b.mode ?? 'default';
    if (mode === 'default' && b.weight !== undefined) throw new SibylError('INVALID_ARGUMENT', 'weight: only split mode takes a weight');
    const guards: Rollout['spec']['guards'] = { ...DEFAULT_GUARDS };
    for (const [k, v] of Object.entries(b.guards ?? {})) if (v !== undefined) (guards as unknown as Record<string, number>)[k] = v;
    const r = await store.createRollout({
      model: b.model,
      version: b.version,
      waves: b.waves,
      actor: p.name,
      spec: {
        mode,
        ...(b.weight !== undefined ? { weight: b.weight } : {}),
        bakeMs: b.bakeMs,
        guards,
        rollback: b.rollback ?? 'wave',
        applyTimeoutMs: b.applyTimeoutMs ?? DEFAULT_APPLY_TIMEOUT_MS,
        reportTimeoutMs: b.reportTimeoutMs ?? DEFAULT_REPORT_TIMEOUT_MS,
      },
    });
    return reply(c, RolloutAnswer, rolloutJson(r), 201);
  });

  app.get('/v1/rollouts', async (c) => {
    requireRole(c, 'viewer');
    const active = c.req.query('active');
    if (active !== undefined && active !== 'true' && active !== 'false') throw new SibylError('INVALID_ARGUMENT', `active: "true" or "false", got "${active}"`);
    const limit = c.req.query('limit');
    const model = c.req.query('model');
    const list = await store.listRollouts({ active: active === 'true', ...(model ? { model } : {}), ...(limit !== undefined ? { limit: Number(limit) } : {}) });
    return reply(c, RolloutList, { rollouts: list.map(rolloutJson) });
  });

  // GET /v1/rollouts/{id}; POST /v1/rollouts/{id}:halt
  app.get('/v1/rollouts/:id', async (c) => {
    requireRole(c, 'viewer');
    return reply(c, RolloutAnswer, rolloutJson(await store.getRollout(rolloutId(c.req.param('id')))));
  });

  app.post('/v1/rollouts/:spec', async (c) => {
    const p = requireRole(c, 'publisher');
    const spec = c.req.param('spec');
    const i = spec.lastIndexOf(':');
    if (i <= 0 || spec.slice(i + 1) !== 'halt') throw new SibylError('NOT_FOUND', `no such method: ${spec} (use {id}:halt)`);
    const id = rolloutId(spec.slice(0, i));
    const body = (c.req.header('content-type') ?? '').includes('json') ? await parseBody(c, HaltBody) : {};
    const r = await store.haltRollout(id, undefined, { reason: `halted by ${p.name}${body.reason ? `: ${body.reason}` : ''}`, actor: p.name }, new Date());
    return reply(c, RolloutAnswer, rolloutJson(r!));
  });
}

function rolloutId(v: string): number {
  const n = Number(v);
  if (!/^[0-9]+$/.test(v) || !Number.isSafeInteger(n) || n < 1) throw new SibylError('INVALID_ARGUMENT', `a rollout id is a positive integer, got "${v}"`);
  return n;
}
