/**
 * What a worker of a multi-process gateway knows of the others (ARCHITECTURE.md, "Workers"): whether the whole pod
 * is ready, and the pod's metrics. A single-process gateway has no link; `createGateway` then behaves as it always
 * did. The implementation over the supervisor's IPC channel is worker-link.ts.
 */
import type { Telemetry } from '../telemetry/telemetry.ts';

export type MetricsText = Awaited<ReturnType<Telemetry['metricsText']>>;

export interface PodLink {
  /** Whether every worker of the pod is ready and the pod is not draining (false until the supervisor says so). */
  podReady(): boolean;
  /** Calls `listener` whenever `podReady()` changes. */
  onPodReady(listener: (ready: boolean) => void): void;
  /**
   * The pod's metrics: every worker's series, each labelled `worker="<index>"`, in one exposition. `own` gives this
   * worker's (the supervisor asks it, too). Rejects when the supervisor does not answer in time.
   */
  metricsText(own: Telemetry['metricsText']): Promise<MetricsText>;
  /**
   * Says that this draining worker has closed its listeners; resolves once every worker of the stopping pod has
   * (at once when only this worker stops), or after a bound: the drain then moves its clients away
   * (gateway/transport/drain.ts).
   */
  stoppedAccepting(): Promise<void>;
}

/** The same telemetry, with `/metrics` answered for the whole pod. */
export function withPodMetrics(telemetry: Telemetry, pod: PodLink): Telemetry {
  const own = () => telemetry.metricsText();
  return {
    startRequest: (label, arrival, requestId, model) => telemetry.startRequest(label, arrival, requestId, model),
    startShadow: (request, model, version, requestId, startMs) => telemetry.startShadow(request, model, version, requestId, startMs),
    featureStoreFailure: (model, reason) => telemetry.featureStoreFailure(model, reason),
    featuresDefaulted: (model, count) => telemetry.featuresDefaulted(model, count),
    runtimeCall: (runtime, code, seconds) => telemetry.runtimeCall(runtime, code, seconds),
    metricsText: () => pod.metricsText(own),
    flush: () => telemetry.flush(),
    shutdown: () => telemetry.shutdown(),
  };
}
