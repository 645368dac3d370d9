/** Bundle zips built from the repository's model directories (sibyl.yaml, model.onnx, expected.json). */
import { createHash } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import yazl from 'yazl';

export interface TestBundle {
  readonly model: string;
  readonly version: string;
  readonly zip: Buffer;
  readonly sha: string;
}

const MODELS = join(import.meta.dirname, '../../../models');

/** Zips `models/{model}/{version}`; `replace` swaps a file's bytes (e.g. a broken model.onnx). */
export async function bundleOf(model: string, version: string, replace: Record<string, Buffer> = {}): Promise<TestBundle> {
  const dir = join(MODELS, model, version);
  const zip = new yazl.ZipFile();
  for (const name of (await readdir(dir)).sort()) zip.addBuffer(replace[name] ?? (await readFile(join(dir, name))), name, { mtime: new Date(0) });
  zip.end();
  const chunks: Buffer[] = [];
  for await (const c of zip.outputStream) chunks.push(c as Buffer);
  const bytes = Buffer.concat(chunks);
  return { model, version, zip: bytes, sha: createHash('sha256').update(bytes).digest('hex') };
}

/** The DeployedVersion of a bundle. */
export function deployed(b: TestBundle) {
  return { version: b.version, bundleSha256: b.sha, runtime: 'onnx', sizeBytes: BigInt(b.zip.length) };
}
