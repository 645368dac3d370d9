/**
 * What a refusal costs the gateway, against what a prediction costs, in one run: the gateway process's CPU per
 * request under a closed loop (autocannon in a child process, 64 connections), for
 *   served       delivery-eta with all 20 features inline, log off (the baseline: what capacity is made of)
 *   fast 429     refused by the listener in front of Hono (transport/fast-reject.ts)
 *   hono 429     refused inside the Hono handler (admission.admit throws; the path before the fast path existed)
 * and two floors, servers in the same process that do nothing else:
 *   node:http    a bare node:http server answering every request with the same 429 (what any refusal through
 *                node:http costs at least)
 *   socket       a net server writing one prebuilt 429 response for each read of a connection, parsing nothing
 *                (what answering a request over TCP from Node costs at least: the reads, the writes and the
 *                kernel's loopback work, which a refusal at the connection would still pay)
 * Under overload the share of capacity left for serving is about (1 - k * r) / (1 - r) for k times the capacity
 * offered, where r = refusal cost / prediction cost: at 3x, r must stay under ~5% for 90% goodput.
 * As in the suite, this process runs on core 1 and the generator on core 0 (when taskset is there).
 *
 * Run: node loadtest/micro/reject.bench.ts [seconds=5]
 */
import { spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { createServer as createHttpServer } from 'node:http';
import { createServer as createNetServer, type AddressInfo, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { loadConfig } from '../../gateway/config.ts';
import { createGateway } from '../../gateway/gateway.ts';
import { SibylError } from '../../core/errors.ts';
import { readExpectedRows } from '../lib/population.ts';
import { BENCH_LOAD_CORE, BENCH_SERVER_CORE } from '../lib/bench-gateway.ts';
import { pinned, setAffinity } from '../lib/processes.ts';

setAffinity(process.pid, BENCH_SERVER_CORE);

const SECONDS = Number(process.argv[2] ?? 5);
const config = loadConfig({ SIBYL_HOST: '127.0.0.1', SIBYL_HTTP_PORT: '0', SIBYL_GRPC_PORT: '0', SIBYL_PREDICTION_LOG: 'off', SIBYL_DATA_DIR: mkdtempSync(join(tmpdir(), 'sibyl-reject-')), SIBYL_LOG_LEVEL: 'error' });
const gw = await createGateway(config, { logger: pino({ level: 'error' }) });
const { httpPort } = await gw.start();
const row = readExpectedRows('models', 'delivery-eta', '2')[0]!;
const body = JSON.stringify({ rows: [{ features: row.features }] });
const PATH = '/v1/models/delivery-eta:predict';
const url = `http://127.0.0.1:${httpPort}${PATH}`;

const refusalBody = JSON.stringify({ code: 'RESOURCE_EXHAUSTED', message: 'the gateway is overloaded (event loop behind); retry with backoff', requestId: '' });
const bareHttp = createHttpServer((_req, res) => {
  res.writeHead(429, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(refusalBody), 'retry-after': '1' });
  res.end(refusalBody);
});
bareHttp.keepAliveTimeout = 5000;
const rawResponse = Buffer.from(
  `HTTP/1.1 429 Too Many Requests\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(refusalBody)}\r\n` +
    `retry-after: 1\r\nconnection: keep-alive\r\n\r\n${refusalBody}`,
);
// One request per read holds for autocannon (one request in flight per connection, sent in one write).
const rawSocket = createNetServer((socket) => {
  socket.on('data', () => socket.write(rawResponse));
  socket.on('error', () => undefined);
});
async function listen(server: Server): Promise<string> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}${PATH}`;
}
const floorUrls = { 'node:http': await listen(bareHttp as unknown as Server), socket: await listen(rawSocket) };

const admission = gw.admission;
const realRefuse = admission.refuseEarly.bind(admission);
const realAdmit = admission.admit.bind(admission);
const MODES = ['served', 'fast 429', 'hono 429', 'node:http', 'socket'] as const;
type Mode = (typeof MODES)[number];
function setMode(mode: Mode): void {
  admission.refuseEarly = mode === 'fast 429' ? () => 'lag' : mode === 'hono 429' ? () => undefined : realRefuse;
  admission.admit = mode === 'hono 429' ? () => { throw new SibylError('RESOURCE_EXHAUSTED', 'the gateway is overloaded; retry with backoff'); } : realAdmit;
}

function autocannon(seconds: number, url: string): Promise<{ requests: number; statuses: Record<string, number> }> {
  return new Promise((resolve, reject) => {
    const child = spawn(...pinned(BENCH_LOAD_CORE, 'node_modules/.bin/autocannon', ['-j', '-c', '64', '-d', String(seconds), '-m', 'POST', '-H', 'content-type=application/json', '-b', body, url]), { stdio: ['ignore', 'pipe', 'ignore'] });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.on('error', reject);
    child.on('exit', () => {
      const r = JSON.parse(out) as { requests: { total: number }; '2xx': number; non2xx: number };
      resolve({ requests: r.requests.total, statuses: { '2xx': r['2xx'], non2xx: r.non2xx } });
    });
  });
}

const results: Record<string, number[]> = {};
for (let round = 0; round < 2; round++) {
  for (const mode of MODES) {
    setMode(mode);
    const target = mode === 'node:http' || mode === 'socket' ? floorUrls[mode] : url;
    await autocannon(1, target);
    const c0 = process.cpuUsage();
    const r = await autocannon(SECONDS, target);
    const c = process.cpuUsage(c0);
    const us = (c.user + c.system) / r.requests;
    (results[mode] ??= []).push(us);
    console.log(`round ${round + 1} ${mode.padEnd(9)} ${us.toFixed(1).padStart(6)} cpu µs/request (kernel ${(c.system / r.requests).toFixed(1)})  ${Math.round(r.requests / SECONDS)} requests/s  ${JSON.stringify(r.statuses)}`);
  }
}
const med = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const served = med(results['served']!);
for (const mode of MODES.slice(1)) console.log(`${mode}: ${(100 * med(results[mode]!) / served).toFixed(1)}% of a served prediction`);
setMode('served');
bareHttp.close();
rawSocket.close();
await gw.stop();
