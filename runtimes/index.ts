/**
 * The runtimes' public surface: the registry (an explicit list of runtime descriptors, no discovery) and what it
 * derives. Code outside runtimes/ asks these instead of naming a runtime's kind.
 */
export {
  composedModelsOf,
  compositionFieldOf,
  createRuntimes,
  oipPlatformOf,
  outputSpecs,
  packedInputsOf,
  runtimeKinds,
  type Runtimes,
  type RuntimesOptions,
} from './registry.ts';
export type { ComposedModel, PackedInput } from './descriptor.ts';
