/**
 * A control tower for gateway sync tests: an HTTP server on a free loopback port serving the three endpoints a
 * gateway uses (cell state long-poll, bundles by hash, reports) from an in-memory desired state the test changes.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { create, fromJson, toJson, type MessageInitShape } from '@bufbuild/protobuf';
import { timestampNow } from '@bufbuild/protobuf/wkt';
import {
  CellStateSchema,
  DeployedModelSchema,
  GatewayReportSchema,
  type CellState,
  type GatewayReport,
} from '../../../proto/gen/sibyl/v1/deployment_pb.js';

export type ModelInit = MessageInitShape<typeof DeployedModelSchema>;

export interface TestTower {
  readonly url: string;
  readonly token: string;
  /** Served bundles by hash; a test may put other bytes under a hash to serve a corrupt download. */
  readonly bundles: Map<string, Buffer>;
  /** Every report received, in order. */
  readonly reports: GatewayReport[];
  /** Requests refused for a missing or wrong token. */
  unauthorized: number;
  readonly state: CellState;
  /** Replaces the cell's models, bumps the revision and answers waiting long-polls. */
  deploy(models: ModelInit[]): CellState;
  /** Stops listening and drops every connection (the tower is down). */
  down(): Promise<void>;
  /** Listens again on the same port. */
  up(): Promise<void>;
  close(): Promise<void>;
}

export async function startTestTower(cell: string, opts: { port?: number } = {}): Promise<TestTower> {
  const token = 'test-token';
  const bundles = new Map<string, Buffer>();
  const reports: GatewayReport[] = [];
  let state = create(CellStateSchema, { cell, revision: 0n, updated: timestampNow() });
  const waiters = new Set<() => void>();

  const server: Server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://tower');
    if (req.headers.authorization !== `Bearer ${token}`) {
      tower.unauthorized++;
      res.writeHead(401).end('unauthenticated');
      return;
    }
    const stateMatch = /^\/v1\/cells\/([^/]+)\/state$/.exec(url.pathname);
    if (req.method === 'GET' && stateMatch) {
      if (stateMatch[1] !== cell) return void res.writeHead(404).end('no such cell');
      const after = BigInt(url.searchParams.get('after') ?? '0');
      const waitMs = Number(url.searchParams.get('wait_ms') ?? '0');
      const answer = () => {
        waiters.delete(answer);
        clearTimeout(timer);
        if (!res.writableEnded) res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(toJson(CellStateSchema, state)));
      };
      let timer: NodeJS.Timeout | undefined;
      if (state.revision > after || waitMs <= 0) return answer();
      waiters.add(answer);
      timer = setTimeout(answer, waitMs);
      res.on('close', () => {
        waiters.delete(answer);
        clearTimeout(timer);
      });
      return;
    }
    const bundleMatch = /^\/v1\/bundles\/([0-9a-f]{64})$/.exec(url.pathname);
    if (req.method === 'GET' && bundleMatch) {
      const bytes = bundles.get(bundleMatch[1]!);
      if (!bytes) return void res.writeHead(404).end('no such bundle');
      res.writeHead(200, { 'content-type': 'application/zip', 'content-length': bytes.length }).end(bytes);
      return;
    }
    const reportMatch = /^\/v1\/cells\/([^/]+)\/reports$/.exec(url.pathname);
    if (req.method === 'POST' && reportMatch) {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        reports.push(fromJson(GatewayReportSchema, JSON.parse(Buffer.concat(chunks).toString('utf8'))));
        res.writeHead(204).end();
      });
      return;
    }
    res.writeHead(404).end();
  });

  const listen = (port: number) =>
    new Promise<number>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => {
        server.off('error', reject);
        resolve((server.address() as AddressInfo).port);
      });
    });
  const port = await listen(opts.port ?? 0);
  const closeServer = () =>
    new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    });

  const tower: TestTower = {
    url: `http://127.0.0.1:${port}`,
    token,
    bundles,
    reports,
    unauthorized: 0,
    get state() {
      return state;
    },
    deploy(models) {
      state = create(CellStateSchema, { cell, revision: state.revision + 1n, models, updated: timestampNow() });
      for (const w of [...waiters]) w();
      return state;
    },
    down: closeServer,
    async up() {
      await listen(port);
    },
    close: closeServer,
  };
  return tower;
}
