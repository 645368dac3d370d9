/**
 * The Open Inference Protocol's ModelInferRequest and ModelInferResponse (proto/inference/open_inference_grpc.proto)
 * read and written in their wire form directly, as Sibyl gRPC's own messages are (sibyl-api.ts): the OIP gRPC door
 * (grpc/oip-grpc.ts) tries `readInferRequest` first and writes every answer with `inferResponseBinary`.
 */
import { SibylError } from '../../../core/errors.ts';
import type { ParsedRequest, PredictOutput } from '../../pipeline/pipeline.ts';
import { cursor, delimited, key, lenPrefixed, str, strField, uint32, varintSize, writeStr, writeVarint } from '../protobuf-wire.ts';
import { signatureOf } from './signature.ts';
import { DEFAULTED_PARAMETER, decodeRaw, defaultedParameter, rawSize, rowsFromTensors, tensorsFromResults, writeRaw, type DecodedTensor } from './tensors.ts';

/** An inference request for the pipeline's entry, with the outputs it asks for (all when empty). */
export interface InferRequest extends ParsedRequest {
  readonly outputs: readonly string[];
}

interface WireInput {
  name: string;
  datatype: string;
  shape: number[];
  /** Elements from `contents`; undefined when the message had none. */
  data: (number | string)[] | undefined;
}

/**
 * ModelInferRequest's wire form read straight into the entry's request when it holds only the model's name and
 * version, an id, inputs each with a name, a datatype, a shape and either typed contents of its datatype (FP32,
 * FP64, INT8/16/32 of at most 31 bits, BYTES that are UTF-8) or raw contents, and outputs named by name alone.
 * Anything else (parameters, other contents, unknown fields, a malformed message) gives undefined, and the door
 * decodes the message with protobuf-es, which gives the same request or the precise error; what this accepts, that
 * path decodes to the same request (test/gateway/oip-wire.test.ts).
 */
export function readInferRequest(b: Buffer, timeoutMs: number | undefined): InferRequest | undefined {
  cursor.at = 0;
  const end = b.byteLength;
  let model = '';
  let version = '';
  let id = '';
  const inputs: WireInput[] = [];
  const outputs: string[] = [];
  const raw: Buffer[] = [];
  while (cursor.at < end) {
    const tag = uint32(b, end);
    const len = (tag & 7) === 2 ? uint32(b, end) : -1;
    if (len < 0 || cursor.at + len > end) return undefined;
    const fieldEnd = cursor.at + len;
    switch (tag >>> 3) {
      case 1:
      case 2:
      case 3: {
        // The model's name and version repeat from request to request; the id does not.
        const s = tag >>> 3 === 3 ? str(b, len, end) : key(b, len, end);
        if (s === undefined) return undefined;
        if (tag >>> 3 === 1) model = s;
        else if (tag >>> 3 === 2) version = s;
        else id = s;
        break;
      }
      case 5: {
        const input = readInput(b, fieldEnd);
        if (input === undefined) return undefined;
        inputs.push(input);
        break;
      }
      case 6: {
        // InferRequestedOutputTensor: its name only (field 1).
        let name = '';
        while (cursor.at < fieldEnd) {
          if (uint32(b, fieldEnd) !== 0x0a) return undefined;
          const n = uint32(b, fieldEnd);
          const s = n < 0 ? undefined : key(b, n, fieldEnd);
          if (s === undefined) return undefined;
          name = s;
        }
        outputs.push(name);
        break;
      }
      case 7:
        raw.push(b.subarray(cursor.at, fieldEnd));
        cursor.at = fieldEnd;
        break;
      default:
        return undefined;
    }
  }
  if (raw.length > 0 && raw.length !== inputs.length) return undefined;
  const tensors: DecodedTensor[] = new Array(inputs.length);
  for (let i = 0; i < inputs.length; i++) {
    const t = inputs[i]!;
    const r = raw[i];
    if (r !== undefined) {
      if (t.data !== undefined) return undefined;
      tensors[i] = { name: t.name, datatype: t.datatype, shape: t.shape, data: decodeRaw(t.name, t.datatype, r) };
    } else {
      if (t.data === undefined) return undefined;
      tensors[i] = { name: t.name, datatype: t.datatype, shape: t.shape, data: t.data };
    }
  }
  return { model, version, routingKey: '', requestId: id, timeoutMs, outputs, rows: (route, composed) => rowsFromTensors(model, signatureOf(route, composed), tensors) };
}

/** InferInputTensor (name 1, datatype 2, shape 3 packed, contents 5), or undefined. */
function readInput(b: Buffer, end: number): WireInput | undefined {
  const t: WireInput = { name: '', datatype: '', shape: [], data: undefined };
  let contentsEnd = -1;
  let contentsAt = -1;
  while (cursor.at < end) {
    const tag = uint32(b, end);
    const len = (tag & 7) === 2 ? uint32(b, end) : -1;
    if (len < 0 || cursor.at + len > end) return undefined;
    switch (tag >>> 3) {
      case 1:
      case 2: {
        const s = key(b, len, end);
        if (s === undefined) return undefined;
        if (tag >>> 3 === 1) t.name = s;
        else t.datatype = s;
        break;
      }
      case 3: {
        const to = cursor.at + len;
        while (cursor.at < to) {
          const d = uint32(b, to);
          if (d < 0) return undefined;
          t.shape.push(d);
        }
        break;
      }
      case 5:
        // Read once the datatype is known (it may come after the contents).
        if (contentsAt >= 0) return undefined;
        contentsAt = cursor.at;
        contentsEnd = cursor.at + len;
        cursor.at = contentsEnd;
        break;
      default:
        return undefined;
    }
  }
  if (contentsAt >= 0) {
    const after = cursor.at;
    cursor.at = contentsAt;
    const data = readContents(b, contentsEnd, t.datatype);
    if (data === undefined) return undefined;
    t.data = data;
    cursor.at = after;
  }
  return t;
}

