/** The runtimes a gateway can load models with: an explicit list, no discovery. */
import type { Runtime } from './contract.ts';
import { createOnnxRuntime } from './onnx/onnx-runtime.ts';

export interface Runtimes {
  readonly byKind: ReadonlyMap<string, Runtime>;
  /** Stops runtime-wide resources (worker threads). Models must be disposed first. */
  close(): Promise<void>;
}

export function createRuntimes(): Runtimes {
  const onnx = createOnnxRuntime();
  return {
    byKind: new Map<string, Runtime>([[onnx.kind, onnx]]),
    close: () => onnx.close(),
  };
}
