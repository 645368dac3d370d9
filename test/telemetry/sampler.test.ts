import { describe, expect, it } from 'vitest';
import { TraceIdRatioBasedSampler } from '@opentelemetry/sdk-trace';
import { ROOT_CONTEXT, SamplingDecision } from '@opentelemetry/api';
import { createSampler, traceIdWord } from '../../gateway/telemetry/sampler.ts';

const ids = Array.from({ length: 400 }, (_, i) => (BigInt(i + 1) * 0x9e3779b97f4a7c15n * 0x1000193n).toString(16).padStart(32, '0').slice(-32));

describe('trace samplers (OTEL_TRACES_SAMPLER)', () => {
  it("traceidratio keeps exactly the traces the SDK's TraceIdRatioBasedSampler keeps", () => {
    for (const ratio of [0, 0.1, 0.5, 0.99, 1]) {
      const ours = createSampler({ name: 'traceidratio', ratio });
      const sdk = new TraceIdRatioBasedSampler(ratio);
      for (const traceId of ids) {
        const kept = sdk.shouldSample(ROOT_CONTEXT, traceId).decision === SamplingDecision.RECORD_AND_SAMPLED;
        expect(ours({ traceId, sampled: false }), `${ratio} ${traceId}`).toBe(kept);
      }
    }
    expect(traceIdWord('ffffffff00000000000000000000000f')).toBe(0xfffffff0);
  });

  it('parent-based samplers follow the sampled flag and decide roots by their own rule', () => {
    const parent = (sampled: boolean) => ({ traceId: 'ffffffff000000000000000000000000', sampled });
    const on = createSampler({ name: 'parentbased_always_on', ratio: 1 });
    expect([on(undefined), on(parent(true)), on(parent(false))]).toEqual([true, true, false]);
    const off = createSampler({ name: 'parentbased_always_off', ratio: 1 });
    expect([off(undefined), off(parent(true)), off(parent(false))]).toEqual([false, true, false]);
    const none = createSampler({ name: 'parentbased_traceidratio', ratio: 0 });
    expect([none(undefined), none(parent(true)), none(parent(false))]).toEqual([false, true, false]);
    const all = createSampler({ name: 'parentbased_traceidratio', ratio: 1 });
    expect(all(undefined)).toBe(true);
  });

  it('always_on and always_off ignore the parent', () => {
    const parent = { traceId: '0af7651916cd43dd8448eb211c80319c', sampled: false };
    expect(createSampler({ name: 'always_on', ratio: 0 })(parent)).toBe(true);
    expect(createSampler({ name: 'always_off', ratio: 1 })({ ...parent, sampled: true })).toBe(false);
  });

  it('a root request under traceidratio is kept at about the ratio', () => {
    const s = createSampler({ name: 'traceidratio', ratio: 0.25 });
    let kept = 0;
    for (let i = 0; i < 4000; i++) if (s(undefined)) kept++;
    expect(kept).toBeGreaterThan(800);
    expect(kept).toBeLessThan(1200);
  });
});
