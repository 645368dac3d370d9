#!/usr/bin/env node
/**
 * The `sibyl` command line. Each subcommand lives in its own module and is listed below; nothing is discovered.
 * Exit status: 0 on success, 1 when a command fails (its message on stderr), 1 on a usage error.
 */
import { Command } from 'commander';
import { featuresCommand } from './features.ts';
import { gatewayCommands } from './gateway.ts';
import { rolloutCommands } from './rollout.ts';
import { rulesCommand } from './rules.ts';
import { replayCommand } from './replay.ts';
import { statsCommand } from './stats.ts';
import { towerCommands } from './tower.ts';

const subcommands: readonly (() => Command | Command[])[] = [gatewayCommands, featuresCommand, rulesCommand, towerCommands, rolloutCommands, statsCommand, replayCommand];

export function createProgram(): Command {
  // Positional options: `sibyl rollout status ID --wait` gives --wait to `status`, not to `rollout`, which has one too.
  const program = new Command('sibyl').description('Sibyl prediction gateway tools').showHelpAfterError().enablePositionalOptions();
  for (const make of subcommands) for (const c of [make()].flat()) program.addCommand(c);
  return program;
}

async function main(argv: readonly string[]): Promise<void> {
  try {
    await createProgram().parseAsync(argv as string[]);
  } catch (err) {
    process.stderr.write(`sibyl: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 1;
  }
}

await main(process.argv);
