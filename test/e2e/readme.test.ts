/**
 * The README as a newcomer meets it: a fresh clone of this repository's committed state (a local `git clone`),
 * `npm start` in it with only the machine's own Node on PATH (it may be older than 24: the scripts fetch Node 24
 * and install the dependencies themselves), then every ```sh block of README.md's "Try it" section (what one does
 * after `npm start`; other sections show commands for other machines, clusters or `npm test` itself) run in order
 * with bash in the clone, each compared with the ```json or ```text block that follows it, if any
 * (readme-output.ts: `…` matches what differs from run to run, objects may show some of their keys, numbers to
 * 1e-4). A block with no output shown must exit 0.
 *
 * Ports: `npm start` here listens on free ports (SIBYL_HTTP_PORT, SIBYL_GRPC_PORT, SIBYL_TOWER_PORT) and the
 * blocks' localhost:8080/8081/8090 are rewritten to them; the CLI finds them in SIBYL_GATEWAY_URL,
 * SIBYL_GATEWAY_GRPC and SIBYL_TOWER_URL, and SIBYL_TOKEN is the token npm start printed, as the README says to
 * export. The Redis block uses the test Redis (SIBYL_TEST_REDIS_URL).
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { delimiter, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { matchOutput, parseShownJson, readmeBlocks, type ReadmeBlock } from '../helpers/readme-output.ts';
import { freePort } from '../helpers/ports.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const REDIS_URL = process.env.SIBYL_TEST_REDIS_URL ?? 'redis://127.0.0.1:6399';

/** PATH without the repository's Node 24 (scripts/env.sh puts it first): the machine's own Node, whatever it is. */
const machinePath = (process.env.PATH ?? '').split(delimiter).filter((p) => !p.includes(`${join('.tools', 'node24')}`)).join(delimiter);


let clone = '';
let child: ChildProcess | undefined;
let output = '';
let env: Record<string, string> = {};
let ports = { http: 0, grpc: 0, tower: 0 };

beforeAll(async () => {
  clone = join(mkdtempSync(join(tmpdir(), 'sibyl-readme-')), 'sibyl');
  execFileSync('git', ['clone', '--quiet', '--no-hardlinks', ROOT, clone]);
  ports = { http: await freePort(), grpc: await freePort(), tower: await freePort() };
  const base: Record<string, string> = {};
  for (const k of ['HOME', 'USER', 'LANG', 'TMPDIR', 'npm_config_cache']) if (process.env[k]) base[k] = process.env[k]!;
  env = {
    ...base,
    PATH: machinePath,
    SIBYL_HTTP_PORT: String(ports.http),
    SIBYL_GRPC_PORT: String(ports.grpc),
    SIBYL_TOWER_PORT: String(ports.tower),
    SIBYL_TEST_REDIS_URL: REDIS_URL,
  };
  child = spawn('npm', ['start'], { cwd: clone, env, detached: true });
  child.stdout!.on('data', (d) => (output += d));
  child.stderr!.on('data', (d) => (output += d));
  // A fresh clone fetches Node 24 and installs the dependencies first.
  const deadline = Date.now() + 400_000;
  for (;;) {
    const token = /export SIBYL_TOKEN=(\S+)/.exec(output);
    if (token) {
      env = {
        ...env,
        SIBYL_TOKEN: token[1]!,
        SIBYL_TOWER_URL: `http://127.0.0.1:${ports.tower}`,
        SIBYL_GATEWAY_URL: `http://127.0.0.1:${ports.http}`,
        SIBYL_GATEWAY_GRPC: `127.0.0.1:${ports.grpc}`,
      };
      return;
    }
    if (child.exitCode !== null || Date.now() > deadline) throw new Error(`npm start did not start in the clone:\n${output.slice(-3000)}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}, 420_000);

afterAll(async () => {
  if (child && child.exitCode === null) {
    const exited = new Promise((r) => child!.once('exit', r));
    // npm start's process group: npm, bash and node local/main.ts.
    process.kill(-child.pid!, 'SIGTERM');
    await Promise.race([exited, new Promise((r) => setTimeout(r, 15_000))]);
    if (child.exitCode === null) process.kill(-child.pid!, 'SIGKILL');
  }
  // The clone holds its own node_modules and Node 24 (~600 MB).
  if (clone) rmSync(dirname(clone), { recursive: true, force: true });
}, 60_000);

/** The block's commands with the README's default addresses moved to this run's. */
function localize(code: string): string {
  return code
    .replaceAll('localhost:8080', `localhost:${ports.http}`)
    .replaceAll('localhost:8081', `localhost:${ports.grpc}`)
    .replaceAll('localhost:8090', `localhost:${ports.tower}`)
    .replaceAll('redis://127.0.0.1:6399', REDIS_URL);
}

function run(block: ReadmeBlock): { status: number; stdout: string; stderr: string } {
  try {
    const stdout = execFileSync('bash', ['-euo', 'pipefail', '-c', localize(block.code)], { cwd: clone, env, encoding: 'utf8', timeout: 120_000, stdio: ['ignore', 'pipe', 'pipe'] });
    return { status: 0, stdout, stderr: '' };
  } catch (err) {
    const e = err as { status?: number; stdout?: string; stderr?: string };
    return { status: e.status ?? 1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
  }
}

describe('the README, run as written on a fresh clone after npm start', () => {
  const blocks = readmeBlocks(readFileSync(join(ROOT, 'README.md'), 'utf8'), 'Try it');

  it('has shell examples with their answers', () => {
    expect(blocks.length).toBeGreaterThanOrEqual(10);
    expect(blocks.filter((b) => b.expected !== undefined).length).toBeGreaterThanOrEqual(8);
    for (const b of blocks) if (b.kind === 'json') expect(() => parseShownJson(b.expected!), `README.md line ${b.line}`).not.toThrow();
  });

  it('runs every shell block and answers what the README shows', async () => {
    for (const block of blocks) {
      // A change the tower accepted reaches the gateway within a second or two, a report within its interval: an
      // answer that differs is asked again for a while before it counts as wrong.
      const deadline = Date.now() + 30_000;
      for (;;) {
        const r = run(block);
        const problem =
          r.status !== 0 ? `exit status ${r.status}\n${r.stderr}` : block.expected === undefined ? undefined : matchOutput(block.expected, r.stdout, block.kind);
        if (problem === undefined) break;
        if (Date.now() > deadline) throw new Error(`README.md line ${block.line}:\n${block.code}\n--- ${problem}\n--- stdout:\n${r.stdout}`);
        await new Promise((res) => setTimeout(res, 1000));
      }
    }
  }, 600_000);
});
