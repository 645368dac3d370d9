/**
 * A runtime whose implementation is imported when its first model loads. Descriptors return one from `create`, so
 * listing a runtime costs nothing until it is used: a process that parses manifests never loads onnxruntime's
 * native module, and a tower validating a rule never loads it either.
 */
import type { ModelBundle } from './contract.ts';
import type { PluggedRuntime } from './descriptor.ts';

/**
 * `make` runs once, on the first `load`; a rejection (the module does not import) is kept and every load rejects
 * with it. `close` closes the implementation if it was made, and waits for a `make` in progress.
 */
export function lazyRuntime(kind: string, make: () => Promise<PluggedRuntime>): PluggedRuntime {
  let made: Promise<PluggedRuntime> | undefined;
  return {
    kind,
    async load(bundle: ModelBundle) {
      made ??= make();
      return (await made).load(bundle);
    },
    async close() {
      if (!made) return;
      const runtime = await made.catch(() => undefined);
      await runtime?.close();
    },
  };
}
