/**
 * The gateway's client of the control tower's REST API (proto/sibyl/v1/deployment.proto, ProtoJSON):
 *
 *   GET  /v1/cells/{cell}/state?after={revision}&wait_ms={ms}   long-poll for the cell's desired state
 *   GET  /v1/bundles/{sha256}                                   a bundle zip
 *   POST /v1/cells/{cell}/reports                               what this replica has loaded
 *
 * Node's fetch (undici) keeps connections alive between calls. Every call is bounded by its own timeout and by
 * the caller's signal. Failures are SibylErrors: UNAVAILABLE when the tower cannot be reached, answers 5xx or
 * times out; UNAUTHENTICATED / PERMISSION_DENIED / NOT_FOUND for 401 / 403 / 404; CANCELLED when the caller's
 * signal aborts; INVALID_ARGUMENT when an answer is not what the protocol says (bad JSON, bundle too large).
 */
import { fromJson, toJson } from '@bufbuild/protobuf';
import { CellStateSchema, GatewayReportSchema, type CellState, type GatewayReport } from '../../proto/gen/sibyl/v1/deployment_pb.js';
import { SibylError } from '../../core/errors.ts';
import type { DesiredStateSource } from './desired-state-source.ts';
import { isSha256, SHA256_HEX } from '../../core/names.ts';

export interface TowerClientOptions {
  /** Base URL of the control tower, e.g. `http://tower:8090` (a path prefix is kept). */
  readonly url: string;
  /** Bearer token sent with every call; none when undefined. */
  readonly token?: string | undefined;
  /** Bound on a call beyond its long-poll wait, milliseconds (default 10000). */
  readonly timeoutMs?: number;
  /** Bound on one bundle download, milliseconds (default 300000). */
  readonly downloadTimeoutMs?: number;
  /** Largest bundle accepted, bytes (default 1 GiB); a larger one is cut off with INVALID_ARGUMENT. */
  readonly maxBundleBytes?: number;
}

/** The control tower as a desired-state source (long-poll, bundle downloads, reports). */
export interface TowerClient extends DesiredStateSource {
  readonly remote: true;
}

export function createTowerClient(opts: TowerClientOptions): TowerClient {
  const base = opts.url.replace(/\/+$/, '');
  const timeoutMs = opts.timeoutMs ?? 10_000;
  const downloadTimeoutMs = opts.downloadTimeoutMs ?? 300_000;
  const maxBundleBytes = opts.maxBundleBytes ?? 1 << 30;
  const auth: Record<string, string> = opts.token ? { authorization: `Bearer ${opts.token}` } : {};

  async function call(path: string, init: RequestInit, limitMs: number, signal: AbortSignal | undefined): Promise<Response> {
    const deadline = AbortSignal.timeout(limitMs);
    const combined = signal ? AbortSignal.any([signal, deadline]) : deadline;
    let res: Response;
    try {
      res = await fetch(base + path, { ...init, headers: { ...auth, ...(init.headers as Record<string, string> | undefined) }, signal: combined });
    } catch (err) {
      throw transportError(path, err, signal, deadline, limitMs);
    }
    if (!res.ok) {
      const text = await res.text().catch(() => '');
      throw statusError(path, res.status, text);
    }
    return res;
  }

  return {
    remote: true,

    async cellState(cell, after, waitMs, signal) {
      const wait = Math.max(0, Math.round(waitMs));
      const path = `/v1/cells/${encodeURIComponent(cell)}/state?after=${after}&wait_ms=${wait}`;
      const res = await call(path, { method: 'GET', headers: { accept: 'application/json' } }, wait + timeoutMs, signal);
      let json: unknown;
      try {
        json = await res.json();
      } catch (err) {
        throw new SibylError('INVALID_ARGUMENT', `control tower: ${path} answered with invalid JSON`, { cause: err });
      }
      try {
        return fromJson(CellStateSchema, json as never, { ignoreUnknownFields: true });
      } catch (err) {
        throw new SibylError('INVALID_ARGUMENT', `control tower: ${path} answered with an invalid CellState: ${(err as Error).message}`, { cause: err });
      }
    },

    async bundle(sha256, signal) {
      if (!isSha256(sha256)) throw new SibylError('INVALID_ARGUMENT', `bundle hash "${sha256}" ${SHA256_HEX.message}`);
      const path = `/v1/bundles/${sha256}`;
      const deadline = AbortSignal.timeout(downloadTimeoutMs);
      const res = await call(path, { method: 'GET' }, downloadTimeoutMs, signal ? AbortSignal.any([signal, deadline]) : deadline);
      const declared = Number(res.headers.get('content-length') ?? NaN);
      if (declared > maxBundleBytes) {
        await res.body?.cancel();
        throw new SibylError('INVALID_ARGUMENT', `bundle ${sha256} is ${declared} bytes, more than the limit of ${maxBundleBytes}`);
      }
      const chunks: Uint8Array[] = [];
      let size = 0;
      try {
        for await (const chunk of res.body ?? []) {
          size += chunk.byteLength;
          if (size > maxBundleBytes) {
            await res.body?.cancel().catch(() => undefined);
            throw new SibylError('INVALID_ARGUMENT', `bundle ${sha256} is more than the limit of ${maxBundleBytes} bytes`);
          }
          chunks.push(chunk);
        }
      } catch (err) {
        if (err instanceof SibylError) throw err;
        throw transportError(path, err, signal, deadline, downloadTimeoutMs);
      }
      return Buffer.concat(chunks, size);
    },

    async report(report, signal) {
      const path = `/v1/cells/${encodeURIComponent(report.cell)}/reports`;
      const body = JSON.stringify(toJson(GatewayReportSchema, report));
      const res = await call(path, { method: 'POST', headers: { 'content-type': 'application/json' }, body }, timeoutMs, signal);
      await res.body?.cancel().catch(() => undefined);
    },
  };
}

function transportError(path: string, err: unknown, signal: AbortSignal | undefined, deadline: AbortSignal, limitMs: number): SibylError {
  if (signal?.aborted) return new SibylError('CANCELLED', `control tower: ${path} cancelled`, { cause: err });
  if (deadline.aborted) return new SibylError('UNAVAILABLE', `control tower: ${path} took more than ${limitMs} ms`, { cause: err });
  const reason = (err as { cause?: { code?: string } })?.cause?.code ?? (err as Error)?.message ?? String(err);
  return new SibylError('UNAVAILABLE', `control tower: ${path} unreachable (${reason})`, { cause: err });
}

function statusError(path: string, status: number, body: string): SibylError {
  const code = status === 401 ? 'UNAUTHENTICATED' : status === 403 ? 'PERMISSION_DENIED' : status === 404 ? 'NOT_FOUND' : status >= 500 || status === 429 ? 'UNAVAILABLE' : 'INVALID_ARGUMENT';
  return new SibylError(code, `control tower: ${path} answered ${status}${body ? `: ${body.slice(0, 200)}` : ''}`);
}
