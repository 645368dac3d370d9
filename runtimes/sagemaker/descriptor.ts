/**
 * The sagemaker runtime as the registry lists it: the `sagemaker:` section (settings.ts) names the endpoint and the
 * body's shape; outputs are declared in the manifest's `outputs:`.
 */
import { defineRuntime } from '../descriptor.ts';
import { lazyRuntime } from '../lazy-runtime.ts';
import { sageMakerOptionsFromEnv } from './options-from-env.ts';
import type { SageMakerRuntimeOptions } from './sagemaker-runtime.ts';
import { checkColumns, SageMakerSection } from './settings.ts';

export const sageMakerDescriptor = defineRuntime({
  kind: 'sagemaker',
  settings: SageMakerSection,
  settingsRequired: true,
  check: checkColumns,
  oip: { platform: 'sagemaker' },
  /** Options default to the process environment's, read here, once (see options-from-env.ts); bad ones throw now. */
  create(options?: SageMakerRuntimeOptions) {
    const resolved = options ?? sageMakerOptionsFromEnv(process.env);
    return lazyRuntime('sagemaker', async () => (await import('./sagemaker-runtime.ts')).createSageMakerRuntime(resolved));
  },
});
