/** The gRPC half of sibyl predict / sibyl infer (gateway.ts), loaded only for --grpc. */
import * as grpc from '@grpc/grpc-js';
import { fromBinary, fromJson, toBinary, toJson, type DescMessage, type JsonValue } from '@bufbuild/protobuf';
import { Code, type CodeName } from '../core/errors.ts';
import { PredictionService } from '../proto/gen/sibyl/v1/predict_pb.js';
import { GRPCInferenceService } from '../proto/gen/inference/open_inference_grpc_pb.js';
import type { GatewayOptions } from './gateway.ts';

const CODE_NAMES = new Map<number, string>(Object.entries(Code).map(([name, n]) => [n, name]));

/** sibyl.v1.PredictionService/Predict with the JSON of a PredictRequest; resolves with the answer's JSON. */
export function grpcPredict(o: GatewayOptions, body: unknown): Promise<unknown> {
  const method = PredictionService.method.predict;
  return grpcCall(o, `/${PredictionService.typeName}/${method.name}`, method.input, method.output, body);
}

/** inference.GRPCInferenceService/ModelInfer with the JSON of a ModelInferRequest; resolves with the answer's JSON. */
export function grpcInfer(o: GatewayOptions, body: unknown): Promise<unknown> {
  const method = GRPCInferenceService.method.modelInfer;
  return grpcCall(o, `/${GRPCInferenceService.typeName}/${method.name}`, method.input, method.output, body);
}

function grpcCall(o: GatewayOptions, path: string, input: DescMessage, output: DescMessage, body: unknown): Promise<unknown> {
  let request: Uint8Array;
  try {
    request = toBinary(input, fromJson(input, body as JsonValue));
  } catch (err) {
    throw new Error(`INVALID_ARGUMENT: -d is not a ${input.typeName}: ${(err as Error).message}`);
  }
  const client = new grpc.Client(o.grpcAddress, grpc.credentials.createInsecure());
  return new Promise<unknown>((resolve, reject) => {
    client.makeUnaryRequest(
      path,
      (b: Buffer) => b,
      (b: Buffer) => b,
      Buffer.from(request),
      new grpc.Metadata(),
      { deadline: Date.now() + o.timeoutMs },
      (err, value) => {
        client.close();
        if (err) {
          const code: CodeName | string = CODE_NAMES.get(err.code) ?? `GRPC_${err.code}`;
          const unreachable = err.code === grpc.status.UNAVAILABLE && /connect|ECONNREFUSED|No connection/i.test(err.details);
          reject(new Error(`${code}: ${unreachable ? `cannot reach the gateway at ${o.grpcAddress}: ${err.details}` : err.details}`));
          return;
        }
        resolve(toJson(output, fromBinary(output, value as Buffer)));
      },
    );
  });
}
