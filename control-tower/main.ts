#!/usr/bin/env node
/** The control tower on its own (production runs it apart from the gateways): configuration from the environment. */
import { loadTowerConfig, TowerConfigError } from './config.ts';
import { createControlTower } from './server.ts';

let config;
try {
  config = loadTowerConfig(process.env);
} catch (err) {
  if (err instanceof TowerConfigError) {
    process.stderr.write(`${err.message}\n`);
    process.exit(2);
  }
  throw err;
}
const tower = await createControlTower(config);
await tower.start();
if (tower.devToken) {
  process.stderr.write(`\ndevelopment admin token (valid until the next start; set SIBYL_ADMIN_TOKEN in production):\n  export SIBYL_TOKEN=${tower.adminToken}\n\n`);
}
for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  process.once(signal, () => void tower.stop().then(() => process.exit(0), () => process.exit(1)));
}
