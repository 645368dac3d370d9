import { describe, expect, it } from 'vitest';
import { AdmissionControl } from '../../gateway/pipeline/admission.ts';

describe('AdmissionControl', () => {
  it('refuses beyond maxInflight with RESOURCE_EXHAUSTED, and admits again after a release', () => {
    const a = new AdmissionControl({ maxInflight: 2, maxLagMs: 1000 });
    a.admit();
    a.admit();
    expect(() => a.admit()).toThrow(expect.objectContaining({ code: 'RESOURCE_EXHAUSTED' }));
    a.release();
    expect(() => a.admit()).not.toThrow();
    expect(a.stats()).toMatchObject({ inflight: 2, admitted: 3, rejected: 1 });
  });

  it('refuses while the event loop is behind, and recovers once it catches up', async () => {
    const a = new AdmissionControl({ maxInflight: 100, maxLagMs: 20, sampleMs: 5 });
    a.start();
    try {
      await new Promise((r) => setTimeout(r, 20));
      expect(() => a.admit()).not.toThrow();
      a.release();
      const until = performance.now() + 120;
      while (performance.now() < until); // a blocked event loop, as under overload
      await new Promise((r) => setTimeout(r, 6));
      expect(a.stats().lagMs).toBeGreaterThan(20);
      expect(() => a.admit()).toThrow(/event loop \d+ ms behind/);
      await new Promise((r) => setTimeout(r, 100));
      expect(() => a.admit()).not.toThrow();
    } finally {
      a.stop();
    }
  });
});
