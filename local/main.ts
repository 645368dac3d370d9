#!/usr/bin/env node
/**
 * `npm start`: the newcomer's one process. A control tower (PGlite and local bundles under SIBYL_DATA_DIR, one cell
 * `local`, the demo models of SIBYL_MODELS_DIR published through the upload gate on first start) and one gateway
 * that follows cell `local` through the tower's own HTTP API, exactly as a separate gateway would. Production runs
 * them apart: `node control-tower/main.ts` and `node gateway/main.ts` with SIBYL_CONTROL_TOWER_URL.
 *
 * Both read their configuration from the same environment (see README); SIBYL_CELLS defaults to SIBYL_CELL.
 */
import { pino } from 'pino';
import { ConfigError, loadConfig } from '../gateway/config.ts';
import { createGateway } from '../gateway/gateway.ts';
import { loadTowerConfig, TowerConfigError } from '../control-tower/config.ts';
import { createControlTower } from '../control-tower/server.ts';
import { seedDemoModels } from './seed-demo.ts';

const env = process.env;
const cell = env.SIBYL_CELL || 'local';
let towerConfig;
try {
  towerConfig = loadTowerConfig({ SIBYL_TOWER_HOST: '127.0.0.1', ...env, SIBYL_CELLS: env.SIBYL_CELLS || cell });
} catch (err) {
  if (err instanceof TowerConfigError) {
    process.stderr.write(`${err.message}\n`);
    process.exit(2);
  }
  throw err;
}
const logger = pino({ level: towerConfig.logLevel });
const tower = await createControlTower(towerConfig, { logger: logger.child({ service: 'control-tower' }) });
const { port: towerPort } = await tower.start();
const seeded = await seedDemoModels(tower, env.SIBYL_MODELS_DIR || 'models', cell);
if (seeded.length) logger.info({ models: seeded, cell }, 'demo models published to the control tower');

let gatewayConfig;
try {
  gatewayConfig = loadConfig({ ...env, SIBYL_CELL: cell, SIBYL_CONTROL_TOWER_URL: `http://127.0.0.1:${towerPort}`, SIBYL_TOWER_TOKEN: tower.adminToken, SIBYL_REPLICA: env.SIBYL_REPLICA || 'local-1' });
} catch (err) {
  if (err instanceof ConfigError) {
    process.stderr.write(`${err.message}\n`);
    await tower.stop();
    process.exit(2);
  }
  throw err;
}
const gateway = await createGateway(gatewayConfig, { logger: logger.child({ service: 'gateway', cell }) });
await gateway.start();
// Announce once the gateway serves what the tower holds (the first table arrives over the tower's API).
await Promise.race([gateway.follower?.ready, new Promise((r) => setTimeout(r, 30_000).unref())]);
if (tower.devToken) {
  process.stderr.write(
    `\nControl tower on http://127.0.0.1:${towerPort} (web console: http://127.0.0.1:${towerPort}/console/); development admin token (valid until the next start):\n  export SIBYL_TOKEN=${tower.adminToken}\n\n`,
  );
}

let signals = 0;
for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  process.on(signal, () => {
    if (++signals > 1) process.exit(1);
    logger.info({ signal }, 'draining');
    gateway
      .stop()
      .then(() => tower.stop())
      .then(
        () => process.exit(0),
        (err: unknown) => {
          logger.error({ err }, 'stop failed');
          process.exit(1);
        },
      );
  });
}
