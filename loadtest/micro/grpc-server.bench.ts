/**
 * CPU per unary call of a grpc-js server, in one process with its client: the gRPC protocol on node:http2
 * (lib/h2-grpc-sender.ts, the generator's client, the same in every variant) sends the suite's S4a messages
 * (sibyl.v1 Predict, delivery-eta) to servers that differ in one thing each, one after another in rounds that
 * alternate their order; the process is meant to be pinned to one core, so the CPU per call is the client's plus the
 * server's and the difference between two variants is the servers'. Medians over rounds.
 *
 * Variants: `echo` (the bare echo: loadtest/baselines/grpc-echo.ts with grpc-js's defaults), `echo (channelz off)`,
 * `door` (the gateway's Sibyl gRPC door, gateway/transport/grpc/, with its server options, over a pipeline stub
 * that answers every request at once with one output: the door's decoding, context and encoding on top of grpc-js).
 *
 * `--baseline <dir>` adds `door (baseline)`: the same door loaded from another checkout of Sibyl (e.g. a worktree
 * of the revision before a change, with node_modules linked), measured in the same rounds.
 *
 * Run: taskset -c 1 node loadtest/micro/grpc-server.bench.ts [--baseline <dir>] [callsPerRound=20000] [rounds=7]
 *      [concurrency=48] [variant,...]
 */
import { join, resolve } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { createSender, type Sender } from '../lib/clients.ts';
import { rawUnaryMethod } from '../lib/raw-grpc.ts';
import { buildPool, SIBYL_PREDICT_PATH, OIP_INFER_PATH } from '../lib/requests.ts';
import { createGrpcServer } from '../../gateway/transport/grpc/grpc-server.ts';
import type { Outcome, Pipeline } from '../../gateway/pipeline/pipeline.ts';

const args = process.argv.slice(2);
const b = args.indexOf('--baseline');
const baselineDir = b >= 0 ? args.splice(b, 2)[1] : undefined;
const N = Number(args[0] ?? 20_000);
const ROUNDS = Number(args[1] ?? 7);
const CONCURRENCY = Number(args[2] ?? 48);
const ONLY = args[3]?.split(',');
const requests = buildPool({ protocol: 'sibyl-grpc', mix: 'eta-store', seed: 42 }).requests;

function echoServer(options: grpc.ServerOptions | undefined): grpc.Server {
  const handler: grpc.handleUnaryCall<Buffer, Buffer> = (call, callback) => callback(null, call.request);
  const server = new grpc.Server(options);
  server.addService({ predict: rawUnaryMethod(SIBYL_PREDICT_PATH), modelInfer: rawUnaryMethod(OIP_INFER_PATH) }, { predict: handler, modelInfer: handler });
  return server;
}

/** A pipeline that parses the request (the door decodes it there) and answers at once. */
const stub: Pipeline = {
  async predict(arrival, parse): Promise<Outcome> {
    const req = await parse();
    const requestId = req.requestId || arrival.requestId || '6f1c8a52-8a43-4a7e-b1a8-2f3c5d7e9a10';
    return { requestId, output: { requestId, model: req.model, version: '2', arm: '', results: [{ outputs: { eta_minutes: 31.25 }, defaulted: [] }], route: undefined as never } };
  },
  describe() {
    throw new Error('not in this benchmark');
  },
  refuseEarly: () => undefined,
};

const doorDeps = { pipeline: stub, health: { live: () => true, ready: () => true }, limits: { maxBodyBytes: 1 << 20 } };
const variants: Record<string, () => grpc.Server> = {
  echo: () => echoServer(undefined),
  'echo (channelz off)': () => echoServer({ 'grpc.enable_channelz': 0 }),
  door: () => createGrpcServer(doorDeps).server,
};
if (baselineDir) {
  const baseline = (await import(join(resolve(baselineDir), 'gateway/transport/grpc/grpc-server.ts'))) as { createGrpcServer: typeof createGrpcServer };
  variants['door (baseline)'] = () => baseline.createGrpcServer(doorDeps).server;
}

async function bind(server: grpc.Server): Promise<number> {
  return new Promise((resolve, reject) => server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, port) => (err ? reject(err) : resolve(port))));
}

/** N calls, CONCURRENCY at a time; CPU µs per call (this whole process) and failures. */
async function round(sender: Sender): Promise<{ us: number; failed: number }> {
  let sent = 0;
  let done = 0;
  let failed = 0;
  const c0 = process.cpuUsage();
  await new Promise<void>((resolve) => {
    const next = (): void => {
      if (sent >= N) return;
      const req = requests[sent++ % requests.length]!;
      sender.send(req, (o) => {
        if (!o.ok) failed++;
        if (++done === N) resolve();
        else next();
      });
    };
    for (let i = 0; i < CONCURRENCY; i++) next();
  });
  const c = process.cpuUsage(c0);
  return { us: (c.user + c.system) / N, failed };
}

const servers = await Promise.all(
  Object.entries(variants)
    .filter(([name]) => !ONLY || ONLY.includes(name))
    .map(async ([name, make]) => {
    const server = make();
    const port = await bind(server);
    const sender = createSender({ target: `127.0.0.1:${port}`, grpc: true, connections: 4, deadlineMs: 5000, grpcClient: 'h2' });
    await round(sender); // warm-up
    return { name, server, sender, us: [] as number[], failed: 0 };
  }),
);
for (let r = 0; r < ROUNDS; r++) {
  for (const s of r % 2 ? [...servers].reverse() : servers) {
    const m = await round(s.sender);
    s.us.push(m.us);
    s.failed += m.failed;
  }
}
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1]!;
// Per-round ratios to the first variant (both measured minutes apart at most): steadier than the medians' ratio
// on a machine whose speed drifts.
const first = servers[0]!;
for (const s of servers) {
  const m = median(s.us);
  const ratio = median(s.us.map((u, i) => u / first.us[i]!));
  console.log(`${m.toFixed(1).padStart(7)} µs/call (${Math.min(...s.us).toFixed(1)}-${Math.max(...s.us).toFixed(1)}), ${ratio.toFixed(3)} x ${first.name} (median of per-round ratios)${s.failed ? `, ${s.failed} failed` : ''}  ${s.name}`);
}
for (const s of servers) {
  await s.sender.close();
  s.server.forceShutdown();
}
process.exit(0);
