/**
 * The JSON bodies of the control tower's REST API, as its handlers use them: request bodies are parsed with these
 * (`parseBody` in http.ts) and answers are encoded with them (`reply`: `z.encode`, which checks the value and
 * writes dates as ISO 8601 strings), so what a handler sends is what the schema says. The OpenAPI document
 * (openapi.ts) is generated from them. The desired state and gateway reports are protobuf messages (ProtoJSON of
 * proto/sibyl/v1/deployment.proto), named here with `protoJson`.
 *
 * Names (models, versions, aliases, cells) are plain strings here: the store checks them, with messages that
 * name the rule (core/names.ts).
 */
import { z } from 'zod';
import { Code } from '../../core/errors.ts';
import { protoJson } from '../../core/openapi.ts';
import { CellStateSchema, ShadowComparisonSchema } from '../../proto/gen/sibyl/v1/deployment_pb.js';
import { ROLES, type Role } from '../store/metadata-types.ts';

/** A time: a Date in the handler, an ISO 8601 string on the wire. */
export const isoDate = z.codec(z.iso.datetime({ offset: true }), z.date(), {
  decode: (s) => new Date(s),
  encode: (d) => d.toISOString(),
});
const int = z.number().int();
const role = z.enum(ROLES as [Role, ...Role[]]);

// --- requests ------------------------------------------------------------------------------------------------------

export const CellsSelector = z
  .union([z.string(), z.array(z.string())], { error: 'cells: must be "all", a list of cell names or a comma-separated string' })
  .meta({ id: 'CellsSelector', description: '"all", a list of cell names, or a comma-separated string' });

const nonEmpty = (field: string) => z.string({ error: `${field}: a non-empty string is required` }).min(1, { error: `${field}: a non-empty string is required` });

export const SetVersionBody = z
  .object({ version: nonEmpty('version'), cells: CellsSelector.optional() })
  .meta({ id: 'SetVersionBody', description: 'cells omitted: every cell where the model is deployed' });

export const CellsBody = z.object({ cells: CellsSelector }).meta({ id: 'CellsBody' });

export const SplitBody = z
  .object({
    arms: z.array(z.object({ version: z.string(), weight: z.number(), arm: z.string().optional() }), {
      error: 'arms: a list of { version, weight, arm? } is required ([] removes the split)',
    }),
    cells: CellsSelector.optional(),
  })
  .meta({ id: 'SplitBody', description: 'arm defaults to the version; weights are relative' });

export const ShadowsBody = z
  .object({
    shadows: z.array(z.object({ model: z.string().optional(), version: z.string() }), { error: 'shadows: a list of { model?, version } is required ([] removes them)' }),
    cells: CellsSelector.optional(),
  })
  .meta({ id: 'ShadowsBody', description: 'model defaults to the model itself' });

export const CreateTokenBody = z.object({ name: nonEmpty('name'), role }).meta({ id: 'CreateTokenBody' });

// --- answers -------------------------------------------------------------------------------------------------------

export const TowerError = z.object({ code: z.enum(Object.keys(Code) as [keyof typeof Code, ...(keyof typeof Code)[]]), message: z.string() }).meta({ id: 'TowerError' });

export const Live = z.object({ live: z.literal(true) }).meta({ id: 'TowerLive' });

const CellRevision = z.object({ cell: z.string(), revision: int });

export const ChangeResult = z.object({ cells: z.array(CellRevision) }).meta({ id: 'ChangeResult', description: 'the cells whose desired state changed, with their new revisions' });

export const Version = z
  .object({
    name: z.string(),
    version: z.string(),
    sha256: z.string(),
    runtime: z.string(),
    sizeBytes: int,
    createdBy: z.string(),
    createdAt: isoDate,
    retiredAt: isoDate.optional(),
    retiredBy: z.string().optional(),
  })
  .meta({ id: 'Version' });

export const UploadResult = Version.extend({ created: z.boolean(), changed: z.array(CellRevision) }).meta({
  id: 'UploadResult',
  description: 'created: false for an identical retry; changed: the cells where it was deployed or made the default',
});

export const ModelList = z.object({ models: z.array(z.object({ name: z.string(), created: isoDate, versions: z.array(z.string()) })) }).meta({ id: 'ModelList' });

