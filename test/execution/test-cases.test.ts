/** The test-case gate: absolute tolerance for numbers, exact labels and strings, vectors elementwise, readable diffs. */
import { describe, expect, it } from 'vitest';
import type { FeatureRow, LoadedModel, OutputRow } from '../../runtimes/contract.ts';
import { SibylError } from '../../core/errors.ts';
import { parseManifest } from '../../runtimes/manifest.ts';
import { compare, formatFailures, runTestCases } from '../../execution/test-cases.ts';
import { ModelVersion } from '../../execution/model-version.ts';

/** A model that answers from a function of its row, and records the rows it saw. */
function fakeModel(answer: (row: FeatureRow) => OutputRow): LoadedModel & { rows: FeatureRow[] } {
  const rows: FeatureRow[] = [];
  return {
    rows,
    async predict(input) {
      rows.push(...input);
      return input.map(answer);
    },
    async dispose() {},
  };
}

const manifest = (tests: object[]) =>
  parseManifest(
    JSON.stringify({
      name: 'm',
      version: '1',
      runtime: 'rules',
      rules: { file: 'rule.js' },
      outputs: [{ name: 'score' }, { name: 'label', dtype: 'string' }, { name: 'probs', kind: 'vector' }],
      features: [
        { name: 'x', dtype: 'float32', source: 'request', default: 2 },
        { name: 'city', dtype: 'string', source: 'request', default: 'blr' },
      ],
      tests,
    }),
  );

const model = () => fakeModel((r) => ({ score: (r.x as number) * 10, label: r.city === 'blr' ? 'south' : 'north', probs: [0.25, 0.75] }));

/** The cases of `m` run on `model` through the one execution step, as the upload gate runs them. */
const run = (model: LoadedModel, m: ReturnType<typeof manifest>) => runTestCases(new ModelVersion(m, model));

describe('runTestCases', () => {
  it('passes cases within the absolute tolerance and fills missing features with their defaults', async () => {
    const m = model();
    const failures = await run(
      m,
      manifest([
        { name: 'defaults', features: {}, expected: { score: 20, label: 'south', probs: [0.25, 0.75] } },
        { name: 'close enough', features: { x: 1.5 }, expected: { score: 15.00009 }, tolerance: 1e-4 },
      ]),
    );
    expect(failures).toEqual([]);
    expect(m.rows).toEqual([{ x: 2, city: 'blr' }, { x: 1.5, city: 'blr' }]);
  });

  it('the tolerance is absolute, also for large values (default 1e-5)', async () => {
    const failures = await run(model(), manifest([{ name: 'big', features: { x: 1000 }, expected: { score: 10000.001 } }]));
    expect(failures).toEqual([{ name: 'big', problems: ['score: expected 10000.001, got 10000 (off by 0.00100; tolerance 0.00001)'] }]);
  });

  it('reports every differing output of a case with expected and actual: numbers, labels, vectors', async () => {
    const failures = await run(
      model(),
      manifest([{ name: 'all wrong', features: { city: 'del' }, expected: { score: 21, label: 'south', probs: [0.25, 0.5] }, tolerance: 0.1 }]),
    );
    expect(failures).toEqual([
      {
        name: 'all wrong',
        problems: ['score: expected 21, got 20 (off by 1.00; tolerance 0.1)', 'label: expected "south", got "north"', 'probs[1]: expected 0.5, got 0.75 (off by 0.250; tolerance 0.1)'],
      },
    ]);
  });

  it('compares vectors element by element and by length', () => {
    const tc = { name: 'v', features: {}, expected: { probs: [0.1, 0.2, 0.3] }, tolerance: 0.01 };
    expect(compare(tc, { probs: [0.1, 0.2, 0.3] })).toEqual([]);
    expect(compare(tc, { probs: [0.1, 0.5, 0.9] })).toEqual(['probs[1]: expected 0.2, got 0.5 (off by 0.300; tolerance 0.01; 2 of 3 elements differ)']);
    expect(compare(tc, { probs: [0.1, 0.2] })).toEqual(['probs: expected [0.1,0.2,0.3], got [0.1,0.2] (2 elements, not 3)']);
    expect(compare(tc, { probs: 0.1 })).toEqual(['probs: expected [0.1,0.2,0.3], got 0.1']);
    expect(compare(tc, { other: 1 })).toEqual(['probs: expected [0.1,0.2,0.3], the model returned no such output (it returned "other")']);
  });

  it('compares strings and booleans exactly, and a numeric label as a number', () => {
    const tc = { name: 's', features: {}, expected: { label: 'a', flag: true, cls: 1 }, tolerance: 0 };
    expect(compare(tc, { label: 'a', flag: true, cls: '1' })).toEqual([]);
    expect(compare(tc, { label: 'A', flag: false, cls: 'x' })).toEqual(['label: expected "a", got "A"', 'flag: expected true, got false', 'cls: expected 1, got "x" (not a number)']);
  });

  it('refuses features the manifest does not declare or of the wrong type, without running the model', async () => {
    const m = model();
    const failures = await run(m, manifest([{ name: 'bad features', features: { y: 1, city: 3 }, expected: { score: 20 } }]));
    expect(failures).toEqual([{ name: 'bad features', problems: ['features.y: the manifest declares no feature "y"', 'features.city: 3 is not a string value'] }]);
    expect(m.rows).toEqual([]);
  });

  it('turns a model error into that case\'s failure and goes on with the next case', async () => {
    let calls = 0;
    const flaky: LoadedModel = {
      async predict(rows) {
        if (calls++ === 0) throw new SibylError('INVALID_ARGUMENT', 'x must be positive');
        return rows.map(() => ({ score: 20 }));
      },
      async dispose() {},
    };
    const failures = await run(flaky, manifest([{ name: 'first', features: {}, expected: { score: 20 } }, { name: 'second', features: {}, expected: { score: 20 } }]));
    expect(failures).toEqual([{ name: 'first', problems: ['the model failed: INVALID_ARGUMENT: x must be positive'] }]);
  });

  it('formats failures as one block per case', () => {
    expect(formatFailures([{ name: 'a', problems: ['p1', 'p2'] }, { name: 'b', problems: ['p3'] }])).toBe('test case "a":\n  - p1\n  - p2\ntest case "b":\n  - p3');
  });
});
