/**
 * Tensors of the Open Inference Protocol to and from the pipeline's rows. Used by both the REST and gRPC adapters:
 * they decode their wire forms into `DecodedTensor`s, and encode `EncodedOutput`s back.
 */
import type { Scalar } from '../../../runtimes/contract.ts';
import type { Dtype } from '../../../runtimes/manifest.ts';
import { SibylError } from '../../../core/errors.ts';
import type { InputRow } from '../../pipeline/pipeline.ts';
import type { PredictOutput } from '../../pipeline/pipeline.ts';
import type { Datatype, Signature } from './signature.ts';

/** One input tensor, its elements flattened row-major. */
export interface DecodedTensor {
  readonly name: string;
  readonly datatype: string;
  readonly shape: readonly number[];
  readonly data: ArrayLike<number | string | boolean | bigint>;
}

export function elementCount(shape: readonly number[], name: string): number {
  let n = 1;
  for (const d of shape) {
    if (!Number.isInteger(d) || d < 0) throw new SibylError('INVALID_ARGUMENT', `input "${name}": shape ${JSON.stringify(shape)} has an invalid dimension`);
    n *= d;
  }
  return n;
}

/** Input tensors → request rows. Throws INVALID_ARGUMENT for unknown names, wrong datatypes, shapes or sizes. */
export function rowsFromTensors(model: string, sig: Signature, tensors: readonly DecodedTensor[]): InputRow[] {
  if (tensors.length === 0) throw new SibylError('INVALID_ARGUMENT', `inputs: at least one input tensor is required (model ${model} takes ${names(sig)})`);
  let rows = -1;
  const seen = new Set<string>();
  for (const t of tensors) {
    if (seen.has(t.name)) throw new SibylError('INVALID_ARGUMENT', `input "${t.name}": given twice; each input may appear once`);
    seen.add(t.name);
    const spec = sig.accepts.get(t.name);
    if (!spec) throw new SibylError('INVALID_ARGUMENT', `input "${t.name}": model ${model} has no such input (it takes ${names(sig)})`);
    if (t.datatype !== spec.datatype) {
      throw new SibylError('INVALID_ARGUMENT', `input "${t.name}": datatype ${t.datatype} does not match the model's ${spec.datatype}`);
    }
    const width = spec.kind === 'packed' ? spec.features.length : 1;
    const okShape = t.shape.length === 2 ? t.shape[1] === width : t.shape.length === 1 && width === 1;
    if (!okShape) {
      const want = spec.kind === 'packed' ? `[rows, ${width}]` : '[rows] or [rows, 1]';
      throw new SibylError('INVALID_ARGUMENT', `input "${t.name}": shape ${JSON.stringify(t.shape)} does not match ${want}`);
    }
    const count = elementCount(t.shape, t.name);
    if (t.data.length !== count) {
      throw new SibylError('INVALID_ARGUMENT', `input "${t.name}": shape ${JSON.stringify(t.shape)} needs ${count} elements, got ${t.data.length}`);
    }
    const n = t.shape[0]!;
    if (rows === -1) rows = n;
    else if (rows !== n) throw new SibylError('INVALID_ARGUMENT', `input "${t.name}": ${n} rows, but other inputs have ${rows}`);
  }
  const out: InputRow[] = new Array(rows);
  const entities: Record<string, string>[] = new Array(rows);
  const features: Record<string, Scalar>[] = new Array(rows);
  for (let i = 0; i < rows; i++) {
    entities[i] = {};
    features[i] = {};
    out[i] = { entities: entities[i]!, features: features[i]! };
  }
  for (const t of tensors) {
    const spec = sig.accepts.get(t.name)!;
    const width = spec.features.length || 1;
    for (let i = 0; i < rows; i++) {
      if (spec.kind === 'entity') {
        const v = t.data[i];
        if (typeof v !== 'string') throw new SibylError('INVALID_ARGUMENT', `input "${t.name}": entity ids must be strings`);
        entities[i]![t.name] = v;
        continue;
      }
      for (let j = 0; j < width; j++) {
        features[i]![spec.features[j]!] = asFeature(t.data[i * width + j]!, spec.featureDtypes[j]!, t.name);
      }
    }
  }
  return out;
}

