import { fromJsonString, toJsonString } from '@bufbuild/protobuf';
import { describe, expect, it } from 'vitest';
import { predictionMessage, predictionMessageFromJson, RECORD_DATA_SCHEMA } from '../../gateway/log/cloud-event.ts';
import { recordTime, recordToJson, type PredictionRecord } from '../../gateway/log/prediction-record.ts';
import { buildRecord } from '../../gateway/pipeline/record.ts';
import type { InputRow, RequestContext } from '../../gateway/pipeline/pipeline.ts';
import type { Route } from '../../gateway/routing/route-table.ts';
import { SibylError } from '../../core/errors.ts';
import { PredictionRecordSchema } from '../../proto/gen/sibyl/v1/prediction_log_pb.js';

const ctx: RequestContext = { requestId: 'req-1', signal: new AbortController().signal, startMs: 0, transport: 'rest' };
const route = { model: 'delivery-eta', version: '2' } as Route;
const input: InputRow[] = [
  { entities: { restaurant: 'r-1', zone: 'z-9' }, features: {} },
  { entities: {}, features: {} },
];

/** What protobuf-es writes for the same record: parse our JSON with the schema, write it back. */
function canonical(json: string): string {
  return toJsonString(PredictionRecordSchema, fromJsonString(PredictionRecordSchema, json), { alwaysEmitImplicit: true });
}

