/**
 * The mapping between feature rows and a session's tensors, built and checked once at load:
 * `buildPlan` validates the manifest's onnx inputs/outputs against the graph's metadata; `packInputs` turns rows
 * into typed arrays in column order; `unpackOutputs` turns output tensors into one OutputRow per row.
 */
import type { InferenceSession } from 'onnxruntime-node';
import type { FeatureRow, OutputRow, Scalar, Value } from '../contract.ts';
import type { Dtype, Manifest } from '../manifest.ts';
import { SibylError } from '../../core/errors.ts';

/** A tensor as plain data (structured-cloneable; onnxruntime's Tensor has the same three fields). */
export interface RawTensor {
  readonly type: string;
  readonly data: ArrayLike<unknown>;
  readonly dims: readonly number[];
}

export interface InputPlan {
  readonly name: string;
  readonly dtype: Dtype;
  readonly features: readonly string[];
  /** The feature defaults, used for a value that is absent from a row (numbers for numeric tensors). */
  readonly defaults: readonly Scalar[];
  /** 1 when the graph input is a vector [N] (single feature), else 2: [N, features]. */
  readonly rank: 1 | 2;
}

export interface OutputPlan {
  readonly name: string;
  readonly as: string;
  readonly kind: 'scalar' | 'vector';
}

export interface TensorPlan {
  readonly inputs: readonly InputPlan[];
  readonly outputs: readonly OutputPlan[];
  /** Graph output names to fetch, in `outputs` order. */
  readonly fetches: readonly string[];
}

const OUTPUT_TYPES = new Set(['float32', 'float64', 'int8', 'uint8', 'int16', 'uint16', 'int32', 'uint32', 'int64', 'uint64', 'bool', 'string']);

function invalid(message: string): SibylError {
  return new SibylError('INVALID_ARGUMENT', message);
}

/**
 * Checks the manifest's onnx section against the graph: every graph input is mapped, with the same element type and
 * a width matching the feature count where the graph fixes it; every named output exists, is a tensor of a type
 * Sibyl can return, and has a shape fitting its kind. Throws INVALID_ARGUMENT listing every problem.
 */
