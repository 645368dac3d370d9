/**
 * A caller that goes away stops its work: a gRPC client that cancels its call (as grpc-go and grpc-java do at the
 * call's deadline) or an HTTP client that closes its connection while the gateway waits for the feature store gets
 * no model run; the request ends CANCELLED, counted and logged as such. Calls that stay are answered as before.
 * A real gateway on 127.0.0.1 with a feature store the test holds, and real grpc-js and HTTP clients.
 */
import * as grpc from '@grpc/grpc-js';
import { create, toBinary } from '@bufbuild/protobuf';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PredictionService, PredictRequestSchema } from '../../proto/gen/sibyl/v1/predict_pb.js';
import type { FeatureStore } from '../../execution/feature-store.ts';
import { createMemoryFeatureStore } from '../../gateway/features/memory-feature-store.ts';
import { expectedFor } from '../helpers/expected.ts';
import { startGateway, type TestGateway } from '../helpers/gateway.ts';
import { createMemorySink, type MemorySink } from '../helpers/memory-sink.ts';

/** A feature store whose reads wait while the test holds it; `reading` resolves when a read has started. */
function heldStore() {
  const inner = createMemoryFeatureStore();
  let release: () => void = () => {};
  let held: Promise<void> | undefined;
  let started: () => void = () => {};
  const store: FeatureStore = {
    ...inner,
    async read(lookups, timeoutMs) {
      started();
      if (held) await held;
      return inner.read(lookups, timeoutMs);
    },
  };
  return {
    store,
    /** Holds the next reads; resolves once one has started. */
    hold(): Promise<void> {
      held = new Promise((r) => (release = r));
      return new Promise((r) => (started = r));
    },
    release(): void {
      held = undefined;
      release();
    },
  };
}

const row = expectedFor('delivery-eta', '1').rows[0]!;
const rows = [{ entities: row.entities, features: row.request }];
const message = toBinary(
  PredictRequestSchema,
  create(PredictRequestSchema, {
    model: 'delivery-eta',
    rows: [{ entities: row.entities, features: Object.fromEntries(Object.entries(row.request).map(([k, v]) => [k, { kind: { case: 'numberValue' as const, value: v } }])) }],
  }),
);
const PATH = `/${PredictionService.typeName}/${PredictionService.method.predict.name}`;

let gw: TestGateway;
let store: ReturnType<typeof heldStore>;
let sink: MemorySink;
/** Plain calls (answered on the HTTP/2 stream) and gzip-compressed ones (answered through grpc-js). */
let clients: Record<'plain' | 'gzip', grpc.Client>;

beforeAll(async () => {
  store = heldStore();
  sink = createMemorySink();
  gw = await startGateway({}, { store: store.store, sink });
  clients = {
    plain: new grpc.Client(gw.grpcAddress, grpc.credentials.createInsecure()),
    gzip: new grpc.Client(gw.grpcAddress, grpc.credentials.createInsecure(), { 'grpc.default_compression_algorithm': 2 }),
  };
});
afterAll(async () => {
  for (const c of Object.values(clients)) c.close();
  await gw.stop();
});

async function metric(name: string, labels: string): Promise<number> {
  const text = await (await fetch(`${gw.http}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`${name}{`) && l.includes(labels));
  return line === undefined ? 0 : Number(line.slice(line.lastIndexOf(' ') + 1));
}
const modelRuns = () => metric('sibyl_runtime_calls_total', 'runtime="onnx"');
const cancelledRequests = (transport: string) => metric('sibyl_requests_total', `transport="${transport}",code="CANCELLED"`);

/** Starts a call; resolves with its status code once the client has its end. */
function grpcCall(client: grpc.Client, requestId: string): { call: grpc.ClientUnaryCall; done: Promise<number> } {
  let call!: grpc.ClientUnaryCall;
  const md = new grpc.Metadata();
  md.set('x-request-id', requestId);
  const done = new Promise<number>((resolve) => {
    call = client.makeUnaryRequest(PATH, (b: Buffer) => b, (b: Buffer) => b, Buffer.from(message), md, {}, (err) => resolve(err ? err.code : grpc.status.OK));
  });
  return { call, done };
}

/** Waits until the gateway's log has a record of `requestId` (the entry writes it when the request ends). */
async function recordOf(requestId: string) {
  for (let i = 0; i < 200; i++) {
    const r = sink.records.find((x) => x.requestId === requestId);
    if (r) return r;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error(`no record of ${requestId}`);
}

/** How long the test lets a reset or a closed connection travel over loopback before it releases the store. */
const TRAVEL_MS = 200;

describe('a caller that goes away while the gateway waits for the feature store', () => {
  it.each(['plain', 'gzip'] as const)('a cancelled gRPC call (%s) runs no model and ends CANCELLED; a call that stays is answered', async (kind) => {
    const client = clients[kind];
    const runs = await modelRuns();
    const cancelledBefore = await cancelledRequests('grpc');
    const reading = store.hold();
    const gone = grpcCall(client, `grpc-gone-${kind}`);
    await reading;
    gone.call.cancel();
    expect(await gone.done).toBe(grpc.status.CANCELLED);
    await new Promise((r) => setTimeout(r, TRAVEL_MS));
    store.release();

    const record = await recordOf(`grpc-gone-${kind}`);
    expect(record.error?.code).toBe('CANCELLED');
    expect(record.rows[0]?.outputs).toEqual({});
    expect(await modelRuns()).toBe(runs);
    expect(await cancelledRequests('grpc')).toBe(cancelledBefore + 1);

    // The same wait without a cancel: the call is answered and the model runs once.
    const held = store.hold();
    const stays = grpcCall(client, `grpc-stays-${kind}`);
    await held;
    await new Promise((r) => setTimeout(r, TRAVEL_MS));
    store.release();
    expect(await stays.done).toBe(grpc.status.OK);
    expect((await recordOf(`grpc-stays-${kind}`)).error).toBeUndefined();
    expect(await modelRuns()).toBe(runs + 1);
  });

  it('an HTTP client that closes its connection gets no model run; one that waits is answered', async () => {
    const runs = await modelRuns();
    const cancelledBefore = await cancelledRequests('rest');
    const post = (requestId: string, signal?: AbortSignal) =>
      fetch(`${gw.http}/v1/models/delivery-eta:predict`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-request-id': requestId },
        body: JSON.stringify({ rows }),
        signal,
      });
    const reading = store.hold();
    const abort = new AbortController();
    const gone = post('rest-gone', abort.signal).catch((e: unknown) => e);
    await reading;
    abort.abort();
    expect(await gone).toBeInstanceOf(Error);
    await new Promise((r) => setTimeout(r, TRAVEL_MS));
    store.release();

    const record = await recordOf('rest-gone');
    expect(record.error?.code).toBe('CANCELLED');
    expect(await modelRuns()).toBe(runs);
    expect(await cancelledRequests('rest')).toBe(cancelledBefore + 1);

    const held = store.hold();
    const stays = post('rest-stays');
    await held;
    await new Promise((r) => setTimeout(r, TRAVEL_MS));
    store.release();
    expect((await stays).status).toBe(200);
    expect((await recordOf('rest-stays')).error).toBeUndefined();
    expect(await modelRuns()).toBe(runs + 1);
  });
});
