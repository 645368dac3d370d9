/** A prediction sink that keeps records in memory: for pipeline tests (the real sinks have their own suites). */
import type { PredictionSink, SinkStats } from '../../gateway/log/prediction-sink.ts';
import type { PredictionRecord } from '../../gateway/log/prediction-record.ts';

export interface MemorySink extends PredictionSink {
  readonly records: PredictionRecord[];
}

export function createMemorySink(): MemorySink {
  const records: PredictionRecord[] = [];
  const stats = (): SinkStats => ({ accepted: records.length, delivered: records.length, spilled: 0, lost: 0, pending: 0 });
  return {
    kind: 'memory',
    records,
    write: (r) => void records.push(r),
    flush: () => Promise.resolve(),
    shutdown: () => Promise.resolve(),
    stats,
  };
}
