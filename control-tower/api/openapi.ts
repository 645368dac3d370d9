/**
 * The control tower's REST API as an OpenAPI 3.1 document, served at `GET /openapi.json` (no token needed) and
 * committed as `schemas/control-tower.openapi.json` (`npm run gen:schemas`; test/contracts/schemas.test.ts fails
 * when it is stale). Each operation names the schemas its handler parses and encodes with (schemas.ts), or the
 * protobuf messages it reads and writes as ProtoJSON (CellState, GatewayReport). test/contracts/openapi.test.ts
 * checks that every route of the app is listed here and validates real answers against the document.
 */
import { z } from 'zod';
import { openApiDocument, type JsonSchema, type OperationSpec, type ParameterSpec, type ResponseSpec } from '../../core/openapi.ts';
import { CellStateSchema, GatewayReportSchema } from '../../proto/gen/sibyl/v1/deployment_pb.js';
import {
  AuditLog,
  CellList,
  CellsBody,
  CellStatus,
  ChangeResult,
  CreateTokenBody,
  Live,
  Manifest,
  ModelDetail,
  ModelList,
  ReportReceived,
  SetVersionBody,
  ShadowsBody,
  ShadowsReport,
  SplitBody,
  TokenCreated,
  TokenList,
  TowerError,
  UploadResult,
  VersionDetail,
  Verdict,
  Whoami,
} from './schemas.ts';
import { StatisticsAnswer } from './statistics-api.ts';
import { ReplayBody, ReplayJobAnswer, ReplayList } from './replays-api.ts';
import { HaltBody, RolloutAnswer, RolloutBody, RolloutList } from './rollouts-api.ts';

const param = (name: string, description: string): ParameterSpec => ({ name, in: 'path', description });
const name = param('name', "the model's name");
const version = param('version', 'a version');
const cell = param('cell', 'a cell');
const cellsQuery: ParameterSpec = { name: 'cells', in: 'query', description: 'comma-separated cells, or "all"' };
const nonNegative = z.string().regex(/^[0-9]+$/);

const error: ResponseSpec = {
  description: 'an error with the HTTP status of its code (core/errors.ts): 400 invalid, 401 no or unknown token, 403 role too low, 404, 409 exists, 412 precondition, 429 too many validations',
  content: { 'application/json': TowerError },
};
const json = (description: string, schema: z.ZodType, status = '200'): Record<string, ResponseSpec> => ({ [status]: { description, content: { 'application/json': schema } }, default: error });
const zip: JsonSchema = { type: 'string', contentMediaType: 'application/zip' };
const changed = json('the cells whose desired state changed', ChangeResult);

function op(method: OperationSpec['method'], path: string, operationId: string, tag: string, summary: string, rest: Partial<OperationSpec> & Pick<OperationSpec, 'responses'>): OperationSpec {
  return { method, path, operationId, tags: [tag], summary, security: ['bearer'], ...rest };
}

