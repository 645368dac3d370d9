import type { InferenceSession } from 'onnxruntime-node';

/**
 * Session options for serving on a small machine: `intraOpThreads` threads for one run (default 1: the calling
 * thread only, leaving the other core to the event loop), no inter-op pool, sequential execution, all graph
 * optimizations, and no spinning: by default onnxruntime's pool threads busy-wait after each run, which burns a core
 * while the gateway is idle (numbers in runtimes/onnx/README.md).
 */
export function tunedSessionOptions(intraOpThreads = 1): InferenceSession.SessionOptions {
  return {
    executionProviders: ['cpu'],
    intraOpNumThreads: intraOpThreads,
    interOpNumThreads: 1,
    executionMode: 'sequential',
    graphOptimizationLevel: 'all',
    logSeverityLevel: 3,
    // The Node binding flattens `extra` into session config entries ("session.intra_op.allow_spinning" = "0").
    extra: { session: { 'intra_op.allow_spinning': '0', 'inter_op.allow_spinning': '0' } },
  };
}
