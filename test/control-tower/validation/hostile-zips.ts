/**
 * Zips for tests, built in memory with yazl: good bundles from the shipped models, and the hostile corpus (some
 * patched at the byte level, where yazl refuses to write what an attacker would). Shared by the unpacker's suite,
 * the upload validator's, and the control tower's API tests.
 *
 * - `hostileCorpus()`: zips refused by `openBundleZip` itself (paths, links, devices, bombs, lies, duplicates,
 *   nesting, encryption, manifest and named files), each with the message it must be refused with.
 * - `hostileModels()`: well-formed zips whose model or tests are wrong: refused by the upload validator only.
 */
import { randomBytes } from 'node:crypto';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { ZipFile } from 'yazl';
import { MODELS_DIR } from '../../helpers/expected.ts';

export interface ZipEntry {
  /** A name ending with "/" is a directory entry (its data is ignored). */
  readonly name: string;
  readonly data: Buffer | string;
  /** Unix mode (file type and permissions), e.g. 0o120777 for a symlink. */
  readonly mode?: number;
  readonly compress?: boolean;
}

export interface HostileZip {
  readonly name: string;
  readonly zip: Buffer;
  /** What the refusal's message must match. */
  readonly message: RegExp;
  /** Limits to unpack with instead of the defaults (the case is about a limit). */
  readonly limits?: Record<string, number>;
}

const ONNX_FIXTURES = resolve(import.meta.dirname, '../../fixtures/onnx');

export function makeZip(entries: readonly ZipEntry[]): Promise<Buffer> {
  const zip = new ZipFile();
  for (const e of entries) {
    const data = typeof e.data === 'string' ? Buffer.from(e.data) : e.data;
    if (e.name.endsWith('/')) {
      zip.addEmptyDirectory(e.name, { mtime: new Date(0), ...(e.mode !== undefined ? { mode: e.mode } : {}) });
      continue;
    }
    zip.addBuffer(data, e.name, { mtime: new Date(0), ...(e.mode !== undefined ? { mode: e.mode } : {}), compress: e.compress ?? true });
  }
  zip.end();
  const chunks: Buffer[] = [];
  return new Promise((resolvePromise, reject) => {
    zip.outputStream.on('data', (c: Buffer) => chunks.push(c));
    zip.outputStream.on('end', () => resolvePromise(Buffer.concat(chunks)));
    zip.outputStream.on('error', reject);
  });
}

/** The files of a bundle directory (default: the shipped models/<name>/<version>), for zipping. */
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

/** A shipped bundle's entries with its manifest text edited. */
export function withManifest(model: string, version: string, edit: (manifest: string) => string): ZipEntry[] {
  return bundleEntries(model, version).map((e) => (e.name === 'sibyl.yaml' ? { ...e, data: edit(e.data.toString()) } : e));
}

/** Replaces every occurrence of `from` with `to` (same length) in the zip's bytes: names in local and central headers. */
export function patchName(zip: Buffer, from: string, to: string): Buffer {
  const a = Buffer.from(from);
  const b = Buffer.from(to);
  if (a.length !== b.length) throw new Error('patchName: same byte length only');
  const out = Buffer.from(zip);
  let hits = 0;
  for (let i = out.indexOf(a); i !== -1; i = out.indexOf(a, i + 1), hits++) b.copy(out, i);
  if (hits === 0) throw new Error(`patchName: "${from}" is not in the zip`);
  return out;
}

interface Header {
  /** Offset of the header's signature. */
  readonly at: number;
  readonly central: boolean;
  readonly name: string;
}

/** Every local and central header whose name field reads as a name (by signature scan). */
function headers(zip: Buffer): Header[] {
  const out: Header[] = [];
  for (let i = 0; i + 46 <= zip.length; i++) {
    const sig = zip.readUInt32LE(i);
    if (sig === 0x04034b50) out.push({ at: i, central: false, name: zip.toString('utf8', i + 30, i + 30 + zip.readUInt16LE(i + 26)) });
    else if (sig === 0x02014b50) out.push({ at: i, central: true, name: zip.toString('utf8', i + 46, i + 46 + zip.readUInt16LE(i + 28)) });
  }
  return out;
}

