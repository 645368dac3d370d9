/**
 * What the sagemaker runtime adds to a call, against a bare HTTP call to the same endpoint in the same run:
 *   bare       node:http POST with a keep-alive agent, the same JSON body, the answer JSON.parsed
 *   sdk only   InvokeEndpointCommand through the same keep-alive client, answer JSON.parsed (the SDK's share)
 *   sagemaker  the loaded model's predict: rows encoded, SigV4 signing, the SDK's middleware and restJson1 parsing,
 *              the breaker, the answer checked against the declared outputs
 * The endpoint is a local HTTP server in a child process imitating InvokeEndpoint (fixed answer, no model work), so
 * the difference is the proxy's own cost. Closed loops at concurrency 1 (latency) and 16 (throughput), modes
 * interleaved over rounds; per-call CPU of this process from process.cpuUsage.
 *
 * Run: node loadtest/micro/sagemaker-proxy.bench.ts [seconds per mode per round=3] [rounds=3]
 */
import { spawn } from 'node:child_process';
import http from 'node:http';
import os from 'node:os';
import { InvokeEndpointCommand } from '@aws-sdk/client-sagemaker-runtime';
import type { FeatureRow } from '../../runtimes/contract.ts';
import { validateManifest } from '../../runtimes/manifest.ts';
import { createEndpointClient } from '../../runtimes/sagemaker/endpoint-client.ts';
import { createSageMakerRuntime } from '../../runtimes/sagemaker/sagemaker-runtime.ts';

const SECONDS = Number(process.argv[2] ?? 3);
const ROUNDS = Number(process.argv[3] ?? 3);

const SERVER = `
import http from 'node:http';
const answer = JSON.stringify({ predictions: [{ score: 0.25, label: 1 }] });
const server = http.createServer((req, res) => {
  req.resume();
  req.on('end', () => { res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(answer) }); res.end(answer); });
});
server.keepAliveTimeout = 60000;
server.listen(0, '127.0.0.1', () => process.stdout.write(String(server.address().port) + '\\n'));
`;
const child = spawn(process.execPath, ['--input-type=module', '-e', SERVER], { stdio: ['ignore', 'pipe', 'inherit'] });
const port = await new Promise<number>((resolve) => child.stdout.once('data', (d: Buffer) => resolve(Number(d.toString().trim()))));
const url = `http://127.0.0.1:${port}`;

const features = Array.from({ length: 20 }, (_, i) => ({ name: `f${i}`, dtype: 'float32', source: 'request', default: 0 }));
const row: FeatureRow = Object.fromEntries(features.map((f, i) => [f.name, i * 0.5 + 0.125]));
const manifest = validateManifest({
  name: 'bench',
  version: '1',
  runtime: 'sagemaker',
  features,
  outputs: [{ name: 'score', dtype: 'float64' }, { name: 'label', dtype: 'int32' }],
  sagemaker: { endpoint: 'bench', region: 'eu-west-1', contentType: 'application/json' },
});
const runtime = createSageMakerRuntime({ endpointUrl: url, credentials: { accessKeyId: 'bench', secretAccessKey: 'bench' } });
const model = await runtime.load({ manifest, dir: os.tmpdir(), hash: 'bench' });

const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });
const body = JSON.stringify({ instances: [features.map((f) => row[f.name])] });
function bare(): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const req = http.request(`${url}/endpoints/bench/invocations`, { method: 'POST', agent, headers: { 'content-type': 'application/json', accept: 'application/json', 'content-length': Buffer.byteLength(body) } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve(JSON.parse(Buffer.concat(chunks).toString('utf8'))));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}
const proxied = (): Promise<unknown> => model.predict([row], { signal: AbortSignal.timeout(5000) });
// The SDK alone (same client settings as the runtime's, no encoding, breaker or checks): what the runtime adds on top.
const sdkClient = createEndpointClient({ region: 'eu-west-1', endpointUrl: url, credentials: { accessKeyId: 'bench', secretAccessKey: 'bench' } });
const bodyBytes = Buffer.from(body);
async function sdk(): Promise<unknown> {
  const out = await sdkClient.send(new InvokeEndpointCommand({ EndpointName: 'bench', Body: bodyBytes, ContentType: 'application/json', Accept: 'application/json' }));
  return JSON.parse(Buffer.from(out.Body).toString('utf8'));
}

interface Run {
  calls: number;
  latenciesUs: number[];
  cpuUs: number;
  seconds: number;
}

async function closedLoop(fn: () => Promise<unknown>, concurrency: number, seconds: number): Promise<Run> {
  const latenciesUs: number[] = [];
  const end = performance.now() + seconds * 1000;
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (performance.now() < end) {
        const s = performance.now();
        await fn();
        latenciesUs.push((performance.now() - s) * 1000);
      }
    }),
  );
  const c = process.cpuUsage(c0);
  return { calls: latenciesUs.length, latenciesUs, cpuUs: c.user + c.system, seconds: (performance.now() - t0) / 1000 };
}

const pct = (xs: number[], p: number) => xs[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))]!;
const modes = { bare, 'sdk only': sdk, sagemaker: proxied } as const;
const results: Record<string, Run[]> = {};
for (const fn of Object.values(modes)) await closedLoop(fn, 4, 0.5); // warm-up: connections, JIT
for (let round = 0; round < ROUNDS; round++) {
  for (const concurrency of [1, 16]) {
    for (const [name, fn] of Object.entries(modes)) {
      (results[`${name} c=${concurrency}`] ??= []).push(await closedLoop(fn, concurrency, SECONDS));
    }
  }
}

console.log(`node ${process.version}, ${os.cpus().length} cores, ${ROUNDS} rounds x ${SECONDS} s per mode`);
console.log('mode            calls/s   p50 µs   p99 µs   client CPU µs/call');
for (const [name, runs] of Object.entries(results)) {
  const all = runs.flatMap((r) => r.latenciesUs).sort((a, b) => a - b);
  const calls = runs.reduce((a, r) => a + r.calls, 0);
  const secs = runs.reduce((a, r) => a + r.seconds, 0);
  const cpu = runs.reduce((a, r) => a + r.cpuUs, 0) / calls;
  console.log(`${name.padEnd(15)} ${String(Math.round(calls / secs)).padStart(7)} ${pct(all, 50).toFixed(0).padStart(8)} ${pct(all, 99).toFixed(0).padStart(8)} ${cpu.toFixed(1).padStart(12)}`);
}

await model.dispose();
sdkClient.destroy();
agent.destroy();
child.kill();
