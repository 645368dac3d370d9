/**
 * The manifest's `onnx:` section: the model file, how features pack into the graph's input tensors, and which graph
 * outputs clients see, under which names.
 *
 * ```yaml
 * onnx:
 *   file: model.onnx
 *   inputs: [{ name: input, dtype: float32, features: [distance_km, hour_of_day] }]
 *   outputs: [{ name: variable, as: eta_minutes }]   # kind: scalar | vector (default scalar), dtype (default float32)
 *   intraOpThreads: 1                                 # optional
 *   offloadRows: 256                                  # optional
 * ```
 */
import { z } from 'zod';
import { BundleFile, Dtype, ManifestName } from '../manifest-fields.ts';

export const OnnxInput = z
  .object({
    /** The ONNX graph input's name. */
    name: z.string().min(1),
    dtype: Dtype,
    /** The features packed into this tensor, in column order: shape [rows, features.length]. */
    features: z.array(ManifestName).min(1),
  })
  .strict();

export const OnnxOutput = z
  .object({
    /** The ONNX graph output's name. */
    name: z.string().min(1),
    /** The name clients see; defaults to `name`. */
    as: ManifestName.optional(),
    /** `scalar`: one value per row (shape [rows] or [rows, 1]); `vector`: an array per row (shape [rows, k]). */
    kind: z.enum(['scalar', 'vector']).default('scalar'),
    /** Element type clients see (Open Inference Protocol datatype); default float32. */
    dtype: Dtype.default('float32'),
  })
  .strict();

export const OnnxSettings = z
  .object({
    file: BundleFile,
    inputs: z.array(OnnxInput).min(1),
    outputs: z.array(OnnxOutput).min(1),
    /** Session intra-op threads (default 1: the event loop needs the other core). */
    intraOpThreads: z.number().int().min(1).max(64).optional(),
    /** Batches of at least this many rows run off the event loop (default: from measurement, see runtimes/onnx). */
    offloadRows: z.number().int().min(1).optional(),
  })
  .strict();
export type OnnxSettings = z.infer<typeof OnnxSettings>;
