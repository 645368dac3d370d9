/** Starts a real gateway on free loopback ports for end-to-end tests, with clients for every front door. */
import * as grpc from '@grpc/grpc-js';
import { create, fromBinary, toBinary, type DescMessage, type DescService, type MessageInitShape, type MessageShape } from '@bufbuild/protobuf';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { loadConfig } from '../../gateway/config.ts';
import { createGateway, type Gateway, type GatewayParts } from '../../gateway/gateway.ts';
import { PredictionService } from '../../proto/gen/sibyl/v1/predict_pb.js';
import { GRPCInferenceService } from '../../proto/gen/inference/open_inference_grpc_pb.js';

export interface TestGateway {
  readonly gateway: Gateway;
  readonly http: string;
  readonly grpcAddress: string;
  readonly sibyl: GrpcClient<typeof PredictionService>;
  readonly oip: GrpcClient<typeof GRPCInferenceService>;
  readonly dataDir: string;
  stop(): Promise<void>;
}

export async function startGateway(env: Record<string, string> = {}, parts: GatewayParts = {}): Promise<TestGateway> {
  const dataDir = mkdtempSync(join(tmpdir(), 'sibyl-test-'));
  const config = loadConfig({
    SIBYL_HOST: '127.0.0.1',
    SIBYL_HTTP_PORT: '0',
    SIBYL_GRPC_PORT: '0',
    SIBYL_DATA_DIR: dataDir,
    SIBYL_LOG_LEVEL: 'warn',
    // Functional suites assert answers, not overload behaviour: on a shared 2-core machine a neighbour's burst can
    // push the smoothed event-loop lag past the production threshold. Admission has its own tests.
    SIBYL_MAX_LAG_MS: '1000',
    // Likewise the adaptive in-flight limit: the test's own client runs in the gateway's process and keeps it busy,
    // which is CPU saturation to admission control (and sheds shadows).
    SIBYL_ADMISSION_QUEUE_MS: '0',
    SIBYL_ADMISSION_MAX_TURN_MS: '0',
    SIBYL_ADMISSION_LATE_SHARE: '0',
    ...env,
  });
  const gateway = await createGateway(config, { logger: pino({ level: 'warn' }), ...parts });
  const { httpPort, grpcPort } = await gateway.start();
  const grpcAddress = `127.0.0.1:${grpcPort}`;
  const sibyl = grpcClient(PredictionService, grpcAddress);
  const oip = grpcClient(GRPCInferenceService, grpcAddress);
  return {
    gateway,
    http: `http://127.0.0.1:${httpPort}`,
    grpcAddress,
    sibyl,
    oip,
    dataDir,
    async stop() {
      sibyl.close();
      oip.close();
      await gateway.stop();
    },
  };
}

/** A call's outcome, with the trailing metadata the server sent (first value of each key). */
export type GrpcResult<O> = ({ ok: true; value: O } | { ok: false; code: number; details: string }) & { trailers?: Record<string, string> };

type Methods<S extends DescService> = S['methods'][number];
export interface GrpcClient<S extends DescService> {
  call<M extends Methods<S>>(method: M, req: MessageInitShape<M['input']>, opts?: { deadlineMs?: number; metadata?: Record<string, string> }): Promise<GrpcResult<MessageShape<M['output']>>>;
  /** Sends raw bytes as the request (for malformed-message tests). */
  callRaw(method: Methods<S>, bytes: Uint8Array): Promise<GrpcResult<unknown>>;
  close(): void;
}

export function grpcClient<S extends DescService>(service: S, address: string): GrpcClient<S> {
  const client = new grpc.Client(address, grpc.credentials.createInsecure());
  const invoke = <O>(path: string, bytes: Uint8Array, output: DescMessage, opts: { deadlineMs?: number; metadata?: Record<string, string> } = {}) =>
    new Promise<GrpcResult<O>>((resolve) => {
      const md = new grpc.Metadata();
      for (const [k, v] of Object.entries(opts.metadata ?? {})) md.set(k, v);
      let result: GrpcResult<O> | undefined;
      const call = client.makeUnaryRequest(
        path,
        (b: Buffer) => b,
        (b: Buffer) => fromBinary(output, b) as O,
        Buffer.from(bytes),
        md,
        { deadline: Date.now() + (opts.deadlineMs ?? 10_000) },
        (err, value) => void (result = err ? { ok: false, code: err.code ?? 2, details: err.details ?? '' } : { ok: true, value: value as O }),
      );
      // grpc-js calls back first, then emits the status with the trailers.
      call.on('status', (st: grpc.StatusObject) => {
        const trailers: Record<string, string> = {};
        for (const [k, v] of Object.entries(st.metadata.getMap())) trailers[k] = String(v);
        resolve({ ...(result ?? { ok: false, code: st.code, details: st.details }), trailers });
      });
    });
  return {
    call(method, req, opts) {
      const msg = create(method.input, req as never);
      return invoke(`/${service.typeName}/${method.name}`, toBinary(method.input, msg), method.output, opts);
    },
    callRaw(method, bytes) {
      return invoke(`/${service.typeName}/${method.name}`, bytes, method.output);
    },
    close: () => client.close(),
  };
}

export async function postJson(url: string, body: unknown, headers: Record<string, string> = {}): Promise<{ status: number; json: any; headers: Headers }> {
  const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: typeof body === 'string' ? body : JSON.stringify(body) });
  const text = await res.text();
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = text;
  }
  return { status: res.status, json, headers: res.headers };
}
