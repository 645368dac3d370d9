/**
 * The control tower's metadata: models and their immutable versions, cells and each cell's desired state with its
 * revision, gateway reports, API tokens, and the audit log. `MetadataStore` is the role; `createMetadataStore` in
 * metadata-store.ts builds it over a `Sql` (PGlite or PostgreSQL, same behaviour).
 *
 * Errors are SibylErrors (core/errors.ts) with these codes:
 * - NOT_FOUND: an unknown model, version, cell, alias or token;
 * - ALREADY_EXISTS: a version uploaded again with other bytes, a token name that is taken;
 * - FAILED_PRECONDITION: a change the current state forbids (deploying a retired version, undeploying or retiring
 *   a version that is a default or an alias target, setting a default of a model deployed nowhere);
 * - INVALID_ARGUMENT: a malformed input (names, hashes, sizes, roles, limits, an empty cell list).
 * Anything else (the database is away, ...) comes through as the driver's error; map it with toSibylError.
 *
 * Every change that alters a cell's desired state bumps that cell's revision by one and writes one audit row, in
 * the same transaction; a call that changes nothing (deploying where already deployed) bumps nothing and writes
 * no audit row. Listeners of `onRevision` hear about a bump after its commit.
 */
import type { CellState, DeployedModel, LoadedVersion, LoadError, ShadowTarget, SplitArm } from '../../proto/gen/sibyl/v1/deployment_pb.js';
import type { RolloutStore } from './rollout-types.ts';

export type Role = 'admin' | 'publisher' | 'viewer';
export const ROLES: readonly Role[] = ['admin', 'publisher', 'viewer'];

/** Cells a change applies to: named cells (each must exist) or every configured cell. */
export type CellSelector = readonly string[] | 'all';

export interface AddVersionInput {
  /** Model name, as in the manifest (NAME in core/names.ts). */
  name: string;
  /** Version, as in the manifest (VERSION in core/names.ts). */
  version: string;
  /** sha256 of the bundle zip, 64 lowercase hex digits (SHA256_HEX in core/names.ts). */
  sha256: string;
  runtime: string;
  /** The parsed manifest (any JSON value), kept for reading back. */
  manifest: unknown;
  /** Size of the bundle zip in bytes. */
  sizeBytes: number;
  /** Who uploads (token name): written to the audit log. */
  actor: string;
}

export interface VersionRecord {
  name: string;
  version: string;
  sha256: string;
  runtime: string;
  manifest: unknown;
  sizeBytes: number;
  createdBy: string;
  created: Date;
  /** Set once the version is retired. */
  retired?: Date;
  retiredBy?: string;
}

export interface VersionDetail extends VersionRecord {
  /** Cells where this version is deployed, sorted. */
  cells: string[];
}

export interface AddVersionResult {
  version: VersionRecord;
  /** false when this name+version already existed with the same sha256 (a retried upload): nothing changed. */
  created: boolean;
}

export interface ModelSummary {
  name: string;
  created: Date;
  /** Version names in upload order (retired ones included). */
  versions: string[];
}

/*
 * The desired state is the proto message (proto/sibyl/v1/deployment.proto): `cellState` returns a CellState, and
 * the plain objects below are its messages' fields (without protobuf-es's `$typeName`, so they serialize as JSON).
 */

/** A split arm (SplitArm): `arm` is the name responses and logs carry, `weight` relative and >= 0. */
export type SplitArmState = Pick<SplitArm, 'arm' | 'version' | 'weight'>;

/** A shadow (ShadowTarget): a version of this or another model run after each live response. */
export type ShadowTargetState = Pick<ShadowTarget, 'model' | 'version'>;

/** A split arm as given: `arm` defaults to the version. */
export type SplitArmInput = Pick<SplitArm, 'version' | 'weight'> & Partial<Pick<SplitArm, 'arm'>>;

/**
 * One model's part of one cell's desired state (DeployedModel's fields), as the models API shows it: the deployed
 * versions by name, in upload order. `defaultVersion` is '' only while nothing is deployed; `split` is empty when
 * there is none (the default serves requests that name no version).
 */
export type CellModel = Pick<DeployedModel, 'defaultVersion' | 'aliases'> & {
  cell: string;
  versions: string[];
  split: SplitArmState[];
  shadows: ShadowTargetState[];
};

export interface ModelDetail {
  name: string;
  created: Date;
  /** In upload order. */
  versions: VersionDetail[];
  /** Cells where some version of the model is deployed, sorted by cell. */
  cells: CellModel[];
}

export interface CellInfo {
  name: string;
  revision: number;
  updated: Date;
}

/** The result of a change: the cells whose desired state changed, with their new revisions (sorted by cell). */
export interface ChangeResult {
  cells: { cell: string; revision: number }[];
}

