import { SibylError } from '../../core/errors.ts';

/**
 * The error for a call whose signal was already aborted: DEADLINE_EXCEEDED when the reason is a timeout
 * (`AbortSignal.timeout`, or a SibylError DEADLINE_EXCEEDED), CANCELLED otherwise.
 */
export function abortError(signal: AbortSignal): SibylError {
  const reason: unknown = signal.reason;
  const deadline =
    (reason instanceof SibylError && reason.code === 'DEADLINE_EXCEEDED') ||
    (reason instanceof Error && reason.name === 'TimeoutError');
  return deadline
    ? new SibylError('DEADLINE_EXCEEDED', 'deadline exceeded before the model ran', { cause: reason })
    : new SibylError('CANCELLED', 'request cancelled before the model ran', { cause: reason });
}
