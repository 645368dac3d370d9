/**
 * Sibyl's one closed set of error codes, numbered like gRPC status codes, and the one table to HTTP statuses.
 * Every error a client sees is a SibylError; its `cause` goes to logs, never to the client.
 */
export const Code = {
  CANCELLED: 1,
  UNKNOWN: 2,
  INVALID_ARGUMENT: 3,
  DEADLINE_EXCEEDED: 4,
  NOT_FOUND: 5,
  ALREADY_EXISTS: 6,
  PERMISSION_DENIED: 7,
  RESOURCE_EXHAUSTED: 8,
  FAILED_PRECONDITION: 9,
  ABORTED: 10,
  OUT_OF_RANGE: 11,
  UNIMPLEMENTED: 12,
  INTERNAL: 13,
  UNAVAILABLE: 14,
  DATA_LOSS: 15,
  UNAUTHENTICATED: 16,
} as const;
export type CodeName = keyof typeof Code;
export type CodeNumber = (typeof Code)[CodeName];

/** HTTP status for each code (the table connect-es and grpc-gateway agree on; 499 for a cancelled client). */
export const httpStatus: Readonly<Record<CodeName, number>> = Object.freeze({
  CANCELLED: 499,
  UNKNOWN: 500,
  INVALID_ARGUMENT: 400,
  DEADLINE_EXCEEDED: 504,
  NOT_FOUND: 404,
  ALREADY_EXISTS: 409,
  PERMISSION_DENIED: 403,
  RESOURCE_EXHAUSTED: 429,
  FAILED_PRECONDITION: 412,
  ABORTED: 409,
  OUT_OF_RANGE: 400,
  UNIMPLEMENTED: 501,
  INTERNAL: 500,
  UNAVAILABLE: 503,
  DATA_LOSS: 500,
  UNAUTHENTICATED: 401,
});

/**
 * Seconds a client should wait before retrying after an error of this code (HTTP `retry-after`), or undefined
 * when the answer says nothing about retrying. Refusals for capacity: retry after a second, with backoff.
 */
export function retryAfterSeconds(code: CodeName): number | undefined {
  return code === 'RESOURCE_EXHAUSTED' ? 1 : undefined;
}

/**
 * Refinements of a code that HTTP says more precisely than the code's status, each with its code and status: a body
 * over the size limit is INVALID_ARGUMENT (the same request will never pass: do not retry) but HTTP 413, and a
 * predict path asked with another method is UNIMPLEMENTED but HTTP 405. Like `httpStatus`, the one place they map.
 */
export const Reason = {
  BODY_TOO_LARGE: { code: 'INVALID_ARGUMENT', httpStatus: 413 },
  METHOD_NOT_ALLOWED: { code: 'UNIMPLEMENTED', httpStatus: 405 },
} as const satisfies Record<string, { code: CodeName; httpStatus: number }>;
export type ReasonName = keyof typeof Reason;

export class SibylError extends Error {
  readonly code: CodeName;
  /** A refinement of the code for HTTP (see Reason); undefined for most errors. */
  readonly reason: ReasonName | undefined;
  constructor(code: CodeName, message: string, options?: { cause?: unknown; reason?: ReasonName }) {
    super(message, options);
    this.name = 'SibylError';
    this.code = code;
    this.reason = options?.reason;
  }

  /** An error with a Reason: its code comes from the Reason table. */
  static because(reason: ReasonName, message: string): SibylError {
    return new SibylError(Reason[reason].code, message, { reason });
  }
  get grpcCode(): CodeNumber {
    return Code[this.code];
  }
  get httpStatus(): number {
    return this.reason ? Reason[this.reason].httpStatus : httpStatus[this.code];
  }
}

/** Any thrown value as a SibylError: SibylErrors pass through, everything else becomes INTERNAL with a bland message. */
export function toSibylError(err: unknown): SibylError {
  if (err instanceof SibylError) return err;
  return new SibylError('INTERNAL', 'internal error', { cause: err });
}
