/**
 * Lambda's HTTP events as WHATWG Requests, and the gateway's Responses back as the result each event source
 * expects. The gateway's REST app serves the Request exactly as it serves one from a socket (`app.fetch`), so the
 * codes, headers and bodies are the server's; this file only changes the envelope.
 *
 * Event sources (payload shapes from the AWS docs):
 * - API Gateway HTTP API, payload 2.0, and Lambda function URLs (the same shape): `version: "2.0"`, `rawPath`,
 *   `rawQueryString` (as sent), `headers` (lower-case, repeated values joined by commas), `cookies`,
 *   `requestContext.http.method`. A stage other than `$default` prefixes `rawPath`; it is removed. Answered with
 *   `{ statusCode, headers, cookies, body, isBase64Encoded }`.
 * - Application Load Balancer: `requestContext.elb`, `httpMethod`, `path`, and either `headers` and
 *   `queryStringParameters` or, with multi-value headers on, `multiValueHeaders` and
 *   `multiValueQueryStringParameters`; query values arrive as sent (not decoded). Answered in the same form, with
 *   `statusDescription`.
 * - API Gateway REST API (payload 1.0): the ALB's fields with decoded query values and `requestContext.stage`.
 *
 * Bodies: base64 when `isBase64Encoded` (API Gateway encodes every body it does not know as text), else UTF-8.
 * Answers are sent as text when their content type is JSON or text and they are not compressed, else as base64
 * (OIP's binary tensor answers). Anything else is not an HTTP event: INVALID_ARGUMENT (400) in the server's error body.
 */
import { STATUS_CODES } from 'node:http';
import { SibylError } from '../core/errors.ts';

/** The event source an invocation came from; the result takes its form. */
export type HttpEventKind = 'http-api-v2' | 'alb' | 'alb-multi-value' | 'rest-api-v1';

export interface HttpEventRequest {
  readonly kind: HttpEventKind;
  readonly request: Request;
}

/** API Gateway HTTP API (2.0) and function URL result; also what an unrecognised event is answered with. */
export interface HttpResultV2 {
  statusCode: number;
  headers: Record<string, string>;
  cookies?: string[];
  body: string;
  isBase64Encoded: boolean;
}

/** ALB and API Gateway REST API (1.0) result. */
export interface HttpResultV1 {
  statusCode: number;
  statusDescription?: string;
  headers?: Record<string, string>;
  multiValueHeaders?: Record<string, string[]>;
  body: string;
  isBase64Encoded: boolean;
}

export type HttpResult = HttpResultV2 | HttpResultV1;

type Json = Record<string, unknown>;

const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);
const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);

/**
 * Reads an event as an HTTP request. Throws SibylError INVALID_ARGUMENT when it is not one of the events above or
 * its body is not valid base64.
 */
export function requestOfEvent(event: unknown): HttpEventRequest {
  if (!isObject(event)) throw notHttp('the event is not a JSON object');
  const ctx = isObject(event.requestContext) ? event.requestContext : undefined;
  if (event.version === '2.0') {
    const http = ctx && isObject(ctx.http) ? ctx.http : undefined;
    const method = str(http?.method);
    const rawPath = str(event.rawPath);
    if (!method || rawPath === undefined) throw notHttp('a 2.0 event without requestContext.http.method or rawPath');
    const stage = str(ctx?.stage);
    const path = stage && stage !== '$default' && (rawPath === `/${stage}` || rawPath.startsWith(`/${stage}/`)) ? rawPath.slice(stage.length + 1) || '/' : rawPath;
    const headers = new Headers();
    for (const [k, v] of Object.entries(isObject(event.headers) ? event.headers : {})) if (typeof v === 'string') headers.set(k, v);
    if (Array.isArray(event.cookies) && event.cookies.length > 0) headers.set('cookie', event.cookies.filter((c) => typeof c === 'string').join('; '));
    const host = headers.get('host') ?? str(ctx?.domainName) ?? 'lambda';
    return { kind: 'http-api-v2', request: build(method, host, path, str(event.rawQueryString) ?? '', headers, event) };
  }
  const method = str(event.httpMethod);
  const path = str(event.path);
  if (!ctx || !method || path === undefined) throw notHttp('neither an API Gateway HTTP API (2.0) or function URL event, nor an ALB or API Gateway REST API event');
  const alb = isObject(ctx.elb);
  const multi = isObject(event.multiValueHeaders) || isObject(event.multiValueQueryStringParameters);
  const headers = new Headers();
  if (isObject(event.multiValueHeaders)) {
    for (const [k, vs] of Object.entries(event.multiValueHeaders)) if (Array.isArray(vs)) for (const v of vs) if (typeof v === 'string') headers.append(k, v);
  } else if (isObject(event.headers)) {
    for (const [k, v] of Object.entries(event.headers)) if (typeof v === 'string') headers.set(k, v);
  }
  // ALB passes query values as sent; API Gateway's REST API decodes them, so they are encoded again here.
  const encode = alb ? (s: string) => s : encodeURIComponent;
  const pairs: string[] = [];
  if (isObject(event.multiValueQueryStringParameters)) {
    for (const [k, vs] of Object.entries(event.multiValueQueryStringParameters)) if (Array.isArray(vs)) for (const v of vs) pairs.push(`${encode(k)}=${encode(String(v))}`);
  } else if (isObject(event.queryStringParameters)) {
    for (const [k, v] of Object.entries(event.queryStringParameters)) if (typeof v === 'string') pairs.push(`${encode(k)}=${encode(v)}`);
  }
  const kind: HttpEventKind = alb ? (multi ? 'alb-multi-value' : 'alb') : 'rest-api-v1';
  return { kind, request: build(method, headers.get('host') ?? str(ctx.domainName) ?? 'lambda', path, pairs.join('&'), headers, event) };
}

