/**
 * What `npm start` runs (local/main.ts): a control tower with the demo models published on first start,
 * and one gateway following it, in one process, nothing else running. It prints a development token that works
 * against the tower; the README's prediction answers; a second start reuses the stored models.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { postJson } from '../helpers/gateway.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
let child: ChildProcess | undefined;
afterEach(async () => {
  if (child && child.exitCode === null) {
    child.kill('SIGTERM');
    await new Promise((r) => child!.once('exit', r));
  }
});

async function start(dataDir: string): Promise<{ http: string; tower: string; token: string; output: () => string }> {
  let out = '';
  child = spawn(process.execPath, ['local/main.ts'], {
    cwd: ROOT,
    env: { ...process.env, SIBYL_DATA_DIR: dataDir, SIBYL_HTTP_PORT: '0', SIBYL_GRPC_PORT: '0', SIBYL_TOWER_PORT: '0', SIBYL_LOG_LEVEL: 'info', REDIS_URL: '', KAFKA_BROKERS: '' },
  });
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (out += d));
  const deadline = Date.now() + 60_000;
  for (;;) {
    const gw = /"httpPort":(\d+)/.exec(out);
    const tw = /"port":(\d+)[^\n]*control tower serving/.exec(out);
    const token = /SIBYL_TOKEN=(\S+)/.exec(out);
    if (gw && tw && token) return { http: `http://127.0.0.1:${gw[1]}`, tower: `http://127.0.0.1:${tw[1]}`, token: token[1]!, output: () => out };
    if (child.exitCode !== null || Date.now() > deadline) throw new Error(`local mode did not start:\n${out}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

const body = {
  rows: [{ entities: { restaurant: 'r320', zone: 'z55', customer: 'c187' }, features: { distance_km: 0.67, hour_of_day: 8, day_of_week: 3, basket_size: 4, basket_value: 33.47, is_raining: 0, is_weekend: 0 } }],
};

describe('npm start (local mode)', () => {
  it('publishes the demo models, serves them, prints a working token, and starts again from what it stored', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'sibyl-local-'));
    const first = await start(dataDir);
    const res = await postJson(`${first.http}/v1/models/delivery-eta:predict`, body);
    expect(res).toMatchObject({ status: 200, json: { model: 'delivery-eta', version: '2' } });
    expect((await postJson(`${first.http}/v1/models/delivery-eta/versions/stable:predict`, body)).json.version).toBe('1');
    const models: any = await (await fetch(`${first.tower}/v1/models`, { headers: { authorization: `Bearer ${first.token}` } })).json();
    expect(models.models.map((m: any) => m.name)).toEqual(['delivery-eta', 'eta-risk', 'tabular-mlp']);
    expect(first.output()).toContain('demo models published');
    child!.kill('SIGTERM');
    await new Promise((r) => child!.once('exit', r));

    const second = await start(dataDir);
    expect(second.output()).not.toContain('demo models published');
    expect((await postJson(`${second.http}/v1/models/delivery-eta:predict`, body)).status).toBe(200);
    expect((await fetch(`${second.tower}/v1/models`, { headers: { authorization: `Bearer ${first.token}` } })).status).toBe(401);
  });
});
