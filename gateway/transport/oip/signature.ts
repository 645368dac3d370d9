/**
 * How a model looks through the Open Inference Protocol: its input and output tensors.
 *
 * Inputs a request may send (any mix, all with the same first dimension = rows):
 * - a packed tensor, when the model's runtime declares some (runtimes/registry.ts `packedInputsOf`), shape
 *   [rows, k]: its columns are the features the manifest packs into that input, in order;
 * - a tensor per feature, shape [rows] or [rows, 1];
 * - a BYTES tensor per entity (shape [rows] or [rows, 1]) holding entity ids: the gateway reads the store features.
 * Advertised inputs (metadata): the packed tensors when every feature comes from the request, else one BYTES tensor
 * per entity plus one tensor per request feature.
 */
import { oipPlatformOf, packedInputsOf } from '../../../runtimes/index.ts';
import type { Dtype } from '../../../runtimes/manifest.ts';
import type { ModelVersion } from '../../../execution/model-version.ts';

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

const own = new WeakMap<ModelVersion, Signature>();
const withParts = new WeakMap<ModelVersion, { readonly composed: readonly ModelVersion[]; readonly sig: Signature }>();

/**
 * The signature of `version`. A composed rule also takes the inputs of the models it composes (`composed`, as the
 * table serving it resolves them): a request may carry their features and entities, as over Sibyl's own API.
 */
export function signatureOf(version: ModelVersion, composed: readonly ModelVersion[] = NONE): Signature {
  let sig = own.get(version);
  if (!sig) own.set(version, (sig = build(version)));
  if (composed.length === 0) return sig;
  const hit = withParts.get(version);
  if (hit && sameVersions(hit.composed, composed)) return hit.sig;
  const extended = withComposed(sig, composed);
  withParts.set(version, { composed, sig: extended });
  return extended;
}

const NONE: readonly ModelVersion[] = Object.freeze([]);

function sameVersions(a: readonly ModelVersion[], b: readonly ModelVersion[]): boolean {
  return a.length === b.length && a.every((v, i) => v === b[i]);
}

/** Adds the per-feature and entity inputs of composed models that the rule itself does not take. */
function withComposed(sig: Signature, composed: readonly ModelVersion[]): Signature {
  if (composed.length === 0) return sig;
  const accepts = new Map(sig.accepts);
  const inputs = [...sig.inputs];
  for (const part of composed) {
    const fromRequest = new Set(part.manifest.features.filter((f) => f.source === 'request').map((f) => f.name));
    for (const [name, spec] of build(part).accepts) {
      if (spec.kind === 'packed' || accepts.has(name)) continue;
      accepts.set(name, spec);
      if (spec.kind === 'entity' || fromRequest.has(name)) inputs.push({ name, datatype: spec.datatype, shape: [-1] });
    }
  }
  return { ...sig, accepts, inputs };
}

function build(route: ModelVersion): Signature {
  const m = route.manifest;
  const dtypes = new Map(m.features.map((f) => [f.name, f.dtype]));
  const accepts = new Map<string, InputSpec>();
  const packed: TensorMetadata[] = [];
  for (const input of packedInputsOf(m)) {
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
  return { accepts, inputs, outputs, platform: oipPlatformOf(m) };
}
