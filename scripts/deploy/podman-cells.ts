/**
 * The deployment of scripts/deploy/cells-test.ts on podman: rendering the charts, playing them, and removing them
 * again, leftovers of earlier runs included.
 *
 * podman runs Pods and Deployments but not Services or NetworkPolicies: each Deployment is played on its own on one
 * network with DNS, under the names of the Services that select its pods (network aliases), so the rendered
 * addresses (redis://sibyl-cell-a-redis:6379, http://sibyl-tower:8090) resolve as in a cluster. Every container
 * port gets a hostPort on 127.0.0.1: podman 4.3 publishes a containerPort without one on all interfaces under its
 * own number.
 *
 * What a run leaves behind when it is killed, and what the next run therefore removes before it plays anything
 * (`removeDeployment`): the pods (`<deployment>-pod-0`), the named volumes podman 4.3 makes of every emptyDir
 * (they outlive the pod, and a stale one hands the next tower its database and the next gateway its write-ahead
 * log), the secret, and the network with anything still attached to it. Names come from the rendered objects, so
 * nothing depends on a file of an earlier run.
 */
import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { parseAllDocuments, stringify } from 'yaml';

export const ROOT = join(import.meta.dirname, '..', '..');
export const WORK = join(ROOT, '.data', 'deploy', 'cells-test');
const ENV = { ...process.env, CONTAINERS_CONF: join(ROOT, 'deploy/podman/containers.conf') };
const HELM = join(ROOT, '.tools/bin/helm');
const VALIDATE = join(ROOT, '.tools/bin/sibyl-validate');
export const NETWORK = 'sibyl-cells-test';
export const SECRET = 'sibyl-tower-admin';
/** Longest a single podman or helm command may take: a kube play of a pod on a loaded 2-core machine takes ~10 s. */
const COMMAND_TIMEOUT_MS = 300_000;

const run = promisify(execFile);

export async function sh(cmd: string, args: readonly string[], allowFailure = false): Promise<string> {
  try {
    // In WORK: `podman kube play` looks for a build context named like each image in its working directory.
    const { stdout } = await run(cmd, args, { env: ENV, cwd: WORK, maxBuffer: 64 << 20, timeout: COMMAND_TIMEOUT_MS, killSignal: 'SIGKILL' });
    return stdout;
  } catch (err) {
    if (allowFailure) return '';
    const e = err as { stderr?: string; message: string; killed?: boolean };
    throw new Error(`${cmd} ${args.join(' ')}: ${e.killed ? `killed after ${COMMAND_TIMEOUT_MS / 1000} s` : e.stderr || e.message}`);
  }
}

export const podman = (args: readonly string[], allowFailure = false) => sh('podman', args, allowFailure);

export interface K8sObject {
  kind: string;
  metadata: { name: string };
  spec?: {
    selector?: Record<string, string>;
    template?: { metadata?: { labels?: Record<string, string> }; spec?: { volumes?: { name: string; emptyDir?: object }[] } };
  };
}

/** Renders a release with `helm template`, validates it strictly (deploy/validate), and returns its objects. */
export async function render(release: string, chart: string, values: string, sets: Record<string, string | number>): Promise<K8sObject[]> {
  const args = ['template', release, join(ROOT, 'deploy/helm', chart), '-f', join(ROOT, 'deploy/helm/examples', values)];
  for (const [k, v] of Object.entries(sets)) args.push('--set', `${k}=${v}`);
  const text = await sh(HELM, args);
  const file = join(WORK, `${release}.rendered.yaml`);
  writeFileSync(file, text);
  await sh(VALIDATE, [file]);
  return parseAllDocuments(text)
    .map((d) => d.toJS() as K8sObject)
    .filter((o) => o !== null);
}

/** The pod that podman makes of a Deployment's first (here: only) replica. */
export const pod = (deployment: string) => `${deployment}-pod-0`;

/** Plays each Deployment on its own, aliased by the names of the Services that select its pods. */
export async function play(objects: readonly K8sObject[], log: (m: string) => void): Promise<void> {
  const services = objects.filter((o) => o.kind === 'Service');
  for (const d of objects.filter((o) => o.kind === 'Deployment')) {
    const labels = d.spec?.template?.metadata?.labels ?? {};
    const aliases = services
      .filter((s) => Object.entries(s.spec?.selector ?? {}).every(([k, v]) => labels[k] === v))
      .map((s) => `alias=${s.metadata.name}`);
    const file = join(WORK, `${d.metadata.name}.yaml`);
    writeFileSync(file, stringify(d));
    await podman(['kube', 'play', '--build=false', '--network', aliases.length ? `${NETWORK}:${aliases.join(',')}` : NETWORK, file]);
    log(`played ${d.metadata.name}${aliases.length ? ` as ${aliases.map((a) => a.slice(6)).join(', ')}` : ''}`);
  }
}

