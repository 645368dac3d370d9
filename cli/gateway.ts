/**
 * A gateway's prediction APIs from the command line, over REST or gRPC (no grpcurl needed):
 *
 *   sibyl predict MODEL[/VERSION] -d JSON [--grpc]   Sibyl's API: the body of POST /v1/models/{model}:predict
 *                                                    (sibyl.v1.PredictRequest as JSON; model and version from the
 *                                                    argument); --grpc calls sibyl.v1.PredictionService/Predict
 *   sibyl infer MODEL[/VERSION] -d JSON [--grpc]     the Open Inference Protocol: the body of POST
 *                                                    /v2/models/{model}/infer; --grpc takes the JSON of
 *                                                    inference.ModelInferRequest (as grpcurl does) and calls ModelInfer
 *
 * -d takes the JSON itself, @FILE, or - for stdin. --gateway (SIBYL_GATEWAY_URL, default http://127.0.0.1:8080) and
 * --grpc-address (SIBYL_GATEWAY_GRPC, default 127.0.0.1:8081) say where. Output: the answer as JSON on stdout (gRPC
 * answers in their ProtoJSON form, as grpcurl prints them); failures as `sibyl: CODE: message` with exit status 1.
 */
import { readFile } from 'node:fs/promises';
import { Command, Option } from 'commander';

export interface GatewayOptions {
  readonly gateway: string;
  readonly grpcAddress: string;
  readonly grpc?: boolean;
  readonly data: string;
  readonly timeoutMs: number;
}

export function gatewayCommands(): Command[] {
  const make = (name: string, description: string, call: (target: Target, body: unknown, o: GatewayOptions) => Promise<unknown>) =>
    new Command(name)
      .description(description)
      .argument('<model>', 'MODEL, or MODEL/VERSION (a version or an alias)')
      .requiredOption('-d, --data <json>', 'the request body: JSON, @FILE, or - for stdin')
      .option('--grpc', 'call the gRPC API instead of REST')
      .addOption(new Option('--gateway <url>', 'the gateway REST base URL').env('SIBYL_GATEWAY_URL').default('http://127.0.0.1:8080'))
      .addOption(new Option('--grpc-address <host:port>', 'the gateway gRPC address').env('SIBYL_GATEWAY_GRPC').default('127.0.0.1:8081'))
      .addOption(new Option('--timeout-ms <ms>', 'deadline of the call').default(10_000).argParser(Number))
      .action(async function gatewayAction(model: string, o: GatewayOptions) {
        const out = await call(targetOf(model), await bodyOf(o.data), o);
        process.stdout.write(`${JSON.stringify(out, null, 2)}\n`);
      });
  return [
    make('predict', "predict with a model over Sibyl's API (REST, or gRPC with --grpc)", async (t, body, o) => {
      if (!o.grpc) return rest(o, `/v1/models/${enc(t.model)}${t.version ? `/versions/${enc(t.version)}` : ''}:predict`, body);
      // gRPC and the protobuf descriptors load only when asked for (~3x the start-up of every other command).
      return (await import('./gateway-grpc.ts')).grpcPredict(o, { ...(body as object), model: t.model, ...(t.version ? { version: t.version } : {}) });
    }),
    make('infer', 'inference over the Open Inference Protocol (REST, or gRPC with --grpc)', async (t, body, o) => {
      if (!o.grpc) return rest(o, `/v2/models/${enc(t.model)}${t.version ? `/versions/${enc(t.version)}` : ''}/infer`, body);
      return (await import('./gateway-grpc.ts')).grpcInfer(o, { ...(body as object), modelName: t.model, ...(t.version ? { modelVersion: t.version } : {}) });
    }),
  ];
}

interface Target {
  readonly model: string;
  readonly version: string;
}

const enc = encodeURIComponent;

function targetOf(spec: string): Target {
  const i = spec.indexOf('/');
  return i < 0 ? { model: spec, version: '' } : { model: spec.slice(0, i), version: spec.slice(i + 1) };
}

async function bodyOf(data: string): Promise<unknown> {
  const text = data === '-' ? await readStdin() : data.startsWith('@') ? await readFile(data.slice(1), 'utf8') : data;
  try {
    const v: unknown = JSON.parse(text);
    if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new Error('not an object');
    return v;
  } catch (err) {
    throw new Error(`-d: the request body must be a JSON object (${(err as Error).message})`);
  }
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

async function rest(o: GatewayOptions, path: string, body: unknown): Promise<unknown> {
  let res: Response;
  try {
    res = await fetch(new URL(path, o.gateway), { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body), signal: AbortSignal.timeout(o.timeoutMs) });
  } catch (err) {
    const cause = (err as Error).cause instanceof Error ? ((err as Error).cause as Error).message : (err as Error).message;
    throw new Error(`UNAVAILABLE: cannot reach the gateway at ${o.gateway}: ${cause}`);
  }
  const text = await res.text();
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw new Error(`HTTP_${res.status}: ${text.slice(0, 200)}`);
  }
  if (!res.ok) {
    // Sibyl's API answers { code, message }; the Open Inference Protocol { error, code }.
    const e = json as { code?: string; message?: string; error?: string };
    throw new Error(`${e.code ?? `HTTP_${res.status}`}: ${e.message ?? e.error ?? text}`);
  }
  return json;
}
