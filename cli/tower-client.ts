/** The CLI's client of the control tower's REST API: base URL and bearer token, errors as `CODE: message`. */
export interface TowerOptions {
  readonly tower: string;
  readonly token?: string | undefined;
}

export class TowerError extends Error {
  readonly code: string;
  readonly status: number;
  constructor(status: number, code: string, message: string) {
    super(`${code}: ${message}`);
    this.name = 'TowerError';
    this.status = status;
    this.code = code;
  }
}

/** Calls the API; resolves with the parsed JSON (or the raw Response for `raw`), rejects with TowerError. */
export async function towerCall(opts: TowerOptions, method: string, path: string, body?: { json?: unknown; bytes?: Uint8Array; type?: string }): Promise<any> {
  const headers: Record<string, string> = {};
  if (opts.token) headers.authorization = `Bearer ${opts.token}`;
  let payload: RequestInit['body'] | undefined;
  if (body?.json !== undefined) {
    payload = JSON.stringify(body.json);
    headers['content-type'] = 'application/json';
  } else if (body?.bytes) {
    payload = body.bytes as unknown as RequestInit['body'];
    headers['content-type'] = body.type ?? 'application/octet-stream';
  }
  let res: Response;
  try {
    res = await fetch(new URL(path, opts.tower), { method, headers, ...(payload !== undefined ? { body: payload } : {}) });
  } catch (err) {
    throw new TowerError(0, 'UNAVAILABLE', `cannot reach the control tower at ${opts.tower}: ${(err as Error).cause instanceof Error ? ((err as Error).cause as Error).message : (err as Error).message}`);
  }
  if (!res.ok) {
    const text = await res.text();
    let e: { code?: string; message?: string } = {};
    try {
      e = JSON.parse(text) as typeof e;
    } catch {
      e = { message: text };
    }
    throw new TowerError(res.status, e.code ?? `HTTP_${res.status}`, e.message ?? res.statusText);
  }
  if (res.status === 204) return undefined;
  const type = res.headers.get('content-type') ?? '';
  return type.includes('application/json') ? res.json() : new Uint8Array(await res.arrayBuffer());
}
