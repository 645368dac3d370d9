import { describe, expect, it } from 'vitest';
import { CircuitBreaker } from '../../../runtimes/sagemaker/circuit-breaker.ts';

function clocked(failureThreshold = 3, openMs = 1000) {
  let t = 0;
  const breaker = new CircuitBreaker({ failureThreshold, openMs, now: () => t });
  return { breaker, advance: (ms: number) => (t += ms) };
}

describe('circuit breaker', () => {
  it('opens after the threshold of consecutive failures and refuses without a permit', () => {
    const { breaker } = clocked(3);
    breaker.tryAcquire()!.failure();
    breaker.tryAcquire()!.failure();
    expect(breaker.state).toBe('closed');
    breaker.tryAcquire()!.failure();
    expect(breaker.state).toBe('open');
    expect(breaker.tryAcquire()).toBeUndefined();
    expect(breaker.rejected).toBe(1);
    expect(breaker.opened).toBe(1);
  });

  it('a success resets the count; neutral outcomes neither count nor reset', () => {
    const { breaker } = clocked(3);
    breaker.tryAcquire()!.failure();
    breaker.tryAcquire()!.failure();
    breaker.tryAcquire()!.success();
    breaker.tryAcquire()!.failure();
    breaker.tryAcquire()!.failure();
    expect(breaker.state).toBe('closed');
    breaker.tryAcquire()!.release();
    breaker.tryAcquire()!.failure();
    expect(breaker.state).toBe('open');
  });

  it('half-open after openMs lets exactly one probe through; its success closes the breaker', () => {
    const { breaker, advance } = clocked(1, 1000);
    breaker.tryAcquire()!.failure();
    advance(999);
    expect(breaker.tryAcquire()).toBeUndefined();
    advance(1);
    expect(breaker.state).toBe('half-open');
    const probe = breaker.tryAcquire()!;
    expect(probe).toBeDefined();
    expect(breaker.tryAcquire()).toBeUndefined();
    probe.success();
    expect(breaker.state).toBe('closed');
    expect(breaker.tryAcquire()).toBeDefined();
  });

  it('a failed probe opens it again for another openMs; a released probe lets the next call probe', () => {
    const { breaker, advance } = clocked(1, 1000);
    breaker.tryAcquire()!.failure();
    advance(1000);
    breaker.tryAcquire()!.failure();
    expect(breaker.state).toBe('open');
    expect(breaker.opened).toBe(2);
    advance(500);
    expect(breaker.tryAcquire()).toBeUndefined();
    advance(500);
    breaker.tryAcquire()!.release();
    expect(breaker.state).toBe('half-open');
    breaker.tryAcquire()!.success();
    expect(breaker.state).toBe('closed');
  });

  it('outcomes of calls that started before the breaker opened do not close it, and each permit settles once', () => {
    const { breaker } = clocked(2);
    const early = breaker.tryAcquire()!;
    const p = breaker.tryAcquire()!;
    p.failure();
    p.failure(); // settling twice counts once
    expect(breaker.state).toBe('closed');
    breaker.tryAcquire()!.failure();
    expect(breaker.state).toBe('open');
    early.success();
    expect(breaker.state).toBe('open');
  });
});
