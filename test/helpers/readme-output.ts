/**
 * README examples as data (test/e2e/readme.test.ts): the ```sh blocks and the answer each shows, and the rules an
 * actual answer is held to.
 *
 * An answer shown as ```json: parsed after its `…` marks are read as "anything" (`"…"` or a bare `…` value), "and
 * more" (`[…]`, `[x, …]`: any array, or one that starts so) and "other keys" (`, …}`); objects match when the keys
 * shown match (others may be there), numbers within a relative 1e-4, everything else exactly. As ```text: line by
 * line, `…` matching any run of characters.
 */

export interface ReadmeBlock {
  /** 1-based line of the block's opening fence. */
  readonly line: number;
  readonly code: string;
  readonly expected?: string;
  readonly kind?: 'json' | 'text';
}

/**
 * The ```sh blocks of a Markdown text, each with the ```json or ```text block right after it (if any); with
 * `section`, only those under the `## section` heading (its ### parts included, up to the next ## heading).
 */
export function readmeBlocks(markdown: string, section?: string): ReadmeBlock[] {
  const all = markdown.split('\n');
  const start = section === undefined ? 0 : all.indexOf(`## ${section}`);
  if (start < 0) throw new Error(`no "## ${section}" heading`);
  const after = all.findIndex((l, i) => i > start && section !== undefined && /^## /.test(l));
  // Lines outside the section are blanked, so that line numbers stay the file's.
  const lines = all.map((l, i) => (i < start || (after >= 0 && i >= after) ? '' : l));
  const fences: { line: number; lang: string; body: string; end: number }[] = [];
  for (let i = 0; i < lines.length; i++) {
    const open = /^```(\w*)\s*$/.exec(lines[i]!);
    if (!open) continue;
    let j = i + 1;
    while (j < lines.length && !/^```\s*$/.test(lines[j]!)) j++;
    fences.push({ line: i + 1, lang: open[1]!, body: lines.slice(i + 1, j).join('\n'), end: j });
    i = j;
  }
  const blocks: ReadmeBlock[] = [];
  fences.forEach((f, k) => {
    if (f.lang !== 'sh') return;
    const next = fences[k + 1];
    const adjacent = next && next.line === f.end + 2 && (next.lang === 'json' || next.lang === 'text');
    blocks.push(adjacent ? { line: f.line, code: f.body, expected: next.body, kind: next.lang as 'json' | 'text' } : { line: f.line, code: f.body });
  });
  return blocks;
}

const ANY = '\u0001any';
const REST = '\u0001rest';

/** The shown JSON with its `…` marks as sentinels. */
export function parseShownJson(shown: string): unknown {
  const text = shown
    .replace(/"…"/g, JSON.stringify(ANY))
    .replace(/,\s*…\s*}/g, '}')
    .replace(/\[\s*…\s*\]/g, `[${JSON.stringify(REST)}]`)
    .replace(/,\s*…\s*\]/g, `, ${JSON.stringify(REST)}]`)
    .replace(/…/g, JSON.stringify(ANY));
  return JSON.parse(text);
}

/** Where `actual` differs from `shown` (a path and both values), or undefined when it matches. */
export function jsonDifference(shown: unknown, actual: unknown, path = '$'): string | undefined {
  if (shown === ANY) return undefined;
  if (typeof shown === 'number') {
    return typeof actual === 'number' && Math.abs(actual - shown) <= 1e-4 * Math.max(1, Math.abs(shown)) ? undefined : `${path}: ${JSON.stringify(actual)}, README shows ${shown}`;
  }
  if (Array.isArray(shown)) {
    if (!Array.isArray(actual)) return `${path}: ${JSON.stringify(actual)} is not an array`;
    const rest = shown[shown.length - 1] === REST;
    const items = rest ? shown.slice(0, -1) : shown;
    if (rest ? actual.length < items.length : actual.length !== items.length) return `${path}: ${actual.length} items, README shows ${items.length}${rest ? ' or more' : ''}`;
    for (let i = 0; i < items.length; i++) {
      const d = jsonDifference(items[i], actual[i], `${path}[${i}]`);
      if (d) return d;
    }
    return undefined;
  }
  if (shown !== null && typeof shown === 'object') {
    if (actual === null || typeof actual !== 'object' || Array.isArray(actual)) return `${path}: ${JSON.stringify(actual)} is not an object`;
    for (const [k, v] of Object.entries(shown)) {
      if (!(k in actual)) return `${path}.${k}: missing`;
      const d = jsonDifference(v, (actual as Record<string, unknown>)[k], `${path}.${k}`);
      if (d) return d;
    }
    return undefined;
  }
  return shown === actual ? undefined : `${path}: ${JSON.stringify(actual)}, README shows ${JSON.stringify(shown)}`;
}

/** Undefined when `stdout` is what the README shows, else what differs. */
export function matchOutput(shown: string, stdout: string, kind: 'json' | 'text' = 'text'): string | undefined {
  if (kind === 'json') {
    let actual: unknown;
    try {
      actual = JSON.parse(stdout);
    } catch {
      return `not one JSON document: ${stdout.slice(0, 200)}`;
    }
    return jsonDifference(parseShownJson(shown), actual);
  }
  const want = shown.trimEnd().split('\n');
  const got = stdout.trimEnd().split('\n');
  if (want.length !== got.length) return `${got.length} lines, README shows ${want.length}`;
  for (let i = 0; i < want.length; i++) {
    const pattern = new RegExp(`^${want[i]!.split('…').map((p) => p.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('.*')}$`);
    if (!pattern.test(got[i]!)) return `line ${i + 1}: ${got[i]}, README shows ${want[i]}`;
  }
  return undefined;
}
