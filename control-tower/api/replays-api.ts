/**
 * Replays of a model's logged live traffic against a candidate version, run by the tower (control-tower/replay/):
 *
 *   POST /v1/models/{name}/replays   { candidate: "VERSION" | "MODEL/VERSION", cell?, from?, to?, limit? }   202 the job (publisher)
 *   GET  /v1/models/{name}/replays                                                                         the jobs, newest first
 *   GET  /v1/models/{name}/replays/{id}                                                                    a job: status, progress, report
 *
 * The report is replay/replay.ts's ReplayReport: the comparison shadows report, plus the rows that differ most.
 */
import type { Hono } from 'hono';
import { z } from 'zod';
import { SibylError } from '../../core/errors.ts';
import type { ReplayJob, Replays } from '../replay/replays.ts';
import { parseBody, requireRole, type TowerEnv } from './http.ts';

const time = z.string().refine((v) => !Number.isNaN(Date.parse(v)), 'must be an ISO 8601 date-time');

/** The body of POST /v1/models/{name}/replays. */
export const ReplayBody = z
  .object({
    candidate: z.string().min(1).describe('a version of the model, or MODEL/VERSION'),
    cell: z.string().min(1).optional().describe('only records served by this cell'),
    from: time.optional().describe('only requests that arrived at or after this time'),
    to: time.optional().describe('only requests that arrived before this time'),
    limit: z.number().int().positive().optional().describe('at most this many rows'),
  })
  .strict();

/** A replay job as the API shows it (the report is replay/replay.ts's ReplayReport). */
export const ReplayJobAnswer = z.object({
  id: z.string(),
  model: z.string(),
  candidate: z.object({ model: z.string(), version: z.string() }),
  filters: z.record(z.string(), z.union([z.string(), z.number()])),
  startedBy: z.string(),
  started: z.string(),
  ended: z.string().optional(),
  status: z.enum(['running', 'done', 'failed']),
  progress: z.object({ records: z.number(), rows: z.number() }),
  report: z.record(z.string(), z.unknown()).optional().describe('replay/replay.ts ReplayReport: records, rows, comparison (executed, errors, latencyMs, outputs), largestDifferences, rowsPerSecond'),
  error: z.object({ code: z.string(), message: z.string() }).optional(),
});
export const ReplayList = z.object({ replays: z.array(ReplayJobAnswer) });

export function mountReplaysApi(app: Hono<TowerEnv>, replays: Replays): void {
  app.post('/v1/models/:name/replays', async (c) => {
    const p = requireRole(c, 'publisher');
    const model = c.req.param('name');
    const body = await parseBody(c, ReplayBody);
    const slash = body.candidate.indexOf('/');
    const candidate = slash < 0 ? { model, version: body.candidate } : { model: body.candidate.slice(0, slash), version: body.candidate.slice(slash + 1) };
    const fromMs = body.from === undefined ? undefined : Date.parse(body.from);
    const toMs = body.to === undefined ? undefined : Date.parse(body.to);
    if (fromMs !== undefined && toMs !== undefined && toMs <= fromMs) throw new SibylError('INVALID_ARGUMENT', 'to: must be after from');
    const job = await replays.start({ model, candidate, cell: body.cell, fromMs, toMs, limit: body.limit }, p.name);
    return c.json(jobJson(job), 202);
  });

  app.get('/v1/models/:name/replays', (c) => {
    requireRole(c, 'viewer');
    return c.json({ replays: replays.list(c.req.param('name')).map((j) => jobJson(j, false)) });
  });

  app.get('/v1/models/:name/replays/:id', (c) => {
    requireRole(c, 'viewer');
    return c.json(jobJson(replays.get(c.req.param('name'), c.req.param('id'))));
  });
}

function jobJson(j: ReplayJob, withReport = true) {
  return {
    id: j.id,
    model: j.model,
    candidate: j.candidate,
    filters: j.filters,
    startedBy: j.startedBy,
    started: j.started.toISOString(),
    ...(j.ended ? { ended: j.ended.toISOString() } : {}),
    status: j.status,
    progress: j.progress,
    ...(withReport && j.report ? { report: j.report } : {}),
    ...(j.error ? { error: j.error } : {}),
  };
}
