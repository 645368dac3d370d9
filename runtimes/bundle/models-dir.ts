/**
 * A models directory as a cell's desired state: the same CellState message (proto/sibyl/v1/deployment.proto) the
 * control tower serves, so a gateway without a tower loads, warms and swaps it exactly as a tower-following one.
 *
 *   <dir>/<name>/<version>/sibyl.yaml   a bundle directory: the manifest and the files it names
 *   <dir>/deployment.yaml               optional: per model, the default version, aliases, split and shadows
 *
 *   models:
 *     delivery-eta:
 *       default: "2"
 *       aliases: { stable: "1" }
 *       split: [{ version: "1", weight: 90 }, { version: "2", weight: 10, arm: canary }]   # optional
 *       shadows: [{ version: "3" }, { model: eta-risk }]                                 # optional
 *
 * Every bundle directory is a deployed version, named by the sha256 of its deterministic zip (zipDirectory): the
 * hash the tower gives the same directory uploaded with `sibyl upload DIR`. Without a default in deployment.yaml,
 * the default is the newest version whose manifest says `default: true`, else the highest. A shadow without a model
 * is a version of the same model; without a version, the target's default. Entries for models with no bundle are
 * ignored. Whether the versions named by aliases, splits and shadows exist is left to the table builder, as for
 * the tower's state (it drops what is not loaded, and logs it).
 */
import { createHash } from 'node:crypto';
import { readdir, readFile, stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { create, type MessageInitShape } from '@bufbuild/protobuf';
import { timestampNow } from '@bufbuild/protobuf/wkt';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { CellStateSchema, type CellState, type DeployedModelSchema } from '../../proto/gen/sibyl/v1/deployment_pb.js';
import { ALIAS, NAME, nameSchema, VERSION } from '../../core/names.ts';
import { compareVersions } from '../../core/versions.ts';
import { MANIFEST_FILES, parseManifest, type Manifest } from '../manifest.ts';
import { zipDirectory } from './zip-dir.ts';

const version = nameSchema(VERSION);

/**
 * deployment.yaml: the file's own format, read into CellState fields (not a second copy of the state). Names,
 * versions, aliases and arms are spelled as the tower spells them (core/names.ts).
 */
const DeploymentFile = z
  .object({
    models: z
      .record(
        nameSchema(NAME),
        z
          .object({
            default: version.optional(),
            aliases: z.record(nameSchema(ALIAS), version).default({}),
            /** Weighted arms among versions for requests that name no version; sticky by the routing key. */
            split: z
              .array(z.object({ version, weight: z.number().nonnegative(), arm: version.optional() }).strict())
              .min(1)
              .optional(),
            /** Versions of this or other models run after each live response, on the same features; '' is the model's default. */
            shadows: z.array(z.object({ model: nameSchema(NAME).optional(), version: version.or(z.literal('')).default('') }).strict()).default([]),
          })
          .strict(),
      )
      .default({}),
  })
  .strict();

/** One bundle directory of a models directory. */
export interface DirBundle {
  readonly dir: string;
  readonly manifest: Manifest;
  /** The directory's deterministic zip; its sha256 names the version in the state. */
  readonly zip: Buffer;
}

export interface ModelsDir {
  /** Revision 1; `cell` as given; models sorted by name, versions by compareVersions. */
  readonly state: CellState;
  /** Every deployed version's bundle, by bundle sha256. */
  readonly bundles: ReadonlyMap<string, DirBundle>;
}

/**
 * Reads the directory (every bundle is zipped once, to name it). Throws an Error naming the file when a manifest
 * or deployment.yaml is invalid, or when a manifest's name and version are not its directory's.
 */
export async function readModelsDir(dir: string, cell: string): Promise<ModelsDir> {
  const root = resolve(dir);
  const bundles = new Map<string, DirBundle>();
  const byModel = new Map<string, { version: string; sha: string; bundle: DirBundle }[]>();
  for (const name of await subdirs(root)) {
    for (const version of await subdirs(join(root, name))) {
      const bundleDir = join(root, name, version);
      const manifestFile = await firstExisting(bundleDir, MANIFEST_FILES);
      if (!manifestFile) continue;
      const path = join(bundleDir, manifestFile);
      let manifest: Manifest;
      try {
        manifest = parseManifest(await readFile(path, 'utf8'), manifestFile);
      } catch (err) {
        throw new Error(`${path}: ${(err as Error).message}`);
      }
      if (manifest.name !== name || manifest.version !== version) {
        throw new Error(`${path}: declares ${manifest.name}/${manifest.version} but lives in ${name}/${version}`);
      }
      const bundle: DirBundle = { dir: bundleDir, manifest, zip: await zipDirectory(bundleDir) };
      const sha = createHash('sha256').update(bundle.zip).digest('hex');
      bundles.set(sha, bundle);
      const list = byModel.get(name) ?? [];
      list.push({ version, sha, bundle });
      byModel.set(name, list);
    }
  }
  const deployment = await readDeploymentFile(join(root, 'deployment.yaml'));
  const models: MessageInitShape<typeof DeployedModelSchema>[] = [];
  for (const [name, list] of [...byModel].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
    list.sort((a, b) => compareVersions(a.version, b.version));
    const d = deployment.models[name];
    const flagged = list.filter((v) => v.bundle.manifest.default);
    models.push({
      name,
      versions: list.map((v) => ({ version: v.version, bundleSha256: v.sha, runtime: v.bundle.manifest.runtime, sizeBytes: BigInt(v.bundle.zip.length) })),
      defaultVersion: d?.default ?? (flagged.at(-1) ?? list.at(-1)!).version,
      aliases: { ...d?.aliases },
      split: (d?.split ?? []).map((a) => ({ arm: a.arm ?? '', version: a.version, weight: a.weight })),
      shadows: (d?.shadows ?? []).map((s) => ({ model: s.model ?? name, version: s.version })),
    });
  }
  return { state: create(CellStateSchema, { cell, revision: 1n, models, updated: timestampNow() }), bundles };
}

async function readDeploymentFile(path: string): Promise<z.infer<typeof DeploymentFile>> {
  if (!(await exists(path))) return { models: {} };
  const parsed = DeploymentFile.safeParse(parseYaml(await readFile(path, 'utf8')) ?? {});
  if (!parsed.success) throw new Error(`${path}: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
  return parsed.data;
}

async function subdirs(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { withFileTypes: true }).catch(() => []);
  return entries.filter((e) => e.isDirectory() && !e.name.startsWith('.')).map((e) => e.name).sort();
}

async function firstExisting(dir: string, names: readonly string[]): Promise<string | undefined> {
  for (const n of names) if (await exists(join(dir, n))) return n;
  return undefined;
}

async function exists(p: string): Promise<boolean> {
  return stat(p).then(
    () => true,
    () => false,
  );
}
