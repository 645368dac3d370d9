/**
 * Bundles in the browser: a dropped zip is sent as it is; a dropped folder (or files picked from one) is zipped
 * here with fflate, its files at the zip's root (the folder's own name dropped), as `sibyl bundle` would.
 */
import { strToU8, unzipSync, zipSync, type Zippable } from 'fflate';

export interface PickedBundle {
  readonly label: string;
  readonly zip: Uint8Array;
}

/** Files with their paths relative to the bundle's root, zipped. */
export function zipFiles(files: Record<string, Uint8Array>): Uint8Array {
  const entries: Zippable = {};
  for (const [path, bytes] of Object.entries(files).sort(([a], [b]) => a.localeCompare(b))) entries[path] = [bytes, { level: 6, mtime: new Date('2000-01-01T00:00:00Z') }];
  return zipSync(entries);
}

export function zipTexts(files: Record<string, string>): Uint8Array {
  return zipFiles(Object.fromEntries(Object.entries(files).map(([k, v]) => [k, strToU8(v)])));
}

/** The files of a zip, by path. */
export function unzip(zip: Uint8Array): Record<string, Uint8Array> {
  return unzipSync(zip);
}

async function readEntry(entry: FileSystemEntry, prefix: string, out: Record<string, Uint8Array>): Promise<void> {
  if (entry.isFile) {
    const file = await new Promise<File>((resolve, reject) => (entry as FileSystemFileEntry).file(resolve, reject));
    out[prefix + entry.name] = new Uint8Array(await file.arrayBuffer());
    return;
  }
  const reader = (entry as FileSystemDirectoryEntry).createReader();
  // readEntries answers in pages until an empty one.
  for (;;) {
    const page = await new Promise<FileSystemEntry[]>((resolve, reject) => reader.readEntries(resolve, reject));
    if (page.length === 0) break;
    for (const e of page) await readEntry(e, `${prefix}${entry.name}/`, out);
  }
}

/** Strips the one folder every path starts with (the dropped folder's own name). */
function rootless(files: Record<string, Uint8Array>): Record<string, Uint8Array> {
  const paths = Object.keys(files);
  const first = paths[0]?.split('/')[0];
  if (!first || !paths.every((p) => p.startsWith(`${first}/`))) return files;
  return Object.fromEntries(Object.entries(files).map(([p, b]) => [p.slice(first.length + 1), b]));
}

/** What was dropped: one zip, or a folder (or loose files) zipped. */
export async function fromDrop(dt: DataTransfer): Promise<PickedBundle> {
  const entries = [...dt.items].map((i) => i.webkitGetAsEntry?.()).filter((e): e is FileSystemEntry => !!e);
  const files = [...dt.files];
  if (files.length === 1 && files[0]!.name.endsWith('.zip') && !entries[0]?.isDirectory) {
    return { label: files[0]!.name, zip: new Uint8Array(await files[0]!.arrayBuffer()) };
  }
  if (entries.length) {
    const out: Record<string, Uint8Array> = {};
    for (const e of entries) await readEntry(e, '', out);
    return { label: entries.length === 1 && entries[0]!.isDirectory ? `${entries[0]!.name}/` : `${entries.length} files`, zip: zipFiles(rootless(out)) };
  }
  return fromFiles(files);
}

/** Picked with a file input: one zip, or the files of a folder (webkitdirectory). */
export async function fromFiles(files: File[]): Promise<PickedBundle> {
  if (files.length === 1 && files[0]!.name.endsWith('.zip')) return { label: files[0]!.name, zip: new Uint8Array(await files[0]!.arrayBuffer()) };
  const out: Record<string, Uint8Array> = {};
  for (const f of files) out[f.webkitRelativePath || f.name] = new Uint8Array(await f.arrayBuffer());
  const root = files[0]?.webkitRelativePath.split('/')[0];
  return { label: root ? `${root}/` : `${files.length} files`, zip: zipFiles(rootless(out)) };
}