function build(method: string, host: string, path: string, query: string, headers: Headers, event: Json): Request {
  let body: Uint8Array | undefined;
  const raw = event.body;
  if (typeof raw === 'string' && method !== 'GET' && method !== 'HEAD') {
    if (event.isBase64Encoded === true) {
      if (!/^[A-Za-z0-9+/]*={0,2}$/.test(raw) || raw.length % 4 === 1) throw new SibylError('INVALID_ARGUMENT', 'the event says its body is base64 (isBase64Encoded) but it is not valid base64');
      body = Buffer.from(raw, 'base64');
    } else {
      body = Buffer.from(raw, 'utf8');
    }
    // What the server sees on a socket: the length of the bytes it reads (checked against SIBYL_MAX_BODY_BYTES).
    headers.set('content-length', String(body.byteLength));
  } else {
    headers.delete('content-length');
  }
  const url = `https://${host}${path.startsWith('/') ? path : `/${path}`}${query ? `?${query}` : ''}`;
  try {
    return new Request(url, { method, headers, ...(body ? { body } : {}) });
  } catch (err) {
    throw new SibylError('INVALID_ARGUMENT', `the event's request cannot be read: ${(err as Error).message}`, { cause: err });
  }
}

function notHttp(why: string): SibylError {
  return new SibylError('INVALID_ARGUMENT', `not an HTTP event: ${why}; this function answers API Gateway HTTP API (payload 2.0), function URL, ALB and API Gateway REST API events`);
}

const TEXT = /^(?:text\/|application\/(?:[a-z0-9.+-]*\+)?json\b|application\/(?:xml|yaml|javascript)\b)/i;

/** The gateway's answer in the form `kind`'s event source expects. */
export async function resultOfResponse(res: Response, kind: HttpEventKind): Promise<HttpResult> {
  const bytes = Buffer.from(await res.arrayBuffer());
  const text = TEXT.test(res.headers.get('content-type') ?? '') && !res.headers.has('content-encoding');
  const body = text ? bytes.toString('utf8') : bytes.toString('base64');
  const isBase64Encoded = !text && bytes.byteLength > 0;
  if (kind === 'http-api-v2') {
    const headers: Record<string, string> = {};
    res.headers.forEach((v, k) => {
      if (k !== 'set-cookie') headers[k] = v;
    });
    const cookies = res.headers.getSetCookie();
    return { statusCode: res.status, headers, ...(cookies.length > 0 ? { cookies } : {}), body, isBase64Encoded };
  }
  const statusDescription = `${res.status} ${STATUS_CODES[res.status] ?? ''}`.trim();
  if (kind === 'alb-multi-value') {
    const multiValueHeaders: Record<string, string[]> = {};
    res.headers.forEach((v, k) => {
      if (k !== 'set-cookie') multiValueHeaders[k] = [v];
    });
    const cookies = res.headers.getSetCookie();
    if (cookies.length > 0) multiValueHeaders['set-cookie'] = cookies;
    return { statusCode: res.status, statusDescription, multiValueHeaders, body, isBase64Encoded };
  }
  const headers: Record<string, string> = {};
  res.headers.forEach((v, k) => (headers[k] = v));
  return { statusCode: res.status, ...(kind === 'alb' ? { statusDescription } : {}), headers, body, isBase64Encoded };
}
