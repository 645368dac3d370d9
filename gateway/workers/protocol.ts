/** The messages between the supervisor and its workers, over Node's IPC channel (JSON). */

/** A worker's messages to the supervisor. */
export type FromWorker =
  /** The worker's own readiness changed (listening, route table loaded, not draining). */
  | { readonly type: 'ready'; readonly ready: boolean }
  /** The worker was asked for /metrics: it wants the pod's (answered with `pod-metrics`). */
  | { readonly type: 'pod-metrics'; readonly id: number }
  /** The worker's own exposition, for collection `id`; null when it has none yet (still starting). */
  | { readonly type: 'metrics'; readonly id: number; readonly text: string | null }
  /** The draining worker has closed its listeners (answered with `all-stopped-accepting`). */
  | { readonly type: 'stopped-accepting' };

/** The supervisor's messages to a worker. */
export type ToWorker =
  /** Every worker is ready and the pod is not draining (or no longer so). */
  | { readonly type: 'pod-ready'; readonly ready: boolean }
  /** Send your own exposition for collection `id`. */
  | { readonly type: 'collect'; readonly id: number }
  /** The pod's exposition, for the worker's request `id`, or why there is none. */
  | { readonly type: 'pod-metrics'; readonly id: number; readonly text?: string; readonly error?: string }
  /** Every worker of a stopping pod has closed its listeners (or the pod is not stopping: only this worker leaves). */
  | { readonly type: 'all-stopped-accepting' };
