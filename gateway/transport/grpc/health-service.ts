/**
 * `grpc.health.v1.Health` (Check, Watch, List) whose Watch streams the gateway can end when it drains.
 * grpc-health-check's HealthImplementation keeps a Watch open until the client cancels it, and grpc-js's
 * `tryShutdown` waits for every open stream: one watching client held the whole drain to SIBYL_DRAIN_TIMEOUT_MS and
 * was then cancelled. The wire definition is still grpc-health-check's.
 */
import * as grpc from '@grpc/grpc-js';
import { service as healthDefinition, type ServingStatus } from 'grpc-health-check';

type WatchCall = grpc.ServerWritableStream<{ service: string }, { status: ServingStatus | 'SERVICE_UNKNOWN' }>;

export class HealthService {
  readonly #statuses = new Map<string, ServingStatus>();
  /** Open Watch streams and the service each watches. */
  readonly #watches = new Map<WatchCall, string>();
  #closed = false;

  /** Every service in `services` (`''` is the server as a whole) starts with `initial`. */
  constructor(services: readonly string[], initial: ServingStatus) {
    for (const s of services) this.#statuses.set(s, initial);
  }

  addToServer(server: grpc.Server): void {
    server.addService(healthDefinition as unknown as grpc.ServiceDefinition, {
      check: (call: grpc.ServerUnaryCall<{ service: string }, unknown>, callback: grpc.sendUnaryData<unknown>) => {
        const status = this.#statuses.get(call.request.service);
        if (status) callback(null, { status });
        else callback({ code: grpc.status.NOT_FOUND, details: `Health status unknown for service ${call.request.service}` });
      },
      watch: (call: WatchCall) => this.#watch(call),
      list: (_call: grpc.ServerUnaryCall<unknown, unknown>, callback: grpc.sendUnaryData<unknown>) =>
        callback(null, { statuses: Object.fromEntries([...this.#statuses].map(([s, status]) => [s, { status }])) }),
    });
  }

  /** Sets a service's status and sends it to the streams watching that service. */
  setStatus(service: string, status: ServingStatus): void {
    this.#statuses.set(service, status);
    for (const [call, watched] of this.#watches) if (watched === service) call.write({ status });
  }

  /**
   * Ends every open Watch stream with UNAVAILABLE, after the last status it was sent; a Watch that starts later
   * gets the current status and ends at once. Idempotent.
   */
  close(): void {
    this.#closed = true;
    for (const call of [...this.#watches.keys()]) this.#end(call);
  }

  #watch(call: WatchCall): void {
    const service = call.request.service;
    call.write({ status: this.#statuses.get(service) ?? 'SERVICE_UNKNOWN' });
    if (this.#closed) return this.#end(call);
    this.#watches.set(call, service);
    call.on('cancelled', () => this.#watches.delete(call));
  }

  #end(call: WatchCall): void {
    this.#watches.delete(call);
    // grpc-js ends a server stream with the status of an 'error' event.
    call.emit('error', { code: grpc.status.UNAVAILABLE, details: 'the gateway is shutting down' });
  }
}
