/** What the control tower's routes share: errors as JSON, bearer-token authentication with roles, body helpers. */
import type { Context, MiddlewareHandler } from 'hono';
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import { z } from 'zod';
import { SibylError, toSibylError } from '../../core/errors.ts';
import type { TowerError } from './schemas.ts';
import type { CellSelector, MetadataStore, Principal, Role } from '../store/index.ts';

export type TowerEnv = { Variables: { principal: Principal } };

const RANK: Readonly<Record<Role, number>> = { viewer: 0, publisher: 1, admin: 2 };

/** `{ code, message }` with the HTTP status of the code; causes of INTERNAL errors go to `log`, not the client. */
export function errorJson(err: unknown, log?: { error(obj: object, msg: string): void }): Response {
  const e = toSibylError(err);
  if (e.code === 'INTERNAL') log?.error({ err: e.cause ?? err }, 'control tower request failed');
  const body = { code: e.code, message: e.message } satisfies z.input<typeof TowerError>;
  return new Response(JSON.stringify(body), { status: e.httpStatus, headers: { 'content-type': 'application/json' } });
}

/** Authenticates the bearer token (401 without a valid one) and puts the principal on the context. */
export function authenticate(store: MetadataStore): MiddlewareHandler<TowerEnv> {
  return async function auth(c, next) {
    const header = c.req.header('authorization') ?? '';
    const m = /^Bearer\s+(\S+)$/i.exec(header);
    if (!m) throw new SibylError('UNAUTHENTICATED', 'a bearer token is required (Authorization: Bearer <token>)');
    const principal = await store.authenticate(m[1]!);
    if (!principal) throw new SibylError('UNAUTHENTICATED', 'the bearer token is unknown or revoked');
    c.set('principal', principal);
    await next();
  };
}

/** 403 unless the caller's role is at least `role` (viewer < publisher < admin). */
export function requireRole(c: Context<TowerEnv>, role: Role): Principal {
  const p = c.get('principal');
  if (RANK[p.role] < RANK[role]) throw new SibylError('PERMISSION_DENIED', `${p.name} is a ${p.role}; this needs the ${role} role`);
  return p;
}

/** A JSON object body, INVALID_ARGUMENT otherwise. */
export async function jsonBody(c: Context): Promise<Record<string, unknown>> {
  let body: unknown;
  try {
    body = await c.req.json();
  } catch {
    throw new SibylError('INVALID_ARGUMENT', 'the body must be a JSON object');
  }
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new SibylError('INVALID_ARGUMENT', 'the body must be a JSON object');
  return body as Record<string, unknown>;
}

/** The JSON object body parsed with `schema` (schemas.ts); INVALID_ARGUMENT naming each problem otherwise. */
export async function parseBody<S extends z.ZodType>(c: Context, schema: S): Promise<z.output<S>> {
  const result = schema.safeParse(await jsonBody(c));
  if (result.success) return result.data;
  const problems = result.error.issues.map((i) => {
    // Messages written for a field name it already ("cells: ..."); others get their path in front.
    const path = i.path.map(String).join('.');
    return path && !i.message.startsWith(`${String(i.path[0])}:`) ? `${path}: ${i.message}` : i.message;
  });
  throw new SibylError('INVALID_ARGUMENT', problems.join('; '));
}

/**
 * Answers `value` encoded with `schema` (schemas.ts): checked against it, dates written as ISO 8601 strings, fields
 * the schema does not name left out. A value that does not fit is a bug: INTERNAL, with the problem in the log.
 */
export function reply<S extends z.ZodType>(c: Context, schema: S, value: z.output<S>, status: ContentfulStatusCode = 200): Response {
  let body: z.input<S>;
  try {
    body = z.encode(schema, value);
  } catch (err) {
    throw new SibylError('INTERNAL', 'internal error', { cause: err });
  }
  return c.json(body as object, status);
}

/** `cells` from a body or query: a list, "all", a comma-separated string, or absent (undefined). */
export function cellSelector(v: unknown): CellSelector | undefined {
  if (v === undefined || v === null || v === '') return undefined;
  if (v === 'all') return 'all';
  if (typeof v === 'string') return v.split(',').map((s) => s.trim()).filter(Boolean);
  if (Array.isArray(v) && v.every((x) => typeof x === 'string')) return v as string[];
  throw new SibylError('INVALID_ARGUMENT', 'cells: must be "all", a list of cell names or a comma-separated string');
}

export function requiredCells(v: unknown): CellSelector {
  const s = cellSelector(v);
  if (s === undefined) throw new SibylError('INVALID_ARGUMENT', 'cells: name the cells ("all" for every cell)');
  return s;
}

export function stringField(body: Record<string, unknown>, name: string): string {
  const v = body[name];
  if (typeof v !== 'string' || v === '') throw new SibylError('INVALID_ARGUMENT', `${name}: a non-empty string is required`);
  return v;
}
