/**
 * REST's fast path tells admission the client's own deadline (`x-request-timeout-ms`) before the request is routed
 * or its body read, for the time bound (gateway/pipeline/admission.ts); a value that is not a positive number is
 * passed as none (the entry refuses it INVALID_ARGUMENT when it parses the request). A real node:http server.
 */
import { createServer, type Server } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { withFastReject } from '../../gateway/transport/fast-reject.ts';

const asked: (number | undefined)[] = [];
let server: Server;
let url: string;
beforeAll(async () => {
  const pipeline = { refuseEarly: (_turnBound?: boolean, timeoutMs?: number) => (asked.push(timeoutMs), undefined) };
  server = createServer(withFastReject((_req, res) => res.end('served'), pipeline));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  url = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
});
afterAll(() => server.close());

describe("REST's fast path", () => {
  it("asks admission with the request's own deadline, none when it has none or an invalid one", async () => {
    const post = async (headers: Record<string, string>) => (await fetch(`${url}/v1/models/m:predict`, { method: 'POST', body: '{}', headers })).text();
    expect(await post({ 'x-request-timeout-ms': '80' })).toBe('served');
    expect(await post({ 'x-request-timeout-ms': '2.5' })).toBe('served');
    expect(await post({})).toBe('served');
    expect(await post({ 'x-request-timeout-ms': 'soon' })).toBe('served');
    expect(await post({ 'x-request-timeout-ms': '-5' })).toBe('served');
    expect(asked).toEqual([80, 2.5, undefined, undefined, undefined]);
  });
});