export const TOWER_OPERATIONS: readonly OperationSpec[] = [
  op('post', '/v1/models', 'upload', 'models', 'Upload a bundle: validated, stored, optionally deployed and made the default (publisher)', {
    description: 'The same name and version with the same bytes answers 200 (created: false); with other bytes 409.',
    parameters: [cellsQuery, { name: 'default', in: 'query', description: 'make it the default', schema: z.enum(['true', 'false']) }],
    requestBody: {
      content: {
        'application/zip': { raw: zip },
        'application/octet-stream': { raw: zip },
        'multipart/form-data': {
          raw: {
            type: 'object',
            properties: { bundle: { ...zip, description: 'the zip' }, cells: { type: 'string' }, default: { type: 'string', enum: ['true', 'false'] } },
            required: ['bundle'],
          },
        },
      },
    },
    responses: { '201': { description: 'stored', content: { 'application/json': UploadResult } }, ...json('an identical retry', UploadResult) },
  }),
  op('post', '/v1/validations', 'inspect', 'models', 'Run a bundle through the upload gate without storing it: every check, test case and free-form row (publisher)', {
    description: 'The same validation process and limits as an upload, and its turn in the same queue (429 when full). A failing bundle answers 200 with ok: false.',
    requestBody: {
      content: {
        'application/zip': { raw: zip },
        'application/octet-stream': { raw: zip },
        'multipart/form-data': {
          raw: {
            type: 'object',
            properties: { bundle: { ...zip, description: 'the zip' }, rows: { type: 'string', contentMediaType: 'application/json', description: 'JSON: [{ name?, features: { NAME: value }, models?: { AS: { OUTPUT: value } } }], at most 100 rows run as cases with nothing expected' } },
            required: ['bundle'],
          },
        },
      },
    },
    responses: json('the verdict', Verdict),
  }),
  op('get', '/v1/models', 'listModels', 'models', 'Every model', { responses: json('models by name', ModelList) }),
  op('get', '/v1/models/{name}', 'getModel', 'models', 'A model: its versions and, per cell, versions, default, aliases, split, shadows', { parameters: [name], responses: json('the model', ModelDetail) }),
  op('get', '/v1/models/{name}/versions/{version}', 'getVersion', 'models', 'A version, its cells and manifest', { parameters: [name, version], responses: json('the version', VersionDetail) }),
  op('get', '/v1/models/{name}/versions/{version}/manifest', 'getManifest', 'models', "A version's manifest", { parameters: [name, version], responses: json('the manifest', Manifest) }),
  op('get', '/v1/models/{name}/versions/{version}/bundle', 'getBundle', 'models', "A version's bundle", {
    parameters: [name, version],
    responses: { '200': { description: 'the zip (ETag: its sha256)', content: { 'application/zip': { raw: zip } } }, default: error },
  }),
  op('put', '/v1/models/{name}/default', 'setDefault', 'models', 'Make a version the default (deploying it where needed; publisher)', {
    parameters: [name],
    requestBody: { content: { 'application/json': SetVersionBody } },
    responses: changed,
  }),
  op('put', '/v1/models/{name}/aliases/{alias}', 'setAlias', 'models', 'Point an alias at a version (publisher)', {
    parameters: [name, param('alias', 'the alias')],
    requestBody: { content: { 'application/json': SetVersionBody } },
    responses: changed,
  }),
  op('delete', '/v1/models/{name}/aliases/{alias}', 'deleteAlias', 'models', 'Delete an alias (publisher)', { parameters: [name, param('alias', 'the alias'), cellsQuery], responses: changed }),
  op('post', '/v1/models/{name}/versions/{version}:deploy', 'deploy', 'models', 'Deploy a version to cells (publisher)', {
    parameters: [name, version],
    requestBody: { content: { 'application/json': CellsBody } },
    responses: changed,
  }),
  op('post', '/v1/models/{name}/versions/{version}:undeploy', 'undeploy', 'models', 'Undeploy a version from cells (publisher)', {
    parameters: [name, version],
    requestBody: { content: { 'application/json': CellsBody } },
    responses: changed,
  }),
  op('post', '/v1/models/{name}/versions/{version}:retire', 'retire', 'models', 'Retire a version: undeployed everywhere, never deployed again (publisher)', { parameters: [name, version], responses: changed }),
  op('put', '/v1/models/{name}/split', 'setSplit', 'models', 'Set the traffic split of requests that name no version (publisher)', {
    parameters: [name],
    requestBody: { content: { 'application/json': SplitBody } },
    responses: changed,
  }),
  op('put', '/v1/models/{name}/shadows', 'setShadows', 'models', 'Set the shadows of a model (publisher)', {
    parameters: [name],
    requestBody: { content: { 'application/json': ShadowsBody } },
    responses: changed,
  }),
  op('get', '/v1/models/{name}/shadows', 'shadowsReport', 'models', 'The live-versus-shadow comparison as each gateway replica last reported it', { parameters: [name], responses: json('per replica', ShadowsReport) }),
  op('get', '/v1/models/{name}/statistics', 'statistics', 'models', 'Serving statistics and drift of every version reported, per cell (merged over live replicas)', {
    parameters: [name, { name: 'cell', in: 'query', description: 'only this cell' }],
    responses: json('per cell and version', StatisticsAnswer),
  }),
  op('get', '/v1/models/{name}/versions/{version}/statistics', 'versionStatistics', 'models', "A version's serving statistics and drift, per cell", {
    parameters: [name, version, { name: 'cell', in: 'query', description: 'only this cell' }],
    responses: json('per cell', StatisticsAnswer),
  }),
  op('post', '/v1/models/{name}/replays', 'startReplay', 'models', "Replay the model's logged live traffic against a candidate version, in a process of the tower's (publisher)", {
    description: 'Needs KAFKA_BROKERS on the tower (else 412). One replay at a time (else 429). The job answers at once; poll it for the report.',
    parameters: [name],
    requestBody: { content: { 'application/json': ReplayBody } },
    responses: json('the job, running', ReplayJobAnswer, '202'),
  }),
  op('get', '/v1/models/{name}/replays', 'listReplays', 'models', "The model's replays, newest first (without their reports)", { parameters: [name], responses: json('the jobs', ReplayList) }),
  op('get', '/v1/models/{name}/replays/{id}', 'getReplay', 'models', 'A replay: status, progress and, once done, its report', {
    parameters: [name, param('id', "the replay's id")],
    responses: json('the job', ReplayJobAnswer),
  }),
  op('post', '/v1/rollouts', 'startRollout', 'rollouts', "Start a rollout: the version moved through waves of cells, each baked and checked against guards from the gateways' reports (publisher)", {
    description: 'FAILED_PRECONDITION (412) while the model has an unfinished rollout. The tower moves it on; poll GET /v1/rollouts/{id}.',
    requestBody: { content: { 'application/json': RolloutBody } },
    responses: json('the rollout, pending', RolloutAnswer, '201'),
  }),
  op('get', '/v1/rollouts', 'listRollouts', 'rollouts', 'Rollouts, newest first', {
    parameters: [
      { name: 'model', in: 'query', description: 'only this model' },
      { name: 'active', in: 'query', description: 'only unfinished ones', schema: z.enum(['true', 'false']) },
      { name: 'limit', in: 'query', description: '1-1000, default 100', schema: nonNegative },
    ],
    responses: json('the rollouts', RolloutList),
  }),
  op('get', '/v1/rollouts/{id}', 'getRollout', 'rollouts', "A rollout: its state, current wave, each wave's figures and guard results, the reason for a halt", {
    parameters: [param('id', "the rollout's id")],
    responses: json('the rollout', RolloutAnswer),
  }),
  op('post', '/v1/rollouts/{id}:halt', 'haltRollout', 'rollouts', "Halt a rollout: the current wave's cells (every wave's with rollback all) restored, no later wave started (publisher)", {
    description: 'FAILED_PRECONDITION (412) when the rollout has finished. The body is optional.',
    parameters: [param('id', "the rollout's id")],
    requestBody: { required: false, content: { 'application/json': HaltBody } },
    responses: json('the rollout, halted', RolloutAnswer),
  }),
  op('get', '/v1/cells', 'listCells', 'cells', 'Every cell and its revision', { responses: json('cells by name', CellList) }),
  op('get', '/v1/cells/{cell}', 'getCell', 'cells', 'The desired state against what each replica reported', { parameters: [cell], responses: json('the cell', CellStatus) }),
  op('get', '/v1/cells/{cell}/state', 'cellState', 'cells', "The cell's desired state, long-polled on its revision (gateways)", {
    parameters: [
      cell,
      { name: 'after', in: 'query', description: 'answer at once when the revision is above this, else wait', schema: nonNegative },
      { name: 'wait_ms', in: 'query', description: 'longest wait, milliseconds (capped by SIBYL_MAX_WAIT_MS)', schema: nonNegative },
    ],
    responses: { '200': { description: 'the desired state', content: { 'application/json': CellStateSchema } }, default: error },
  }),
  op('post', '/v1/cells/{cell}/reports', 'report', 'cells', "A gateway replica's report: what it loaded, failed, and its shadow comparison", {
    parameters: [cell],
    requestBody: { content: { 'application/json': GatewayReportSchema } },
    responses: json('stored', ReportReceived),
  }),
  op('get', '/v1/bundles/{sha256}', 'getBundleByHash', 'cells', 'A bundle by its sha256 (ETag; If-None-Match answers 304)', {
    parameters: [param('sha256', '64 lowercase hex digits'), { name: 'if-none-match', in: 'header', description: 'the ETag held' }],
    responses: { '200': { description: 'the zip', content: { 'application/zip': { raw: zip } } }, '304': { description: 'not modified' }, default: error },
  }),
  op('get', '/v1/whoami', 'whoami', 'admin', "The caller's token name and role", { responses: json('the principal', Whoami) }),
  op('get', '/v1/audit', 'audit', 'admin', 'The audit log, newest first', {
    parameters: [
      { name: 'limit', in: 'query', description: '1-1000, default 100', schema: nonNegative },
      { name: 'before', in: 'query', description: 'only entries with a smaller id', schema: nonNegative },
      { name: 'model', in: 'query', description: 'only changes of this model and its versions (target NAME or NAME/VERSION)' },
      { name: 'actor', in: 'query', description: 'only changes by this token' },
      { name: 'action', in: 'query', description: 'only this action (e.g. default.set)' },
    ],
    responses: json('entries', AuditLog),
  }),
  op('get', '/v1/tokens', 'listTokens', 'admin', 'Live tokens, without secrets (admin)', { responses: json('tokens', TokenList) }),
  op('post', '/v1/tokens', 'createToken', 'admin', 'Create a token (admin)', { requestBody: { content: { 'application/json': CreateTokenBody } }, responses: json('the token, its secret shown once', TokenCreated, '201') }),
  op('delete', '/v1/tokens/{name}', 'revokeToken', 'admin', 'Revoke a token (admin)', { parameters: [param('name', "the token's name")], responses: { '204': { description: 'revoked' }, default: error } }),
  {
    method: 'get',
    path: '/metrics',
    operationId: 'metrics',
    tags: ['operations'],
    summary: 'Drift, serving statistics and rollouts as Prometheus gauges (no token)',
    responses: { '200': { description: 'Prometheus text format 0.0.4', content: { 'text/plain': { raw: { type: 'string' } } } } },
  },
  { method: 'get', path: '/healthz', operationId: 'live', tags: ['operations'], summary: 'Liveness', responses: { '200': { description: 'live', content: { 'application/json': Live } } } },
  {
    method: 'get',
    path: '/openapi.json',
    operationId: 'openapi',
    tags: ['operations'],
    summary: 'This document',
    responses: { '200': { description: 'OpenAPI 3.1', content: { 'application/json': { raw: { type: 'object' } } } } },
  },
];

export function towerOpenApi(): JsonSchema {
  return openApiDocument({
    title: 'Sibyl control tower',
    version: '0.1.0',
    description:
      'Publish model bundles and move versions between cells; gateways follow their cell\'s desired state here. Every /v1 call needs a bearer token; reads need the viewer role, changes publisher, tokens admin. Generated from the schemas the handlers use.',
    tags: [
      { name: 'models', description: 'bundles, versions, defaults, aliases, splits, shadows' },
      { name: 'cells', description: 'what gateways follow and report' },
      { name: 'rollouts', description: 'versions moved through waves of cells with bake times and guards' },
      { name: 'admin', description: 'audit log and tokens' },
      { name: 'operations', description: 'health, this document' },
    ],
    securitySchemes: { bearer: { type: 'http', scheme: 'bearer', description: 'a token from SIBYL_ADMIN_TOKEN, the development token printed at start, or POST /v1/tokens' } },
    operations: TOWER_OPERATIONS,
  });
}
