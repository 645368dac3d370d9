/**
 * The onnx runtime's options from the process environment, read once when the runtimes are created (at start):
 *
 * - `SIBYL_ONNX_TREES`: `compiled` (default) runs a model that is a lone tree-ensemble regressor or binary
 *   classifier as a compiled forest, checked against onnxruntime at load (forest.ts); `onnxruntime` runs every model on onnxruntime.
 *
 * Throws SibylError INVALID_ARGUMENT on a value it does not know.
 */
import { SibylError } from '../../core/errors.ts';

export const ONNX_TREES = ['compiled', 'onnxruntime'] as const;
export type OnnxTrees = (typeof ONNX_TREES)[number];

export function onnxOptionsFromEnv(env: Readonly<Record<string, string | undefined>>): { readonly trees?: OnnxTrees } {
  const trees = env.SIBYL_ONNX_TREES?.trim();
  if (!trees) return {};
  if (!(ONNX_TREES as readonly string[]).includes(trees)) {
    throw new SibylError('INVALID_ARGUMENT', `invalid ONNX configuration: SIBYL_ONNX_TREES must be one of ${ONNX_TREES.join(', ')}, not "${trees}"`);
  }
  return { trees: trees as OnnxTrees };
}
