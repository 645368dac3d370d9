import { describe, expect, it } from 'vitest';
import { status } from '@grpc/grpc-js';
import { Code, httpStatus, SibylError, toSibylError } from '../../core/errors.ts';

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
});
