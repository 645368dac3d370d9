/**
 * HTTP keep-alive: the gateway keeps an idle connection open for SIBYL_KEEP_ALIVE_TIMEOUT_MS (default 65 s, longer
 * than load balancers' idle timeouts), not Node's 5 s, and says so in the Keep-Alive header. One client connection
 * idles 6 s between two requests: the second must go on the same connection (one connect), where Node's default
 * would have closed it.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { Client } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGateway, type TestGateway } from '../helpers/gateway.ts';

let gw: TestGateway;
beforeAll(async () => {
  gw = await startGateway({ SIBYL_PREDICTION_LOG: 'off' });
}, 60_000);
afterAll(() => gw?.stop());

describe('HTTP keep-alive', () => {
  it('keeps an idle connection open past Node\'s 5 s default and announces the timeout', async () => {
    let connects = 0;
    const client = new Client(gw.http, { keepAliveTimeout: 120_000, keepAliveMaxTimeout: 120_000 });
    client.on('connect', () => connects++);
    try {
      const first = await client.request({ path: '/healthz', method: 'GET' });
      await first.body.text();
      expect(first.headers['keep-alive']).toBe('timeout=65');
      await sleep(6_000);
      const second = await client.request({ path: '/healthz', method: 'GET' });
      await second.body.text();
      expect(second.statusCode).toBe(200);
      expect(connects).toBe(1);
    } finally {
      await client.close();
    }
  }, 30_000);
});
