#!/usr/bin/env node
/**
 * The gRPC transport's ceiling: a bare grpc-js server that answers every unary call with the request's own bytes
 * (no protobuf decoding), on Sibyl's and the OIP's method paths, so the same request pool drives both. Prints
 * `{"port": n}` on stdout once bound.
 *
 *   node loadtest/baselines/grpc-echo.ts [port] [server options as JSON]
 *
 * Port 0 or none: a free port; always 127.0.0.1. Without options the server has grpc-js's defaults; e.g.
 * '{"grpc.enable_channelz":0}' measures the echo with the gateway's own server options.
 */
import * as grpc from '@grpc/grpc-js';
import { rawUnaryMethod as method } from '../lib/raw-grpc.ts';
import { OIP_INFER_PATH, SIBYL_PREDICT_PATH } from '../lib/requests.ts';

const handler: grpc.handleUnaryCall<Buffer, Buffer> = (call, callback) => callback(null, call.request);

const server = new grpc.Server(process.argv[3] ? (JSON.parse(process.argv[3]) as grpc.ServerOptions) : undefined);
server.addService({ predict: method(SIBYL_PREDICT_PATH), modelInfer: method(OIP_INFER_PATH) }, { predict: handler, modelInfer: handler });
server.bindAsync(`127.0.0.1:${Number(process.argv[2] ?? 0)}`, grpc.ServerCredentials.createInsecure(), (err, port) => {
  if (err) throw err;
  process.stdout.write(`${JSON.stringify({ port })}\n`);
});
for (const s of ['SIGTERM', 'SIGINT'] as const) process.on(s, () => server.tryShutdown(() => process.exit(0)));
