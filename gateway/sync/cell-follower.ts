/**
 * A gateway replica following its cell's desired state, from a DesiredStateSource: the
 * control tower, or a models directory read as the same CellState. It waits (long-polls) for the next revision;
 * for each deployed version not already loaded (by bundle hash) it takes the zip from the local cache or from the
 * source, checks its sha256, unpacks it, loads it with its runtime and warms it; then it builds the new route
 * table (reusing the routes of unchanged versions), swaps it in one step, retires the routes no longer present
 * (in-flight requests finish on the version they started with; the version is disposed after), writes the state
 * to the cache (remote sources) and reports what it loaded and what failed. This is the only way a gateway builds
 * its route table (ARCHITECTURE.md, "The sync protocol").
 *
 * Static stability (remote source): `start` first loads the cached state and its cached bundles, so a replica
 * restarted while the tower is down serves what it served before. Without a cache it serves nothing (predictions
 * answer UNAVAILABLE, see PendingRouteTable) until the tower answers. While the tower is unreachable the replica
 * keeps serving and retries with exponential backoff and jitter. A local source (a models directory) has no cache
 * of state: `start` loads its state before resolving.
 *
 * A version that fails (download, hash, unpack, load, warm-up) is left out and reported; the others are served,
 * and requests for it answer UNAVAILABLE naming its error (the route table keeps it as unserved). Download failures
 * are retried with backoff. A load failure (unpack, load, warm-up of a hash-checked zip) is remembered by bundle
 * hash: later revisions do not load it again (they apply in the usual time however many versions failed); it is
 * retried alone, with its own exponential backoff, one version per pass between revisions, or at once under a new
 * bundle hash. When the wanted default version fails, the previous default stays if it is still deployed, else
 * another loaded version serves; with none loaded, the model answers UNAVAILABLE.
 */
import { rm } from 'node:fs/promises';
import { resolve } from 'node:path';
import type { ModelBundle } from '../../runtimes/contract.ts';
import { SibylError, toSibylError } from '../../core/errors.ts';
import type { Runtimes } from '../../runtimes/index.ts';
import type { CellState, DeployedVersion } from '../../proto/gen/sibyl/v1/deployment_pb.js';
import { Route, type RouteTableRef } from '../routing/route-table.ts';
import type { ShadowPairSnapshot } from '../shadow/shadow-stats.ts';
import type { VersionStatistics } from '../../proto/gen/sibyl/v1/statistics_pb.js';
import { backoffMs, sleep } from './backoff.ts';
import { openBundleCache, type BundleCache } from './bundle-cache.ts';
import { buildCellTable } from './build-cell-table.ts';
import { gatewayReport, type VersionError } from './gateway-report.ts';
import { openBundleZip } from '../../runtimes/bundle/index.ts';
import type { DesiredStateSource } from './desired-state-source.ts';
import { warmUp } from '../../execution/warm-up.ts';