export interface AuditEntry {
  /** Increasing; pass the smallest id seen as `before` to read the next page. */
  id: number;
  time: Date;
  actor: string;
  /** version.add, version.retire, deploy, undeploy, default.set, alias.set, alias.delete, split.set, shadows.set, cell.create,
   * token.create, token.revoke, rollout.create, rollout.wave.apply, rollout.wave.bake, rollout.wave.pass, rollout.halt,
   * rollout.complete. */
  action: string;
  /** `model/version`, `model`, a cell or a token name. */
  target: string;
  details: Record<string, unknown>;
}

/** What a gateway replica reports (GatewayReport in deployment.proto). */
export interface GatewayReportInput {
  cell: string;
  replica: string;
  revision: number;
  loaded: Pick<LoadedVersion, 'model' | 'version' | 'bundleSha256'>[];
  errors: Pick<LoadError, 'model' | 'version' | 'message'>[];
  /** The replica's own clock, if it sent one. */
  time?: Date;
  /** The replica's live-versus-shadow comparison (ShadowComparison in deployment.proto, as JSON), kept verbatim. */
  shadows?: unknown[];
  /** The replica's serving statistics per model version (VersionStatistics in statistics.proto, as JSON), kept verbatim. */
  statistics?: unknown[];
}

export interface StoredReport extends GatewayReportInput {
  /** When the control tower received it. */
  received: Date;
}

export interface Principal {
  name: string;
  role: Role;
}

export interface TokenInfo extends Principal {
  createdBy: string;
  created: Date;
}

export interface CreateTokenInput {
  /** 1-100 characters; unique among tokens that are not revoked. */
  name: string;
  role: Role;
  actor: string;
  /** Use this secret (at least 16 characters, e.g. from configuration) instead of a random one. */
  token?: string;
}

/** Rollouts (rollout-types.ts) are part of the store: their transitions change cells in the same transaction. */
export interface MetadataStore extends RolloutStore {
  // --- versions -------------------------------------------------------------------------------------------------
  /**
   * Records a version (and its model on first upload). The same name+version with the same sha256 again returns
   * the stored version with `created: false`; with another sha256 it throws ALREADY_EXISTS. Of concurrent calls for
   * one name+version exactly one creates it. INVALID_ARGUMENT for a malformed name, version, sha256 or size.
   * Audit: version.add. Deploys nothing.
   */
  addVersion(input: AddVersionInput): Promise<AddVersionResult>;
  /** Every model, sorted by name. */
  listModels(): Promise<ModelSummary[]>;
  /** NOT_FOUND for an unknown model. */
  getModel(name: string): Promise<ModelDetail>;
  /** NOT_FOUND for an unknown model or version. */
  getVersion(name: string, version: string): Promise<VersionDetail>;
  /**
   * Retires a version: undeploys it from every cell and refuses later deploys. FAILED_PRECONDITION while it is the
   * default or an alias target in some cell (switch those first); NOT_FOUND if unknown. Retiring a retired version
   * changes nothing. Audit: version.retire.
   */
  retireVersion(name: string, version: string, actor: string): Promise<ChangeResult>;

