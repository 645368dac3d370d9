/**
 * A private redis-server for tests that stop, freeze or restart Redis without touching the shared one that
 * scripts/services/redis.sh runs. No persistence; its working directory is a fresh temp dir.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createConnection } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from '../helpers/ports.ts';
export { freePort };

export class RedisProcess {
  readonly port: number;
  readonly dir: string;
  /** With TLS: the server's self-signed certificate, for the client to trust as its authority. */
  readonly ca: Buffer | undefined;
  private child: ChildProcess | undefined;

  private readonly args: readonly string[];

  private constructor(port: number, args: readonly string[], tls: boolean) {
    this.port = port;
    this.dir = mkdtempSync(join(tmpdir(), 'sibyl-redis-'));
    if (!tls) {
      this.args = ['--port', String(port), ...args];
      this.ca = undefined;
      return;
    }
    // A self-signed certificate for the loopback address (openssl: scripts/services/redis.sh installs it).
    const cert = join(this.dir, 'cert.pem');
    const key = join(this.dir, 'key.pem');
    execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', '/CN=localhost', '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost', '-keyout', key, '-out', cert], { stdio: 'ignore' });
    this.ca = readFileSync(cert);
    this.args = ['--port', '0', '--tls-port', String(port), '--tls-cert-file', cert, '--tls-key-file', key, '--tls-auth-clients', 'no', ...args];
  }

  /** `args`: more redis-server options, e.g. `['--requirepass', 'secret']`. */
  static async start(args: readonly string[] = []): Promise<RedisProcess> {
    const r = new RedisProcess(await freePort(), args, false);
    await r.start();
    return r;
  }

  /** The same server speaking TLS only (`rediss://`), with a certificate of its own (`ca`). */
  static async startTls(args: readonly string[] = []): Promise<RedisProcess> {
    const r = new RedisProcess(await freePort(), args, true);
    await r.start();
    return r;
  }

  get url(): string {
    return `${this.ca ? 'rediss' : 'redis'}://127.0.0.1:${this.port}`;
  }

  /** Starts the server (again) on its port and waits until it answers PING. */
  async start(): Promise<void> {
    const child = spawn(
      'redis-server',
      ['--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--daemonize', 'no', '--dir', this.dir, ...this.args],
      { stdio: 'ignore' },
    );
    this.child = child;
    const exited = new Promise<never>((_, reject) => child.once('exit', (code) => reject(new Error(`redis-server exited with ${code}`))));
    exited.catch(() => {});
    const deadline = Date.now() + 10_000;
    while (Date.now() < deadline) {
      if (await answersPing(this.port, this.ca)) return;
      await Promise.race([sleep(50), exited]);
    }
    throw new Error(`redis-server on port ${this.port} did not answer PING within 10 s`);
  }

  /** Kills the server and waits for it to exit. */
  async stop(): Promise<void> {
    const child = this.child;
    this.child = undefined;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGCONT');
    child.kill('SIGKILL');
    await exited;
  }

  /** SIGSTOP: the kernel still accepts connections and bytes, the server answers nothing. */
  freeze(): void {
    this.child?.kill('SIGSTOP');
  }

  /** SIGCONT: the server answers what it received, in order. */
  thaw(): void {
    this.child?.kill('SIGCONT');
  }

  async dispose(): Promise<void> {
    await this.stop();
    rmSync(this.dir, { recursive: true, force: true });
  }
}

function answersPing(port: number, ca: Buffer | undefined): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = ca ? tlsConnect({ port, host: '127.0.0.1', ca }) : createConnection({ port, host: '127.0.0.1' });
    const done = (ok: boolean) => {
      sock.destroy();
      resolve(ok);
    };
    sock.setTimeout(500, () => done(false));
    sock.once('error', () => done(false));
    sock.once(ca ? 'secureConnect' : 'connect', () => sock.write('PING\r\n'));
    // A server with a password answers NOAUTH: it is up.
    sock.once('data', (d) => done(d.toString().startsWith('+PONG') || d.toString().startsWith('-NOAUTH')));
  });
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
