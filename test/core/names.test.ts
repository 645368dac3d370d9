import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ALIAS, CELL, IDENTIFIER, NAME, nameSchema, SHA256_HEX, VERSION, isCellName, isSha256, type NameRule } from '../../core/names.ts';
import { loadConfig } from '../../gateway/config.ts';
import { loadTowerConfig } from '../../control-tower/config.ts';
import { validateManifest } from '../../runtimes/manifest.ts';

const ROOT = join(import.meta.dirname, '..', '..');

const cases: [string, NameRule, accepted: string[], refused: string[]][] = [
  // No lookalikes: a trailing ".", "-" or "_", or a "..", would make a second model that reads like the first.
  [
    'NAME',
    NAME,
    ['delivery-eta', 'eta.v2_x', 'a', '0abc', 'a1', 'a.b', 'a'.repeat(63)],
    ['', 'Delivery', '-eta', '.eta', '_eta', 'delivery-eta.', 'delivery-eta-', 'delivery-eta_', 'delivery..eta', 'a b', 'eta/1', 'é', 'a'.repeat(64)],
  ],
  ['VERSION', VERSION, ['1', 'v2', 'V2', '1.2.3', 'rc_1-x', 'A'.repeat(63)], ['', '-1', '.1', '_1', '1.', '1-', '1_', '1..2', '1/2', '1 2', '..', 'x'.repeat(64)]],
  ['ALIAS', ALIAS, ['stable', 'canary', 'Prod-2'], ['', '-stable', 'stable.', 'stable-', 'sta..ble', 'sta ble', 'a'.repeat(64)]],
  // A DNS label: cells become Kubernetes namespaces and label values.
  ['CELL', CELL, ['local', 'eu-1', 'cell-a', 'a', '0', 'a'.repeat(63), `a${'-'.repeat(61)}b`], ['', '-eu', 'eu-', 'EU-1', 'eu_1', 'eu.1', 'eu 1', 'a'.repeat(64)]],
  ['SHA256_HEX', SHA256_HEX, ['a'.repeat(64), '0123456789abcdef'.repeat(4)], ['', 'A'.repeat(64), 'a'.repeat(63), 'a'.repeat(65), 'g'.repeat(64), `${'a'.repeat(64)}\n`, `../${'a'.repeat(61)}`]],
  ['IDENTIFIER', IDENTIFIER, ['fast', '_x', 'Slow2', 'a_b', 'x'.repeat(63)], ['', '2fast', 'a-b', 'a.b', 'a b', 'x'.repeat(64)]],
];

describe('core/names: the patterns', () => {
  for (const [label, rule, accepted, refused] of cases) {
    it(`${label} accepts and refuses representative values`, () => {
      for (const v of accepted) expect(rule.pattern.test(v), `${label} should accept ${JSON.stringify(v)}`).toBe(true);
      for (const v of refused) expect(rule.pattern.test(v), `${label} should refuse ${JSON.stringify(v)}`).toBe(false);
    });
  }

  it('helpers and schemas refuse with the rule message', () => {
    expect(isCellName('eu-1') && !isCellName('eu-')).toBe(true);
    expect(isSha256('f'.repeat(64)) && !isSha256('F'.repeat(64))).toBe(true);
    const result = nameSchema(CELL).safeParse('Bad_Cell');
    expect(result.success).toBe(false);
    expect(result.error?.issues[0]?.message).toBe(CELL.message);
  });

  it('a manifest named like another model with a trailing dot is refused with the rule message', () => {
    const manifest = {
      name: 'delivery-eta.',
      version: '1.',
      runtime: 'onnx',
      features: [{ name: 'x', dtype: 'float32', source: 'request', default: 0 }],
      onnx: { file: 'model.onnx', inputs: [{ name: 'x', dtype: 'float32', features: ['x'] }], outputs: [{ name: 'y' }] },
      tests: [{ name: 't', features: {}, expected: { y: 1 } }],
    };
    expect(() => validateManifest(manifest)).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT', message: `invalid manifest: name: ${NAME.message}; version: ${VERSION.message}` }));
    expect(() => validateManifest({ ...manifest, name: 'delivery-eta', version: '1' })).not.toThrow();
  });

  it('the gateway and the tower agree on cell names', () => {
    for (const cell of ['eu-1', 'a'.repeat(63), '-eu', 'eu-', 'a'.repeat(64), 'Bad_Cell']) {
      const gateway = accepts(() => loadConfig({ SIBYL_CELL: cell }));
      const tower = accepts(() => loadTowerConfig({ SIBYL_CELLS: cell }));
      expect([cell, gateway, tower]).toEqual([cell, isCellName(cell), isCellName(cell)]);
    }
  });

  it("the database's sha256 CHECK is the same pattern", () => {
    const dir = join(ROOT, 'control-tower', 'store', 'migrations');
    const checks = readdirSync(dir).flatMap((f) => [...readFileSync(join(dir, f), 'utf8').matchAll(/sha256\s*~\s*'([^']*)'/g)].map((m) => m[1]));
    expect(checks.length).toBeGreaterThan(0);
    for (const c of checks) expect(c).toBe(SHA256_HEX.pattern.source);
  });
});

describe('core/names: one copy of each pattern', () => {
  // Each pattern as written in core/names.ts, and the looser or stricter copies the parts used to keep.
  const forbidden = [
    ...[NAME, VERSION, CELL, SHA256_HEX, IDENTIFIER].map((r) => r.pattern.source.replace(/^\^|\$$/g, '')),
    '[a-z0-9-]{1,40}', // the gateway's old cell: 40 characters, any dash
    '[a-z0-9][a-z0-9-]{0,62}', // the tower's old cell: a trailing dash allowed
    '[a-z0-9][a-z0-9._-]{0,62}', // the old name: `delivery-eta.` passed
    '[A-Za-z0-9][A-Za-z0-9._-]{0,62}', // the old version: `1.` passed
  ];

  it('no .ts file under gateway/, control-tower/, runtimes/ or cli/ spells one out again', () => {
    const offenders: string[] = [];
    let scanned = 0;
    for (const part of ['gateway', 'control-tower', 'runtimes', 'cli']) {
      for (const file of tsFiles(join(ROOT, part))) {
        scanned++;
        const text = readFileSync(file, 'utf8');
        for (const body of forbidden) if (text.includes(body)) offenders.push(`${relative(ROOT, file)}: ${body} (import it from core/names.ts)`);
      }
    }
    expect(scanned).toBeGreaterThan(50);
    expect(offenders).toEqual([]);
  });
});

function accepts(fn: () => unknown): boolean {
  try {
    fn();
    return true;
  } catch {
    return false;
  }
}

function tsFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true, recursive: true })
    .filter((e) => e.isFile() && e.name.endsWith('.ts') && !join(e.parentPath, e.name).split('/').includes('node_modules'))
    .map((e) => join(e.parentPath, e.name));
}
