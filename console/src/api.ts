/**
 * The tower's REST API as the console calls it: same origin, the session's bearer token, JSON in and out. Wire
 * types come from the schemas the handlers encode with (control-tower/api/schemas.ts), as types only.
 */
import type { z } from 'zod';
import type * as S from '../../control-tower/api/schemas.ts';

export type Role = 'viewer' | 'publisher' | 'admin';
export type Whoami = z.input<typeof S.Whoami>;
export type ModelList = z.input<typeof S.ModelList>;
export type ModelDetail = z.input<typeof S.ModelDetail>;
export type VersionDetail = z.input<typeof S.VersionDetail>;
export type Verdict = z.input<typeof S.Verdict>;
export type CaseResult = Verdict['cases'][number];
export type ChangeResult = z.input<typeof S.ChangeResult>;
export type ShadowsReport = z.input<typeof S.ShadowsReport>;
export type CellList = z.input<typeof S.CellList>;
export type CellStatus = z.input<typeof S.CellStatus>;
export type AuditLog = z.input<typeof S.AuditLog>;
export type TokenList = z.input<typeof S.TokenList>;
export type TokenCreated = z.input<typeof S.TokenCreated>;
export type UploadResult = z.input<typeof S.UploadResult>;

/** An error answer of the tower: its code and message. */
export class ApiError extends Error {
  readonly status: number;
  readonly code: string;
  constructor(status: number, code: string, message: string) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

const TOKEN_KEY = 'sibyl.token';

/** The token lives in sessionStorage: gone when the tab closes. */
export const session = {
  get token(): string | null {
    return sessionStorage.getItem(TOKEN_KEY);
  },
  set(token: string): void {
    sessionStorage.setItem(TOKEN_KEY, token);
  },
  clear(): void {
    sessionStorage.removeItem(TOKEN_KEY);
  },
};

/** Calls `path` with the session's token; resolves with the JSON answer (undefined for 204), rejects with ApiError. */
export async function call<T>(method: string, path: string, body?: unknown, token = session.token): Promise<T> {
  const headers: Record<string, string> = { authorization: `Bearer ${token ?? ''}` };
  let payload: BodyInit | undefined;
  if (body instanceof FormData || body instanceof Blob || body instanceof Uint8Array) {
    payload = body as BodyInit;
    if (body instanceof Uint8Array) headers['content-type'] = 'application/zip';
  } else if (body !== undefined) {
    payload = JSON.stringify(body);
    headers['content-type'] = 'application/json';
  }
  const res = await fetch(path, { method, headers, ...(payload !== undefined ? { body: payload } : {}) });
  if (res.status === 204) return undefined as T;
  const text = await res.text();
  let json: unknown;
  try {
    json = text ? JSON.parse(text) : undefined;
  } catch {
    throw new ApiError(res.status, 'UNKNOWN', `${res.status}: ${text.slice(0, 200)}`);
  }
  if (!res.ok) {
    const e = json as { code?: string; message?: string } | undefined;
    throw new ApiError(res.status, e?.code ?? 'UNKNOWN', e?.message ?? `HTTP ${res.status}`);
  }
  return json as T;
}

export const enc = encodeURIComponent;

/** A bundle (zip bytes) through the gate without storing it, with free-form rows. */
export function inspect(zip: Uint8Array, rows: unknown[] = []): Promise<Verdict> {
  const form = new FormData();
  form.set('bundle', new Blob([zip as BlobPart], { type: 'application/zip' }), 'bundle.zip');
  form.set('rows', JSON.stringify(rows));
  return call<Verdict>('POST', '/v1/validations', form);
}

/** Publishes a bundle (zip bytes) through the upload gate. */
export function publish(zip: Uint8Array, opts: { makeDefault?: boolean; cells?: string } = {}): Promise<UploadResult> {
  const q = new URLSearchParams();
  if (opts.makeDefault) q.set('default', 'true');
  if (opts.cells) q.set('cells', opts.cells);
  const qs = q.toString();
  return call<UploadResult>('POST', `/v1/models${qs ? `?${qs}` : ''}`, zip);
}

/** The bytes of a binary answer (a bundle zip). */
export async function bytes(path: string): Promise<Uint8Array> {
  const res = await fetch(path, { headers: { authorization: `Bearer ${session.token ?? ''}` } });
  if (!res.ok) {
    const e = (await res.json().catch(() => ({}))) as { code?: string; message?: string };
    throw new ApiError(res.status, e.code ?? 'UNKNOWN', e.message ?? `HTTP ${res.status}`);
  }
  return new Uint8Array(await res.arrayBuffer());
}
