/**
 * The packaged function (.build/lambda/function) under the real Lambda Runtime Interface Emulator and Node runtime
 * interface client: HTTP API (2.0) events for every predict door, and the requests the server refuses, answered
 * exactly as a listening gateway answers the same requests; events that are not HTTP get a 400; the streaming
 * handler sends the same answer behind its HTTP prelude.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { startGateway, type TestGateway } from '../../helpers/gateway.ts';
import { MODELS_DIR } from '../../helpers/expected.ts';
import { albEvent, badCases, httpApiEvent, MAX_BODY_BYTES, predictCases, readable, resultAnswer, serverAnswer } from '../http-cases.ts';
import { startFunction, type EmulatedFunction } from '../../../loadtest/lambda/emulator.ts';
import { packagedFunction, parseStreamed, tempDir } from './common.ts';

const env = { SIBYL_MAX_BODY_BYTES: String(MAX_BODY_BYTES), SIBYL_PREDICTION_LOG: 'off', SIBYL_LOG_LEVEL: 'warn' };
let server: TestGateway;
let fn: EmulatedFunction;
let streaming: EmulatedFunction;

beforeAll(async () => {
  const dir = packagedFunction();
  server = await startGateway({ ...env, SIBYL_MODELS_DIR: MODELS_DIR, SIBYL_FEATURES_FILE: join(MODELS_DIR, 'features.jsonl') });
  fn = await startFunction(dir, 'index.handler', { ...env, SIBYL_LOG_LEVEL: 'info', SIBYL_DATA_DIR: tempDir('lambda-data') });
  streaming = await startFunction(dir, 'index.streaming', { ...env, SIBYL_DATA_DIR: tempDir('lambda-data') });
}, 120_000);
afterAll(async () => {
  await fn?.stop();
  await streaming?.stop();
  await server?.stop();
});

describe('the packaged function under the Runtime Interface Emulator', () => {
  it('starts cold on the first invocation and serves the packaged bundles', async () => {
    const c = predictCases()[0]!;
    const got = resultAnswer(await fn.invoke(httpApiEvent(c)));
    expect(got.status).toBe(200);
    expect(fn.output()).toContain('sibyl lambda cold start');
  });

  it.each(predictCases().map((c) => [c.name, c] as const))('%s: the server answer', async (_name, c) => {
    const want = await serverAnswer(server.http, c);
    expect(want.status).toBe(c.status);
    expect(readable(resultAnswer(await fn.invoke(httpApiEvent(c))))).toEqual(readable(want));
  });

  it.each(badCases().map((c) => [c.name, c] as const))('%s: the server 4xx', async (_name, c) => {
    const want = await serverAnswer(server.http, c);
    expect(want.status).toBe(c.status);
    expect(readable(resultAnswer(await fn.invoke(httpApiEvent(c))))).toEqual(readable(want));
  });

  it('answers ALB events the same, with a status description', async () => {
    for (const c of [predictCases()[0]!, badCases()[0]!]) {
      const result = await fn.invoke(albEvent(c, true));
      expect(result).toMatchObject({ statusDescription: expect.stringMatching(/^\d{3} /) });
      expect(readable(resultAnswer(result))).toEqual(readable(await serverAnswer(server.http, c)));
    }
  });

  it('answers an event that is not HTTP with 400 INVALID_ARGUMENT in the server error body', async () => {
    const got = readable(resultAnswer(await fn.invoke({ detail: 'a scheduled event' })));
    expect(got.status).toBe(400);
    expect(got.body).toMatchObject({ code: 'INVALID_ARGUMENT', message: expect.stringContaining('not an HTTP event') });
  });

  it('the streaming handler sends the same answer (the emulator returns the streamed body without its HTTP prelude)', async () => {
    for (const c of [...predictCases(), badCases()[0]!]) {
      const { prelude, body } = parseStreamed(await streaming.invokeRaw(httpApiEvent(c)));
      const want = readable(await serverAnswer(server.http, c));
      if (prelude) expect(prelude.statusCode).toBe(want.status);
      expect(readable({ status: want.status, contentType: want.contentType, body })).toEqual(want);
    }
  });
});