/** Sets the declared uncompressed size of the named entries (all when `names` is omitted), local and central headers. */
export function lieAboutSizes(zip: Buffer, size: number, names?: readonly string[]): Buffer {
  const out = Buffer.from(zip);
  for (const h of headers(out)) if (!names || names.includes(h.name)) out.writeUInt32LE(size, h.at + (h.central ? 24 : 22));
  return out;
}

/** ORs bits into the general-purpose flags of the named entry (bit 0: encrypted), local and central headers. */
export function setFlags(zip: Buffer, name: string, bits: number): Buffer {
  const out = Buffer.from(zip);
  for (const h of headers(out)) if (h.name === name) out.writeUInt16LE(out.readUInt16LE(h.at + (h.central ? 8 : 6)) | bits, h.at + (h.central ? 8 : 6));
  return out;
}

/** Points the central directory record of `name` at the local header (and so the data) of `target`. */
export function pointAt(zip: Buffer, name: string, target: string): Buffer {
  const out = Buffer.from(zip);
  const central = headers(out).filter((h) => h.central);
  const from = central.find((h) => h.name === name);
  const to = central.find((h) => h.name === target);
  if (!from || !to) throw new Error('pointAt: no such entries');
  out.writeUInt32LE(out.readUInt32LE(to.at + 42), from.at + 42);
  return out;
}

/** A bundle zip whose first local header's signature is broken. */
async function corruptFirstLocalHeader(entries: readonly ZipEntry[]): Promise<Buffer> {
  const zip = await makeZip(entries);
  zip.writeUInt32LE(0x04034b51, 0);
  return zip;
}

/** A zip whose entry `placeholder` is renamed to `name` (same byte length) after yazl wrote it. */
async function renamed(entries: readonly ZipEntry[], placeholder: string, name: string): Promise<Buffer> {
  return patchName(await makeZip([...entries, { name: placeholder, data: 'pwned' }]), placeholder, name);
}

/**
 * Zips `openBundleZip` must refuse, each with its own message. Cases with `limits` are about a limit and are meant
 * to be unpacked with those limits. `outsideName` is a file name (in the directory above the destination, and one
 * under the system temp directory) that the zip-slip cases aim at: tests check it never appears.
 */
