/**
 * The embedded default source of models: a directory of bundles, `<dir>/<name>/<version>/sibyl.yaml` (plus the
 * files the manifest names), and an optional `<dir>/deployment.yaml` naming each model's default version and aliases:
 *
 *   models:
 *     delivery-eta:
 *       default: "2"
 *       aliases: { stable: "1" }
 *       split: [{ version: "1", weight: 90 }, { version: "2", weight: 10, arm: canary }]   # optional
 *       shadows: [{ version: "3" }, { model: eta-risk }]                                 # optional
 *
 * Without a deployment entry, the default is the newest version whose manifest says `default: true`, else the
 * highest version.
 */
import { createHash } from 'node:crypto';
import { readdir, readFile, stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { ALIAS, NAME, nameSchema, VERSION } from '../../core/names.ts';
import type { ModelBundle } from '../../runtimes/contract.ts';
import { MANIFEST_FILES, parseManifest } from '../../runtimes/manifest.ts';

const Deployment = z
  .object({
    models: z
      .record(
        nameSchema(NAME),
        z
          .object({
            default: nameSchema(VERSION).optional(),
            aliases: z.record(nameSchema(ALIAS), nameSchema(VERSION)).default({}),
            /** Weighted arms among versions for requests that name no version; sticky by the routing key. */
            split: z
              .array(z.object({ version: nameSchema(VERSION), weight: z.number().nonnegative(), arm: nameSchema(VERSION).optional() }).strict())
              .min(1)
              .optional(),
            /** Versions of this or other models run after each live response, on the same features; '' is the model's default. */
            shadows: z.array(z.object({ model: nameSchema(NAME).optional(), version: nameSchema(VERSION).or(z.literal('')).default('') }).strict()).default([]),
          })
          .strict(),
      )
      .default({}),
  })
  .strict();
export type Deployment = z.infer<typeof Deployment>;

export interface LocalModels {
  readonly bundles: ModelBundle[];
  readonly deployment: Deployment;
}

/** Reads every bundle under `dir`. Throws, naming the file, when a manifest or deployment.yaml is invalid. */
export async function readLocalModels(dir: string): Promise<LocalModels> {
  const root = resolve(dir);
  const bundles: ModelBundle[] = [];
  for (const name of await subdirs(root)) {
    for (const version of await subdirs(join(root, name))) {
      const bundleDir = join(root, name, version);
      const manifestFile = await firstExisting(bundleDir, MANIFEST_FILES);
      if (!manifestFile) continue;
      const text = await readFile(join(bundleDir, manifestFile), 'utf8');
      let manifest;
      try {
        manifest = parseManifest(text, manifestFile);
      } catch (err) {
        throw new Error(`${join(bundleDir, manifestFile)}: ${(err as Error).message}`);
      }
      if (manifest.name !== name || manifest.version !== version) {
        throw new Error(`${join(bundleDir, manifestFile)}: declares ${manifest.name}/${manifest.version} but lives in ${name}/${version}`);
      }
      bundles.push({ manifest, dir: bundleDir, hash: await hashDir(bundleDir) });
    }
  }
  let deployment: Deployment = { models: {} };
  const depFile = join(root, 'deployment.yaml');
  if (await exists(depFile)) {
    const parsed = Deployment.safeParse(parseYaml(await readFile(depFile, 'utf8')) ?? {});
    if (!parsed.success) throw new Error(`${depFile}: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
    deployment = parsed.data;
  }
  return { bundles, deployment };
}

/** The default version of a model: the deployment's choice, else the newest `default: true`, else the highest. */
export function defaultVersionOf(name: string, versions: readonly ModelBundle[], deployment: Deployment): string {
  const chosen = deployment.models[name]?.default;
  if (chosen) return chosen;
  const sorted = [...versions].sort((a, b) => compareVersions(a.manifest.version, b.manifest.version));
  const flagged = sorted.filter((b) => b.manifest.default);
  return (flagged.at(-1) ?? sorted.at(-1))!.manifest.version;
}

/** Natural order: "2" < "10", "1.2" < "1.10". */
export function compareVersions(a: string, b: string): number {
  return a.localeCompare(b, 'en', { numeric: true });
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

/** sha256 over the sorted relative paths and contents of a directory's files. */
async function hashDir(dir: string): Promise<string> {
  const h = createHash('sha256');
  const walk = async (rel: string): Promise<void> => {
    const entries = await readdir(join(dir, rel), { withFileTypes: true });
    for (const e of entries.sort((a, b) => (a.name < b.name ? -1 : 1))) {
      const p = rel ? `${rel}/${e.name}` : e.name;
      if (e.isDirectory()) await walk(p);
      else if (e.isFile()) {
        h.update(p).update('\0').update(await readFile(join(dir, p))).update('\0');
      }
    }
  };
  await walk('');
  return h.digest('hex');
}
