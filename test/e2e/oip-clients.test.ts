/**
 * The clients KServe and Triton users already have, unchanged, against Sibyl's Open Inference Protocol:
 * tritonclient.http (binary tensors, its default, and binary_data=False), tritonclient.grpc (outputs read only from
 * raw_output_contents), and KServe's InferenceRESTClient (JSON and binary) and InferenceGRPCClient.
 *
 * beforeAll makes .venv-clients/ with the pinned clients from PyPI (scripts/python-clients.sh; minutes on a new
 * machine, instant afterwards) and starts a gateway on free ports with the embedded feature store seeded from
 * models/features.jsonl. The scripts in test/e2e/clients/ call health, server and model metadata, readiness and
 * infer (all 50 rows of each model's expected.json in one request, inputs shaped as the metadata advertises them),
 * and print what the client library decoded; this file checks it against expected.json and the models' signatures.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { startGateway, type TestGateway } from '../helpers/gateway.ts';
import { close, expectedFor } from '../helpers/expected.ts';

const ROOT = new URL('../../', import.meta.url).pathname;
const PYTHON = `${ROOT}.venv-clients/bin/python`;
const SCRIPTS = `${ROOT}test/e2e/clients/`;
const run = promisify(execFile);

interface Tensor {
  datatype: string;
  shape: number[];
  data: (number | string | boolean)[];
  binary?: boolean;
}
interface TensorMetadata {
  name: string;
  datatype: string;
  shape: number[];
}
interface ModelMetadata {
  name: string;
  versions: string[];
  platform: string;
  inputs: TensorMetadata[];
  outputs: TensorMetadata[];
}
interface InferEntry {
  model: string;
  requested_version: string | null;
  expected_file: string;
  sent_id: string;
  id: string;
  model_name: string;
  model_version: string | null;
  outputs: Record<string, Tensor>;
  binary_response?: boolean;
}
interface ClientReport {
  client: string;
  server: { live: boolean; ready: boolean; metadata: { name: string; version: string; extensions: string[] } };
  models: Record<string, { ready: boolean; metadata: ModelMetadata }>;
  version_1?: { ready: boolean; metadata: ModelMetadata };
  infer: InferEntry[];
  /** tritonclient.http only: tabular-mlp with gzip and deflate request bodies. */
  compressed?: InferEntry[];
  /** tritonclient.http only: get_model_config, a Triton extension Sibyl does not serve. */
  extension_error?: { status: string; message: string };
  not_found: { status: string; message: string; ready?: boolean };
}

const fp32 = (name: string): TensorMetadata => ({ name, datatype: 'FP32', shape: [-1] });
const bytes = (name: string): TensorMetadata => ({ name, datatype: 'BYTES', shape: [-1] });

// What each model looks like through the protocol (models/README.md).
const SIGNATURES: Record<string, Omit<ModelMetadata, 'name'>> = {
  'tabular-mlp': {
    versions: ['1'],
    platform: 'onnxruntime_onnx',
    inputs: [{ name: 'input', datatype: 'FP32', shape: [-1, 6] }],
    outputs: [fp32('output')],
  },
  'delivery-eta': {
    versions: ['1', '2'],
    platform: 'onnxruntime_onnx',
    inputs: [bytes('restaurant'), bytes('zone'), bytes('customer'), ...['distance_km', 'hour_of_day', 'day_of_week', 'basket_size', 'basket_value', 'is_raining', 'is_weekend'].map(fp32)],
    outputs: [fp32('eta_minutes')],
  },
  'eta-risk': {
    versions: ['1'],
    platform: 'onnxruntime_onnx',
    inputs: [bytes('restaurant'), bytes('zone'), ...['distance_km', 'hour_of_day', 'is_raining', 'basket_size', 'promised_minutes'].map(fp32)],
    outputs: [{ name: 'is_late', datatype: 'INT64', shape: [-1] }, { name: 'probabilities', datatype: 'FP32', shape: [-1, -1] }],
  },
};
const OUTPUT_DATATYPES: Record<string, string> = { output: 'FP32', eta_minutes: 'FP32', is_late: 'INT64', probabilities: 'FP32' };

const CLIENTS = [
  'tritonclient.http (binary)',
  'tritonclient.http (json)',
  'tritonclient.grpc',
  'kserve.InferenceRESTClient (json)',
  'kserve.InferenceRESTClient (binary)',
  'kserve.InferenceGRPCClient',
] as const;
const isKserveRest = (c: string) => c.startsWith('kserve.InferenceRESTClient');

