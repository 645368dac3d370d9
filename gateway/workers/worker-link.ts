/**
 * A worker's side of the supervisor's IPC channel (ARCHITECTURE.md, "Workers"): the pod's readiness as the
 * supervisor sees it, the pod's metrics, this worker's own readiness sent on every change, and the news that the
 * supervisor is gone (the channel closed), on which the worker drains and exits rather than keep a shared port.
 */
import type { Gateway } from '../gateway.ts';
import type { Telemetry } from '../telemetry/telemetry.ts';
import type { MetricsText, PodLink } from './pod-link.ts';
import type { FromWorker, ToWorker } from './protocol.ts';

/** How long a worker waits for the pod's metrics, ms. */
const METRICS_TIMEOUT_MS = 5_000;
/** How often a worker looks at its own readiness, ms. */
const READY_POLL_MS = 100;
/** The most a draining worker waits for the others to close their listeners, ms. */
const STOPPED_ACCEPTING_TIMEOUT_MS = 2_000;
/** Prometheus text format 0.0.4 (what the workers' telemetry gives). */
const CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

export interface WorkerLink extends PodLink {
  /** Starts reporting this worker's readiness and answering the supervisor's collections; call after `start`. */
  serve(gateway: Gateway): void;
  /** From now on this worker reports not ready (it drains). */
  draining(): void;
  /** Calls `listener` once when the supervisor is gone. */
  onSupervisorGone(listener: () => void): void;
}

/** Throws when this process has no IPC channel (it was not started by a supervisor). */
export function connectToSupervisor(): WorkerLink {
  const send = process.send?.bind(process);
  if (!send) throw new Error('a worker needs the IPC channel of the supervisor that started it (SIBYL_WORKER_INDEX is set by the supervisor only)');
  const post = (m: FromWorker): void => {
    if (process.connected) send(m);
  };
  let podReady = false;
  const readyListeners: ((ready: boolean) => void)[] = [];
  let own: Telemetry['metricsText'] | undefined;
  let nextId = 0;
  const waiting = new Map<number, { resolve(t: MetricsText): void; reject(e: Error): void; timer: NodeJS.Timeout }>();
  let isDraining = false;
  let allStoppedAccepting: (() => void) | undefined;

  process.on('message', (m: ToWorker) => {
    switch (m.type) {
      case 'pod-ready':
        if (m.ready !== podReady) {
          podReady = m.ready;
          for (const l of readyListeners) l(podReady);
        }
        return;
      case 'collect':
        if (!own) return post({ type: 'metrics', id: m.id, text: null });
        own().then(
          (t) => post({ type: 'metrics', id: m.id, text: t.body }),
          () => post({ type: 'metrics', id: m.id, text: null }),
        );
        return;
      case 'pod-metrics': {
        const w = waiting.get(m.id);
        if (!w) return;
        waiting.delete(m.id);
        clearTimeout(w.timer);
        if (m.text !== undefined) w.resolve({ contentType: CONTENT_TYPE, body: m.text });
        else w.reject(new Error(m.error ?? 'no metrics from the supervisor'));
        return;
      }
      case 'all-stopped-accepting':
        allStoppedAccepting?.();
    }
  });
  // The channel must not keep a drained worker alive.
  process.channel?.unref();

  return {
    podReady: () => podReady,
    onPodReady: (listener) => void readyListeners.push(listener),
    metricsText(ownText) {
      own ??= ownText;
      if (!process.connected) return Promise.reject(new Error('the supervisor is gone'));
      const id = ++nextId;
      return new Promise<MetricsText>((resolve, reject) => {
        const timer = setTimeout(() => {
          waiting.delete(id);
          reject(new Error(`the supervisor did not answer with the pod's metrics within ${METRICS_TIMEOUT_MS} ms`));
        }, METRICS_TIMEOUT_MS);
        waiting.set(id, { resolve, reject, timer });
        post({ type: 'pod-metrics', id });
      });
    },
    serve(gateway) {
      own = () => gateway.telemetry.metricsText();
      let last: boolean | undefined;
      const report = () => {
        const ready = !isDraining && gateway.follower.isReady;
        if (ready !== last) post({ type: 'ready', ready: (last = ready) });
      };
      report();
      setInterval(report, READY_POLL_MS).unref();
    },
    stoppedAccepting() {
      if (!process.connected) return Promise.resolve();
      return new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, STOPPED_ACCEPTING_TIMEOUT_MS);
        allStoppedAccepting = () => {
          clearTimeout(timer);
          resolve();
        };
        post({ type: 'stopped-accepting' });
      });
    },
    draining() {
      isDraining = true;
      post({ type: 'ready', ready: false });
    },
    onSupervisorGone(listener) {
      if (process.connected) process.once('disconnect', listener);
      else queueMicrotask(listener);
    },
  };
}