const SplitArm = z.object({ arm: z.string(), version: z.string(), weight: z.number() });
const ShadowTarget = z.object({ model: z.string(), version: z.string() });

const CellModel = z
  .object({
    cell: z.string(),
    versions: z.array(z.string()),
    defaultVersion: z.string(),
    aliases: z.record(z.string(), z.string()),
    split: z.array(SplitArm),
    shadows: z.array(ShadowTarget),
  })
  .meta({ id: 'CellModel', description: "a model's part of one cell's desired state" });

export const ModelDetail = z
  .object({ name: z.string(), created: isoDate, versions: z.array(Version.extend({ cells: z.array(z.string()) })), cells: z.array(CellModel) })
  .meta({ id: 'ModelDetail' });

export const Manifest = z.record(z.string(), z.unknown()).meta({ id: 'StoredManifest', description: 'the manifest as validated at upload (schemas/sibyl.schema.json, defaults filled in)' });

export const VersionDetail = Version.extend({ cells: z.array(z.string()), manifest: Manifest }).meta({ id: 'VersionDetail' });

export const ShadowsReport = z
  .object({
    model: z.string(),
    configured: z.array(z.object({ cell: z.string(), shadows: z.array(ShadowTarget), split: z.array(SplitArm) })),
    replicas: z.array(z.object({ cell: z.string(), replica: z.string(), received: isoDate, pairs: z.array(protoJson(ShadowComparisonSchema)) })),
  })
  .meta({ id: 'ShadowsReport', description: "the live-versus-shadow comparison of the model's pairs as each replica last reported it" });

export const CellList = z.object({ cells: z.array(z.object({ name: z.string(), revision: int, updated: isoDate })) }).meta({ id: 'CellList' });

const VersionRef = z.object({ model: z.string(), version: z.string() });

export const CellStatus = z
  .object({
    cell: z.string(),
    desired: protoJson(CellStateSchema),
    replicas: z.array(
      z.object({
        replica: z.string(),
        revision: int,
        inSync: z.boolean(),
        lastSeen: isoDate,
        stale: z.boolean(),
        loaded: z.array(VersionRef.extend({ bundleSha256: z.string() })),
        missing: z.array(z.string()),
        extra: z.array(z.string()),
        errors: z.array(VersionRef.extend({ message: z.string() })),
      }),
    ),
  })
  .meta({ id: 'CellStatus', description: 'the desired state against what each replica last reported' });

export const ReportReceived = z.object({ received: isoDate }).meta({ id: 'ReportReceived' });

export const AuditLog = z
  .object({ entries: z.array(z.object({ id: int, time: isoDate, actor: z.string(), action: z.string(), target: z.string(), details: z.record(z.string(), z.unknown()) })) })
  .meta({ id: 'AuditLog', description: 'newest first' });

export const TokenList = z.object({ tokens: z.array(z.object({ name: z.string(), role, createdBy: z.string(), created: isoDate })) }).meta({ id: 'TokenList' });

export const TokenCreated = z.object({ name: z.string(), role, token: z.string() }).meta({ id: 'TokenCreated', description: 'the secret, shown this once' });

export const Whoami = z.object({ name: z.string(), role }).meta({ id: 'Whoami', description: "the token's name and role" });

const CaseResult = z
  .object({
    name: z.string(),
    features: z.record(z.string(), z.union([z.number(), z.string(), z.boolean()])),
    expected: z.record(z.string(), z.unknown()),
    outputs: z.record(z.string(), z.unknown()).optional(),
    error: z.object({ code: z.string(), message: z.string() }).optional(),
    problems: z.array(z.string()),
    ms: z.number(),
  })
  .meta({ id: 'CaseResult', description: 'a test case (or row) as it ran: the row with defaults filled, outputs or error, one line per difference, milliseconds' });

export const Verdict = z
  .object({
    ok: z.boolean(),
    sha256: z.string(),
    sizeBytes: int,
    checks: z.array(z.object({ name: z.string(), ok: z.boolean(), code: z.string().optional(), message: z.string().optional() })),
    cases: z.array(CaseResult),
    rows: z.array(CaseResult),
    manifest: Manifest.optional(),
  })
  .meta({
    id: 'Verdict',
    description: 'the upload gate run without storing: each check in order (bundle, test cases declared, runtime, model loads, test cases pass, composed models, version is new; it stops at the first failure), every test case and row',
  });
