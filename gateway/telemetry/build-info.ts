/**
 * What build is running, for `sibyl_build_info{version,commit}`: the version from the package's `package.json`,
 * and the commit when the code runs from a git checkout (`.git/HEAD`, a branch's ref or packed-refs); an image
 * built without `.git` reports no commit. Read once at startup; never throws.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

export interface BuildInfo {
  readonly version: string;
  readonly commit?: string | undefined;
}

/** `root` is the package's directory (default: the one holding this repository's `package.json`). */
export function readBuildInfo(root: string = join(import.meta.dirname, '..', '..')): BuildInfo {
  let version = 'unknown';
  try {
    const v = (JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { version?: unknown }).version;
    if (typeof v === 'string' && v !== '') version = v;
  } catch {
    // Without package.json the version is 'unknown'.
  }
  const commit = readCommit(join(root, '.git'));
  return commit === undefined ? { version } : { version, commit };
}

const SHA = /^[0-9a-f]{40}(?:[0-9a-f]{24})?$/;

function readCommit(gitDir: string): string | undefined {
  try {
    const head = readFileSync(join(gitDir, 'HEAD'), 'utf8').trim();
    if (SHA.test(head)) return head;
    const ref = /^ref: (refs\/[^\s]+)$/.exec(head)?.[1];
    if (ref === undefined) return undefined;
    try {
      const sha = readFileSync(join(gitDir, ref), 'utf8').trim();
      if (SHA.test(sha)) return sha;
    } catch {
      // Not a loose ref: look in packed-refs.
    }
    for (const line of readFileSync(join(gitDir, 'packed-refs'), 'utf8').split('\n')) {
      const [sha, name] = line.split(' ');
      if (name === ref && sha !== undefined && SHA.test(sha)) return sha;
    }
  } catch {
    // No checkout (an image), or not readable: no commit.
  }
  return undefined;
}
