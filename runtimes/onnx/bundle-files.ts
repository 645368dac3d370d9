import { lstat, readdir, realpath } from 'node:fs/promises';
import path from 'node:path';
import { SibylError } from '../../core/errors.ts';

const MAX_ENTRIES = 10_000;

function inside(dir: string, p: string): boolean {
  return p === dir || p.startsWith(dir + path.sep);
}

/**
 * The real path of `file` (relative to the bundle directory), checked to be a regular file inside the bundle, and
 * every symlink in the bundle checked to resolve inside it (onnxruntime checks external-data paths lexically
 * against the model's directory; a symlinked weights file could still point elsewhere).
 * Rejects with INVALID_ARGUMENT naming the manifest field.
 */
export async function resolveBundleFile(bundleDir: string, file: string): Promise<string> {
  let root: string;
  try {
    root = await realpath(bundleDir);
  } catch (err) {
    throw new SibylError('INVALID_ARGUMENT', `bundle directory does not exist`, { cause: err });
  }
  let real: string;
  try {
    real = await realpath(path.resolve(root, file));
  } catch (err) {
    throw new SibylError('INVALID_ARGUMENT', `onnx.file: "${file}" does not exist in the bundle`, { cause: err });
  }
  if (!inside(root, real)) throw new SibylError('INVALID_ARGUMENT', `onnx.file: "${file}" resolves outside the bundle`);
  if (!(await lstat(real)).isFile()) throw new SibylError('INVALID_ARGUMENT', `onnx.file: "${file}" is not a regular file`);
  await checkLinks(root);
  return real;
}

async function checkLinks(root: string): Promise<void> {
  const entries = await readdir(root, { recursive: true, withFileTypes: true });
  if (entries.length > MAX_ENTRIES) throw new SibylError('INVALID_ARGUMENT', `bundle holds more than ${MAX_ENTRIES} files`);
  for (const e of entries) {
    if (!e.isSymbolicLink()) continue;
    const p = path.join(e.parentPath, e.name);
    const rel = path.relative(root, p);
    let target: string;
    try {
      target = await realpath(p);
    } catch {
      throw new SibylError('INVALID_ARGUMENT', `bundle file "${rel}" is a dangling link`);
    }
    if (!inside(root, target)) throw new SibylError('INVALID_ARGUMENT', `bundle file "${rel}" links outside the bundle`);
  }
}
