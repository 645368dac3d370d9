#!/usr/bin/env node
/**
 * A gateway process: reads the configuration from the environment, starts the gateway, drains on SIGTERM/SIGINT.
 * Without a control tower, SIGHUP reads the models directory again and serves what changed.
 */
import { ConfigError, loadConfig } from './config.ts';
import { createGateway } from './gateway.ts';

let config;
try {
  config = loadConfig(process.env);
} catch (err) {
  if (err instanceof ConfigError) {
    process.stderr.write(`${err.message}\n`);
    process.exit(2);
  }
  throw err;
}

const gateway = await createGateway(config);
await gateway.start();

process.on('SIGHUP', () => {
  gateway.reloadModels().then(
    (changed) => gateway.logger.info({ changed }, 'models directory read again'),
    (err: unknown) => gateway.logger.error({ err }, 'models directory not read again; still serving the previous state'),
  );
});

let signals = 0;
for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  process.on(signal, () => {
    if (++signals > 1) process.exit(1);
    gateway.logger.info({ signal }, 'draining');
    gateway.stop().then(
      () => process.exit(0),
      (err: unknown) => {
        gateway.logger.error({ err }, 'stop failed');
        process.exit(1);
      },
    );
  });
}
