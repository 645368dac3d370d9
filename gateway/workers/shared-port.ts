/**
 * The gRPC door on a port shared by several workers. grpc-js binds its own listener with no SO_REUSEPORT option
 * (1.14), so each worker listens itself, with `reusePort`, and hands every accepted connection to grpc-js through
 * its connection injector; calls, GOAWAY and `tryShutdown` then work as on a bound port. The drain closes this
 * listener first (gateway/transport/drain.ts asks the door to drain).
 */
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import type { ServerCredentials } from '@grpc/grpc-js';
import type { GrpcServer } from '../transport/grpc/grpc-server.ts';

export async function listenSharedPort(
  door: GrpcServer,
  credentials: ServerCredentials,
  at: { readonly host: string; readonly port: number; readonly backlog: number },
): Promise<{ door: GrpcServer; port: number; stopAccepting(): void }> {
  const injector = door.server.createConnectionInjector(credentials);
  const listener = createServer((socket) => injector.injectConnection(socket));
  const port = await new Promise<number>((resolve, reject) => {
    listener.once('error', reject);
    listener.listen({ host: at.host, port: at.port, backlog: at.backlog, reusePort: true }, () => resolve((listener.address() as AddressInfo).port));
  });
  let listening = true;
  const stopAccepting = () => {
    if (listening) listener.close();
    listening = false;
  };
  return {
    port,
    stopAccepting,
    door: {
      ...door,
      drain() {
        stopAccepting();
        return door.drain();
      },
    },
  };
}