  // --- cells ----------------------------------------------------------------------------------------------------
  /**
   * Creates the named cells that do not exist yet (revision 1); never deletes one. INVALID_ARGUMENT unless every
   * name is a DNS label (CELL in core/names.ts).
   */
  ensureCells(names: readonly string[], actor?: string): Promise<CellInfo[]>;
  /** Every cell, sorted by name. */
  listCells(): Promise<CellInfo[]>;
  /**
   * Deploys a version to cells. Where the model had no version deployed yet, this version also becomes the cell's
   * default. Already deployed cells are left as they are. NOT_FOUND: unknown model, version or cell;
   * FAILED_PRECONDITION: the version is retired. Audit: deploy.
   */
  deploy(name: string, version: string, cells: CellSelector, actor: string): Promise<ChangeResult>;
  /**
   * Removes a version from cells (cells where it is not deployed are skipped). Undeploying the last deployed version
   * of a model from a cell removes the model from that cell, its default and aliases with it. Otherwise
   * FAILED_PRECONDITION when the version is the cell's default, an alias target, a split arm or a shadow there.
   * Audit: undeploy.
   */
  undeploy(name: string, version: string, cells: CellSelector, actor: string): Promise<ChangeResult>;
  /**
   * Makes a version the default in cells, first deploying it where it is not deployed. `cells` undefined: every
   * cell where the model has some version deployed (FAILED_PRECONDITION when there is none). NOT_FOUND: unknown
   * model, version or cell; FAILED_PRECONDITION: retired. Audit: default.set.
   */
  setDefault(name: string, version: string, cells: CellSelector | undefined, actor: string): Promise<ChangeResult>;
  /**
   * Points an alias at a version in cells, deploying it where it is not deployed; `cells` as for setDefault.
   * INVALID_ARGUMENT: the alias is malformed (same rule as versions) or names an existing version of the model.
   * Audit: alias.set.
   */
  setAlias(name: string, alias: string, version: string, cells: CellSelector | undefined, actor: string): Promise<ChangeResult>;
  /**
   * Removes an alias from cells (`cells` undefined: from every cell). NOT_FOUND when the model is unknown or the
   * alias exists in none of the cells. Audit: alias.delete.
   */
  deleteAlias(name: string, alias: string, cells: CellSelector | undefined, actor: string): Promise<ChangeResult>;
  /**
   * Sets the traffic split of a model in cells (replacing the previous one; an empty list removes it), deploying
   * the arms' versions where they are not deployed; `cells` as for setDefault. INVALID_ARGUMENT: duplicate arm
   * names, a negative or non-finite weight, weights summing to 0, a malformed arm name; NOT_FOUND: unknown model or
   * version; FAILED_PRECONDITION: a retired version. Audit: split.set.
   */
  setSplit(name: string, arms: readonly SplitArmInput[], cells: CellSelector | undefined, actor: string): Promise<ChangeResult>;
  /**
   * Sets the shadows of a model in cells (replacing the previous ones; an empty list removes them), deploying the
   * shadow versions where they are not deployed; `cells` as for setDefault. NOT_FOUND: unknown model or version;
   * FAILED_PRECONDITION: a retired version; INVALID_ARGUMENT: a shadow named twice. Audit: shadows.set.
   */
  setShadows(name: string, shadows: readonly ShadowTargetState[], cells: CellSelector | undefined, actor: string): Promise<ChangeResult>;

  // --- desired state ----------------------------------------------------------------------------------------------
  /**
   * The cell's desired state as the message gateways follow, read in one snapshot (revision and content agree):
   * models sorted by name, versions in upload order; the revision starts at 1 and rises by one per change.
   * NOT_FOUND: unknown cell.
   */
  cellState(cell: string): Promise<CellState>;
  /** The cell's current revision. NOT_FOUND: unknown cell. */
  cellRevision(cell: string): Promise<number>;
  /**
   * Resolves with the cell's revision as soon as it is above `after`, or with the current revision when
   * `timeoutMs` passes or `signal` aborts first (never rejects for those). NOT_FOUND: unknown cell. Wakes on
   * changes made through any store on the same database (after commit; across processes on PostgreSQL through
   * LISTEN/NOTIFY), without polling.
   */
  waitForRevision(cell: string, after: number, options: { timeoutMs: number; signal?: AbortSignal }): Promise<number>;
  /** Calls `listener(revision)` after each committed bump of `cell`'s revision; returns the unsubscribe function. */
  onRevision(cell: string, listener: (revision: number) => void): () => void;
  /** Newest first. `limit`: 1-1000, default 100; `before`: only entries with a smaller id. */
  /**
   * Newest first, at most `limit` (1-1000, default 100) entries with ids below `before`; only those of `actor`, of
   * `action`, and of `model` (target the model or one of its versions, `NAME` or `NAME/VERSION`) when given.
   */
  auditLog(options?: { limit?: number; before?: number; actor?: string; action?: string; model?: string }): Promise<AuditEntry[]>;

  // --- reports ------------------------------------------------------------------------------------------------------
  /** Stores the replica's latest report, replacing its previous one. NOT_FOUND: unknown cell. */
  saveReport(report: GatewayReportInput): Promise<StoredReport>;
  /** The latest report of each replica of the cell, sorted by replica. NOT_FOUND: unknown cell. */
  reports(cell: string): Promise<StoredReport[]>;

  // --- tokens -------------------------------------------------------------------------------------------------------
  /**
   * Creates a token and returns its secret, the only time it is visible (the store keeps its sha256).
   * ALREADY_EXISTS: the name is taken by a live token (or the given secret is in use); INVALID_ARGUMENT: bad name,
   * role or secret. Audit: token.create.
   */
  createToken(input: CreateTokenInput): Promise<Principal & { token: string }>;
  /** The live token's name and role, or undefined for an unknown or revoked secret. */
  authenticate(token: string): Promise<Principal | undefined>;
  /** Revokes the live token of that name. NOT_FOUND when there is none. Audit: token.revoke. */
  revokeToken(name: string, actor: string): Promise<void>;
  /** Live tokens, sorted by name (no secrets). */
  listTokens(): Promise<TokenInfo[]>;

  /** Stops listening for revision notifications. Does not close the `Sql` (its owner does). Idempotent. */
  close(): Promise<void>;
}
