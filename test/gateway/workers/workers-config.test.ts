import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../../gateway/config.ts';

const host = (quota: number | undefined, cpus = 8) => ({ cpuQuotaCores: () => quota, availableParallelism: () => cpus });

describe('SIBYL_WORKERS', () => {
  it('is one process by default, with the single-process paths', () => {
    const c = loadConfig({ KAFKA_BROKERS: 'k:9092', SIBYL_CELL: 'eu-1', SIBYL_REPLICA: 'pod-a' }, host(4));
    expect(c).toMatchObject({ workers: 1, workerIndex: undefined, sync: { replica: 'pod-a', cacheDir: '.data/cache/eu-1' } });
    expect(c.predictionLog).toMatchObject({ walDir: '.data/wal/eu-1' });
    expect(c.admission.cpuCores).toBeUndefined();
  });
  it('takes a number, or auto: the cgroup quota rounded up, else every CPU', () => {
    expect(loadConfig({ SIBYL_WORKERS: '3' }, host(undefined)).workers).toBe(3);
    expect(loadConfig({ SIBYL_WORKERS: 'auto' }, host(2)).workers).toBe(2);
    expect(loadConfig({ SIBYL_WORKERS: 'AUTO' }, host(1.5)).workers).toBe(2);
    expect(loadConfig({ SIBYL_WORKERS: 'auto' }, host(0.5)).workers).toBe(1);
    expect(loadConfig({ SIBYL_WORKERS: 'auto' }, host(undefined, 6)).workers).toBe(6);
    expect(loadConfig({ SIBYL_WORKERS: 'auto' }, host(500)).workers).toBe(64);
    expect(loadConfig({ SIBYL_WORKERS: '' }, host(4)).workers).toBe(1);
  });
  it('refuses what is not a count, and several workers on port 0', () => {
    for (const v of ['0', '-1', '1.5', 'many', '65']) expect(() => loadConfig({ SIBYL_WORKERS: v }, host(1))).toThrow(/SIBYL_WORKERS/);
    expect(() => loadConfig({ SIBYL_WORKERS: '2', SIBYL_HTTP_PORT: '0' }, host(1))).toThrow(/SIBYL_WORKERS: 2 workers need fixed ports/);
    expect(() => loadConfig({ SIBYL_WORKERS: '1', SIBYL_HTTP_PORT: '0', SIBYL_GRPC_PORT: '0' }, host(1))).not.toThrow();
    expect(() => loadConfig({ SIBYL_WORKERS: 'auto', SIBYL_HTTP_PORT: '0' }, host(1))).not.toThrow();
    expect(() => loadConfig({ SIBYL_WORKERS: '2', SIBYL_WORKER_INDEX: '2' }, host(1))).toThrow(ConfigError);
  });
  it('gives a worker its own write-ahead log, bundle cache, replica name and part of the CPU quota', () => {
    const env = { SIBYL_WORKERS: '2', SIBYL_WORKER_INDEX: '1', KAFKA_BROKERS: 'k:9092', SIBYL_CELL: 'eu-1', SIBYL_DATA_DIR: '/d', SIBYL_REPLICA: 'pod-a' };
    const c = loadConfig(env, host(1.5));
    expect(c).toMatchObject({ workers: 2, workerIndex: 1, sync: { replica: 'pod-a-w1', cacheDir: '/d/cache/eu-1/1' } });
    expect(c.predictionLog).toMatchObject({ walDir: '/d/wal/eu-1/1' });
    expect(c.admission.cpuCores).toBe(0.75);
    expect(loadConfig({ ...env, SIBYL_CACHE_DIR: '/c' }, host(undefined)).sync.cacheDir).toBe('/c/1');
    expect(loadConfig({ ...env, SIBYL_REPLICA: undefined }, host(undefined)).sync.replica).toMatch(new RegExp(`-${process.ppid}-w1$`));
    // The supervisor's own configuration keeps the shared paths (it hands out the per-worker ones).
    expect(loadConfig({ ...env, SIBYL_WORKER_INDEX: undefined }, host(2)).predictionLog).toMatchObject({ walDir: '/d/wal/eu-1' });
  });
});
