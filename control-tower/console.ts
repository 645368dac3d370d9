/**
 * The web console (console/ in the repository, ARCHITECTURE.md "The web console"): the single-page app the build
 * (`node console/build.ts`, run by `npm start`, `npm test` and `npm run build:console`) writes to `console/dist/`,
 * served under `/console/` beside the REST API, which is the only thing it talks to. Not part of the API (no
 * token: the page asks for one and sends it to /v1 itself) and not in its OpenAPI document.
 *
 * Every answer carries a strict Content-Security-Policy: scripts and styles from this origin only, plus the style
 * elements the code editor inserts, allowed by a nonce made per page load; no inline script, no other origin, no
 * frames. The page uses hash routes (`/console/#/models/x`), so the only paths are the built files.
 */
import { randomBytes } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import { extname, join } from 'node:path';

/** Where the build writes the console: `console/dist` at the repository's root. */
export const DEFAULT_CONSOLE_DIR = new URL('../console/dist/', import.meta.url).pathname;

const TYPES: Readonly<Record<string, string>> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.map': 'application/json',
};

/** The policy of the page whose editor styles carry `nonce`. */
export function consolePolicy(nonce: string): string {
  return [
    "default-src 'none'",
    "script-src 'self'",
    `style-src 'self' 'nonce-${nonce}'`,
    "img-src 'self' data:",
    "connect-src 'self'",
    "font-src 'self'",
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'none'",
  ].join('; ');
}

/** Is this path the console's (`/console`, `/console/...`) or the root, which leads to it? */
export function isConsolePath(pathname: string): boolean {
  return pathname === '/' || pathname === '/console' || pathname.startsWith('/console/');
}

/**
 * Answers the console's paths from the files in `dir`, read once at the first request (a build while the tower
 * runs is seen after a restart). Without a build: 404 saying how to build it.
 */
export function createConsoleHandler(dir: string = DEFAULT_CONSOLE_DIR): (req: Request) => Promise<Response> {
  let files: Promise<Map<string, Buffer>> | undefined;
  const load = async () => {
    const out = new Map<string, Buffer>();
    const names = await readdir(dir).catch(() => [] as string[]);
    for (const name of names) if (TYPES[extname(name)]) out.set(name, await readFile(join(dir, name)));
    return out;
  };
  return async function serveConsole(req) {
    const { pathname } = new URL(req.url);
    if (pathname === '/' || pathname === '/console') return new Response(null, { status: 308, headers: { location: '/console/' } });
    if (req.method !== 'GET' && req.method !== 'HEAD') return new Response('method not allowed', { status: 405, headers: { allow: 'GET, HEAD' } });
    const all = await (files ??= load());
    const name = pathname === '/console/' ? 'index.html' : pathname.slice('/console/'.length);
    const body = all.get(name);
    const nonce = randomBytes(16).toString('base64');
    const headers: Record<string, string> = {
      'content-security-policy': consolePolicy(nonce),
      'x-content-type-options': 'nosniff',
      'referrer-policy': 'no-referrer',
      'x-frame-options': 'DENY',
    };
    if (!body) {
      const text = all.size === 0 ? 'the console is not built: run `npm run build:console`\n' : `no such file: ${name}\n`;
      return new Response(text, { status: 404, headers: { ...headers, 'content-type': 'text/plain; charset=utf-8' } });
    }
    if (name === 'index.html') {
      return new Response(body.toString('utf8').replaceAll('__CSP_NONCE__', nonce), { headers: { ...headers, 'content-type': TYPES['.html']!, 'cache-control': 'no-store' } });
    }
    return new Response(new Uint8Array(body), { headers: { ...headers, 'content-type': TYPES[extname(name)]!, 'cache-control': 'no-cache' } });
  };
}
