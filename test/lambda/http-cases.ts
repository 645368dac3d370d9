/**
 * HTTP requests for comparing the Lambda function with the server: every predict door over REST (Sibyl REST by
 * default, version and alias; OIP REST with JSON tensors, BYTES entities, the binary tensor extension and a gzip
 * body), metadata, and requests the server refuses with a 4xx. Each case becomes a Lambda event (HTTP API 2.0,
 * ALB, REST API 1.0) or is sent to a listening server; answers are compared as status, content type and body bytes.
 */
import { gzipSync } from 'node:zlib';
import { expectedFor } from '../helpers/expected.ts';

export interface HttpCase {
  readonly name: string;
  readonly method: string;
  readonly path: string;
  readonly query?: string;
  readonly headers: Readonly<Record<string, string>>;
  readonly body?: Buffer;
  /** The status the server answers (checked against the server too). */
  readonly status: number;
}

export interface Answer {
  readonly status: number;
  readonly contentType: string | undefined;
  readonly body: Buffer;
}

/** Small enough that a test request can exceed it. */
export const MAX_BODY_BYTES = 64 * 1024;

const json = (v: unknown) => Buffer.from(JSON.stringify(v));
const eta = expectedFor('delivery-eta', '2').rows.slice(0, 3);
const mlp = expectedFor('tabular-mlp', '1').rows.slice(0, 3);
const MLP_COLUMNS = ['basket_value', 'distance_km', 'hour_of_day', 'is_raining', 'basket_size', 'eta_minutes'];

function sibylBody(rows = eta) {
  return json({ rows: rows.map((r) => ({ entities: r.entities, features: r.request })) });
}

function oipEtaInputs(rows = eta) {
  const first = rows[0]!;
  return [
    ...Object.keys(first.entities).map((e) => ({ name: e, datatype: 'BYTES', shape: [rows.length], data: rows.map((r) => r.entities[e]!) })),
    ...Object.keys(first.request).map((f) => ({ name: f, datatype: 'FP32', shape: [rows.length, 1], data: rows.map((r) => r.request[f]!) })),
  ];
}

function mlpJson() {
  return { inputs: [{ name: 'input', datatype: 'FP32', shape: [mlp.length, 6], data: mlp.flatMap((r) => MLP_COLUMNS.map((c) => r.request[c]!)) }] };
}

/** tabular-mlp with its input in the binary part and its output asked for in binary, as tritonclient.http does. */
function mlpBinary(): { body: Buffer; headerLength: number } {
  const raw = Buffer.from(new Float32Array(mlp.flatMap((r) => MLP_COLUMNS.map((c) => r.request[c]!))).buffer);
  const header = json({
    inputs: [{ name: 'input', datatype: 'FP32', shape: [mlp.length, 6], parameters: { binary_data_size: raw.byteLength } }],
    parameters: { binary_data_output: true },
  });
  return { body: Buffer.concat([header, raw]), headerLength: header.byteLength };
}

const post = (name: string, path: string, body: Buffer, status = 200, headers: Record<string, string> = {}): HttpCase => ({
  name,
  method: 'POST',
  path,
  headers: { 'content-type': 'application/json', 'x-request-id': `case-${name.replace(/[^a-z0-9]+/gi, '-')}`, ...headers },
  body,
  status,
});

/** One request per predict door and form (answered 200), and model metadata. */
export function predictCases(): HttpCase[] {
  const binary = mlpBinary();
  return [
    post('sibyl rest, default version', '/v1/models/delivery-eta:predict', sibylBody()),
    post('sibyl rest, version 1', '/v1/models/delivery-eta/versions/1:predict', sibylBody()),
    post('sibyl rest, alias stable', '/v1/models/delivery-eta/versions/stable:predict', sibylBody()),
    post('sibyl rest, classifier outputs', '/v1/models/eta-risk:predict', json({ rows: [{ entities: { restaurant: 'r320', zone: 'z55' }, features: { distance_km: 0.67, hour_of_day: 8, is_raining: 0, basket_size: 4, promised_minutes: 32 } }] })),
    post('oip rest, json tensors', '/v2/models/tabular-mlp/infer', json(mlpJson())),
    post('oip rest, bytes entities and version', '/v2/models/delivery-eta/versions/2/infer', json({ id: 'oip-1', inputs: oipEtaInputs() })),
    post('oip rest, binary tensors in and out', '/v2/models/tabular-mlp/infer', binary.body, 200, { 'content-type': 'application/octet-stream', 'inference-header-content-length': String(binary.headerLength) }),
    post('oip rest, gzip body', '/v2/models/tabular-mlp/infer', gzipSync(json(mlpJson())), 200, { 'content-encoding': 'gzip' }),
    { name: 'oip model metadata', method: 'GET', path: '/v2/models/delivery-eta', headers: { 'x-request-id': 'case-metadata' }, status: 200 },
  ];
}

