/**
 * Sibyl REST: `POST /v1/models/{model}:predict` and `POST /v1/models/{model}/versions/{version}:predict`.
 * The body is the ProtoJSON form of sibyl.v1.PredictRequest (model and version come from the path); the answer is
 * the ProtoJSON of sibyl.v1.PredictResponse, or an ErrorBody with the HTTP status of its code. A codec over the
 * pipeline's one entry: it decodes and encodes, the entry decides.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Hono } from 'hono';
import { fromJson, type JsonValue } from '@bufbuild/protobuf';
import { PredictRequestSchema } from '../../proto/gen/sibyl/v1/predict_pb.js';
import { SibylError } from '../../core/errors.ts';
import type { ParsedRequest, Pipeline } from '../pipeline/pipeline.ts';
import { httpEndpoint } from '../telemetry/endpoint.ts';
import { plainPredictRequest, predictResponseJson, toParsedRequest } from './sibyl-api.ts';
import { answerDirect, errorAnswer, errorResponse, httpArrival, httpIn, incomingIn, readJsonBody, requestIdHeader, timeoutHeader, toResponse, type HttpIn, type RestAnswer, type RestLimits } from './rest-common.ts';

const OTHER_METHODS = ['GET', 'PUT', 'PATCH', 'DELETE'];

/** The routes as spans name them: the predict templates, and the same paths with any other verb (NOT_FOUND). */
const PREDICT = httpEndpoint('POST', '/v1/models/{model}:predict');
const PREDICT_VERSION = httpEndpoint('POST', '/v1/models/{model}/versions/{version}:predict');
const OTHER_VERB = httpEndpoint('POST', '/v1/models/{spec}');
const OTHER_VERB_VERSION = httpEndpoint('POST', '/v1/models/{model}/versions/{spec}');

/**
 * A prediction path as Node hands it over, when it needs no decoding: `/v1/models/{spec}` or
 * `/v1/models/{model}/versions/{spec}`, no query, no percent-escape.
 */
const PLAIN_PATH = /^\/v1\/models\/([^/?%]+)(?:\/versions\/([^/?%]+))?$/;

/**
 * Mounts the routes on `app`, and returns the same two routes as a Node request listener for the common case (the
 * REST door's direct path, ahead of Hono: `RestApp.serveDirect`): a POST to a plain predict path is served, and
 * true returned; anything else is left to Hono (false). Both paths run the same `handle`.
 */
export function mountSibylRest(app: Hono, pipeline: Pipeline, limits: RestLimits, onError: (err: unknown) => RestAnswer): (req: IncomingMessage, res: ServerResponse) => boolean {
  app.post('/v1/models/:spec', async (c) => toResponse(await handle(httpIn(c), c.req.path, undefined, c.req.param('spec'))));
  app.post('/v1/models/:model/versions/:spec', async (c) => toResponse(await handle(httpIn(c), c.req.path, c.req.param('model'), c.req.param('spec'))));
  // A predict path asked with another method: 405 naming the one it takes (anything else is not a route: 404).
  for (const path of ['/v1/models/:spec', '/v1/models/:model/versions/:spec']) {
    app.on(OTHER_METHODS, path, (c) =>
      errorResponse(
        splitVerb(c.req.param('spec') ?? '')?.verb === 'predict'
          ? SibylError.because('METHOD_NOT_ALLOWED', `${c.req.method} ${c.req.path}: predictions are POST requests`)
          : new SibylError('NOT_FOUND', `no route for ${c.req.method} ${c.req.path}`),
        c.req.header(requestIdHeader) ?? '',
      ),
    );
  }

  /**
   * One predict request, from either path: `spec` is the path's last segment (`{model}:predict`, or `{version}:predict`
   * after `/versions/` when `model` is given).
   */
  async function handle(req: HttpIn, path: string, model: string | undefined, spec: string): Promise<RestAnswer> {
    const v = splitVerb(spec);
    const predict = v?.verb === 'predict';
    const endpoint = model === undefined ? (predict ? PREDICT : OTHER_VERB) : predict ? PREDICT_VERSION : OTHER_VERB_VERSION;
    const target = model === undefined ? v : v && { name: model, verb: v.verb };
    const version = model === undefined ? '' : (v?.name ?? '');
    const arrival = httpArrival('rest', req, endpoint, path);
    const outcome = await pipeline.predict(arrival, () => parse(req, path, target, version));
    if (outcome.error) return errorAnswer(outcome.error, outcome.requestId);
    return { status: 200, headers: { 'content-type': 'application/json', [requestIdHeader]: outcome.requestId }, body: predictResponseJson(outcome.output) };
  }

  async function parse(req: HttpIn, path: string, target: { name: string; verb: string } | undefined, version: string): Promise<ParsedRequest> {
    if (!target || target.verb !== 'predict') throw new SibylError('NOT_FOUND', `no such method: ${path} (use /v1/models/{model}:predict)`);
    const timeoutMs = timeoutHeader(req);
    const json = await readJsonBody(req, limits.maxBodyBytes);
    // The request as clients send it is read as it is; anything else through protobuf-es, for its precise errors.
    const plain = plainPredictRequest(json, timeoutMs);
    if (plain) {
      matchesPath(plain, target.name, version);
      return { ...plain, model: target.name, version: version || plain.version };
    }
    let message;
    try {
      message = fromJson(PredictRequestSchema, json as JsonValue);
    } catch (err) {
      throw new SibylError('INVALID_ARGUMENT', `invalid request: ${(err as Error).message}`);
    }
    matchesPath(message, target.name, version);
    message.model = target.name;
    if (version) message.version = version;
    return toParsedRequest(message, timeoutMs);
  }

  return function serveDirect(req, res) {
    const m = req.method === 'POST' ? PLAIN_PATH.exec(req.url ?? '') : null;
    if (m === null) return false;
    answerDirect(res, m[2] === undefined ? handle(incomingIn(req), m[0], undefined, m[1]!) : handle(incomingIn(req), m[0], m[1], m[2]), onError);
    return true;
  };
}

/** The model and version a body names, if any, must be the path's. */
function matchesPath(body: { model: string; version: string }, model: string, version: string): void {
  if (body.model && body.model !== model) throw new SibylError('INVALID_ARGUMENT', `model: the body names "${body.model}" but the path names "${model}"`);
  if (body.version && version && body.version !== version) {
    throw new SibylError('INVALID_ARGUMENT', `version: the body names "${body.version}" but the path names "${version}"`);
  }
}

/** "delivery-eta:predict" → { name: "delivery-eta", verb: "predict" }. */
function splitVerb(spec: string): { name: string; verb: string } | undefined {
  const i = spec.lastIndexOf(':');
  return i > 0 ? { name: spec.slice(0, i), verb: spec.slice(i + 1) } : undefined;
}
