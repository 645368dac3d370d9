/**
 * The Open Inference Protocol v2 over REST: health, server and model metadata, readiness, and infer, including the
 * binary tensor data extension (`Inference-Header-Content-Length`) that Triton's HTTP client uses by default.
 * Errors are `{"error": message, "code": CODE}` with the HTTP status of the code (the one table in errors.ts),
 * also for paths under /v2 that are not routes (Triton's clients read `error` from every failed response).
 * Infer request bodies may be compressed (`Content-Encoding: gzip | deflate`, see content-encoding.ts).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Hono } from 'hono';
import type { z } from 'zod';
import { SibylError, toSibylError } from '../../../core/errors.ts';
import type { ParsedRequest, Pipeline } from '../../pipeline/pipeline.ts';
import { httpEndpoint, type Endpoint } from '../../telemetry/endpoint.ts';
import { answerDirect, errorAnswerOf, httpArrival, httpIn, incomingIn, isJsonObject, parseJson, requestIdHeader, timeoutHeader, toResponse, type HttpIn, type RestAnswer, type RestLimits } from '../rest-common.ts';
import { signatureOf } from './signature.ts';
import { DEFAULTED_PARAMETER, decodeRaw, defaultedParameter, encodeRaw, rowsFromTensors, tensorsFromResults, type DecodedTensor } from './tensors.ts';
import { serverMetadata, modelMetadata, routingKeyOf } from './metadata.ts';
import { decodeContent } from './content-encoding.ts';
import { InferRequest, plainInferRequest, type InferRequestData, type InferResponse, type Live, type ModelMetadata, type ModelReady, type OipError, type Ready, type ServerMetadata } from './oip-rest-schemas.ts';

const HEADER_LENGTH = 'inference-header-content-length';
const INFER = httpEndpoint('POST', '/v2/models/{model}/infer');
const INFER_VERSION = httpEndpoint('POST', '/v2/models/{model}/versions/{version}/infer');

export interface OipHealth {
  live(): boolean;
  ready(): boolean;
}

/**
 * An infer path as Node hands it over, when it needs no decoding: `/v2/models/{model}/infer` or
 * `/v2/models/{model}/versions/{version}/infer`, no query, no percent-escape.
 */
const PLAIN_INFER_PATH = /^\/v2\/models\/([^/?%]+)(?:\/versions\/([^/?%]+))?\/infer$/;

/**
 * Mounts the routes on `app`, and returns the infer routes as a Node request listener for the common case (the REST
 * door's direct path, as Sibyl REST's: sibyl-rest.ts): a POST to a plain infer path is served, and true returned;
 * anything else is left to Hono. Both paths run the same `infer`.
 */