/** Requests the server refuses with a 4xx; the function must answer the same. */
export function badCases(): HttpCase[] {
  return [
    post('invalid json', '/v1/models/delivery-eta:predict', Buffer.from('{"rows": ['), 400),
    post('empty body', '/v1/models/delivery-eta:predict', Buffer.alloc(0), 400),
    post('no rows', '/v1/models/delivery-eta:predict', json({ rows: [] }), 400),
    post('unknown model', '/v1/models/no-such-model:predict', sibylBody(), 404),
    post('unknown version', '/v1/models/delivery-eta/versions/9:predict', sibylBody(), 404),
    post('body too large', '/v1/models/delivery-eta:predict', Buffer.alloc(MAX_BODY_BYTES + 1, 0x20), 413),
    post('invalid deadline header', '/v1/models/delivery-eta:predict', sibylBody(), 400, { 'x-request-timeout-ms': 'soon' }),
    post('oip wrong shape', '/v2/models/tabular-mlp/infer', json({ inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 5], data: [1, 2, 3, 4, 5] }] }), 400),
    post('oip corrupt gzip', '/v2/models/tabular-mlp/infer', Buffer.from('not gzip'), 400, { 'content-encoding': 'gzip' }),
    { name: 'predict with GET', method: 'GET', path: '/v1/models/delivery-eta:predict', headers: { 'x-request-id': 'case-get' }, status: 405 },
    { name: 'no such route', method: 'GET', path: '/v3/nothing', headers: { 'x-request-id': 'case-route' }, status: 404 },
  ];
}

const TEXT = /json|text/;

function bodyOf(c: HttpCase, base64: boolean): { body?: string; isBase64Encoded: boolean } {
  if (!c.body) return { isBase64Encoded: false };
  const text = TEXT.test(c.headers['content-type'] ?? '') && !c.headers['content-encoding'];
  // API Gateway base64-encodes bodies it does not treat as text; a test may force it for any body.
  return text && !base64 ? { body: c.body.toString('utf8'), isBase64Encoded: false } : { body: c.body.toString('base64'), isBase64Encoded: true };
}

/** The API Gateway HTTP API (payload 2.0) event for a case, as API Gateway sends it (function URLs send the same). */
export function httpApiEvent(c: HttpCase, opts: { stage?: string; base64?: boolean } = {}): Record<string, unknown> {
  const stage = opts.stage ?? '$default';
  const rawPath = stage === '$default' ? c.path : `/${stage}${c.path}`;
  return {
    version: '2.0',
    routeKey: '$default',
    rawPath,
    rawQueryString: c.query ?? '',
    headers: { host: 'abc123.execute-api.eu-west-1.amazonaws.com', 'user-agent': 'test', ...c.headers, ...(c.body ? { 'content-length': String(c.body.byteLength) } : {}) },
    requestContext: {
      accountId: '123456789012',
      apiId: 'abc123',
      domainName: 'abc123.execute-api.eu-west-1.amazonaws.com',
      http: { method: c.method, path: rawPath, protocol: 'HTTP/1.1', sourceIp: '192.0.2.1', userAgent: 'test' },
      requestId: 'JKJaXmPLvHcESHA=',
      routeKey: '$default',
      stage,
      time: '12/Mar/2026:19:03:58 +0000',
      timeEpoch: 1773342238000,
    },
    ...bodyOf(c, opts.base64 ?? false),
  };
}

/** The ALB event for a case (single-value headers, or multi-value when the target group turns them on). */
export function albEvent(c: HttpCase, multiValue = false): Record<string, unknown> {
  const headers = { host: 'sibyl-alb.example', ...c.headers };
  return {
    requestContext: { elb: { targetGroupArn: 'arn:aws:elasticloadbalancing:eu-west-1:123456789012:targetgroup/sibyl/0123456789abcdef' } },
    httpMethod: c.method,
    path: c.path,
    ...(multiValue
      ? { multiValueQueryStringParameters: {}, multiValueHeaders: Object.fromEntries(Object.entries(headers).map(([k, v]) => [k, [v]])) }
      : { queryStringParameters: {}, headers }),
    ...bodyOf(c, false),
  };
}

/** The API Gateway REST API (payload 1.0) event for a case. */
export function restApiEvent(c: HttpCase): Record<string, unknown> {
  return {
    resource: '/{proxy+}',
    path: c.path,
    httpMethod: c.method,
    headers: { Host: 'abc123.execute-api.eu-west-1.amazonaws.com', ...c.headers },
    multiValueHeaders: Object.fromEntries(Object.entries({ Host: 'abc123.execute-api.eu-west-1.amazonaws.com', ...c.headers }).map(([k, v]) => [k, [v]])),
    queryStringParameters: null,
    multiValueQueryStringParameters: null,
    requestContext: { stage: 'prod', requestId: 'c6af9ac6-7b61-11e6-9a41-93e8deadbeef', httpMethod: c.method, path: `/prod${c.path}` },
    ...bodyOf(c, false),
  };
}

/** Sends a case to a listening server. */
export async function serverAnswer(base: string, c: HttpCase): Promise<Answer> {
  const res = await fetch(`${base}${c.path}${c.query ? `?${c.query}` : ''}`, { method: c.method, headers: c.headers, ...(c.body ? { body: c.body } : {}) });
  return { status: res.status, contentType: res.headers.get('content-type') ?? undefined, body: Buffer.from(await res.arrayBuffer()) };
}

/** A Lambda result (any of the result forms) as an answer. */
export function resultAnswer(result: unknown): Answer {
  const r = result as { statusCode: number; headers?: Record<string, string>; multiValueHeaders?: Record<string, string[]>; body: string; isBase64Encoded: boolean };
  const contentType = r.headers?.['content-type'] ?? r.multiValueHeaders?.['content-type']?.[0];
  return { status: r.statusCode, contentType, body: Buffer.from(r.body, r.isBase64Encoded ? 'base64' : 'utf8') };
}

/** For readable failures: JSON bodies as objects, binary ones as base64. */
export function readable(a: Answer): { status: number; contentType: string | undefined; body: unknown } {
  const text = a.body.toString('utf8');
  try {
    return { status: a.status, contentType: a.contentType, body: JSON.parse(text) };
  } catch {
    return { status: a.status, contentType: a.contentType, body: a.body.toString('base64') };
  }
}
