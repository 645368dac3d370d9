/** Prediction logging turned off: records are counted in `accepted` and dropped on purpose (not `lost`). */
import type { PredictionSink, SinkStats } from './prediction-sink.ts';
import type { PredictionRecord } from './prediction-record.ts';

export function createNullSink(): PredictionSink {
  let accepted = 0;
  return {
    kind: 'null',
    write(_record: PredictionRecord): void {
      accepted++;
    },
    async flush(): Promise<void> {},
    async shutdown(): Promise<void> {},
    stats(): SinkStats {
      return { accepted, delivered: 0, spilled: 0, lost: 0, pending: 0 };
    },
  };
}