export function mountOipRest(app: Hono, pipeline: Pipeline, health: OipHealth, limits: RestLimits, onError: (err: unknown) => RestAnswer): (req: IncomingMessage, res: ServerResponse) => boolean {
  app.get('/v2/health/live', (c) => c.json({ live: health.live() } satisfies z.input<typeof Live>, health.live() ? 200 : 503));
  app.get('/v2/health/ready', (c) => c.json({ ready: health.ready() } satisfies z.input<typeof Ready>, health.ready() ? 200 : 503));
  app.get('/v2', (c) => c.json(serverMetadata() satisfies z.input<typeof ServerMetadata>));

  const metadata = (model: string, version: string) => {
    try {
      return Response.json(modelMetadata(pipeline.describe(model, version)) satisfies z.input<typeof ModelMetadata>);
    } catch (err) {
      return oipError(err);
    }
  };
  const ready = (model: string, version: string) => {
    try {
      pipeline.describe(model, version);
      return Response.json({ name: model, ready: true } satisfies z.input<typeof ModelReady>);
    } catch (err) {
      return oipError(err);
    }
  };
  app.get('/v2/models/:model', (c) => metadata(c.req.param('model'), ''));
  app.get('/v2/models/:model/versions/:version', (c) => metadata(c.req.param('model'), c.req.param('version')));
  app.get('/v2/models/:model/ready', (c) => ready(c.req.param('model'), ''));
  app.get('/v2/models/:model/versions/:version/ready', (c) => ready(c.req.param('model'), c.req.param('version')));
  app.post('/v2/models/:model/infer', async (c) => toResponse(await infer(httpIn(c), INFER, c.req.path, c.req.param('model'), '')));
  app.post('/v2/models/:model/versions/:version/infer', async (c) => toResponse(await infer(httpIn(c), INFER_VERSION, c.req.path, c.req.param('model'), c.req.param('version'))));
  for (const path of ['/v2/models/:model/infer', '/v2/models/:model/versions/:version/infer']) {
    app.on(['GET', 'PUT', 'PATCH', 'DELETE'], path, (c) => oipError(SibylError.because('METHOD_NOT_ALLOWED', `${c.req.method} ${c.req.path}: inference requests are POST requests`)));
  }
  // Registered last: only what no route above answered (other methods, Triton's model config, statistics, ...).
  app.all('/v2/*', (c) => oipError(new SibylError('NOT_FOUND', `no route for ${c.req.method} ${c.req.path}`)));

  async function infer(req: HttpIn, endpoint: Endpoint, path: string, model: string, version: string): Promise<RestAnswer> {
    const arrival = httpArrival('oip-rest', req, endpoint, path);
    let wanted: { name: string; binary: boolean | undefined }[] = [];
    let binaryAll = false;
    const outcome = await pipeline.predict(arrival, async (): Promise<ParsedRequest> => {
      const timeoutMs = timeoutHeader(req);
      const body = await decodeContent(await req.body(limits.maxBodyBytes), req.header('content-encoding'), limits.maxBodyBytes);
      const headerLength = req.header(HEADER_LENGTH);
      let jsonPart = body;
      let binary: Uint8Array | undefined;
      if (headerLength !== undefined) {
        const n = Number(headerLength);
        if (!Number.isInteger(n) || n < 0 || n > body.byteLength) {
          throw new SibylError('INVALID_ARGUMENT', `${HEADER_LENGTH}: ${headerLength} does not fit a body of ${body.byteLength} bytes`);
        }
        jsonPart = body.subarray(0, n);
        binary = body.subarray(n);
      }
      const json = parseJson(jsonPart);
      if (!isJsonObject(json)) throw new SibylError('INVALID_ARGUMENT', 'request body must be a JSON object');
      const { id, inputs, outputs, parameters: params } = plainInferRequest(json) ?? parseInferRequest(json);
      const tensors = decodeInputs(inputs, binary);
      wanted = (outputs ?? []).map((o) => ({ name: o.name, binary: typeof o.parameters?.['binary_data'] === 'boolean' ? o.parameters['binary_data'] : undefined }));
      binaryAll = params?.['binary_data_output'] === true;
      return { model, version, routingKey: routingKeyOf(params), requestId: id, timeoutMs, rows: (route, composed) => rowsFromTensors(model, signatureOf(route, composed), tensors) };
    });
    if (outcome.error) return oipErrorAnswer(outcome.error, outcome.requestId);
    const out = outcome.output;
    const requestId = outcome.requestId;
    try {
      const outputs = tensorsFromResults(signatureOf(out.route), out, wanted.map((w) => w.name));
      const binaryFor = new Set(wanted.filter((w) => w.binary ?? binaryAll).map((w) => w.name));
      if (wanted.length === 0 && binaryAll) for (const o of outputs) binaryFor.add(o.name);

      const defaulted = defaultedParameter(out);
      const chunks: Uint8Array[] = [];
      const header = {
        model_name: out.model,
        model_version: out.version,
        id: requestId,
        ...(defaulted ? { parameters: { [DEFAULTED_PARAMETER]: defaulted } } : {}),
        outputs: outputs.map((o) => {
          if (!binaryFor.has(o.name)) return { name: o.name, datatype: o.datatype, shape: o.shape, data: o.data };
          const raw = encodeRaw(o);
          chunks.push(raw);
          return { name: o.name, datatype: o.datatype, shape: o.shape, parameters: { binary_data_size: raw.byteLength } };
        }),
      } satisfies z.input<typeof InferResponse>;
      const text = JSON.stringify(header);
      if (chunks.length === 0) return { status: 200, headers: { 'content-type': 'application/json', [requestIdHeader]: requestId }, body: text };
      const head = new TextEncoder().encode(text);
      const all = new Uint8Array(head.byteLength + chunks.reduce((s, c) => s + c.byteLength, 0));
      all.set(head, 0);
      let off = head.byteLength;
      for (const c of chunks) {
        all.set(c, off);
        off += c.byteLength;
      }
      return { status: 200, headers: { 'content-type': 'application/octet-stream', [HEADER_LENGTH]: String(head.byteLength), [requestIdHeader]: requestId }, body: all };
    } catch (err) {
      return oipErrorAnswer(err, requestId);
    }
  }

  return function serveDirect(req, res) {
    const m = req.method === 'POST' ? PLAIN_INFER_PATH.exec(req.url ?? '') : null;
    if (m === null) return false;
    answerDirect(res, infer(incomingIn(req), m[2] === undefined ? INFER : INFER_VERSION, m[0], m[1]!, m[2] ?? ''), onError);
    return true;
  };
}