function asFeature(v: number | string | boolean | bigint, dtype: Dtype, input: string): Scalar {
  if (typeof v === 'bigint') v = Number(v);
  if (dtype === 'bool') return typeof v === 'boolean' ? v : v !== 0;
  if (dtype === 'string') {
    if (typeof v !== 'string') throw new SibylError('INVALID_ARGUMENT', `input "${input}": expected string elements`);
    return v;
  }
  if (typeof v === 'boolean') return v ? 1 : 0;
  if (typeof v !== 'number') throw new SibylError('INVALID_ARGUMENT', `input "${input}": expected numeric elements, got ${JSON.stringify(v)}`);
  return v;
}

function names(sig: Signature): string {
  return sig.inputs.map((i) => `${i.name} ${i.datatype}${JSON.stringify(i.shape)}`).join(', ');
}

/** One output tensor, elements flattened row-major: numbers for numeric types, booleans for BOOL, strings for BYTES. */
export interface EncodedOutput {
  readonly name: string;
  readonly datatype: Datatype;
  readonly shape: number[];
  readonly data: (number | string | boolean)[];
}

/** The pipeline's result rows → output tensors, in the model's output order, only those `wanted` (all when empty). */
export function tensorsFromResults(sig: Signature, out: PredictOutput, wanted: readonly string[]): EncodedOutput[] {
  const specs = wanted.length === 0 ? sig.outputs : wanted.map((w) => {
    const spec = sig.outputs.find((o) => o.name === w);
    if (!spec) throw new SibylError('INVALID_ARGUMENT', `output "${w}": model ${out.model} has no such output (it has ${sig.outputs.map((o) => o.name).join(', ')})`);
    return spec;
  });
  const rows = out.results.length;
  return specs.map((spec) => {
    const data: (number | string | boolean)[] = [];
    let width = 1;
    for (let i = 0; i < rows; i++) {
      const v = out.results[i]!.outputs[spec.name];
      if (Array.isArray(v)) {
        width = v.length;
        for (const x of v) data.push(x);
      } else if (v !== undefined) {
        data.push(v as number | string | boolean);
      }
    }
    const shape = spec.shape.length === 1 ? [rows] : [rows, width];
    return { name: spec.name, datatype: spec.datatype, shape, data };
  });
}

// ---- raw (binary) tensor data: little-endian, row-major; BYTES elements are a 4-byte length then the bytes ----

const BYTES_PER: Partial<Record<string, number>> = { BOOL: 1, INT8: 1, UINT8: 1, INT16: 2, UINT16: 2, INT32: 4, UINT32: 4, FP32: 4, INT64: 8, UINT64: 8, FP64: 8 };
const utf8 = new TextDecoder('utf-8', { fatal: true });
const utf8enc = new TextEncoder();

