import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../gateway/config.ts';

describe('loadConfig', () => {
  it('gives embedded defaults with an empty environment', () => {
    const c = loadConfig({});
    expect(c.featureStore).toMatchObject({ kind: 'memory', seedFile: 'models/features.jsonl', prefix: 'sibyl', timeoutMs: 5 });
    expect(c.predictionLog).toEqual({ kind: 'file', dir: '.data/predictions/local' });
    expect([c.httpPort, c.grpcPort]).toEqual([8080, 8081]);
    expect(Object.isFrozen(c) && Object.isFrozen(c.featureStore)).toBe(true);
  });
  it('switches to the real parts when REDIS_URL and KAFKA_BROKERS are set', () => {
    const c = loadConfig({ REDIS_URL: 'redis://r:6379', KAFKA_BROKERS: 'a:9092, b:9092', SIBYL_KAFKA_TOPIC: 'preds', SIBYL_CELL: 'eu-1' });
    expect(c.featureStore).toMatchObject({ kind: 'redis', url: 'redis://r:6379' });
    expect(c.predictionLog).toEqual({ kind: 'kafka', brokers: ['a:9092', 'b:9092'], topic: 'preds', compression: 'none', walDir: '.data/wal/eu-1' });
  });
  it("compresses the log's Kafka batches with the codec asked for, and names the codecs it knows otherwise", () => {
    expect(loadConfig({ KAFKA_BROKERS: 'a:1', SIBYL_KAFKA_COMPRESSION: 'zstd' }).predictionLog).toMatchObject({ kind: 'kafka', compression: 'zstd' });
    expect(() => loadConfig({ KAFKA_BROKERS: 'a:1', SIBYL_KAFKA_COMPRESSION: 'brotli' })).toThrow(/SIBYL_KAFKA_COMPRESSION: .*"none"\|"gzip"\|"snappy"\|"lz4"\|"zstd" \(got "brotli"\)/);
  });
  it('turns the prediction log off', () => {
    expect(loadConfig({ SIBYL_PREDICTION_LOG: 'off', KAFKA_BROKERS: 'a:1' }).predictionLog).toEqual({ kind: 'off' });
  });
  it('drains without a grace period by default, and wants the grace period shorter than the drain timeout', () => {
    expect(loadConfig({})).toMatchObject({ drainTimeoutMs: 10_000, drainGraceMs: 0 });
    expect(loadConfig({ SIBYL_DRAIN_GRACE_MS: '5000', SIBYL_DRAIN_TIMEOUT_MS: '30000' })).toMatchObject({ drainTimeoutMs: 30_000, drainGraceMs: 5_000 });
    expect(() => loadConfig({ SIBYL_DRAIN_GRACE_MS: '10000' })).toThrow(/SIBYL_DRAIN_GRACE_MS: must be less than SIBYL_DRAIN_TIMEOUT_MS/);
  });
  it('keeps idle HTTP connections 65 s by default, longer than common load balancers do', () => {
    expect(loadConfig({}).keepAliveTimeoutMs).toBe(65_000);
    expect(loadConfig({ SIBYL_KEEP_ALIVE_TIMEOUT_MS: '125000' }).keepAliveTimeoutMs).toBe(125_000);
    expect(() => loadConfig({ SIBYL_KEEP_ALIVE_TIMEOUT_MS: '0' })).toThrow(/SIBYL_KEEP_ALIVE_TIMEOUT_MS/);
  });
  it('reports every invalid variable at once', () => {
    let err: unknown;
    try {
      loadConfig({ SIBYL_HTTP_PORT: 'eighty', SIBYL_FEATURE_TIMEOUT_MS: '-1', SIBYL_CELL: 'Bad Cell' });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    const problems = (err as ConfigError).problems.join('\n');
    expect(problems).toMatch(/SIBYL_HTTP_PORT/);
    expect(problems).toMatch(/SIBYL_FEATURE_TIMEOUT_MS/);
    expect(problems).toMatch(/SIBYL_CELL/);
  });
});
