/** A bundle directory as a zip, deterministically (sorted entries, fixed times): the same files give the same hash. */
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ZipFile } from 'yazl';

export async function zipDirectory(dir: string): Promise<Buffer> {
  const files: string[] = [];
  const walk = async (rel: string): Promise<void> => {
    for (const e of (await readdir(join(dir, rel), { withFileTypes: true })).sort((a, b) => (a.name < b.name ? -1 : 1))) {
      if (e.name.startsWith('.')) continue;
      const p = rel ? `${rel}/${e.name}` : e.name;
      if (e.isDirectory()) await walk(p);
      else if (e.isFile()) files.push(p);
    }
  };
  await walk('');
  const zip = new ZipFile();
  for (const f of files) zip.addBuffer(await readFile(join(dir, f)), f, { mtime: new Date(Date.UTC(2000, 0, 1)), mode: 0o100644 });
  zip.end();
  const chunks: Buffer[] = [];
  for await (const c of zip.outputStream as AsyncIterable<Buffer>) chunks.push(c);
  return Buffer.concat(chunks);
}
