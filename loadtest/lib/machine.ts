/** What a report says about the machine it ran on. */
import { cpus, loadavg, release, totalmem } from 'node:os';
import { readFileSync } from 'node:fs';

export interface Machine {
  readonly cpu: string;
  readonly cores: number;
  readonly memoryGb: number;
  readonly kernel: string;
  readonly node: string;
  readonly loadAverageAtStart: readonly number[];
  readonly date: string;
  readonly commit: string;
}

export function describeMachine(commit: string): Machine {
  let cores = cpus().length;
  try {
    // The cgroup quota, when there is one, is what this container may use.
    const [quota, period] = readFileSync('/sys/fs/cgroup/cpu.max', 'utf8').trim().split(' ');
    if (quota && quota !== 'max' && period) cores = Math.min(cores, Number(quota) / Number(period));
  } catch {
    /* no cgroup v2 quota */
  }
  return {
    cpu: cpus()[0]?.model ?? 'unknown',
    cores,
    memoryGb: Math.round(totalmem() / 2 ** 30),
    kernel: release(),
    node: process.version,
    loadAverageAtStart: loadavg().map((l) => Math.round(l * 100) / 100),
    date: new Date().toISOString(),
    commit,
  };
}
