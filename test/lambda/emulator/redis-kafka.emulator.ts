/**
 * The packaged function under the Runtime Interface Emulator with a real Redis (features) and a real Kafka broker
 * (the prediction log), delivery-eta shadowed by its version 1. Right after each invocation returns, the runtime's
 * process is stopped (SIGSTOP), as Lambda freezes an environment; the records of the live execution and of its
 * shadow must be in the topic by then. Then a freeze during which the function's Redis and Kafka connections are
 * destroyed (ss -K): after the thaw the function reconnects, answers with store features, and its records are in
 * the topic when it returns.
 */
import { execFileSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Kafka, logLevel, type Admin } from 'kafkajs';
import { createRedisFeatureStore } from '../../../gateway/features/redis-feature-store.ts';
import { loadFeatureFile } from '../../../gateway/features/feature-file.ts';
import { startGateway, type TestGateway } from '../../helpers/gateway.ts';
import { MODELS_DIR } from '../../helpers/expected.ts';
import { makeModelsDir } from '../../helpers/models-dir.ts';
import { consumeTopic, TEST_BROKERS, uniqueName } from '../../log/records.ts';
import { httpApiEvent, predictCases, readable, resultAnswer, serverAnswer, type HttpCase } from '../http-cases.ts';
import { startFunction, type EmulatedFunction } from '../../../loadtest/lambda/emulator.ts';
import { bundlesOf, packagedFunction, tempDir } from './common.ts';

const REDIS_URL = process.env.SIBYL_TEST_REDIS_URL ?? 'redis://127.0.0.1:6399';
const REDIS_PORT = new URL(REDIS_URL).port || '6379';
const KAFKA_PORTS = TEST_BROKERS.map((b) => b.split(':')[1]!);
const topic = uniqueName('lambda-predictions');
const prefix = uniqueName('lambda-features');

let fn: EmulatedFunction;
let server: TestGateway;
let admin: Admin;

beforeAll(async () => {
  const loader = createRedisFeatureStore({ url: REDIS_URL, commandTimeoutMs: 10_000 });
  try {
    await loader.ready();
    await loader.write(await loadFeatureFile(`${MODELS_DIR}features.jsonl`, prefix));
  } finally {
    await loader.close();
  }
  const models = makeModelsDir({ bundles: ['delivery-eta/1', 'delivery-eta/2', 'eta-risk/1'], deployment: { models: { 'delivery-eta': { default: '2', shadows: [{ version: '1' }] } } } });
  const common = { REDIS_URL, SIBYL_FEATURE_PREFIX: prefix, SIBYL_FEATURE_TIMEOUT_MS: '200', SIBYL_LOG_LEVEL: 'warn' };
  server = await startGateway({ ...common, SIBYL_MODELS_DIR: models, SIBYL_PREDICTION_LOG: 'off' });
  fn = await startFunction(packagedFunction(), 'index.handler', {
    ...common,
    KAFKA_BROKERS: TEST_BROKERS.join(','),
    SIBYL_KAFKA_TOPIC: topic,
    SIBYL_BUNDLES_DIR: await bundlesOf(models),
    SIBYL_DATA_DIR: tempDir('lambda-data'),
  });
  admin = new Kafka({ clientId: 'sibyl-lambda-test', brokers: TEST_BROKERS, logLevel: logLevel.NOTHING }).admin();
  await admin.connect();
}, 180_000);
afterAll(async () => {
  await admin?.disconnect();
  await fn?.stop();
  await server?.stop();
});

/** Messages in the topic: the sum of its partitions' high watermarks (0 before the topic exists). */
async function messagesInTopic(): Promise<number> {
  try {
    return (await admin.fetchTopicOffsets(topic)).reduce((n, p) => n + Number(p.high), 0);
  } catch {
    return 0;
  }
}

function caseWithId(id: string): HttpCase {
  const c = predictCases()[0]!;
  return { ...c, headers: { ...c.headers, 'x-request-id': id } };
}

/** The runtime's TCP connections to a port: [local port, remote port]. */
function connections(pid: number, ports: readonly string[]): [string, string][] {
  const out = execFileSync('ss', ['-tnpH', 'state', 'established']).toString();
  const found: [string, string][] = [];
  for (const line of out.split('\n')) {
    if (!line.includes(`pid=${pid},`)) continue;
    const [, local, peer] = /(\S+:\d+)\s+(\S+:\d+)\s+users:/.exec(line) ?? [];
    const peerPort = peer?.split(':').pop();
    if (local && peerPort && ports.includes(peerPort)) found.push([local.split(':').pop()!, peerPort]);
  }
  return found;
}

describe('the function with Redis and Kafka, frozen after every invocation', () => {
  const ids: string[] = [];

  it('answers with store features like the server, and the live and shadow records are in the topic when it returns', async () => {
    let expected = await messagesInTopic();
    for (let i = 0; i < 5; i++) {
      const c = caseWithId(`lambda-kafka-${i}`);
      const result = await fn.invoke(httpApiEvent(c));
      // Lambda freezes the environment once the invocation returns: nothing of the function runs from here.
      fn.freeze();
      try {
        expected += 2;
        expect(await messagesInTopic(), `records of invocation ${i} in the topic at its return`).toBe(expected);
      } finally {
        fn.thaw();
      }
      const got = readable(resultAnswer(result));
      expect(got).toEqual(readable(await serverAnswer(server.http, c)));
      expect(JSON.stringify(got.body)).not.toContain('defaultedFeatures');
      ids.push(c.headers['x-request-id']!);
    }
  });

  it('reconnects to Redis and Kafka after a freeze that outlived its connections', async () => {
    const pid = fn.runtimePid()!;
    expect(connections(pid, [REDIS_PORT]).length, 'a Redis connection before the freeze').toBeGreaterThan(0);
    expect(connections(pid, KAFKA_PORTS).length, 'a Kafka connection before the freeze').toBeGreaterThan(0);
    const before = await messagesInTopic();
    fn.freeze();
    try {
      // What a server or a NAT does to connections idle through a long freeze: the function finds them dead.
      for (const [local, remote] of connections(pid, [REDIS_PORT, ...KAFKA_PORTS])) execFileSync('ss', ['-K', '-tn', 'sport', '=', `:${local}`, 'dport', '=', `:${remote}`]);
      expect(connections(pid, [REDIS_PORT, ...KAFKA_PORTS])).toEqual([]);
    } finally {
      fn.thaw();
    }
    const c = caseWithId('lambda-kafka-thawed');
    const result = await fn.invoke(httpApiEvent(c));
    fn.freeze();
    try {
      expect(await messagesInTopic(), 'records in the topic at the return after the thaw').toBe(before + 2);
    } finally {
      fn.thaw();
    }
    const got = readable(resultAnswer(result));
    expect(got).toEqual(readable(await serverAnswer(server.http, c)));
    expect(JSON.stringify(got.body), 'store features read after the reconnect').not.toContain('defaultedFeatures');
    ids.push(c.headers['x-request-id']!);
  });

  it('the topic holds one live and one shadow record per invocation, with the request id', async () => {
    const messages = await consumeTopic(TEST_BROKERS, topic, ids.length * 2);
    for (const id of ids) {
      const mine = messages.filter((m) => m.key === id).map((m) => m.event.data as { role: string; version: string; rows: { defaultedFeatures?: string[] }[] });
      expect(mine.map((r) => `${r.role}:${r.version}`).sort(), id).toEqual(['ROLE_LIVE:2', 'ROLE_SHADOW:1']);
      expect(mine.every((r) => r.rows.every((row) => (row.defaultedFeatures ?? []).length === 0))).toBe(true);
    }
  });
});
