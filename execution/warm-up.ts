/** The first prediction of a freshly loaded version, before it takes traffic. */
import { SibylError } from '../core/errors.ts';
import type { TestCase } from '../runtimes/manifest.ts';
import type { ModelVersion } from './model-version.ts';
import { checkFeatures, compare, formatFailures, runTestCase } from './test-cases.ts';

/**
 * Runs the manifest's first test case the way the upload gate ran it (test-cases.ts, through the one execution
 * step), and checks its expected outputs: a version that does not answer here as it answered at the gate is not
 * served. Without a test case it predicts one row of the features' defaults, except for a composed rule, whose
 * models' outputs only a test case gives (it is then loaded without a warm-up call). Rejects with the step's
 * SibylError, DEADLINE_EXCEEDED after `timeoutMs` (default 10000), or FAILED_PRECONDITION naming the differences.
 */
export async function warmUp(version: ModelVersion, timeoutMs = 10_000): Promise<void> {
  const first = version.manifest.tests[0];
  if (!first && version.composed.length !== 0) return;
  const tc: TestCase = first ?? { name: 'warm-up', features: {}, expected: {}, tolerance: 0 };
  const problems = checkFeatures(tc, version.manifest);
  if (problems.length === 0) problems.push(...compare(tc, await runTestCase(version, tc, { timeoutMs })));
  if (problems.length) {
    throw new SibylError('FAILED_PRECONDITION', `warm-up: the first test case does not pass as it did at upload:\n${formatFailures([{ name: tc.name, problems }])}`);
  }
}
