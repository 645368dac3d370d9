/** The runtimes a gateway can load models with: an explicit list, no discovery. */
import type { Runtime } from './contract.ts';
import { createOnnxRuntime } from './onnx/onnx-runtime.ts';
import { createRulesRuntime } from './rules/rules-runtime.ts';
import { sageMakerOptionsFromEnv } from './sagemaker/options-from-env.ts';
import { createSageMakerRuntime, type SageMakerRuntimeOptions } from './sagemaker/sagemaker-runtime.ts';

export interface Runtimes {
  readonly byKind: ReadonlyMap<string, Runtime>;
  /** Stops runtime-wide resources (worker threads). Models must be disposed first. */
  close(): Promise<void>;
}

export interface RuntimesOptions {
  /** Endpoint URL override, credentials, breaker and backoff (default: read once from process.env, see options-from-env.ts). */
  readonly sagemaker?: SageMakerRuntimeOptions;
}

export function createRuntimes(options: RuntimesOptions = {}): Runtimes {
  const onnx = createOnnxRuntime();
  const rules = createRulesRuntime();
  const sagemaker = createSageMakerRuntime(options.sagemaker ?? sageMakerOptionsFromEnv(process.env));
  return {
    byKind: new Map<string, Runtime>([
      [onnx.kind, onnx],
      [rules.kind, rules],
      [sagemaker.kind, sagemaker],
    ]),
    close: async () => {
      await onnx.close();
      await rules.close();
      await sagemaker.close();
    },
  };
}
