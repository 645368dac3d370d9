/**
 * Bounds the uploads validated at once. Each validation is a separate process with a large heap and a model load,
 * so a burst of uploads must not start one process each: at most `concurrency` run, up to `queue` more wait their
 * turn in arrival order, and any upload beyond that is refused at once with RESOURCE_EXHAUSTED (429: retry later).
 */
import { SibylError } from '../../core/errors.ts';
import type { UploadValidator } from './upload-validator.ts';

export interface ValidationGateOptions {
  /** Validations running at once (default 2). */
  readonly concurrency?: number;
  /** Uploads waiting for a turn (default 8); beyond it RESOURCE_EXHAUSTED. */
  readonly queue?: number;
}

export function limitValidations(validator: UploadValidator, options: ValidationGateOptions = {}): UploadValidator {
  const concurrency = options.concurrency ?? 2;
  const queue = options.queue ?? 8;
  let running = 0;
  const waiting: (() => void)[] = [];

  function release(): void {
    const next = waiting.shift();
    if (next) next();
    else running--;
  }

  async function inTurn<T>(work: () => Promise<T>): Promise<T> {
    if (running >= concurrency) {
      if (waiting.length >= queue) {
        throw new SibylError('RESOURCE_EXHAUSTED', `too many uploads are being validated (${concurrency} running, ${queue} waiting); retry later`);
      }
      // The slot is handed over by release(): `running` stays the same.
      await new Promise<void>((resolve) => waiting.push(resolve));
    } else {
      running++;
    }
    try {
      return await work();
    } finally {
      release();
    }
  }

  return {
    validate: (zip) => inTurn(() => validator.validate(zip)),
    // An inspection is a validation of its own process: it takes a turn like an upload.
    inspect: (zip, rows) => inTurn(() => validator.inspect(zip, rows)),
    close: () => validator.close(),
  };
}
