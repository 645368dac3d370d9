/**
 * The web console as the tower serves it (control-tower/console.ts) on a real listener: /console/ with a strict
 * Content-Security-Policy whose nonce is new per load and the one the page gives its editor, only the built files,
 * the way in from / and /console, the API beside it unchanged, and a clear answer when the console is not built.
 */
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestTower, type TestTower } from './api/tower.ts';

let t: TestTower;
let base: string;
const dist = mkdtempSync(join(tmpdir(), 'sibyl-console-dist-'));

beforeAll(async () => {
  mkdirSync(dist, { recursive: true });
  writeFileSync(join(dist, 'index.html'), '<meta name="csp-nonce" content="__CSP_NONCE__"><script type="module" src="app.js"></script>');
  writeFileSync(join(dist, 'app.js'), 'console.log(1)');
  writeFileSync(join(dist, 'app.css'), 'body{}');
  writeFileSync(join(dist, 'notes.txt'), 'not served');
  t = await startTestTower({}, { consoleDir: dist });
  const { port } = await t.tower.start();
  base = `http://127.0.0.1:${port}`;
}, 60_000);
afterAll(() => t?.stop());

describe('the console', () => {
  it('is served at /console/ under a strict CSP whose style nonce is new per load and given to the page', async () => {
    const a = await fetch(`${base}/console/`);
    expect(a.status).toBe(200);
    expect(a.headers.get('content-type')).toBe('text/html; charset=utf-8');
    const csp = a.headers.get('content-security-policy')!;
    const nonce = /'nonce-([^']+)'/.exec(csp)![1]!;
    expect(csp).toBe(
      `default-src 'none'; script-src 'self'; style-src 'self' 'nonce-${nonce}'; img-src 'self' data:; connect-src 'self'; font-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'`,
    );
    expect(await a.text()).toContain(`content="${nonce}"`);
    const b = await fetch(`${base}/console/`);
    expect(/'nonce-([^']+)'/.exec(b.headers.get('content-security-policy')!)![1]).not.toBe(nonce);
    expect(a.headers.get('x-content-type-options')).toBe('nosniff');
    expect(a.headers.get('x-frame-options')).toBe('DENY');
    expect(a.headers.get('cache-control')).toBe('no-store');
  });

  it('serves the built files with their types, and nothing else', async () => {
    const js = await fetch(`${base}/console/app.js`);
    expect([js.status, js.headers.get('content-type'), await js.text()]).toEqual([200, 'text/javascript; charset=utf-8', 'console.log(1)']);
    expect((await fetch(`${base}/console/app.css`)).headers.get('content-type')).toBe('text/css; charset=utf-8');
    for (const path of ['/console/notes.txt', '/console/..%2Fpackage.json', '/console/x/app.js', '/console/nope.js']) {
      const res = await fetch(`${base}${path}`);
      expect(res.status, path).toBe(404);
      expect(res.headers.get('content-security-policy'), path).toContain("default-src 'none'");
    }
    expect((await fetch(`${base}/console/app.js`, { method: 'POST' })).status).toBe(405);
  });

  it('is where / and /console lead, and leaves the API as it was', async () => {
    for (const path of ['/', '/console']) {
      const res = await fetch(`${base}${path}`, { redirect: 'manual' });
      expect([res.status, res.headers.get('location')]).toEqual([308, '/console/']);
    }
    expect((await fetch(`${base}/v1/models`)).status).toBe(401);
    expect(await (await fetch(`${base}/v1/whoami`, { headers: { authorization: `Bearer ${t.tower.adminToken}` } })).json()).toEqual({ name: 'dev-admin', role: 'admin' });
    expect((await fetch(`${base}/healthz`)).status).toBe(200);
  });

  it('says how to build it when it is not built', async () => {
    const empty = await startTestTower({}, { consoleDir: join(dist, 'missing') });
    try {
      const { port } = await empty.tower.start();
      const res = await fetch(`http://127.0.0.1:${port}/console/`);
      expect(res.status).toBe(404);
      expect(await res.text()).toContain('npm run build:console');
    } finally {
      await empty.stop();
    }
  });
});
