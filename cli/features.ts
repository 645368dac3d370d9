/** `sibyl features ...`: the online feature store. */
import { Command } from 'commander';
import { featuresLoadCommand } from './features-load.ts';

export function featuresCommand(): Command {
  return new Command('features').description('manage the online feature store').addCommand(featuresLoadCommand());
}
