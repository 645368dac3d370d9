/**
 * What a failed InvokeEndpoint attempt means: the SibylError the caller gets, whether another attempt may help, and
 * what it tells the endpoint's circuit breaker. The AWS error goes along as `cause` (for logs), never in the message.
 *
 * | failure                                                     | code               | retried | breaker  |
 * | ----------------------------------------------------------- | ------------------ | ------- | -------- |
 * | the request's signal aborted: deadline / client went away   | DEADLINE_EXCEEDED / CANCELLED | no | failure / neutral |
 * | no answer within the per-attempt `timeoutMs`                | DEADLINE_EXCEEDED  | no      | failure  |
 * | ThrottlingException (any status), other 429s                | RESOURCE_EXHAUSTED | yes     | failure  |
 * | ModelNotReadyException, 5xx (InternalFailure, ServiceUnavailable, InternalDependencyException), network errors | UNAVAILABLE | yes | failure |
 * | ModelError (the model container answered 4xx/5xx)           | INTERNAL           | no      | neutral  |
 * | ValidationError (no such endpoint/variant, bad content type) | FAILED_PRECONDITION | no     | neutral  |
 * | credentials / signature / access refused, anything else     | INTERNAL           | no      | neutral  |
 *
 * "neutral": the endpoint answered, so the call proves nothing about its health either way.
 */
import { SibylError } from '../../core/errors.ts';

export interface AttemptFailure {
  readonly error: SibylError;
  readonly retry: boolean;
  /** Whether the failure counts against the endpoint in its circuit breaker. */
  readonly countsAsFailure: boolean;
  readonly kind: 'aborted' | 'timeout' | 'throttled' | 'unavailable' | 'model' | 'validation' | 'other';
}

const NETWORK_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN', 'ECONNABORTED', 'UND_ERR_SOCKET']);
const THROTTLING_NAMES = new Set(['ThrottlingException', 'ThrottledException', 'Throttling', 'TooManyRequestsException', 'RequestLimitExceeded', 'SlowDown']);
const SERVER_NAMES = new Set(['InternalFailure', 'ServiceUnavailable', 'InternalDependencyException', 'InternalServerError']);

interface AwsLikeError {
  name?: unknown;
  code?: unknown;
  $fault?: unknown;
  $metadata?: { httpStatusCode?: number };
  OriginalStatusCode?: unknown;
}

/**
 * Classifies what `client.send` threw. `signal` is the request's; `attemptTimedOut` says the per-attempt timer
 * (not the request) aborted the call; `endpoint` names the endpoint in messages.
 */
export function classifyAttemptError(err: unknown, signal: AbortSignal, attemptTimedOut: boolean, endpoint: string, timeoutMs: number): AttemptFailure {
  if (signal.aborted) {
    const error = requestAbortError(signal);
    return { error, retry: false, countsAsFailure: error.code === 'DEADLINE_EXCEEDED', kind: 'aborted' };
  }
  if (attemptTimedOut) {
    return {
      error: new SibylError('DEADLINE_EXCEEDED', `SageMaker endpoint "${endpoint}" did not answer within ${timeoutMs} ms`, { cause: err }),
      retry: false,
      countsAsFailure: true,
      kind: 'timeout',
    };
  }
  const e = (err ?? {}) as AwsLikeError;
  const name = typeof e.name === 'string' ? e.name : '';
  const status = e.$metadata?.httpStatusCode;
  if (name === 'ModelError') {
    const original = typeof e.OriginalStatusCode === 'number' ? ` (the model answered ${e.OriginalStatusCode})` : '';
    return { error: new SibylError('INTERNAL', `the model behind SageMaker endpoint "${endpoint}" failed${original}`, { cause: err }), retry: false, countsAsFailure: false, kind: 'model' };
  }
  if (name === 'ValidationError') {
    return {
      error: new SibylError('FAILED_PRECONDITION', `SageMaker refused the request to endpoint "${endpoint}" as invalid (missing endpoint or variant, or a content type it does not take)`, { cause: err }),
      retry: false,
      countsAsFailure: false,
      kind: 'validation',
    };
  }
  if (THROTTLING_NAMES.has(name) || (status === 429 && name !== 'ModelNotReadyException')) {
    return { error: new SibylError('RESOURCE_EXHAUSTED', `SageMaker endpoint "${endpoint}" is throttling requests`, { cause: err }), retry: true, countsAsFailure: true, kind: 'throttled' };
  }
  const code = typeof e.code === 'string' ? e.code : '';
  if (name === 'ModelNotReadyException' || SERVER_NAMES.has(name) || e.$fault === 'server' || (status !== undefined && status >= 500) || NETWORK_CODES.has(code) || NETWORK_CODES.has(name) || name === 'TimeoutError') {
    return { error: new SibylError('UNAVAILABLE', `SageMaker endpoint "${endpoint}" is unavailable`, { cause: err }), retry: true, countsAsFailure: true, kind: 'unavailable' };
  }
  return { error: new SibylError('INTERNAL', `calling SageMaker endpoint "${endpoint}" failed`, { cause: err }), retry: false, countsAsFailure: false, kind: 'other' };
}

/** DEADLINE_EXCEEDED when the request's signal timed out (or carries a DEADLINE_EXCEEDED SibylError), else CANCELLED. */
export function requestAbortError(signal: AbortSignal): SibylError {
  const reason: unknown = signal.reason;
  if (reason instanceof SibylError && (reason.code === 'DEADLINE_EXCEEDED' || reason.code === 'CANCELLED')) return reason;
  return reason instanceof Error && reason.name === 'TimeoutError'
    ? new SibylError('DEADLINE_EXCEEDED', 'the request deadline passed before SageMaker answered', { cause: reason })
    : new SibylError('CANCELLED', 'the request was cancelled before SageMaker answered', { cause: reason });
}