/** InferTensorContents holding only the field of `datatype`'s elements (packed numbers, or BYTES), or undefined. */
function readContents(b: Buffer, end: number, datatype: string): (number | string)[] | undefined {
  const want = CONTENTS_FIELD[datatype];
  if (want === undefined) return undefined;
  const data: (number | string)[] = [];
  while (cursor.at < end) {
    const tag = uint32(b, end);
    const len = (tag & 7) === 2 ? uint32(b, end) : -1;
    if (tag >>> 3 !== want || len < 0 || cursor.at + len > end) return undefined;
    const to = cursor.at + len;
    switch (want) {
      case FP32_CONTENTS:
        if (len % 4 !== 0) return undefined;
        for (; cursor.at < to; cursor.at += 4) data.push(b.readFloatLE(cursor.at));
        break;
      case FP64_CONTENTS:
        if (len % 8 !== 0) return undefined;
        for (; cursor.at < to; cursor.at += 8) data.push(b.readDoubleLE(cursor.at));
        break;
      case INT_CONTENTS:
        while (cursor.at < to) {
          // A negative int32 is a ten-byte varint: declined (uint32 gives -1), as is anything past 2^31 - 1.
          const v = uint32(b, to);
          if (v < 0 || v > 0x7fffffff) return undefined;
          data.push(v);
        }
        break;
      default: {
        const s = str(b, len, to);
        if (s === undefined) return undefined;
        data.push(s);
      }
    }
  }
  return data;
}

const INT_CONTENTS = 2;
const FP32_CONTENTS = 6;
const FP64_CONTENTS = 7;
const BYTES_CONTENTS = 8;
const CONTENTS_FIELD: Partial<Record<string, number>> = { FP32: FP32_CONTENTS, FP64: FP64_CONTENTS, INT8: INT_CONTENTS, INT16: INT_CONTENTS, INT32: INT_CONTENTS, BYTES: BYTES_CONTENTS };

/**
 * ModelInferResponse's wire form for `out`: the outputs `req` asks for (all when it names none) in
 * `raw_output_contents`, the defaulted features as the `sibyl_defaulted_features` string parameter; byte for byte
 * what protobuf-es writes for the same message (test/gateway/oip-wire.test.ts). Throws INVALID_ARGUMENT for an
 * output the model does not have.
 */
export function inferResponseBinary(out: PredictOutput, req: Pick<InferRequest, 'outputs'>): Buffer {
  const outputs = tensorsFromResults(signatureOf(out.route), out, req.outputs);
  const defaulted = defaultedParameter(out);
  let size = strField(out.model) + strField(out.version) + strField(out.requestId);
  let entry = 0;
  let param = 0;
  if (defaulted !== undefined) {
    param = 1 + lenPrefixed(defaulted);
    entry = 1 + lenPrefixed(DEFAULTED_PARAMETER) + delimited(param);
    size += delimited(entry);
  }
  const tensorSizes: number[] = new Array(outputs.length);
  const shapeSizes: number[] = new Array(outputs.length);
  const rawSizes: number[] = new Array(outputs.length);
  for (let i = 0; i < outputs.length; i++) {
    const o = outputs[i]!;
    let shape = 0;
    for (const d of o.shape) shape += varintSize(d);
    shapeSizes[i] = shape;
    tensorSizes[i] = strField(o.name) + strField(o.datatype) + (o.shape.length ? delimited(shape) : 0);
    rawSizes[i] = rawSize(o);
    size += delimited(tensorSizes[i]!) + delimited(rawSizes[i]!);
  }
  const b = Buffer.allocUnsafe(size);
  cursor.at = 0;
  writeStr(b, 0x0a, out.model);
  writeStr(b, 0x12, out.version);
  writeStr(b, 0x1a, out.requestId);
  if (defaulted !== undefined) {
    b[cursor.at++] = 0x22;
    writeVarint(b, entry);
    writeStr(b, 0x0a, DEFAULTED_PARAMETER, true);
    b[cursor.at++] = 0x12;
    writeVarint(b, param);
    writeStr(b, 0x1a, defaulted, true);
  }
  for (let i = 0; i < outputs.length; i++) {
    const o = outputs[i]!;
    b[cursor.at++] = 0x2a;
    writeVarint(b, tensorSizes[i]!);
    writeStr(b, 0x0a, o.name);
    writeStr(b, 0x12, o.datatype);
    if (o.shape.length) {
      b[cursor.at++] = 0x1a;
      writeVarint(b, shapeSizes[i]!);
      for (const d of o.shape) writeVarint(b, d);
    }
  }
  const view = new DataView(b.buffer, b.byteOffset, b.byteLength);
  for (let i = 0; i < outputs.length; i++) {
    b[cursor.at++] = 0x32;
    writeVarint(b, rawSizes[i]!);
    writeRaw(outputs[i]!, view, cursor.at);
    cursor.at += rawSizes[i]!;
  }
  if (cursor.at !== size) throw new SibylError('INTERNAL', `ModelInferResponse: wrote ${cursor.at} of ${size} bytes`);
  return b;
}