export interface FollowerLog {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

export interface CellFollowerOptions {
  /** Where the desired state and bundles come from: createTowerClient(...) or openModelsDirSource(...). */
  readonly source: DesiredStateSource;
  readonly cell: string;
  /** This replica's id in reports. */
  readonly replica: string;
  /** Local cache of bundles and, for a remote source, the last state (created when missing). */
  readonly cacheDir: string;
  readonly runtimes: Runtimes;
  /** The table the gateway serves; the follower swaps it. Start it with a PendingRouteTable. */
  readonly routes: RouteTableRef;
  readonly logger: FollowerLog;
  /** Long-poll wait, milliseconds (default 30000). */
  readonly waitMs?: number;
  /** Retry delays when the source is unreachable or a download failed, milliseconds (default 500 doubling to 30000). */
  readonly backoff?: { readonly baseMs?: number; readonly maxMs?: number };
  /**
   * When a version that failed to load is tried again, milliseconds after each failure: about `baseMs` after the
   * first, doubling to `maxMs`, jittered (default 30000 doubling to 1800000). Each retry is one load and warm-up.
   */
  readonly loadRetry?: { readonly baseMs?: number; readonly maxMs?: number };
  /** Bound on each version's warm-up prediction, milliseconds (default 10000). */
  readonly warmUpTimeoutMs?: number;
  /** The live-versus-shadow comparison sent with each report. */
  readonly shadowStats?: () => ShadowPairSnapshot[];
  /** The serving statistics sent with each report. */
  readonly statistics?: () => VersionStatistics[];
  /**
   * Besides after each change, a report is sent this often, ms (default 30 000), so that the tower's shadow
   * comparisons and serving statistics stay current; 0: only after changes.
   */
  readonly reportIntervalMs?: number;
  /** Replaces the bundle unpacker (default: the safe zip unpacker). */
  readonly openBundle?: (zip: Buffer, destDir: string) => Promise<ModelBundle>;
}

export interface CellFollower {
  /**
   * Remote source: loads the cached state (when there is one) and swaps it in, then follows the source in the
   * background; resolves once the cache has been tried (ready when it held a loadable state). Local source: loads
   * and swaps in its state, then follows it; rejects when the state cannot be read or built. Call once.
   */
  start(): Promise<void>;
  /**
   * Stops following: aborts the long-poll and downloads, waits for an update in progress (versions it loaded but
   * did not swap in are disposed) and for versions retired by earlier swaps to be disposed (bounded by their
   * in-flight requests). The routes being served stay; the gateway retires them. Idempotent.
   */
  stop(): Promise<void>;
  /** Resolves when the first table (from the cache or the source) is swapped in; never rejects. */
  readonly ready: Promise<void>;
  readonly isReady: boolean;
  /** The revision being served (0 before the first table). */
  readonly revision: bigint;
  /** Deployed versions not served after the last update (failed then, or earlier and not retried yet), as last reported. */
  readonly errors: readonly VersionError[];
}

interface Applied {
  /** Some version failed to download: try this state again after a backoff. */
  readonly retry: boolean;
}

/** A version whose hash-checked zip failed to unpack, load or warm up: not loaded again before `retryAt`. */
interface LoadFailure {
  readonly message: string;
  /** Failed attempts so far (1 after the first). */
  readonly attempts: number;
  /** performance.now() from which it may be retried. */
  readonly retryAt: number;
}

export function createCellFollower(opts: CellFollowerOptions): CellFollower {
  const { cell, replica, runtimes, routes, logger: log } = opts;
  const waitMs = opts.waitMs ?? 30_000;
  const baseMs = opts.backoff?.baseMs ?? 500;
  const maxMs = opts.backoff?.maxMs ?? 30_000;
  const loadBaseMs = opts.loadRetry?.baseMs ?? 30_000;
  const loadMaxMs = opts.loadRetry?.maxMs ?? 1_800_000;
  const cacheRoot = resolve(opts.cacheDir);
  const source = opts.source;
  const openBundle = opts.openBundle ?? openBundleZip;
  const abort = new AbortController();
  const retiring = new Set<Promise<void>>();

  let cache: BundleCache | undefined;
  let lastState: CellState | undefined;
  // Updates and cache pruning take turns, so a prune never removes a bundle an update is unpacking.
  let lock: Promise<unknown> = Promise.resolve();
  const exclusive = <T>(fn: () => Promise<T>): Promise<T> => {
    const p = lock.then(fn);
    lock = p.catch(() => undefined);
    return p;
  };
  let served = 0n;
  let hasTable = false;
  let errors: readonly VersionError[] = [];
  // By bundle hash; only versions still deployed are kept.
  const loadFailures = new Map<string, LoadFailure>();
  let reportPending = false;
  let reporting: Promise<void> | undefined;
  let loop: Promise<void> | undefined;
  let reportTimer: NodeJS.Timeout | undefined;
  let stopping: Promise<void> | undefined;
  let markReady!: () => void;
  const ready = new Promise<void>((resolve) => (markReady = resolve));

  async function zipFor(sha: string, fromSource: boolean): Promise<Buffer> {
    const cached = await cache!.get(sha);
    if (cached) return cached;
    if (!fromSource) throw new SibylError('UNAVAILABLE', `bundle ${sha} is not in the local cache`);
    const bytes = await source.bundle(sha, abort.signal);
    await cache!.put(sha, bytes);
    return bytes;
  }

  async function loadVersion(model: string, v: DeployedVersion, zip: Buffer): Promise<Route> {
    const sha = v.bundleSha256;
    // Unpacked afresh from the checked zip each time: a directory left by an earlier process is not trusted.
    const unpackTo = cache!.unpackDir(sha);
    await rm(unpackTo, { recursive: true, force: true });
    const bundle = await openBundle(zip, unpackTo);
    const { manifest } = bundle;
    if (manifest.name !== model || manifest.version !== v.version) {
      throw new SibylError('INVALID_ARGUMENT', `bundle ${sha} holds ${manifest.name}/${manifest.version}, not ${model}/${v.version}`);
    }
    const runtime = runtimes.byKind.get(manifest.runtime);
    if (!runtime) throw new SibylError('UNIMPLEMENTED', `runtime ${manifest.runtime} is not available in this gateway`);
    const started = performance.now();
    const route = new Route(manifest, await runtime.load(bundle), sha);
    try {
      await warmUp(route, opts.warmUpTimeoutMs);
    } catch (err) {
      await route.retire().catch(() => undefined);
      throw err;
    }
    log.info({ model, version: v.version, sha, ms: Math.round(performance.now() - started) }, 'model loaded');
    return route;
  }

  /** Milliseconds until the first remembered load failure may be retried (<= 0: due now; Infinity: none). */
  function loadRetryInMs(): number {
    let at = Infinity;
    for (const f of loadFailures.values()) at = Math.min(at, f.retryAt);
    return at - performance.now();
  }

  /**
   * Loads what `state` needs and swaps it in; undefined when stopped half-way (nothing swapped). Remembered load
   * failures are not loaded again, except up to `loadRetries` of those whose retry is due.
   */
  async function apply(state: CellState, fromSource: boolean, loadRetries = 0): Promise<Applied | undefined> {
    const current = new Map(routes.current.routes().map((r) => [r.hash, r]));
    const next = new Map<string, Route>();
    const fresh: Route[] = [];
    const failed: VersionError[] = [];
    const errorOf = new Map<string, string>();
    let retry = false;
    let retriesLeft = loadRetries;
    const now = performance.now();
    const deployed = new Set(state.models.flatMap((m) => m.versions.map((v) => v.bundleSha256)));
    for (const sha of loadFailures.keys()) if (!deployed.has(sha)) loadFailures.delete(sha);
    for (const m of state.models) {
      for (const v of m.versions) {
        const sha = v.bundleSha256;
        const have = current.get(sha) ?? next.get(sha);
        if (have) {
          next.set(sha, have);
          continue;
        }
        const known = loadFailures.get(sha);
        if (known && (known.retryAt > now || retriesLeft === 0)) {
          failed.push({ model: m.name, version: v.version, message: known.message });
          errorOf.set(sha, known.message);
          continue;
        }
        if (known) retriesLeft--;
        let zip: Buffer | undefined;
        try {
          zip = await zipFor(sha, fromSource);
          const route = await loadVersion(m.name, v, zip);
          next.set(sha, route);
          fresh.push(route);
          loadFailures.delete(sha);
        } catch (err) {
          if (abort.signal.aborted) break;
          const e = toSibylError(err);
          // Gateway paths are nobody else's business: the message goes to the tower and to callers.
          const message = e.message.split(cacheRoot).join('<cache>');
          if (zip === undefined) {
            if (fromSource && source.remote) retry = true;
          } else if (fromSource) {
            // The cached state's failures are tried once more at the source's first answer; these are remembered.
            const attempts = (known?.attempts ?? 0) + 1;
            loadFailures.set(sha, { message, attempts, retryAt: performance.now() + backoffMs(attempts, loadBaseMs, loadMaxMs) });
          }
          failed.push({ model: m.name, version: v.version, message });
          errorOf.set(sha, message);
          log.warn({ model: m.name, version: v.version, sha, code: e.code, attempts: loadFailures.get(sha)?.attempts, err: e.cause ?? e }, 'version not loaded; left out');
        }
      }
    }
    if (abort.signal.aborted) {
      await Promise.all(fresh.map((r) => r.retire()));
      return undefined;
    }
    if (!fromSource && fresh.length === 0 && failed.length > 0) {
      throw new SibylError('UNAVAILABLE', `none of the ${failed.length} cached versions could be loaded`);
    }
    let built;
    try {
      built = buildCellTable(state, next, hasTable ? routes.current : undefined, log, errorOf);
    } catch (err) {
      await Promise.all(fresh.map((r) => r.retire()));
      throw err;
    }
    for (const f of built.fallbacks) {
      const i = failed.findIndex((e) => e.model === f.model && e.version === f.wanted);
      const note = `default version ${f.wanted || '(none)'} not served; version ${f.using} serves the default`;
      if (i >= 0) failed[i] = { ...failed[i]!, message: `${failed[i]!.message} (${note})` };
      else failed.push({ model: f.model, version: f.wanted, message: note });
    }
    const swapped = routes.swap(built.table);
    served = state.revision;
    errors = failed;
    if (!hasTable) {
      hasTable = true;
      markReady();
    }
    lastState = state;
    const done: Promise<void> = swapped
      .then(() => exclusive(() => cache!.prune(new Set(lastState?.models.flatMap((m) => m.versions.map((v) => v.bundleSha256)) ?? []))))
      .catch((err: unknown) => log.warn({ err }, 'cache prune failed'))
      .finally(() => retiring.delete(done));
    retiring.add(done);
    if (fromSource && source.remote) await cache!.writeState(state).catch((err: unknown) => log.error({ err }, 'could not write the cached state'));
    log.info(
      { revision: String(state.revision), loaded: fresh.length, kept: next.size - fresh.length, failed: failed.length, from: !fromSource ? 'cache' : source.remote ? 'tower' : 'models directory' },
      'route table swapped',
    );
    return { retry };
  }

  /**
   * Sends the current report in the background, one at a time (a report asked for while one is being sent follows
   * it). A failed report stays pending until the source next answers.
   */
  function report(): void {
    reportPending = true;
    reporting ??= (async () => {
      while (reportPending && !abort.signal.aborted) {
        reportPending = false;
        const r = gatewayReport({ cell, replica, revision: served, table: routes.current, errors, shadows: opts.shadowStats?.(), statistics: opts.statistics?.() });
        try {
          await source.report(r, abort.signal);
        } catch (err) {
          reportPending = true;
          if (!abort.signal.aborted) log.warn({ code: toSibylError(err).code, err: (err as Error).message }, 'report to the control tower failed; will retry');
          return;
        }
      }
    })().finally(() => (reporting = undefined));
  }

  async function nextState(wait: number): Promise<CellState> {
    const state = await source.cellState(cell, served, wait, abort.signal);
    if (state.cell !== '' && state.cell !== cell) throw new SibylError('INVALID_ARGUMENT', `the desired state is cell ${state.cell}'s, not ${cell}'s`);
    return state;
  }

  async function follow(): Promise<void> {
    let sourceFailures = 0;
    let retries = 0;
    let retry = false;
    // Versions that did not load from the cache are tried again from the tower at its first answer.
    let force = source.remote && errors.length > 0;
    if (hasTable) report();
    while (!abort.signal.aborted) {
      if (retry) await sleep(backoffMs(++retries, baseMs, maxMs), abort.signal);
      let state: CellState;
      try {
        // Without a table (or to retry a failed download) ask for the current state at once; a load retry that
        // comes due ends the wait.
        state = await nextState(hasTable && !retry ? Math.max(0, Math.min(waitMs, Math.ceil(loadRetryInMs()))) : 0);
        if (sourceFailures) log.info({ after: sourceFailures }, 'control tower reachable again');
        sourceFailures = 0;
      } catch (err) {
        if (abort.signal.aborted) break;
        sourceFailures++;
        const e = toSibylError(err);
        log.warn({ code: e.code, err: e.message, attempt: sourceFailures }, 'control tower not reachable; serving what is loaded');
        await sleep(backoffMs(sourceFailures, baseMs, maxMs), abort.signal);
        continue;
      }
      const changed: boolean = state.revision !== served || !hasTable || retry || force;
      const loadRetryDue: boolean = !changed && loadRetryInMs() <= 0;
      if (changed || loadRetryDue) {
        force = false;
        try {
          // A change is applied without loading failed versions again, so it takes the usual time; a due load
          // retry runs between changes, one version per pass, so a change waits for at most one load.
          const applied: Applied | undefined = await exclusive(() => apply(state, true, loadRetryDue ? 1 : 0));
          if (!applied) break;
          retry = applied.retry;
          if (!retry) retries = 0;
        } catch (err) {
          log.error({ err }, 'update failed; still serving the previous table');
          retry = true;
        }
        report();
      } else if (reportPending) {
        report();
      }
    }
  }

  return {
    async start() {
      if (loop) throw new Error('cell follower already started');
      cache = await openBundleCache(opts.cacheDir);
      if (source.remote) {
        let state: CellState | undefined;
        try {
          state = await cache.readState();
        } catch (err) {
          log.warn({ err: (err as Error).message }, 'cached state unreadable; ignored');
        }
        if (state) {
          try {
            await exclusive(() => apply(state, false));
          } catch (err) {
            log.error({ err }, 'could not serve the cached state');
          }
        }
      } else {
        const state = await nextState(0);
        await exclusive(() => apply(state, true));
      }
      loop = follow().catch((err: unknown) => log.error({ err }, 'cell follower stopped on an unexpected error'));
      const every = opts.reportIntervalMs ?? 30_000;
      // Only once a table is served: the first report follows the first swap.
      if (every > 0 && source.remote) reportTimer = setInterval(() => hasTable && report(), every).unref();
    },
    stop() {
      stopping ??= (async () => {
        abort.abort();
        if (reportTimer) clearInterval(reportTimer);
        await loop;
        await reporting;
        await Promise.all([...retiring]);
      })();
      return stopping;
    },
    ready,
    get isReady() {
      return hasTable;
    },
    get revision() {
      return served;
    },
    get errors() {
      return errors;
    },
  };
}
