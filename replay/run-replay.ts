/**
 * One replay from end to end: the candidate's bundle loaded (candidate.ts), the prediction log read from Kafka with
 * a consumer group of this replay's own (log-reader.ts), the records replayed and compared (replay.ts). What
 * `sibyl replay` and the control tower's replay process run.
 */
import { randomUUID } from 'node:crypto';
import { loadCandidate } from './candidate.ts';
import { readPredictionLog } from './log-reader.ts';
import { replay, type ReplayOptions, type ReplayReport } from './replay.ts';

export interface RunReplayOptions extends ReplayOptions {
  readonly brokers: readonly string[];
  readonly topic: string;
  /** The consumer group (default `sibyl-replay-<uuid>`: one of its own). */
  readonly groupId?: string;
}

/** Records reach Kafka a little after their request arrived: the log is searched from this much before `fromMs`. */
const SEEK_MARGIN_MS = 60_000;

export async function runReplay(zip: Buffer, options: RunReplayOptions): Promise<ReplayReport & { readonly groupId: string }> {
  const groupId = options.groupId ?? `sibyl-replay-${randomUUID()}`;
  const candidate = await loadCandidate(zip);
  try {
    const log = readPredictionLog({
      brokers: options.brokers,
      topic: options.topic,
      groupId,
      fromMs: options.fromMs === undefined ? undefined : options.fromMs - SEEK_MARGIN_MS,
      signal: options.signal,
    });
    return { ...(await replay(candidate.version, log, options)), groupId };
  } finally {
    await candidate.close();
  }
}
