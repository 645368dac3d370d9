/**
 * The SageMaker runtime client of one loaded model version: made once in `load`, destroyed in `dispose`.
 *
 * Keep-alive HTTP(S) agents (one TLS handshake per connection, not per call), a bounded connect time, and the SDK's
 * own retries off (`maxAttempts: 1`): the runtime retries itself, only what may help, within the request's deadline.
 * No `requestTimeout`: in @smithy/node-http-handler it only logs a warning; each call's `abortSignal` bounds it.
 */
import http from 'node:http';
import https from 'node:https';
import { SageMakerRuntimeClient, type SageMakerRuntimeClientConfig } from '@aws-sdk/client-sagemaker-runtime';
import { NodeHttpHandler } from '@smithy/node-http-handler';

export interface EndpointClientOptions {
  readonly region: string;
  /** Overrides the regional endpoint (moto, a VPC endpoint, a test server). */
  readonly endpointUrl?: string | undefined;
  /** Default: the SDK's credential chain (environment, profile, container or instance role). */
  readonly credentials?: SageMakerRuntimeClientConfig['credentials'];
  /** Connections per client (default 64). */
  readonly maxSockets?: number | undefined;
  /** Milliseconds to open a TCP connection before the attempt fails as UNAVAILABLE (default 2000). */
  readonly connectTimeoutMs?: number | undefined;
}

export function createEndpointClient(o: EndpointClientOptions): SageMakerRuntimeClient {
  const agent = { keepAlive: true, maxSockets: o.maxSockets ?? 64 };
  return new SageMakerRuntimeClient({
    region: o.region,
    ...(o.endpointUrl ? { endpoint: o.endpointUrl } : {}),
    ...(o.credentials ? { credentials: o.credentials } : {}),
    maxAttempts: 1,
    requestHandler: new NodeHttpHandler({
      httpAgent: new http.Agent(agent),
      httpsAgent: new https.Agent(agent),
      connectionTimeout: o.connectTimeoutMs ?? 2000,
    }),
  });
}
