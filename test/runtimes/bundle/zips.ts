/**
 * Zips for tests, built in memory with yazl: good bundles from the shipped models, and a corpus of hostile zips
 * (some patched at the byte level, where yazl refuses to write what an attacker would).
 */
import { randomBytes } from 'node:crypto';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { ZipFile } from 'yazl';
import { MODELS_DIR } from '../../helpers/expected.ts';

export interface ZipEntry {
  readonly name: string;
  readonly data: Buffer | string;
  /** Unix mode (file type and permissions), e.g. 0o120777 for a symlink. */
  readonly mode?: number;
  readonly compress?: boolean;
}

export function makeZip(entries: readonly ZipEntry[]): Promise<Buffer> {
  const zip = new ZipFile();
  for (const e of entries) {
    const data = typeof e.data === 'string' ? Buffer.from(e.data) : e.data;
    zip.addBuffer(data, e.name, { mtime: new Date(0), ...(e.mode !== undefined ? { mode: e.mode } : {}), compress: e.compress ?? true });
  }
  zip.end();
  const chunks: Buffer[] = [];
  return new Promise((resolve, reject) => {
    zip.outputStream.on('data', (c: Buffer) => chunks.push(c));
    zip.outputStream.on('end', () => resolve(Buffer.concat(chunks)));
    zip.outputStream.on('error', reject);
  });
}

/** The files of a shipped bundle directory (models/<name>/<version>), for zipping. */
export function bundleEntries(model: string, version: string, dir = join(MODELS_DIR, model, version)): ZipEntry[] {
  const out: ZipEntry[] = [];
  const walk = (rel: string) => {
    for (const n of readdirSync(join(dir, rel)).sort()) {
      const p = rel ? `${rel}/${n}` : n;
      if (statSync(join(dir, p)).isDirectory()) walk(p);
      else out.push({ name: p, data: readFileSync(join(dir, p)) });
    }
  };
  walk('');
  return out;
}

export function bundleZip(model: string, version: string): Promise<Buffer> {
  return makeZip(bundleEntries(model, version));
}

/** Replaces every occurrence of `from` with `to` (same length) in the zip's bytes: names in local and central headers. */
export function patchName(zip: Buffer, from: string, to: string): Buffer {
  if (from.length !== to.length) throw new Error('patchName: same length only');
  const out = Buffer.from(zip);
  const a = Buffer.from(from);
  const b = Buffer.from(to);
  for (let i = out.indexOf(a); i !== -1; i = out.indexOf(a, i + 1)) b.copy(out, i);
  return out;
}

/** Sets the declared uncompressed size of every entry to `size` (local headers and central directory). */
export function lieAboutSizes(zip: Buffer, size: number): Buffer {
  const out = Buffer.from(zip);
  for (let i = 0; i + 4 <= out.length; i++) {
    const sig = out.readUInt32LE(i);
    if (sig === 0x04034b50 && i + 30 <= out.length) out.writeUInt32LE(size, i + 22);
    else if (sig === 0x02014b50 && i + 46 <= out.length) out.writeUInt32LE(size, i + 24);
  }
  return out;
}

/** The hostile corpus: name → zip bytes, each to be rejected with its own message (the regexp). */
export async function hostileCorpus(): Promise<{ name: string; zip: Buffer; message: RegExp; limits?: Record<string, number> }[]> {
  const good = bundleEntries('tabular-mlp', '1');
  const manifest = readFileSync(join(MODELS_DIR, 'tabular-mlp', '1', 'sibyl.yaml'), 'utf8');
  const zeros = Buffer.alloc(64 * 1024 * 1024);
  return [
    { name: 'zip slip ../', zip: patchName(await makeZip([...good, { name: 'XX/evil.txt', data: 'x' }]), 'XX/evil.txt', '../evil.txt'), message: /"\.\.\/evil\.txt" contains "\.\.", "\." or an empty segment/ },
    { name: 'zip slip nested a/../../', zip: patchName(await makeZip([...good, { name: 'a/XX/XX/evil', data: 'x' }]), 'a/XX/XX/evil', 'a/../../evil'), message: /contains "\.\."/ },
    { name: 'absolute path', zip: patchName(await makeZip([...good, { name: 'Xtmp/evil', data: 'x' }]), 'Xtmp/evil', '/tmp/evil'), message: /(is absolute|absolute path)/ },
    { name: 'backslash path', zip: patchName(await makeZip([...good, { name: 'XXXevil', data: 'x' }]), 'XXXevil', '..\\evil'), message: /backslash/ },
    { name: 'symlink', zip: await makeZip([...good, { name: 'link', data: '/etc/passwd', mode: 0o120777 }]), message: /"link" is a link or a special file/ },
    { name: 'zip bomb (ratio)', zip: await makeZip([...good, { name: 'zeros.bin', data: zeros }]), message: /"zeros\.bin" inflates more than 200:1/ },
    {
      name: 'total size over the limit',
      zip: await makeZip([...good, { name: 'r1.bin', data: randomBytes(3 << 20), compress: false }, { name: 'r2.bin', data: randomBytes(3 << 20), compress: false }]),
      message: /more than the limit of its total size|larger than the limit/,
      limits: { maxTotalBytes: 5 << 20 },
    },
    { name: 'tens of thousands of entries', zip: await makeZip(Array.from({ length: 20_000 }, (_, i) => ({ name: `f/${i}`, data: '' }))), message: /20000 entries, more than the limit of 1000/ },
    { name: 'declared sizes that lie', zip: lieAboutSizes(await makeZip([...good, { name: 'big.txt', data: 'y'.repeat(100_000) }]), 10), message: /(inflates past its declared size|corrupt|not a readable zip)/ },
    { name: 'duplicate names', zip: patchName(await makeZip([...good, { name: 'dup-A', data: '1' }, { name: 'dup-B', data: '2' }]), 'dup-B', 'dup-A'), message: /have the same name/ },
    { name: 'names differing in case', zip: await makeZip([...good, { name: 'Data.txt', data: '1' }, { name: 'data.txt', data: '2' }]), message: /have the same name/ },
    { name: 'names differing in Unicode normalisation', zip: await makeZip([...good, { name: 'caf\u00e9.txt', data: '1' }, { name: 'cafe\u0301.txt', data: '2' }]), message: /have the same name/ },
    { name: 'nested zip', zip: await makeZip([...good, { name: 'inner.zip', data: await makeZip([{ name: 'a', data: 'b' }]) }]), message: /"inner\.zip" is a nested archive/ },
    { name: 'nested archive by magic bytes', zip: await makeZip([...good, { name: 'weights.bin', data: await makeZip([{ name: 'a', data: 'b' }]) }]), message: /"weights\.bin" is a nested archive/ },
    { name: 'not a zip', zip: Buffer.from('this is not a zip file at all, just text'), message: /not a readable zip/ },
    { name: 'no manifest', zip: await makeZip(good.filter((e) => e.name !== 'sibyl.yaml')), message: /no manifest at the zip's root/ },
    { name: 'bad manifest', zip: await makeZip([...good.filter((e) => e.name !== 'sibyl.yaml'), { name: 'sibyl.yaml', data: manifest.replace(/dtype: float32, source: request, default: 30.0/, 'dtype: float33, source: request, default: 30.0') }]), message: /invalid manifest: features\.0\.dtype/ },
    { name: 'missing file', zip: await makeZip(good.filter((e) => e.name !== 'model.onnx')), message: /names model\.onnx, which is not in the zip/ },
  ];
}
