/**
 * Replay of one spill-log segment to Kafka, in order: `maxInFlight` batches of `batchSize` lines at a time.
 * After each window only the acked prefix counts (the cursor moves past it); the rest is sent again on the next
 * try, so a failure duplicates at most the batches acked after the first failed one in its window.
 */
import { predictionMessageFromJson } from './cloud-event.ts';
import type { PredictionMessage } from './cloud-event.ts';
import type { SpillLog, SpillSegment } from './spill-log.ts';

export interface ReplayDeps {
  batchSize: number;
  maxInFlight: number;
  /** Source cell for records without one. */
  fallbackCell: string;
  /** One Kafka send of a batch; rejects when it fails. */
  send(messages: PredictionMessage[]): Promise<unknown>;
  /** Stop between windows (shutdown). */
  stopped(): boolean;
  /** Called with the count of records the broker acked. */
  delivered(count: number): void;
  /** Called once per line that is not a JSON object (it is skipped). */
  unreadable(err: unknown): void;
}

/** Throws the first failed send's error; returns the records sent. Removes the segment when all of it went. */
export async function replaySegment(spill: SpillLog, segment: SpillSegment, deps: ReplayDeps): Promise<number> {
  let line = 0;
  let sent = 0;
  while (line < segment.lines.length && !deps.stopped()) {
    const window: { lines: number; messages: PredictionMessage[] }[] = [];
    let end = line;
    while (window.length < deps.maxInFlight && end < segment.lines.length) {
      const chunk = segment.lines.slice(end, end + deps.batchSize);
      const messages: PredictionMessage[] = [];
      for (const json of chunk) {
        try {
          messages.push(predictionMessageFromJson(json, deps.fallbackCell));
        } catch (err) {
          deps.unreadable(err);
        }
      }
      window.push({ lines: chunk.length, messages });
      end += chunk.length;
    }
    const results = await Promise.allSettled(
      window.map((w) => (w.messages.length === 0 ? Promise.resolve() : deps.send(w.messages))),
    );
    let failure: unknown;
    for (const [i, result] of results.entries()) {
      const w = window[i];
      if (w === undefined) break;
      if (result.status === 'rejected') {
        failure = result.reason ?? new Error('send failed');
        break;
      }
      line += w.lines;
      sent += w.messages.length;
      deps.delivered(w.messages.length);
    }
    await spill.ack(segment.name, segment.firstLine + line);
    if (failure !== undefined) throw failure;
  }
  if (line >= segment.lines.length) await spill.remove(segment.name);
  return sent;
}