/** The parsed inputs as tensors: elements from `data` (flattened, checked) or from the binary part. */
function decodeInputs(inputs: z.output<typeof InferRequest>['inputs'], binary: Uint8Array | undefined): DecodedTensor[] {
  let offset = 0;
  return inputs.map(({ name, datatype, shape, data, parameters }, i): DecodedTensor => {
    const size = parameters?.['binary_data_size'];
    if (size !== undefined) {
      if (!binary) throw new SibylError('INVALID_ARGUMENT', `inputs[${i}]: binary_data_size given but the request has no binary part (${HEADER_LENGTH} header)`);
      if (!Number.isInteger(size) || (size as number) < 0 || offset + (size as number) > binary.byteLength) {
        throw new SibylError('INVALID_ARGUMENT', `inputs[${i}].parameters.binary_data_size: ${String(size)} overruns the binary data`);
      }
      const raw = binary.subarray(offset, offset + (size as number));
      offset += size as number;
      return { name, datatype, shape, data: decodeRaw(name, datatype, raw) };
    }
    if (data === undefined) throw new SibylError('INVALID_ARGUMENT', `inputs[${i}].data: must be an array`);
    // Flat arrays of one element type were checked by the schema; nested ones are checked once flattened.
    const nested = data.length > 0 && Array.isArray(data[0]);
    const flat = (nested ? data.flat(Infinity) : data) as unknown[];
    if (nested) {
      for (const v of flat) {
        if (typeof v !== 'number' && typeof v !== 'string' && typeof v !== 'boolean') {
          throw new SibylError('INVALID_ARGUMENT', `inputs[${i}].data: elements must be numbers, strings or booleans`);
        }
      }
    }
    return { name, datatype, shape, data: flat as (number | string | boolean)[] };
  });
}

/** The infer request parsed with its schema (what `plainInferRequest` declines), or INVALID_ARGUMENT with the problems. */
function parseInferRequest(json: Record<string, unknown>): InferRequestData {
  const parsed = InferRequest.safeParse(json);
  if (!parsed.success) throw new SibylError('INVALID_ARGUMENT', problemsOf(parsed.error.issues));
  return parsed.data;
}

/** `path: message; ...` from zod issues, paths written as `inputs[0].shape`. */
function problemsOf(issues: readonly z.core.$ZodIssue[]): string {
  return issues
    .slice(0, 5)
    .map((i) => {
      const path = i.path.map((p, k) => (typeof p === 'number' ? `[${p}]` : `${k ? '.' : ''}${String(p)}`)).join('');
      return `${path || 'request body'}: ${i.message}`;
    })
    .join('; ');
}

export function oipError(err: unknown, requestId?: string): Response {
  return toResponse(oipErrorAnswer(err, requestId));
}

function oipErrorAnswer(err: unknown, requestId?: string): RestAnswer {
  const e = toSibylError(err);
  const body = { error: e.message, code: e.code } satisfies z.input<typeof OipError>;
  return errorAnswerOf(e, JSON.stringify(body), requestId || undefined);
}