export function buildPlan(manifest: Manifest, session: Pick<InferenceSession, 'inputMetadata' | 'outputMetadata'>): TensorPlan {
  const onnx = manifest.onnx;
  if (!onnx) throw invalid('manifest has no onnx section');
  const problems: string[] = [];
  const featureByName = new Map(manifest.features.map((f) => [f.name, f]));
  const graphInputs = new Map(session.inputMetadata.map((m) => [m.name, m]));
  const graphOutputs = new Map(session.outputMetadata.map((m) => [m.name, m]));

  const inputs: InputPlan[] = [];
  onnx.inputs.forEach((input, i) => {
    const where = `onnx.inputs.${i}`;
    const meta = graphInputs.get(input.name);
    if (!meta) {
      problems.push(`${where}.name: the graph has no input "${input.name}" (inputs: ${[...graphInputs.keys()].join(', ')})`);
      return;
    }
    let rank: 1 | 2 = 2;
    if (meta.isTensor) {
      if (meta.type !== input.dtype) problems.push(`${where}.dtype: is ${input.dtype}, the graph input "${input.name}" is ${meta.type}`);
      const shape = meta.shape;
      if (shape.length === 1 && input.features.length === 1) rank = 1;
      else if (shape.length !== 2) problems.push(`${where}: graph input "${input.name}" has shape [${shape.join(', ')}]; expected [N, ${input.features.length}]`);
      else if (typeof shape[1] === 'number' && shape[1] !== input.features.length)
        problems.push(`${where}.features: ${input.features.length} features, the graph input "${input.name}" has ${shape[1]} columns`);
      if (typeof shape[0] === 'number' && shape[0] !== -1)
        problems.push(`${where}: graph input "${input.name}" has a fixed batch size ${shape[0]}; export it with a dynamic first dimension`);
    } else {
      problems.push(`${where}.name: graph input "${input.name}" is not a tensor`);
    }
    const defaults: Scalar[] = [];
    for (const f of input.features) {
      const spec = featureByName.get(f);
      if (!spec) continue; // parseManifest already reports undeclared features
      if (input.dtype !== 'string' && spec.dtype === 'string')
        problems.push(`${where}.features: string feature "${f}" cannot feed ${input.dtype} input "${input.name}"`);
      defaults.push(input.dtype === 'string' ? String(spec.default) : typeof spec.default === 'boolean' ? Number(spec.default) : spec.default);
    }
    inputs.push({ name: input.name, dtype: input.dtype, features: input.features, defaults, rank });
  });
  const mapped = new Set(onnx.inputs.map((i) => i.name));
  for (const name of graphInputs.keys()) if (!mapped.has(name)) problems.push(`onnx.inputs: graph input "${name}" is not mapped`);

  const outputs: OutputPlan[] = [];
  onnx.outputs.forEach((output, i) => {
    const where = `onnx.outputs.${i}`;
    const meta = graphOutputs.get(output.name);
    if (!meta) {
      problems.push(`${where}.name: the graph has no output "${output.name}" (outputs: ${[...graphOutputs.keys()].join(', ')})`);
      return;
    }
    if (!meta.isTensor) {
      problems.push(`${where}.name: graph output "${output.name}" is not a tensor (a ZipMap? export classifiers without ZipMap)`);
      return;
    }
    if (!OUTPUT_TYPES.has(meta.type)) problems.push(`${where}.name: graph output "${output.name}" has unsupported type ${meta.type}`);
    const shape = meta.shape;
    if (output.kind === 'scalar' && !(shape.length === 1 || (shape.length === 2 && (typeof shape[1] !== 'number' || shape[1] === 1))))
      problems.push(`${where}.kind: scalar needs shape [N] or [N, 1]; graph output "${output.name}" has [${shape.join(', ')}]`);
    if (output.kind === 'vector' && shape.length !== 2)
      problems.push(`${where}.kind: vector needs shape [N, k]; graph output "${output.name}" has [${shape.join(', ')}]`);
    outputs.push({ name: output.name, as: output.as ?? output.name, kind: output.kind });
  });

  if (problems.length) throw invalid(`onnx model does not match the manifest: ${problems.join('; ')}`);
  return { inputs, outputs, fetches: outputs.map((o) => o.name) };
}

function notInteger(input: InputPlan, c: number, v: unknown): SibylError {
  return new SibylError('INVALID_ARGUMENT', `feature "${input.features[c]}" must be an integer in range for ${input.dtype} input "${input.name}", got ${String(v)}`);
}

/**
 * Rows into one tensor per input, in `plan.inputs` order. Throws INVALID_ARGUMENT for a non-integer integer feature.
 * `scratch`, for a plan of one float32 input: filled instead of a new array when it is long enough (the tensor is then
 * a view of it, valid until the caller fills it again).
 */
