/**
 * A free TCP port for a server a test starts in another process. Port 0 would give one from the kernel's ephemeral
 * range (32768-60999 here), where an outgoing connection made between this check and the server's bind can take it
 * (EADDRINUSE seen on a busy machine); so the port is drawn from 20000-32767, below that range, and checked free on
 * every address (the gateway binds 0.0.0.0 by default).
 */
import { createServer } from 'node:net';

const LOW = 20_000;
const HIGH = 32_768;
/** Ports handed out by this process: two calls never return the same port before its server has bound it. */
const given = new Set<number>();

function bindable(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createServer();
    s.once('error', () => resolve(false));
    s.listen({ port, host: '0.0.0.0', exclusive: true }, () => s.close(() => resolve(true)));
  });
}

/** A port in 20000-32767 that nothing listens on now and that this process has not handed out before. */
export async function freePort(): Promise<number> {
  for (let attempt = 0; attempt < 200; attempt++) {
    const port = LOW + Math.floor(Math.random() * (HIGH - LOW));
    if (given.has(port)) continue;
    if (await bindable(port)) {
      given.add(port);
      return port;
    }
  }
  throw new Error(`no free port in ${LOW}-${HIGH - 1} after 200 tries`);
}
