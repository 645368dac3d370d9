/**
 * The JSON bodies of the gateway's REST routes that are not protobuf messages (rest-app.ts): health and the
 * live-versus-shadow comparison. The handlers type their answers by these (`satisfies z.input<...>`), and the
 * OpenAPI document (openapi.ts) is generated from them. Predictions are the ProtoJSON of sibyl.v1 messages; the
 * Open Inference Protocol's bodies are in oip/oip-rest-schemas.ts.
 */
import { z } from 'zod';

export { Live, Ready } from './oip/oip-rest-schemas.ts';

const count = z.number().int().nonnegative();

const Percentiles = z.object({ p50: z.number(), p90: z.number(), p99: z.number(), max: z.number() }).meta({ id: 'Percentiles' });

const OutputComparison = z
  .discriminatedUnion('kind', [
    z.object({ kind: z.literal('number'), count, meanAbsDiff: z.number(), absDiff: Percentiles }),
    z.object({ kind: z.literal('label'), count, agreement: z.number().min(0).max(1) }),
  ])
  .meta({ id: 'OutputComparison', description: 'number: absolute differences (vectors: mean over elements per row); label: share of rows that agree.' });

const VersionRef = z.object({ model: z.string(), version: z.string() });

export const ShadowPair = z
  .object({
    live: VersionRef,
    shadow: VersionRef,
    executed: count,
    shed: count,
    errors: z.record(z.string(), count).meta({ description: 'failed executions by error code' }),
    latencyMs: Percentiles.meta({ description: 'shadow latency, milliseconds' }),
    outputs: z.record(z.string(), OutputComparison),
  })
  .meta({ id: 'ShadowPair' });

export const ShadowPairs = z.object({ pairs: z.array(ShadowPair) }).meta({ id: 'ShadowPairs' });