export function packInputs(plan: TensorPlan, rows: readonly FeatureRow[], scratch?: Float32Array): RawTensor[] {
  const n = rows.length;
  const out: RawTensor[] = new Array(plan.inputs.length);
  for (let i = 0; i < plan.inputs.length; i++) {
    const input = plan.inputs[i]!;
    const { features, defaults } = input;
    const w = features.length;
    const dims = input.rank === 1 ? [n] : [n, w];
    switch (input.dtype) {
      case 'float32':
      case 'float64': {
        const size = n * w;
        const data =
          input.dtype === 'float64'
            ? new Float64Array(size)
            : scratch !== undefined && plan.inputs.length === 1 && scratch.length >= size
              ? scratch.length === size
                ? scratch
                : scratch.subarray(0, size)
              : new Float32Array(size);
        for (let r = 0, k = 0; r < n; r++) {
          const row = rows[r]!;
          for (let c = 0; c < w; c++, k++) data[k] = num(row[features[c]!], defaults[c]);
        }
        out[i] = { type: input.dtype, data, dims };
        break;
      }
      case 'int32': {
        const data = new Int32Array(n * w);
        for (let r = 0, k = 0; r < n; r++) {
          const row = rows[r]!;
          for (let c = 0; c < w; c++, k++) {
            const v = num(row[features[c]!], defaults[c]);
            if (v !== (v | 0)) throw notInteger(input, c, v); // also catches values outside int32
            data[k] = v;
          }
        }
        out[i] = { type: 'int32', data, dims };
        break;
      }
      case 'int64': {
        const data = new BigInt64Array(n * w);
        for (let r = 0, k = 0; r < n; r++) {
          const row = rows[r]!;
          for (let c = 0; c < w; c++, k++) {
            const v = num(row[features[c]!], defaults[c]);
            if (!Number.isSafeInteger(v)) throw notInteger(input, c, v);
            data[k] = BigInt(v);
          }
        }
        out[i] = { type: 'int64', data, dims };
        break;
      }
      case 'bool': {
        const data = new Uint8Array(n * w);
        for (let r = 0, k = 0; r < n; r++) {
          const row = rows[r]!;
          for (let c = 0; c < w; c++, k++) data[k] = num(row[features[c]!], defaults[c]) ? 1 : 0;
        }
        out[i] = { type: 'bool', data, dims };
        break;
      }
      case 'string': {
        const data: string[] = new Array(n * w);
        for (let r = 0, k = 0; r < n; r++) {
          const row = rows[r]!;
          for (let c = 0; c < w; c++, k++) {
            const v = row[features[c]!];
            data[k] = v === undefined || v === null ? (defaults[c] as string) : String(v);
          }
        }
        out[i] = { type: 'string', data, dims };
        break;
      }
    }
  }
  return out;
}

/** A feature value as a number: booleans are 0/1, an absent value is the feature's default. */
function num(v: Scalar | undefined, fallback: Scalar | undefined): number {
  if (typeof v === 'number') return v;
  if (typeof v === 'boolean') return v ? 1 : 0;
  if (v === undefined || v === null) return fallback as number;
  return Number(v);
}

/**
 * Output tensors (keyed by graph output name) into one row per input row, keyed by the client-facing names.
 * scalar: number (int64 as a number), boolean for bool, string for string; vector: number[] (bool as 0/1) or string[].
 * Throws INTERNAL when a tensor's shape does not give one value (scalar) or one array (vector) per row.
 */
export function unpackOutputs(plan: TensorPlan, results: Readonly<Record<string, RawTensor>>, n: number): OutputRow[] {
  const rows: OutputRow[] = new Array(n);
  for (let r = 0; r < n; r++) rows[r] = {};
  for (const output of plan.outputs) {
    const t = results[output.name];
    if (!t) throw new SibylError('INTERNAL', `model returned no "${output.name}"`);
    const data = t.data;
    if (t.dims[0] !== n || data.length % Math.max(n, 1) !== 0)
      throw new SibylError('INTERNAL', `output "${output.name}" has shape [${t.dims.join(', ')}] for ${n} rows`);
    const w = n === 0 ? 0 : data.length / n;
    const as = output.as;
    if (output.kind === 'scalar') {
      if (w !== 1) throw new SibylError('INTERNAL', `scalar output "${output.name}" has ${w} values per row`);
      const conv = scalarOf(t.type);
      for (let r = 0; r < n; r++) rows[r]![as] = conv(data[r]);
    } else {
      const conv = t.type === 'string' ? (x: unknown) => x as string : t.type === 'bool' ? (x: unknown) => (x ? 1 : 0) : Number;
      for (let r = 0, k = 0; r < n; r++) {
        const v = new Array(w);
        for (let c = 0; c < w; c++, k++) v[c] = conv(data[k]);
        rows[r]![as] = v as Value;
      }
    }
  }
  return rows;
}

function scalarOf(type: string): (x: unknown) => Value {
  if (type === 'string') return (x) => x as string;
  if (type === 'bool') return (x) => x !== 0 && x !== false;
  if (type === 'int64' || type === 'uint64') return Number as (x: unknown) => number;
  return (x) => x as number;
}
