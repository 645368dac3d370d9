// The Lambda function under the Runtime Interface Emulator (scripts/lambda/test.sh): kept out of `npm test`, which
// does not build the emulator, the runtime interface client or the package.
import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    root: new URL('../../..', import.meta.url).pathname,
    include: ['test/lambda/emulator/**/*.emulator.ts'],
    fileParallelism: false,
    testTimeout: 60_000,
    hookTimeout: 180_000,
    pool: 'forks',
  },
});