/**
 * Removes every pod, volume, secret and network the objects make, whether this run or an earlier one made them,
 * and any other pod left on the test's network. Idempotent; never fails on what is not there.
 */
export async function removeDeployment(objects: readonly K8sObject[]): Promise<void> {
  const deployments = objects.filter((o) => o.kind === 'Deployment');
  const onNetwork = (await podman(['pod', 'ps', '--filter', `network=${NETWORK}`, '--format', '{{.Name}}'], true)).split('\n').filter(Boolean);
  const pods = [...new Set([...deployments.map((d) => pod(d.metadata.name)), ...onNetwork])];
  await podman(['pod', 'rm', '--force', '--ignore', '--time', '5', ...pods], true);
  const volumes = deployments.flatMap((d) => (d.spec?.template?.spec?.volumes ?? []).filter((v) => v.emptyDir).map((v) => v.name));
  for (const volume of volumes) await podman(['volume', 'rm', '--force', volume], true);
  await podman(['secret', 'rm', SECRET], true);
  await podman(['network', 'rm', '--force', NETWORK], true);
  // What must be gone is gone: a pod or volume that survived would hand the next run stale state.
  const left = [
    ...(await podman(['pod', 'ps', '--format', '{{.Name}}'])).split('\n').filter((n) => pods.includes(n)),
    ...(await podman(['volume', 'ls', '--format', '{{.Name}}'])).split('\n').filter((n) => volumes.includes(n)),
  ];
  if (left.length) throw new Error(`could not remove ${left.join(', ')}`);
}

/** True when nothing listens on 127.0.0.1:port (a listener on 0.0.0.0 counts too). */
function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen({ host: '127.0.0.1', port, exclusive: true }, () => server.close(() => resolve(true)));
  });
}

/** Ports the test suites of `npm test` use (README, scripts/services/test-env.sh): never handed out here. */
const RESERVED = new Set([5055, 6399, 19092, 19093, 25432, 28092, 28093, 29092, 29093]);

/**
 * Each wanted port if it is free, else the next free one from 30000 up: all below the kernel's ephemeral range
 * (32768-60999), where a client's outgoing connection could take a port between this check and the play.
 */
export async function freePorts<K extends string>(wanted: Record<K, number>): Promise<Record<K, number>> {
  const taken = new Set<number>();
  const out = {} as Record<K, number>;
  let next = 30000;
  for (const [key, port] of Object.entries(wanted) as [K, number][]) {
    let p = port;
    while (taken.has(p) || RESERVED.has(p) || !(await portFree(p))) {
      p = next++;
      if (p > 32767) throw new Error('no free port between 30000 and 32767');
    }
    taken.add(p);
    out[key] = p;
  }
  return out;
}

/**
 * Runs a podman command that changes a pod's or container's state, then waits (up to `seconds`) until `done` says
 * the state is reached. The state decides, not the exit code: podman 4.3 on a host without systemd sometimes exits
 * non-zero with "unable to get systemd connection to remove healthchecks" (the timers of the liveness probes it
 * never managed to create) after it has stopped or restarted the container. Throws podman's error, or a timeout,
 * when the state is not reached.
 */
export async function podmanUntil(args: readonly string[], done: () => Promise<boolean>, seconds = 120): Promise<void> {
  let error = '';
  await podman(args).catch((err: Error) => (error = err.message));
  await until(done, seconds, error || `podman ${args.join(' ')}: state not reached after ${seconds} s`);
}

async function until(done: () => Promise<boolean>, seconds: number, message: string): Promise<void> {
  const deadline = Date.now() + seconds * 1000;
  while (Date.now() < deadline) {
    if (await done().catch(() => false)) return;
    await new Promise((r) => setTimeout(r, 500));
  }
  throw new Error(message);
}

/** A pod's state as podman names it: Running, Exited, Degraded, ... */
export const podState = async (name: string) => (await podman(['pod', 'inspect', '--format', '{{.State}}', name])).trim();

export const stopPod = (name: string) => podmanUntil(['pod', 'stop', name], async () => ['Exited', 'Stopped'].includes(await podState(name)));
/**
 * Starts a stopped pod and waits until it runs. Once in many CI runs podman 4.3 left a pod it had started Exited:
 * `pod start` returned, the gateway in it logged that it was serving, and then its containers were gone with no
 * shutdown of their own (podman's cleanup of the stop before racing the start). A pod found stopped after 60 s is
 * started once more; any other state, or a second failure, throws.
 */
export async function startPod(name: string): Promise<void> {
  const running = async () => (await podState(name)) === 'Running';
  try {
    await podmanUntil(['pod', 'start', name], running, 60);
  } catch (err) {
    const state = await podState(name).catch(() => 'unknown');
    if (!['Exited', 'Stopped'].includes(state)) throw err;
    process.stderr.write(`podman: ${name} ${state} after its start; starting it again\n`);
    await podmanUntil(['pod', 'start', name], running);
  }
}
