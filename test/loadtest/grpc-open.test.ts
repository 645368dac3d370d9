/**
 * The open-loop gRPC generator (loadtest/tools/grpc-open, grpc-go's client; read back by loadtest/lib/grpc-open-run.ts)
 * against a real grpc-js server: every scheduled call is sent once with its exact bytes and the deadline, and each
 * outcome is counted by its status (OK, a refusal, a call past its deadline) with the latency it really had.
 */
import { execFileSync } from 'node:child_process';
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rawUnaryMethod as method } from '../../loadtest/lib/raw-grpc.ts';
import { grpcOpen, stepFromLines } from '../../loadtest/lib/grpc-open-run.ts';


let server: grpc.Server;
let port: number;
const received: { body: string; deadlineMs: number }[] = [];
const SLOW_MS = 400;

beforeAll(async () => {
  // Builds .tools/bin/grpc-open from this repo's source (grpc-go from the Go module proxy the first time).
  execFileSync('bash', ['loadtest/tools/install.sh', 'grpc-open'], { stdio: 'inherit' });
  server = new grpc.Server();
  server.addService(
    { echo: method('/t.T/Echo'), refuse: method('/t.T/Refuse'), slow: method('/t.T/Slow') },
    {
      echo: (call: grpc.ServerUnaryCall<Buffer, Buffer>, cb: grpc.sendUnaryData<Buffer>) => {
        const d = call.getDeadline();
        received.push({ body: call.request.toString(), deadlineMs: (d instanceof Date ? d.getTime() : d) - Date.now() });
        cb(null, call.request);
      },
      refuse: (_call: grpc.ServerUnaryCall<Buffer, Buffer>, cb: grpc.sendUnaryData<Buffer>) => cb({ code: grpc.status.RESOURCE_EXHAUSTED, details: 'busy' }),
      slow: (call: grpc.ServerUnaryCall<Buffer, Buffer>, cb: grpc.sendUnaryData<Buffer>) => void setTimeout(() => cb(null, call.request), SLOW_MS),
    },
  );
  port = await new Promise<number>((resolve, reject) => server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))));
}, 300_000);

afterAll(() => server.forceShutdown());

describe('the open-loop gRPC generator', () => {
  it('sends each scheduled call once with its bytes and deadline, and counts OK, refusals and deadlines apart', async () => {
    const requests = [
      { path: '/t.T/Echo', body: Buffer.from('first') },
      { path: '/t.T/Echo', body: Buffer.from('second') },
      { path: '/t.T/Refuse', body: Buffer.from('x') },
      { path: '/t.T/Slow', body: Buffer.from('y') },
    ];
    received.length = 0;
    const [step] = await grpcOpen(requests, { target: `127.0.0.1:${port}`, steps: [{ rate: 200, durationS: 1 }], deadlineMs: 150, warmupS: 0, connections: 2 });
    // 200 calls at 200/s, round-robin over the four requests.
    expect(step!.sent).toBe(200);
    expect(step!.codes).toEqual({ OK: 100, RESOURCE_EXHAUSTED: 50, DEADLINE_EXCEEDED: 50 });
    expect(step!.ok).toBe(100);
    expect(received.filter((r) => r.body === 'first')).toHaveLength(50);
    expect(received.filter((r) => r.body === 'second')).toHaveLength(50);
    // The server saw the deadline (grpc-timeout); the client gave up on the slow calls there, not at their answer.
    for (const r of received) expect(r.deadlineMs).toBeGreaterThan(50), expect(r.deadlineMs).toBeLessThanOrEqual(150);
    // At the deadline: the server's own deadline timer may end the call a little before the client's, as libuv
    // counts a timer from the loop's cached time (a CI run saw 149.5 ms), hence the millisecond.
    expect(step!.errorLatency.p50).toBeGreaterThanOrEqual(149);
    expect(step!.errorLatency.max).toBeLessThan(SLOW_MS);
    expect(step!.rejectedLatency.count).toBe(50);
    // Every call's start lag is reported (the pacer's own share of the latencies above).
    expect(step!.startLagMaxMs).toBeGreaterThanOrEqual(step!.startLagP50Ms!);
  }, 60_000);

  it('reads result lines by status, the client backlog apart, with latency and start lag in ns', () => {
    // The second call started 1 ms late (its latency includes that), the others on time.
    const step = stepFromLines('0 500000 0\n0 1500000 1000000\n8 200000 0\n4 100000000 0\n17 0 0\n14 3000 0\n', 1000, 1, 50, 0.1);
    expect(step.codes).toEqual({ OK: 2, RESOURCE_EXHAUSTED: 1, DEADLINE_EXCEEDED: 1, CLIENT_BACKLOG: 1, UNAVAILABLE: 1 });
    expect(step.latency.max).toBeCloseTo(1.5, 2);
    expect(step.rejectedLatency.max).toBeCloseTo(0.2, 2);
    expect(step.goodput).toBe(2);
    expect(step.startLagMaxMs).toBe(1);
    expect(step.startLagP50Ms).toBe(0);
  });
});