/** Decodes raw tensor bytes. Throws INVALID_ARGUMENT when the size does not fit the datatype. */
export function decodeRaw(name: string, datatype: string, raw: Uint8Array): ArrayLike<number | string | boolean | bigint> {
  const view = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
  if (datatype === 'BYTES') {
    const out: string[] = [];
    let off = 0;
    while (off < raw.byteLength) {
      if (off + 4 > raw.byteLength) throw new SibylError('INVALID_ARGUMENT', `input "${name}": truncated BYTES element length`);
      const len = view.getUint32(off, true);
      off += 4;
      if (off + len > raw.byteLength) throw new SibylError('INVALID_ARGUMENT', `input "${name}": BYTES element overruns the data`);
      try {
        out.push(utf8.decode(raw.subarray(off, off + len)));
      } catch {
        throw new SibylError('INVALID_ARGUMENT', `input "${name}": BYTES element is not UTF-8`);
      }
      off += len;
    }
    return out;
  }
  const size = BYTES_PER[datatype];
  if (!size) throw new SibylError('INVALID_ARGUMENT', `input "${name}": datatype ${datatype} is not supported`);
  if (raw.byteLength % size !== 0) throw new SibylError('INVALID_ARGUMENT', `input "${name}": ${raw.byteLength} bytes is not a whole number of ${datatype} elements`);
  const n = raw.byteLength / size;
  const out = new Array<number | boolean | bigint>(n);
  for (let i = 0, o = 0; i < n; i++, o += size) {
    switch (datatype) {
      case 'FP32': out[i] = view.getFloat32(o, true); break;
      case 'FP64': out[i] = view.getFloat64(o, true); break;
      case 'INT8': out[i] = view.getInt8(o); break;
      case 'UINT8': out[i] = view.getUint8(o); break;
      case 'INT16': out[i] = view.getInt16(o, true); break;
      case 'UINT16': out[i] = view.getUint16(o, true); break;
      case 'INT32': out[i] = view.getInt32(o, true); break;
      case 'UINT32': out[i] = view.getUint32(o, true); break;
      case 'INT64': out[i] = Number(view.getBigInt64(o, true)); break;
      case 'UINT64': out[i] = Number(view.getBigUint64(o, true)); break;
      case 'BOOL': out[i] = view.getUint8(o) !== 0; break;
    }
  }
  return out;
}

/** Encodes an output tensor's elements as raw bytes. */
export function encodeRaw(t: EncodedOutput): Uint8Array {
  const out = new Uint8Array(rawSize(t));
  writeRaw(t, new DataView(out.buffer), 0);
  return out;
}

/** Bytes of an output tensor's raw form. */
export function rawSize(t: EncodedOutput): number {
  if (t.datatype !== 'BYTES') return t.data.length * BYTES_PER[t.datatype]!;
  let n = 0;
  for (const v of t.data) n += 4 + Buffer.byteLength(String(v), 'utf8');
  return n;
}

/** Writes an output tensor's raw form (`rawSize(t)` bytes) at `off` of `view`. */
export function writeRaw(t: EncodedOutput, view: DataView, off: number): void {
  if (t.datatype === 'BYTES') {
    const bytes = new Uint8Array(view.buffer, view.byteOffset, view.byteLength);
    for (const v of t.data) {
      const s = String(v);
      const n = Buffer.byteLength(s, 'utf8');
      view.setUint32(off, n, true);
      utf8enc.encodeInto(s, bytes.subarray(off + 4, off + 4 + n));
      off += 4 + n;
    }
    return;
  }
  const size = BYTES_PER[t.datatype]!;
  for (let i = 0, o = off; i < t.data.length; i++, o += size) {
    const v = t.data[i]!;
    const n = typeof v === 'boolean' ? (v ? 1 : 0) : Number(v);
    switch (t.datatype) {
      case 'FP32': view.setFloat32(o, n, true); break;
      case 'FP64': view.setFloat64(o, n, true); break;
      case 'INT8': view.setInt8(o, n); break;
      case 'UINT8': case 'BOOL': view.setUint8(o, n); break;
      case 'INT16': view.setInt16(o, n, true); break;
      case 'UINT16': view.setUint16(o, n, true); break;
      case 'INT32': view.setInt32(o, n, true); break;
      case 'UINT32': view.setUint32(o, n, true); break;
      case 'INT64': view.setBigInt64(o, BigInt(Math.trunc(n)), true); break;
      case 'UINT64': view.setBigUint64(o, BigInt(Math.trunc(n)), true); break;
    }
  }
}

/** The response parameter that lists, per row, the features that got their defaults. */
export const DEFAULTED_PARAMETER = 'sibyl_defaulted_features';

/** The features each row defaulted, as the OIP response parameter's value (JSON), or undefined when none did. */
export function defaultedParameter(out: PredictOutput): string | undefined {
  return out.results.some((r) => r.defaulted.length) ? JSON.stringify(out.results.map((r) => r.defaulted)) : undefined;
}
