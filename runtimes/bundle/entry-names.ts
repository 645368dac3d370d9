/**
 * The names of an untrusted zip's entries: each checked on its own (`checkEntryName`) and against the others
 * (`createNameIndex`), so that what lands on disk is exactly what the zip lists, on any file system.
 */
import { SibylError } from '../../core/errors.ts';

const MAX_NAME_CHARS = 512;
const MAX_DEPTH = 32;

const refuse = (message: string): SibylError => new SibylError('INVALID_ARGUMENT', `bundle: ${message}`);

/**
 * Throws INVALID_ARGUMENT when the name is empty, too long or too deep, absolute, starts with a drive letter,
 * holds a backslash, a control character or NUL, or has a "..", "." or empty segment. A trailing "/" marks a
 * directory and is allowed.
 */
export function checkEntryName(name: string): void {
  const segments = name.replace(/\/$/, '').split('/');
  const problem =
    name.length === 0
      ? 'is empty'
      : name.length > MAX_NAME_CHARS
        ? `is longer than ${MAX_NAME_CHARS} characters`
        : name.startsWith('/')
          ? 'is an absolute path'
          : /^[A-Za-z]:/.test(name)
            ? 'starts with a drive letter'
            : name.includes('\\')
              ? 'contains a backslash'
              : /[\u0000-\u001f\u007f]/.test(name)
                ? 'contains a control character'
                : segments.some((p) => p === '..')
                  ? 'contains a ".." segment'
                  : segments.some((p) => p === '.' || p === '')
                    ? 'contains a "." or empty segment'
                    : segments.length > MAX_DEPTH
                      ? `is nested deeper than ${MAX_DEPTH} directories`
                      : undefined;
  if (problem) throw refuse(`entry name ${JSON.stringify(name)} ${problem}`);
}

export interface NameIndex {
  /**
   * Records an entry (checked with checkEntryName first). Throws INVALID_ARGUMENT when it has the name of an earlier
   * entry once case and Unicode normalisation (NFC) are ignored, when it lies under an earlier file, or when it is a
   * file where an earlier entry needs a directory, or when its directories are spelled differently (case, NFC/NFD)
   * from an earlier entry's.
   */
  add(name: string): void;
}

export function createNameIndex(): NameIndex {
  /** Folded path → the spelling first seen, whether it is a directory, and whether an entry named it. */
  const seen = new Map<string, { spelling: string; dir: boolean; explicit: boolean }>();
  const fold = (p: string) => p.normalize('NFC').toLowerCase();

  return {
    add(name) {
      const isDir = name.endsWith('/');
      const path = isDir ? name.slice(0, -1) : name;
      const segments = path.split('/');
      for (let i = 1; i < segments.length; i++) {
        const parent = segments.slice(0, i).join('/');
        const known = seen.get(fold(parent));
        if (!known) seen.set(fold(parent), { spelling: parent, dir: true, explicit: false });
        else if (!known.dir) throw refuse(`entry "${name}" lies under "${known.spelling}", which is a file`);
        else if (known.spelling !== parent) throw refuse(`entry "${name}" spells the directory "${known.spelling}" as "${parent}" (names must differ by more than case or Unicode normalisation)`);
      }
      const key = fold(path);
      const known = seen.get(key);
      if (!known) {
        seen.set(key, { spelling: path, dir: isDir, explicit: true });
        return;
      }
      // A directory entry may follow the files it holds (its directory then already exists, implicitly).
      if (isDir && known.dir && !known.explicit && known.spelling === path) {
        known.explicit = true;
        return;
      }
      if (!isDir && known.dir && !known.explicit) throw refuse(`entry "${name}" is a file, but earlier entries lie under "${known.spelling}/"`);
      throw refuse(`entries "${known.spelling}${known.dir ? '/' : ''}" and "${name}" have the same name (ignoring case and Unicode normalisation)`);
    },
  };
}
