/**
 * How a model looks through the Open Inference Protocol: its input and output tensors.
 *
 * Inputs a request may send (any mix, all with the same first dimension = rows):
 * - a packed tensor named like one of the ONNX graph inputs, shape [rows, k]: its columns are the features the
 *   manifest packs into that input, in order;
 * - a tensor per feature, shape [rows] or [rows, 1];
 * - a BYTES tensor per entity (shape [rows] or [rows, 1]) holding entity ids: the gateway reads the store features.
 * Advertised inputs (metadata): the packed tensors when every feature comes from the request, else one BYTES tensor
 * per entity plus one tensor per request feature.
 */
import type { Dtype } from '../../../runtimes/manifest.ts';
import type { Route } from '../../routing/route-table.ts';

export type Datatype = 'BOOL' | 'INT8' | 'INT16' | 'INT32' | 'INT64' | 'UINT8' | 'UINT16' | 'UINT32' | 'UINT64' | 'FP16' | 'FP32' | 'FP64' | 'BYTES';

export const datatypeOf: Readonly<Record<Dtype, Datatype>> = {
  float32: 'FP32',
  float64: 'FP64',
  int32: 'INT32',
  int64: 'INT64',
  bool: 'BOOL',
  string: 'BYTES',
};

export interface InputSpec {
  readonly name: string;
  readonly datatype: Datatype;
  readonly kind: 'packed' | 'feature' | 'entity';
  /** packed: the features of its columns; feature: the one feature; entity: empty. */
  readonly features: readonly string[];
  /** Element type of each column's feature. */
  readonly featureDtypes: readonly Dtype[];
}

export interface TensorMetadata {
  readonly name: string;
  readonly datatype: Datatype;
  readonly shape: readonly number[];
}

export interface Signature {
  /** Every input name a request may use. */
  readonly accepts: ReadonlyMap<string, InputSpec>;
  readonly inputs: readonly TensorMetadata[];
  readonly outputs: readonly TensorMetadata[];
  readonly platform: string;
}

const cache = new WeakMap<Route, Signature>();

export function signatureOf(route: Route): Signature {
  let sig = cache.get(route);
  if (!sig) cache.set(route, (sig = build(route)));
  return sig;
}

function build(route: Route): Signature {
  const m = route.manifest;
  const dtypes = new Map(m.features.map((f) => [f.name, f.dtype]));
  const accepts = new Map<string, InputSpec>();
  const packed: TensorMetadata[] = [];
  for (const input of m.onnx?.inputs ?? []) {
    accepts.set(input.name, {
      name: input.name,
      datatype: datatypeOf[input.dtype],
      kind: 'packed',
      features: input.features,
      featureDtypes: input.features.map((f) => dtypes.get(f)!),
    });
    packed.push({ name: input.name, datatype: datatypeOf[input.dtype], shape: [-1, input.features.length] });
  }
  for (const f of m.features) {
    if (!accepts.has(f.name)) accepts.set(f.name, { name: f.name, datatype: datatypeOf[f.dtype], kind: 'feature', features: [f.name], featureDtypes: [f.dtype] });
  }
  const entityInputs: TensorMetadata[] = [];
  for (const entity of route.plan.entities) {
    if (!accepts.has(entity)) accepts.set(entity, { name: entity, datatype: 'BYTES', kind: 'entity', features: [], featureDtypes: [] });
    entityInputs.push({ name: entity, datatype: 'BYTES', shape: [-1] });
  }
  const allFromRequest = m.features.every((f) => f.source === 'request');
  const inputs =
    allFromRequest && packed.length > 0
      ? packed
      : [...entityInputs, ...m.features.filter((f) => f.source === 'request').map((f) => ({ name: f.name, datatype: datatypeOf[f.dtype], shape: [-1] }))];
  const outputs = route.outputs.map((o) => ({ name: o.name, datatype: datatypeOf[o.dtype], shape: o.kind === 'scalar' ? [-1] : [-1, -1] }));
  const platform = m.runtime === 'onnx' ? 'onnxruntime_onnx' : m.runtime === 'rules' ? 'sibyl_rules' : 'sagemaker';
  return { accepts, inputs, outputs, platform };
}
