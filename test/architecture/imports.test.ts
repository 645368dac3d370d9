/**
 * Which part may import which (ARCHITECTURE.md, "The parts and who may import whom"), read from the files'
 * import specifiers: the control tower knows proto, core and runtimes, never the gateway (what both need lives
 * in core/ or runtimes/).
 */
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

function sourceFiles(dir: string): string[] {
  return readdirSync(join(ROOT, dir), { withFileTypes: true, recursive: true })
    .filter((e) => e.isFile() && /\.(ts|mts|js|mjs)$/.test(e.name) && !e.name.endsWith('.d.ts'))
    .map((e) => relative(ROOT, join(e.parentPath, e.name)));
}

/** Every module specifier of static imports and exports, dynamic import() and require() calls. */
function importSpecifiers(source: string): string[] {
  const out: string[] = [];
  const patterns = [
    /\b(?:import|export)\s+(?:type\s+)?(?:[^'"`;]*?\s+from\s+)?['"]([^'"]+)['"]/g,
    /\bimport\s*\(\s*['"]([^'"]+)['"]\s*\)/g,
    /\brequire\s*\(\s*['"]([^'"]+)['"]\s*\)/g,
  ];
  for (const p of patterns) for (const m of source.matchAll(p)) out.push(m[1]!);
  return out;
}

/** Files under `from` that import a module under `forbidden` (relative specifiers resolved from the file). */
function violations(from: string, forbidden: string): string[] {
  const bad: string[] = [];
  const target = resolve(ROOT, forbidden);
  for (const file of sourceFiles(from)) {
    for (const spec of importSpecifiers(readFileSync(join(ROOT, file), 'utf8'))) {
      if (!spec.startsWith('.')) continue;
      const abs = resolve(ROOT, dirname(file), spec);
      if (abs === target || abs.startsWith(target + '/')) bad.push(`${file} imports ${spec}`);
    }
  }
  return bad;
}

describe('import boundaries', () => {
  it('finds the specifiers of every import form', () => {
    const src = [
      "import { a } from '../gateway/a.ts';",
      "import type { B } from '../gateway/b.ts';",
      "import * as c from '../gateway/c.ts';",
      "import '../gateway/d.ts';",
      "export { e } from '../gateway/e.ts';",
      "export * from '../gateway/f.ts';",
      "const g = await import('../gateway/g.ts');",
      "import {\n  h,\n  i,\n} from '../gateway/h.ts';",
    ].join('\n');
    expect(importSpecifiers(src)).toEqual(['../gateway/a.ts', '../gateway/b.ts', '../gateway/c.ts', '../gateway/d.ts', '../gateway/e.ts', '../gateway/f.ts', '../gateway/h.ts', '../gateway/g.ts']);
  });

  it('sees real imports: the all-in-one launcher (local/) joins the tower and the gateway', () => {
    expect(violations('local', 'gateway')).toContain('local/main.ts imports ../gateway/gateway.ts');
  });

  it('nothing under control-tower/ imports from gateway/', () => {
    expect(sourceFiles('control-tower').length).toBeGreaterThan(10);
    expect(violations('control-tower', 'gateway')).toEqual([]);
  });

  it('what the tower shares with the gateway (execution/, stats/, replay/) imports nothing from gateway/ or control-tower/', () => {
    expect(sourceFiles('stats').length).toBeGreaterThan(3);
    expect(sourceFiles('replay').length).toBeGreaterThan(3);
    const bad = ['execution', 'stats', 'replay'].flatMap((dir) => [...violations(dir, 'gateway'), ...violations(dir, 'control-tower')]);
    expect(bad).toEqual([]);
  });

  it('the doors are codecs: nothing under gateway/transport/ imports the route table, admission or the execution step', () => {
    expect(sourceFiles('gateway/transport').length).toBeGreaterThan(8);
    const bad = [
      ...violations('gateway/transport', 'gateway/routing'),
      ...violations('gateway/transport', 'gateway/pipeline/admission.ts'),
      ...violations('gateway/transport', 'execution/execute.ts'),
    ];
    expect(bad).toEqual([]);
  });

  it('sees a door that would decide for itself', () => {
    // The entry itself imports what the doors may not: the rule would catch the same import in a door.
    expect(violations('gateway/pipeline', 'gateway/routing')).toContain('gateway/pipeline/pipeline.ts imports ../routing/route-table.ts');
    expect(violations('gateway/pipeline', 'execution/execute.ts')).toContain('gateway/pipeline/pipeline.ts imports ../../execution/execute.ts');
  });
});
