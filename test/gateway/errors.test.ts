import { describe, expect, it } from 'vitest';
import { status } from '@grpc/grpc-js';
import { Code, httpStatus, Reason, SibylError, toSibylError } from '../../core/errors.ts';

describe('the closed error-code set', () => {
  it('numbers every code exactly like gRPC', () => {
    for (const [name, n] of Object.entries(Code)) expect(status[name as keyof typeof status], name).toBe(n);
  });
  it('maps every code to an HTTP status, and no code to 200', () => {
    for (const name of Object.keys(Code) as (keyof typeof Code)[]) {
      expect(httpStatus[name], name).toBeGreaterThanOrEqual(400);
    }
    expect(Object.keys(httpStatus).sort()).toEqual(Object.keys(Code).sort());
  });
  it('keeps the cause of an unexpected error away from the client message', () => {
    const e = toSibylError(new Error('secret path /etc/x'));
    expect(e.code).toBe('INTERNAL');
    expect(e.message).toBe('internal error');
    expect((e.cause as Error).message).toBe('secret path /etc/x');
  });
  it('passes SibylErrors through with their status numbers', () => {
    const e = new SibylError('RESOURCE_EXHAUSTED', 'busy');
    expect(toSibylError(e)).toBe(e);
    expect([e.grpcCode, e.httpStatus]).toEqual([8, 429]);
  });
  it('refines a code for HTTP only through the Reason table, keeping the code for gRPC', () => {
    for (const [name, r] of Object.entries(Reason)) {
      const e = SibylError.because(name as keyof typeof Reason, 'x');
      expect([e.code, e.httpStatus, e.grpcCode], name).toEqual([r.code, r.httpStatus, Code[r.code]]);
      expect(r.httpStatus, name).toBeGreaterThanOrEqual(400);
    }
    expect(SibylError.because('BODY_TOO_LARGE', 'big').httpStatus).toBe(413);
    expect(new SibylError('INVALID_ARGUMENT', 'plain').httpStatus).toBe(400);
  });
});
