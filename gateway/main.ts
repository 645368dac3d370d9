#!/usr/bin/env node
/**
 * A gateway process: reads the configuration from the environment, starts the gateway, drains on SIGTERM/SIGINT.
 * Without a control tower, SIGHUP reads the models directory again and serves what changed.
 *
 * With SIBYL_WORKERS above 1 this process is the supervisor of that many workers instead (gateway/workers/
 * supervisor.ts): each is this same script with SIBYL_WORKER_INDEX set; the supervisor passes SIGTERM, SIGINT (as
 * SIGTERM) and SIGHUP on, and exits once every worker has drained. A worker ignores SIGINT (a terminal sends it to
 * the whole process group; its supervisor passes it on) and drains when its supervisor is gone.
 */
import { pino } from 'pino';
import { hostname } from 'node:os';
import { ConfigError, loadConfig, type Config } from './config.ts';
import { createGateway } from './gateway.ts';

let config: Config;
try {
  config = loadConfig(process.env);
} catch (err) {
  if (err instanceof ConfigError) {
    process.stderr.write(`${err.message}\n`);
    process.exit(2);
  }
  throw err;
}

if (config.workers > 1 && config.workerIndex === undefined) await supervise(config);
else await serve(config);

async function supervise(config: Config): Promise<void> {
  const logger = pino({ level: config.logLevel, base: { pid: process.pid, hostname: hostname(), cell: config.cell, role: 'supervisor' } });
  const { startSupervisor } = await import('./workers/supervisor.ts');
  let supervisor;
  try {
    supervisor = await startSupervisor({ config, logger });
  } catch (err) {
    logger.error({ err }, 'gateway not started');
    process.exit(1);
  }
  logger.info({ workers: config.workers, httpPort: config.httpPort, grpcPort: config.grpcPort }, 'sibyl gateway supervising workers');
  process.on('SIGHUP', () => supervisor.signal('SIGHUP'));
  let signals = 0;
  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    process.on(signal, () => {
      if (++signals > 1) {
        supervisor.kill();
        process.exit(1);
      }
      logger.info({ signal }, 'draining every worker');
      void supervisor.stop().then((code) => {
        logger.info({ code }, 'sibyl gateway stopped');
        process.exit(code);
      });
    });
  }
}

async function serve(config: Config): Promise<void> {
  // Until it serves, a signal ends the process at once: nothing has been accepted yet.
  const early = () => process.exit(0);
  const earlySignals = ['SIGTERM', ...(config.workerIndex === undefined ? [] : ['SIGINT'])] as const;
  for (const s of earlySignals) process.on(s, early);
  const link = config.workerIndex === undefined ? undefined : (await import('./workers/worker-link.ts')).connectToSupervisor();
  const gateway = await createGateway(config, link ? { pod: link } : {});
  await gateway.start();
  link?.serve(gateway);
  for (const s of earlySignals) process.off(s, early);

  process.on('SIGHUP', () => {
    gateway.reloadModels().then(
      (changed) => gateway.logger.info({ changed }, 'models directory read again'),
      (err: unknown) => gateway.logger.error({ err }, 'models directory not read again; still serving the previous state'),
    );
  });

  let signals = 0;
  const drain = (why: string): void => {
    if (++signals > 1) process.exit(1);
    gateway.logger.info({ signal: why }, 'draining');
    link?.draining();
    gateway.stop().then(
      () => process.exit(0),
      (err: unknown) => {
        gateway.logger.error({ err }, 'stop failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => drain('SIGTERM'));
  if (link) {
    process.on('SIGINT', () => {});
    link.onSupervisorGone(() => drain('supervisor gone'));
  } else process.on('SIGINT', () => drain('SIGINT'));
}
