/**
 * The console's browser suite: Playwright driving Debian's chromium (`executablePath`: Playwright's own browser
 * downloads are not used), against a real control tower and gateway that global-setup.ts starts (`node
 * local/main.ts` on fresh data). Run by `npm run test:console` (scripts/console/test.sh installs chromium).
 */
import { defineConfig } from '@playwright/test';

const port = Number(process.env.SIBYL_CONSOLE_TEST_TOWER_PORT ?? 27180);

export default defineConfig({
  testDir: '.',
  testMatch: '*.spec.ts',
  globalSetup: './global-setup.ts',
  workers: 1,
  fullyParallel: false,
  timeout: 300_000,
  expect: { timeout: 60_000 },
  reporter: [['list']],
  outputDir: '../../.data/console-e2e-results',
  use: {
    baseURL: `http://127.0.0.1:${port}`,
    viewport: { width: 1280, height: 900 },
    launchOptions: {
      executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
      // Root in CI: Chromium's sandbox needs an unprivileged user.
      args: ['--no-sandbox'],
    },
    trace: 'off',
    screenshot: 'off',
  },
});
