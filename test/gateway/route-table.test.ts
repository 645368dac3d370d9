import { describe, expect, it } from 'vitest';
import { Route, RouteTable, RouteTableRef } from '../../gateway/routing/route-table.ts';
import { validateManifest } from '../../runtimes/manifest.ts';
import type { LoadedModel } from '../../runtimes/contract.ts';

function route(version: string, disposed: string[]): Route {
  const manifest = validateManifest({
    name: 'm',
    version,
    runtime: 'onnx',
    onnx: { file: 'm.onnx', inputs: [{ name: 'x', dtype: 'float32', features: ['a'] }], outputs: [{ name: 'y' }] },
    features: [{ name: 'a', dtype: 'float32', source: 'request', default: 0 }],
  });
  const loaded: LoadedModel = { predict: async (rows) => rows.map(() => ({ y: 1 })), dispose: async () => void disposed.push(version) };
  return new Route(manifest, loaded, 'h');
}

describe('RouteTable', () => {
  const disposed: string[] = [];
  const r1 = route('1', disposed);
  const r2 = route('2', disposed);
  const table = new RouteTable([{ name: 'm', versions: new Map([['1', r1], ['2', r2]]), defaultVersion: '2', aliases: new Map([['stable', '1']]) }]);

  it('resolves default, version and alias', () => {
    expect(table.resolve('m', '')).toBe(r2);
    expect(table.resolve('m', '1')).toBe(r1);
    expect(table.resolve('m', 'stable')).toBe(r1);
  });
  it('throws NOT_FOUND naming what was asked for', () => {
    expect(() => table.resolve('x', '')).toThrow('model "x" not found');
    expect(() => table.resolve('m', '3')).toThrow('model "m" has no version or alias "3"');
  });
  it('refuses a table whose default or alias points nowhere', () => {
    expect(() => new RouteTable([{ name: 'm', versions: new Map([['1', r1]]), defaultVersion: '2', aliases: new Map() }])).toThrow(/default version 2/);
  });

  it('answers UNAVAILABLE with the load error for a deployed version it does not serve, by version, alias or default', () => {
    const partly = new RouteTable(
      [{ name: 'm', versions: new Map([['1', r1]]), defaultVersion: '1', aliases: new Map() }],
      [
        { name: 'm', defaultVersion: '3', versions: new Map([['3', 'warm-up: boom']]), aliases: new Map([['canary', '3']]) },
        { name: 'n', defaultVersion: '1', versions: new Map([['1', 'the model does not load'], ['2', 'bad hash']]), aliases: new Map() },
        { name: 'o', defaultVersion: '', versions: new Map([['1', 'x'], ['2', 'y']]), aliases: new Map() },
      ],
    );
    const fails = (fn: () => unknown) => {
      try {
        fn();
      } catch (err) {
        return { code: (err as { code: string }).code, message: (err as Error).message };
      }
      return undefined;
    };
    // m serves version 1 as its default (the fallback), so only what names version 3 is unavailable.
    expect(partly.select('m', '', '').route).toBe(r1);
    expect(fails(() => partly.resolve('m', '3'))).toEqual({ code: 'UNAVAILABLE', message: 'model "m": version "3" is deployed but failed to load on this gateway: warm-up: boom' });
    expect(fails(() => partly.select('m', 'canary', ''))).toEqual({ code: 'UNAVAILABLE', message: 'model "m": alias "canary" (version "3") is deployed but failed to load on this gateway: warm-up: boom' });
    expect(fails(() => partly.resolve('m', '4'))).toMatchObject({ code: 'NOT_FOUND' });
    // n serves nothing: its default answers with its own error.
    expect(fails(() => partly.select('n', '', ''))).toEqual({ code: 'UNAVAILABLE', message: 'model "n": its default version "1" is deployed but failed to load on this gateway: the model does not load' });
    expect(fails(() => partly.resolve('n', '2'))).toMatchObject({ code: 'UNAVAILABLE', message: expect.stringContaining('bad hash') });
    expect(fails(() => partly.resolve('n', '9'))).toEqual({ code: 'NOT_FOUND', message: 'model "n" has no version or alias "9"' });
    expect(fails(() => partly.select('o', '', ''))).toEqual({ code: 'UNAVAILABLE', message: 'model "o" is deployed but none of its versions loaded on this gateway: version "1": x; version "2": y' });
    expect(fails(() => partly.select('x', '', ''))).toEqual({ code: 'NOT_FOUND', message: 'model "x" not found' });
  });
});

describe('RouteTableRef.swap', () => {
  it('disposes a retired version only after its in-flight requests release it', async () => {
    const disposed: string[] = [];
    const old = route('1', disposed);
    const next = route('2', disposed);
    const ref = new RouteTableRef(new RouteTable([{ name: 'm', versions: new Map([['1', old]]), defaultVersion: '1', aliases: new Map() }]));
    const held = ref.current.resolve('m', '');
    held.acquire();
    const swapped = ref.swap(new RouteTable([{ name: 'm', versions: new Map([['2', next]]), defaultVersion: '2', aliases: new Map() }]));
    expect(ref.current.resolve('m', '')).toBe(next);
    await new Promise((r) => setTimeout(r, 10));
    expect(disposed).toEqual([]);
    held.release();
    await swapped;
    expect(disposed).toEqual(['1']);
  });
});