describe('prediction record (ProtoJSON of sibyl.v1.PredictionRecord)', () => {
  it('is byte for byte the canonical ProtoJSON of the schema for a live record', () => {
    const record = buildRecord(
      'cell-a', ctx, route, 'treatment', input,
      [{ distance_km: 3.25, is_raining: true, city: 'pune' }, { distance_km: 0, is_raining: false, city: '' }],
      [
        { outputs: { eta_minutes: 31.5, probabilities: [0.25, 0.75], label: 'late' }, defaulted: ['prep_time_avg_1h'] },
        { outputs: { eta_minutes: -1e-7, probabilities: [], label: '' }, defaulted: [] },
      ],
      0.2154, 1.5, undefined,
    );
    const json = recordToJson(record);
    expect(json).toBe(canonical(json));
    expect(JSON.parse(json)).toMatchObject({
      requestId: 'req-1', cell: 'cell-a', model: 'delivery-eta', version: '2', role: 'ROLE_LIVE', arm: 'treatment',
      modelLatencyUs: '215', totalLatencyUs: '1500',
      rows: [{ entities: { restaurant: 'r-1', zone: 'z-9' }, features: { distance_km: 3.25 }, outputs: { probabilities: [0.25, 0.75] }, defaultedFeatures: ['prep_time_avg_1h'] }, {}],
    });
    expect(JSON.parse(json).error).toBeUndefined();
  });

  it('is canonical for a failed shadow execution (no features, no outputs, the error set)', () => {
    const record = buildRecord('cell-a', ctx, route, '', input.slice(0, 1), undefined, undefined, 0, 12.3456, new SibylError('DEADLINE_EXCEEDED', 'shadow "x" took longer than 250 ms'), 'ROLE_SHADOW');
    const json = recordToJson(record);
    expect(json).toBe(canonical(json));
    expect(JSON.parse(json)).toMatchObject({ role: 'ROLE_SHADOW', modelLatencyUs: '0', totalLatencyUs: '12346', error: { code: 'DEADLINE_EXCEEDED' } });
  });

  it('writes a non-finite output as null (google.protobuf.Value cannot hold it) instead of losing the record', () => {
    const record = buildRecord('c', ctx, route, '', input.slice(1), [{}], [{ outputs: { score: Number.NaN, more: [Infinity, 1] }, defaulted: [] }], 1, 2, undefined);
    const json = recordToJson(record);
    expect(json).toBe(canonical(json));
    expect(JSON.parse(json).rows[0].outputs).toEqual({ score: null, more: [null, 1] });
  });

  it('writes the time as RFC 3339 with milliseconds, and without a fraction on a whole second, as protobuf-es does', () => {
    for (const ms of [1_767_225_600_000, 1_767_225_600_007, 1_767_225_600_120, 1_767_225_600_999]) {
      const record: PredictionRecord = { ...buildRecord('c', ctx, route, '', [], undefined, undefined, 0, 0, undefined), time: recordTime(ms) };
      const json = recordToJson(record);
      expect(json).toBe(canonical(json));
      expect(Date.parse(record.time)).toBe(ms);
    }
    expect(recordTime(1_767_225_600_000)).toBe('2026-01-01T00:00:00Z');
    expect(recordTime(1_767_225_600_120)).toBe('2026-01-01T00:00:00.120Z');
    // The formatted second is reused within a second and replaced when the second changes, in either direction.
    expect(recordTime(1_767_225_661_005)).toBe('2026-01-01T00:01:01.005Z');
    expect(recordTime(1_767_225_661_050.9)).toBe('2026-01-01T00:01:01.050Z');
    expect(recordTime(1_767_225_600_999)).toBe('2026-01-01T00:00:00.999Z');
    expect(recordTime(1_798_761_599_999)).toBe('2026-12-31T23:59:59.999Z');
    expect(recordTime(1_798_761_600_000)).toBe('2027-01-01T00:00:00Z');
  });

  it('gives the same CloudEvent whether built from the record or replayed from its JSON line', () => {
    const record = buildRecord('cell-b', ctx, route, 'control', input, [{ a: 1 }, { a: 2 }], [{ outputs: { y: 1 }, defaulted: [] }, { outputs: { y: 2 }, defaulted: [] }], 1, 2, undefined);
    const json = recordToJson(record);
    expect(predictionMessageFromJson(json, 'fallback')).toEqual(predictionMessage(record, 'fallback'));
    const event = JSON.parse(predictionMessage(record, 'fallback').value) as Record<string, unknown>;
    expect(event).toMatchObject({ id: record.predictionId, source: 'sibyl/cell-b', subject: 'delivery-eta/2', time: record.time });
    expect(event.data).toEqual(JSON.parse(json));
    expect(event.dataschema).toBe(RECORD_DATA_SCHEMA);
    expect(event).not.toHaveProperty('traceparent');
  });

  it("names each record's own source and subject, records of several cells and versions interleaved", () => {
    const base = buildRecord('cell-a', ctx, route, '', input.slice(0, 1), undefined, undefined, 0, 1, undefined);
    // Names that quote differently, and two model/version pairs with the same subject.
    const cases = [
      { cell: 'cell-a', model: 'delivery-eta', version: '2' },
      { cell: 'cell-a', model: 'delivery-eta', version: '3' },
      { cell: 'cell-a', model: 'fraud', version: '3' },
      { cell: 'cell-b', model: 'fraud', version: '3' },
      { cell: 'cell-b', model: 'delivery-eta', version: '2' },
      { cell: 'cell-a', model: 'fraud', version: '10' },
      { cell: '', model: 'fraud', version: '10' },
      { cell: 'cell-"q"', model: 'a/b', version: 'c' },
      { cell: 'cell-"q"', model: 'a', version: 'b/c' },
      { cell: 'cell-a', model: 'delivery-eta', version: '3' },
    ];
    for (let round = 0; round < 3; round++) {
      for (const c of round === 1 ? [...cases].reverse() : cases) {
        const record: PredictionRecord = { ...base, ...c };
        const event = JSON.parse(predictionMessage(record, 'fallback').value) as Record<string, unknown>;
        expect(event).toMatchObject({ source: `sibyl/${c.cell || 'fallback'}`, subject: `${c.model}/${c.version}` });
      }
    }
  });

  it('carries the trace context: canonical in the record, the distributed-tracing extension in the CloudEvent', () => {
    const traceparent = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01';
    const base = buildRecord('cell-a', ctx, route, '', input.slice(0, 1), undefined, undefined, 0, 1, new SibylError('INTERNAL', 'x'));
    const traced: PredictionRecord = { ...base, traceparent, tracestate: 'vendor=a,other=b' };
    const json = recordToJson(traced);
    expect(json).toBe(canonical(json));
    expect(JSON.parse(json)).toMatchObject({ traceparent, tracestate: 'vendor=a,other=b', error: { code: 'INTERNAL' } });
    const event = JSON.parse(predictionMessage(traced, 'fallback').value) as Record<string, unknown>;
    expect(event).toMatchObject({ traceparent, tracestate: 'vendor=a,other=b', dataschema: RECORD_DATA_SCHEMA });
    expect(predictionMessageFromJson(json, 'fallback')).toEqual(predictionMessage(traced, 'fallback'));
    // Without a tracestate, the event has none either.
    const plain = JSON.parse(predictionMessage({ ...base, traceparent }, 'fallback').value) as Record<string, unknown>;
    expect(plain.traceparent).toBe(traceparent);
    expect(plain).not.toHaveProperty('tracestate');
  });

  it("is built with the request's trace context, or the one given (a shadow's own span)", () => {
    const traceparent = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01';
    const traced: RequestContext = { ...ctx, trace: { traceparent, tracestate: 'vendor=a', recorded: true } };
    const live = buildRecord('cell-a', traced, route, '', input.slice(0, 1), [{}], [{ outputs: { y: 1 }, defaulted: [] }], 1, 2, undefined);
    expect(JSON.parse(recordToJson(live))).toMatchObject({ traceparent, tracestate: 'vendor=a' });
    const own = { traceparent: '00-1af7651916cd43dd8448eb211c80319c-c7ad6b7169203331-01', tracestate: '', recorded: true };
    const shadow = buildRecord('cell-a', traced, route, '', input.slice(0, 1), [{}], [{ outputs: { y: 1 }, defaulted: [] }], 1, 2, undefined, 'ROLE_SHADOW', own);
    const json = recordToJson(shadow);
    expect(json).toBe(canonical(json));
    expect(JSON.parse(json).traceparent).toBe(own.traceparent);
    expect(JSON.parse(json)).not.toHaveProperty('tracestate');
    expect(JSON.parse(recordToJson(buildRecord('cell-a', ctx, route, '', input.slice(0, 1), undefined, undefined, 0, 1, undefined)))).not.toHaveProperty('traceparent');
  });
});