/** One infer entry against its expected.json: names, datatypes, shapes, ids, versions, values within 1e-5. */
function checkEntry(client: string, e: InferEntry): void {
  const [model, version] = e.expected_file.split('/') as [string, string];
  const rows = expectedFor(model, version).rows;
  expect(e.model_name).toBe(e.model);
  expect(e.id, 'the request id comes back').toBe(e.sent_id);
  // KServe's REST decoder (InferResponse.from_bytes) drops model_version; every other client reports it.
  expect(e.model_version).toBe(isKserveRest(client) ? null : version);
  const names = Object.keys(rows[0]!.expected);
  expect(Object.keys(e.outputs).sort()).toEqual(names.sort());
  for (const name of names) {
    const t = e.outputs[name]!;
    const vector = Array.isArray(rows[0]!.expected[name]);
    const width = vector ? (rows[0]!.expected[name] as number[]).length : 1;
    expect(t.datatype, `${e.expected_file} ${name}`).toBe(OUTPUT_DATATYPES[name]);
    expect(t.shape, `${e.expected_file} ${name}`).toEqual(vector ? [rows.length, width] : [rows.length]);
    expect(t.data).toHaveLength(rows.length * width);
    rows.forEach((row, i) => {
      const want = vector ? (row.expected[name] as number[]) : [row.expected[name] as number];
      want.forEach((w, j) => {
        const got = t.data[i * width + j] as number;
        if (t.datatype === 'INT64') expect(got, `${e.expected_file} row ${i} ${name}`).toBe(w);
        else expect(close(got, w, 1e-5), `${e.expected_file} row ${i} ${name}[${j}]: ${got} vs ${w}`).toBe(true);
      });
    });
  }
}

let gw: TestGateway;
const reports = new Map<string, ClientReport>();

async function runScript(script: string, http: string, grpc: string): Promise<ClientReport[]> {
  const { stdout } = await run(PYTHON, [SCRIPTS + script, http, grpc], { timeout: 120_000, maxBuffer: 64 << 20 });
  return JSON.parse(stdout) as ClientReport[];
}

beforeAll(async () => {
  await run('bash', [`${ROOT}scripts/python-clients.sh`], { timeout: 900_000 });
  gw = await startGateway({ SIBYL_PREDICTION_LOG: 'off' });
  for (const script of ['triton_clients.py', 'kserve_clients.py']) {
    for (const r of await runScript(script, gw.http, gw.grpcAddress)) reports.set(r.client, r);
  }
}, 1_000_000);
afterAll(() => gw?.stop());

it('ran every client', () => {
  expect([...reports.keys()].sort()).toEqual([...CLIENTS].sort());
});

describe.each(CLIENTS)('%s', (client) => {
  const report = () => reports.get(client)!;

  it('sees a live, ready server and its metadata', () => {
    const { server } = report();
    expect(server.live).toBe(true);
    expect(server.ready).toBe(true);
    expect(server.metadata).toEqual({ name: 'sibyl', version: expect.any(String), extensions: ['binary_tensor_data'] });
  });

  it('reads each model as ready, with its names, datatypes and shapes', () => {
    for (const [model, signature] of Object.entries(SIGNATURES)) {
      expect(report().models[model]).toEqual({ ready: true, metadata: { name: model, ...signature } });
    }
    // Triton's clients also address a pinned version: /v2/models/{m}/versions/{v} and its /ready.
    if (client.startsWith('tritonclient')) {
      expect(report().version_1).toEqual({ ready: true, metadata: { name: 'delivery-eta', ...SIGNATURES['delivery-eta'] } });
    }
  });

  it('gets what the training library produced for all 50 rows of every model, within 1e-5 relative', () => {
    const entries = report().infer;
    // The KServe REST client has no version parameter: it sends only the default-version cases.
    const cases = entries.map((e) => `${e.model}@${e.requested_version ?? 'default'}`);
    const all = ['tabular-mlp@default', 'delivery-eta@1', 'delivery-eta@default', 'eta-risk@default'];
    expect(cases).toEqual(isKserveRest(client) ? all.filter((c) => !c.endsWith('@1')) : all);

    for (const e of entries) checkEntry(client, e);
  });

  it('received the tensors in the encoding it asked for', () => {
    const binaryAsked = client.endsWith('(binary)');
    for (const e of report().infer) {
      if (client.startsWith('tritonclient.http')) {
        for (const t of Object.values(e.outputs)) expect(t.binary, `${e.model} ${client}`).toBe(binaryAsked);
      } else if (isKserveRest(client)) {
        expect(e.binary_response, `${e.model} ${client}`).toBe(binaryAsked);
      }
    }
  });

  if (client.startsWith('tritonclient.http')) {
    it('sends compressed bodies (gzip, deflate) and decodes the error of an extension Sibyl does not serve', () => {
      expect(report().compressed?.map((e) => e.expected_file)).toEqual(['tabular-mlp/1', 'tabular-mlp/1']);
      for (const e of report().compressed!) checkEntry(client, e);
      expect(report().extension_error).toEqual({ status: '404', message: 'no route for GET /v2/models/tabular-mlp/config' });
    });
  }

  it("gets the client's NOT_FOUND error for an unknown model", () => {
    const { not_found } = report();
    const grpc = client.endsWith('GRPCClient') || client === 'tritonclient.grpc';
    expect(not_found.status).toBe(grpc ? (client === 'tritonclient.grpc' ? 'StatusCode.NOT_FOUND' : 'NOT_FOUND') : '404');
    expect(not_found.message).toContain('model "no-such-model" not found');
    if (isKserveRest(client)) expect(not_found.ready).toBe(false);
  });
});

describe('the client scripts', () => {
  it.each(['triton_clients.py', 'kserve_clients.py'])('%s exits nonzero when the gateway is not there', async (script) => {
    // Port 9 (discard) on loopback: nothing listens, so the first call fails.
    const err = await runScript(script, 'http://127.0.0.1:9', '127.0.0.1:9').then(
      () => undefined,
      (e: { code?: number }) => e,
    );
    expect(err?.code).toBe(1);
  });
});