export async function hostileCorpus(outsideName = 'sibyl-evil.txt'): Promise<HostileZip[]> {
  const good = bundleEntries('tabular-mlp', '1');
  const manifest = readFileSync(join(MODELS_DIR, 'tabular-mlp', '1', 'sibyl.yaml'), 'utf8');
  const zeros = Buffer.alloc(16 * 1024 * 1024);
  const ph = (n: number) => 'p'.repeat(n);
  const up = `../${outsideName}`;
  const upUp = `a/../../${outsideName}`;
  const abs = `/tmp/${outsideName}`;
  const back = `..\\${outsideName}`;
  const inner = await makeZip([{ name: 'a', data: 'b' }]);
  const pair = await makeZip([...good, { name: 'part-a.bin', data: randomBytes(4096) }, { name: 'part-b.bin', data: randomBytes(4096) }]);
  return [
    { name: 'zip slip ../', zip: await renamed(good, ph(up.length), up), message: /entry name "\.\.\/sibyl-evil\.txt" contains a "\.\." segment/ },
    { name: 'zip slip a/../../', zip: await renamed(good, ph(upUp.length), upUp), message: /"a\/\.\.\/\.\.\/sibyl-evil\.txt" contains a "\.\." segment/ },
    { name: 'absolute path', zip: await renamed(good, ph(abs.length), abs), message: /"\/tmp\/sibyl-evil\.txt" is an absolute path/ },
    { name: 'backslash path', zip: await renamed(good, ph(back.length), back), message: /contains a backslash/ },
    { name: 'drive letter', zip: await renamed(good, ph(8), 'C:evil.x'), message: /"C:evil\.x" starts with a drive letter/ },
    { name: 'symlink', zip: await makeZip([...good, { name: 'link', data: '/etc/passwd', mode: 0o120777 }]), message: /entry "link" is a symbolic link/ },
    { name: 'symlink named as the model', zip: await makeZip([...good.filter((e) => e.name !== 'model.onnx'), { name: 'model.onnx', data: '/etc/passwd', mode: 0o120777 }]), message: /entry "model\.onnx" is a symbolic link/ },
    { name: 'character device', zip: await makeZip([...good, { name: 'tty', data: '', mode: 0o020644 }]), message: /entry "tty" is a device, FIFO or socket \(file type 0o20000\)/ },
    { name: 'block device', zip: await makeZip([...good, { name: 'sda', data: '', mode: 0o060644 }]), message: /entry "sda" is a device, FIFO or socket \(file type 0o60000\)/ },
    { name: 'FIFO', zip: await makeZip([...good, { name: 'pipe', data: '', mode: 0o010644 }]), message: /entry "pipe" is a device, FIFO or socket/ },
    { name: 'directory bits on a file name', zip: await makeZip([...good, { name: 'notadir', data: 'x', mode: 0o040755 }]), message: /"notadir" is marked as a directory but named as a file/ },
    { name: 'zip bomb (ratio)', zip: await makeZip([...good, { name: 'zeros.bin', data: zeros }]), message: /entry "zeros\.bin" inflates more than 200:1/ },
    { name: 'zip bomb (overlapping entries)', zip: pointAt(pair, 'part-b.bin', 'part-a.bin'), message: /entry "part-b\.bin" overlaps the data of entry "part-a\.bin"/ },
    {
      name: 'zip bomb over the total size',
      zip: await makeZip([...good, { name: 'z1.bin', data: zeros.subarray(0, 8 << 20) }, { name: 'z2.bin', data: zeros.subarray(0, 8 << 20) }]),
      message: /entry "z2\.bin" declares 8388608 bytes, more than is left of the limit of 12582912 for the whole zip/,
      limits: { maxTotalBytes: 12 << 20, maxRatio: 1e9 },
    },
    {
      name: 'entry over the entry size limit',
      zip: await makeZip([...good, { name: 'r.bin', data: randomBytes(3 << 20), compress: false }]),
      message: /entry "r\.bin" declares 3145728 bytes, more than the limit of 2097152 per entry/,
      limits: { maxEntryBytes: 2 << 20 },
    },
    {
      name: 'zip over the size limit',
      zip: await makeZip(good),
      message: /the zip is \d+ bytes, more than the limit of 1000/,
      limits: { maxZipBytes: 1000 },
    },
    { name: 'tens of thousands of entries', zip: await makeZip(Array.from({ length: 20_000 }, (_, i) => ({ name: `f/${i}`, data: '', compress: false }))), message: /20000 entries, more than the limit of 1000/ },
    {
      name: 'declared sizes that lie',
      zip: lieAboutSizes(await makeZip([...good, { name: 'big.txt', data: 'y'.repeat(100_000) }]), 10, ['big.txt']),
      message: /entry "big\.txt" inflates past its declared size of 10 bytes/,
    },
    {
      name: 'declared size larger than the data',
      zip: lieAboutSizes(await makeZip([...good, { name: 'big.txt', data: 'y'.repeat(100_000) }]), 200_000, ['big.txt']),
      message: /entry "big\.txt" inflates to fewer bytes than its declared size of 200000/,
    },
    { name: 'duplicate names', zip: patchName(await makeZip([...good, { name: 'dup-A', data: '1' }, { name: 'dup-B', data: '2' }]), 'dup-B', 'dup-A'), message: /entries "dup-A" and "dup-A" have the same name/ },
    { name: 'names differing in case', zip: await makeZip([...good, { name: 'Data.txt', data: '1' }, { name: 'data.txt', data: '2' }]), message: /entries "Data\.txt" and "data\.txt" have the same name/ },
    { name: 'names differing in Unicode normalisation (NFC vs NFD)', zip: await makeZip([...good, { name: 'caf\u00e9.txt', data: '1' }, { name: 'cafe\u0301.txt', data: '2' }]), message: /entries "caf\u00e9\.txt" and "cafe\u0301\.txt" have the same name/ },
    { name: 'directories differing in case', zip: await makeZip([...good, { name: 'Dir/a.txt', data: '1' }, { name: 'dir/b.txt', data: '2' }]), message: /entry "dir\/b\.txt" spells the directory "Dir" as "dir"/ },
    { name: 'a file where a directory is needed', zip: await makeZip([...good, { name: 'x', data: '1' }, { name: 'x/y', data: '2' }]), message: /entry "x\/y" lies under "x", which is a file/ },
    { name: 'nested zip', zip: await makeZip([...good, { name: 'inner.zip', data: inner }]), message: /entry "inner\.zip" is a nested archive/ },
    { name: 'nested tar.gz', zip: await makeZip([...good, { name: 'data.tar.gz', data: 'x' }]), message: /entry "data\.tar\.gz" is a nested archive/ },
    { name: 'nested archive by magic bytes', zip: await makeZip([...good, { name: 'weights.bin', data: inner }]), message: /entry "weights\.bin" is a nested archive/ },
    { name: 'nested gzip by magic bytes', zip: await makeZip([...good, { name: 'w.dat', data: Buffer.from([0x1f, 0x8b, 8, 0, 0, 0, 0, 0]) }]), message: /entry "w\.dat" is a nested archive/ },
    { name: 'encrypted entry', zip: setFlags(await makeZip([...good, { name: 'secret.bin', data: 'hidden' }]), 'secret.bin', 0x1), message: /entry "secret\.bin" is encrypted/ },
    { name: 'not a zip', zip: Buffer.from('this is not a zip file at all, just text'), message: /not a readable zip/ },
    { name: 'corrupt local header', zip: await corruptFirstLocalHeader(good), message: /entry "expected\.json" cannot be read: invalid local file header signature/ },
    { name: 'no manifest', zip: await makeZip(good.filter((e) => e.name !== 'sibyl.yaml')), message: /no manifest at the zip's root \(one of sibyl\.yaml, sibyl\.yml, sibyl\.json\)$/ },
    { name: 'manifest only in a subdirectory', zip: await makeZip(good.map((e) => ({ ...e, name: `inner/${e.name}` }))), message: /no manifest at the zip's root .*; found inner\/sibyl\.yaml: zip the bundle's files, not the folder/ },
    {
      name: 'bad manifest',
      zip: await makeZip(withManifest('tabular-mlp', '1', (m) => m.replace(/dtype: float32, source: request, default: 30.0/, 'dtype: float33, source: request, default: 30.0'))),
      message: /invalid manifest: features\.0\.dtype/,
    },
    { name: 'manifest that is not YAML', zip: await makeZip([...good.filter((e) => e.name !== 'sibyl.yaml'), { name: 'sibyl.yaml', data: manifest.slice(0, 40) + '\n  : [unclosed' }]), message: /invalid manifest: sibyl\.yaml is not valid YAML\/JSON/ },
    { name: 'manifest too large', zip: await makeZip(withManifest('tabular-mlp', '1', (m) => `${m}\n# ${randomBytes(800_000).toString('base64')}\n`)), message: /bundle: sibyl\.yaml is \d+ bytes, more than the 1048576 a manifest may have/ },
    { name: 'missing file', zip: await makeZip(good.filter((e) => e.name !== 'model.onnx')), message: /the manifest names model\.onnx, which is not in the zip/ },
    { name: 'named file is a directory', zip: await makeZip([...good.filter((e) => e.name !== 'model.onnx'), { name: 'model.onnx/', data: '' }]), message: /the manifest names model\.onnx, which is a directory, not a file/ },
  ];
}

/** The manifest of the external-data fixture (test/fixtures/onnx/build.py: y = x + [0, 1, 2, 3]). */
function externalManifest(): string {
  const f = (n: string) => `  - { name: ${n}, dtype: float32, source: request, default: 0 }`;
  return [
    'name: external',
    'version: "1"',
    'runtime: onnx',
    'features:',
    ...['a', 'b', 'c', 'd'].map(f),
    'onnx:',
    '  file: model.onnx',
    '  inputs: [{ name: x, dtype: float32, features: [a, b, c, d] }]',
    '  outputs: [{ name: y, kind: vector }]',
    'tests:',
    '  - { name: adds k, features: { a: 1, b: 1, c: 1, d: 1 }, expected: { y: [1, 2, 3, 4] }, tolerance: 0.000001 }',
    '',
  ].join('\n');
}

/** A bundle over the ONNX model with external data (weights.bin beside it): valid, its test passes. */
export function externalDataBundle(): Promise<Buffer> {
  const dir = join(ONNX_FIXTURES, 'external-inside');
  return makeZip([
    { name: 'sibyl.yaml', data: externalManifest() },
    { name: 'model.onnx', data: readFileSync(join(dir, 'model.onnx')) },
    { name: 'weights.bin', data: readFileSync(join(dir, 'weights.bin')) },
  ]);
}

/** Where the escaping external-data model looks for its weights, relative to the directory it is unpacked in. */
export const ESCAPING_WEIGHTS = '../external-escape-target/weights.bin';

/** Well-formed bundles whose model, or the model's tests, are wrong: refused by the upload validator. */
export async function hostileModels(): Promise<HostileZip[]> {
  const escaping = readFileSync(join(ONNX_FIXTURES, 'external-escape', 'bundle', 'model.onnx'));
  // Same byte length as ESCAPING_WEIGHTS, so the protobuf's length prefixes stay right.
  const absolute = '/'.repeat(ESCAPING_WEIGHTS.length - 'etc/hostname'.length) + 'etc/hostname';
  const deliveryOnnx = readFileSync(join(MODELS_DIR, 'delivery-eta', '2', 'model.onnx'));
  return [
    {
      name: 'garbage ONNX file',
      zip: await makeZip(bundleEntries('tabular-mlp', '1').map((e) => (e.name === 'model.onnx' ? { ...e, data: Buffer.from('garbage, not a protobuf'.repeat(10)) } : e))),
      message: /the model does not load: onnx\.file: "model\.onnx" could not be loaded/,
    },
    {
      name: 'ONNX inputs that do not match the manifest',
      zip: await makeZip(bundleEntries('tabular-mlp', '1').map((e) => (e.name === 'model.onnx' ? { ...e, data: deliveryOnnx } : e))),
      message: /the model does not load: .*onnx\.inputs/,
    },
    {
      name: 'failing test case',
      zip: await makeZip(withManifest('delivery-eta', '2', (m) => m.replace(/eta_minutes: ([0-9.]+)/, 'eta_minutes: 99.5'))),
      message: /1 of 3 test cases failed:\ntest case "expected row 0":\n {2}- eta_minutes: expected 99\.5, got 3[0-9.]+ \(off by [0-9.]+; tolerance 0\.0001\)/,
    },
    {
      name: 'ONNX external data outside the bundle (../)',
      zip: await makeZip([{ name: 'sibyl.yaml', data: externalManifest() }, { name: 'model.onnx', data: escaping }]),
      message: /the model does not load: onnx\.file: "model\.onnx" could not be loaded: .*(escapes|outside)/i,
    },
    {
      name: 'ONNX external data at an absolute path',
      zip: await makeZip([{ name: 'sibyl.yaml', data: externalManifest() }, { name: 'model.onnx', data: patchName(escaping, ESCAPING_WEIGHTS, absolute) }]),
      message: /the model does not load: onnx\.file: "model\.onnx" could not be loaded: .*(absolute|escapes|outside)/i,
    },
  ];
}
