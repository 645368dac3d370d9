/**
 * The onnx runtime as the registry lists it: the `onnx:` section (settings.ts) declares the model's input tensors
 * and its outputs; over the Open Inference Protocol a request may send those input tensors packed.
 */
import { defineRuntime } from '../descriptor.ts';
import { lazyRuntime } from '../lazy-runtime.ts';
import type { OnnxRuntimeOptions } from './onnx-runtime.ts';
import { onnxOptionsFromEnv } from './options-from-env.ts';
import { OnnxSettings } from './settings.ts';

export const onnxDescriptor = defineRuntime({
  kind: 'onnx',
  settings: OnnxSettings,
  settingsRequired: true,
  check(onnx, manifest, report) {
    const features = new Set(manifest.features.map((f) => f.name));
    onnx.inputs.forEach((input, i) =>
      input.features.forEach((f, j) => {
        if (!features.has(f)) report(['onnx', 'inputs', i, 'features', j], `names undeclared feature "${f}"`);
      }),
    );
    const outs = new Set<string>();
    onnx.outputs.forEach((o, i) => {
      const as = o.as ?? o.name;
      if (outs.has(as)) report(['onnx', 'outputs', i], `duplicate output "${as}"`);
      outs.add(as);
    });
  },
  outputs: {
    declaredAt: 'onnx.outputs',
    of: (onnx) => onnx.outputs.map((o) => ({ name: o.as ?? o.name, dtype: o.dtype, kind: o.kind })),
  },
  oip: {
    platform: 'onnxruntime_onnx',
    packedInputs: (onnx) => onnx.inputs.map((i) => ({ name: i.name, dtype: i.dtype, features: i.features })),
  },
  /** Options the caller leaves out come from the process environment, read here, once (options-from-env.ts); bad ones throw now. */
  create(options?: OnnxRuntimeOptions) {
    const resolved = { ...onnxOptionsFromEnv(process.env), ...options };
    return lazyRuntime('onnx', async () => (await import('./onnx-runtime.ts')).createOnnxRuntime(resolved));
  },
});
