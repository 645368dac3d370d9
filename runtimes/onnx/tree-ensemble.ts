/**
 * Reads an ONNX model file far enough to tell whether it is a lone tree ensemble (the graph's one input, a float32
 * matrix, into `ai.onnx.ml` TreeEnsembleRegressor or TreeEnsembleClassifier, then only Identity nodes to the outputs),
 * and if so returns its attributes for forest.ts to compile. Anything else returns why not, and the model runs on
 * onnxruntime alone. A classifier's `class_*` attributes are read as the regressor's `target_*` (a leaf's weight for
 * a class, where a regressor's is for a target).
 *
 *   const found = readTreeEnsemble(bytes);   // { ensemble } | { unsupported: 'node Scaler (only ...)' }
 *
 * Only the wire format is decoded (@bufbuild/protobuf's reader; the ONNX schema's field numbers below), and only the
 * fields this needs: onnx.proto keeps its field numbers stable across IR versions.
 */
import { BinaryReader, WireType } from '@bufbuild/protobuf/wire';

/**
 * TreeEnsembleRegressor's or TreeEnsembleClassifier's attributes, as the ONNX-ML operators define them (tensor-valued
 * forms and string class labels not supported).
 */
export interface TreeEnsemble {
  readonly op: 'regressor' | 'classifier';
  /** The graph input's name and its width (features per row). */
  readonly input: string;
  readonly width: number;
  /** Each graph output fed by the ensemble's scores (directly or through Identity nodes): Y, or a classifier's Z. */
  readonly outputs: readonly string[];
  /** Each graph output fed by a classifier's label (Y); empty for a regressor. */
  readonly labelOutputs: readonly string[];
  /** A classifier's `classlabels_int64s`; empty for a regressor. */
  readonly classLabels: readonly number[];
  /** A regressor's `n_targets`; a classifier's number of classes. */
  readonly nTargets: number;
  readonly nodeTreeIds: readonly number[];
  readonly nodeIds: readonly number[];
  readonly featureIds: readonly number[];
  readonly modes: readonly string[];
  readonly values: readonly number[];
  readonly trueIds: readonly number[];
  readonly falseIds: readonly number[];
  /** Per node, 1 when a missing (NaN) value takes the true branch; empty: never. */
  readonly missingTracksTrue: readonly number[];
  /** A leaf's weights (a classifier's `class_treeids`, `class_nodeids`, `class_ids`, `class_weights`). */
  readonly targetTreeIds: readonly number[];
  readonly targetNodeIds: readonly number[];
  readonly targetIds: readonly number[];
  readonly targetWeights: readonly number[];
  readonly baseValues: readonly number[];
  /** A regressor's `aggregate_function`; SUM for a classifier (its trees' weights are added). */
  readonly aggregate: string;
  readonly postTransform: string;
}

export type TreeEnsembleRead = { readonly ensemble: TreeEnsemble } | { readonly unsupported: string };

/** Attributes the compiled forest does not implement: a model that sets one runs on onnxruntime. */
const UNSUPPORTED_ATTRIBUTES = new Set(['nodes_values_as_tensor', 'target_weights_as_tensor', 'class_weights_as_tensor', 'base_values_as_tensor', 'classlabels_strings']);

/** The operators read here, by op_type, and the prefix of their leaf-weight attributes. */
const OPS = { TreeEnsembleRegressor: { op: 'regressor', weights: 'target' }, TreeEnsembleClassifier: { op: 'classifier', weights: 'class' } } as const;

interface Attribute {
  f?: number;
  i?: number;
  s?: string;
  floats: number[];
  ints: number[];
  strings: string[];
  other: boolean;
}

interface Node {
  readonly opType: string;
  readonly domain: string;
  readonly inputs: string[];
  readonly outputs: string[];
  readonly attributes: Map<string, Attribute>;
}

interface ValueInfo {
  readonly name: string;
  /** TensorProto element type (1 = float32), 0 when not a tensor. */
  readonly elemType: number;
  readonly rank: number;
  /** The second dimension's fixed size, when set. */
  readonly width?: number;
}

export function readTreeEnsemble(bytes: Uint8Array): TreeEnsembleRead {
  let found = undefined as ReturnType<typeof readGraph> | undefined;
  eachField(bytes, (field, wire, r) => (field === 7 && wire === LEN ? ((found = readGraph(r.bytes())), true) : false));
  if (!found) return { unsupported: 'no graph' };
  const graph = found;
  const ensembles = graph.nodes.filter((n) => n.opType !== 'Identity');
  if (ensembles.length !== 1) return { unsupported: `${ensembles.length} nodes other than Identity (one tree ensemble only)` };
  const node = ensembles[0]!;
  const kind = node.domain === 'ai.onnx.ml' ? OPS[node.opType as keyof typeof OPS] : undefined;
  if (!kind) return { unsupported: `node ${node.opType} (only ai.onnx.ml TreeEnsembleRegressor or TreeEnsembleClassifier)` };
  // Only the node's inputs may be graph inputs: initializers are inputs that need no feed (IR < 4 lists them both).
  const feeds = graph.inputs.filter((i) => !graph.initializers.includes(i.name));
  if (feeds.length !== 1 || node.inputs.length !== 1 || node.inputs[0] !== feeds[0]!.name) return { unsupported: 'the ensemble does not read the graph\'s one input' };
  const input = feeds[0]!;
  if (input.elemType !== 1 || input.rank !== 2 || input.width === undefined) return { unsupported: 'the graph input is not a float32 [N, features] matrix' };
  // Every graph output must be one of the ensemble's outputs, through Identity nodes only: a regressor's Y (its
  // scores), a classifier's Y (the label) or Z (its scores).
  const sourceOf = new Map<string, string>();
  for (const n of graph.nodes) if (n.opType === 'Identity' && n.inputs.length === 1 && n.outputs.length === 1) sourceOf.set(n.outputs[0]!, n.inputs[0]!);
  const [label, scores] = kind.op === 'classifier' ? [node.outputs[0], node.outputs[1]] : [undefined, node.outputs[0]];
  const outputs: string[] = [];
  const labelOutputs: string[] = [];
  for (const out of graph.outputs) {
    let name = out.name;
    for (let hops = 0; name !== scores && name !== label && sourceOf.has(name) && hops <= graph.nodes.length; hops++) name = sourceOf.get(name)!;
    if (name === scores && scores !== undefined) outputs.push(out.name);
    else if (name === label && label !== undefined) labelOutputs.push(out.name);
    else return { unsupported: `graph output "${out.name}" is not the ensemble's` };
  }
  for (const key of node.attributes.keys()) if (UNSUPPORTED_ATTRIBUTES.has(key)) return { unsupported: `attribute ${key}` };
  for (const [key, a] of node.attributes) if (a.other) return { unsupported: `attribute ${key} of a kind not read here` };
  const a = (name: string): Attribute | undefined => node.attributes.get(name);
  const ints = (name: string): number[] => a(name)?.ints ?? [];
  const floats = (name: string): number[] => a(name)?.floats ?? [];
  const w = kind.weights;
  const classLabels = kind.op === 'classifier' ? ints('classlabels_int64s') : [];
  return {
    ensemble: {
      op: kind.op,
      input: input.name,
      width: input.width,
      outputs,
      labelOutputs,
      classLabels,
      nTargets: kind.op === 'classifier' ? classLabels.length : (a('n_targets')?.i ?? 1),
      nodeTreeIds: ints('nodes_treeids'),
      nodeIds: ints('nodes_nodeids'),
      featureIds: ints('nodes_featureids'),
      modes: a('nodes_modes')?.strings ?? [],
      values: floats('nodes_values'),
      trueIds: ints('nodes_truenodeids'),
      falseIds: ints('nodes_falsenodeids'),
      missingTracksTrue: ints('nodes_missing_value_tracks_true'),
      targetTreeIds: ints(`${w}_treeids`),
      targetNodeIds: ints(`${w}_nodeids`),
      targetIds: ints(`${w}_ids`),
      targetWeights: floats(`${w}_weights`),
      baseValues: floats('base_values'),
      aggregate: kind.op === 'classifier' ? 'SUM' : (a('aggregate_function')?.s ?? 'SUM'),
      postTransform: a('post_transform')?.s ?? 'NONE',
    },
  };
}

const LEN = WireType.LengthDelimited;

/** Calls `read` for every field of a message; a field it does not read (returns false) is skipped. */
function eachField(bytes: Uint8Array, read: (field: number, wire: WireType, r: BinaryReader) => boolean): void {
  const r = new BinaryReader(bytes);
  while (r.pos < r.len) {
    const [field, wire] = r.tag();
    if (!read(field, wire, r)) r.skip(wire, field);
  }
}

/** GraphProto: node = 1, initializer = 5, input = 11, output = 12. */
function readGraph(bytes: Uint8Array): { nodes: Node[]; inputs: ValueInfo[]; outputs: ValueInfo[]; initializers: string[] } {
  const graph = { nodes: [] as Node[], inputs: [] as ValueInfo[], outputs: [] as ValueInfo[], initializers: [] as string[] };
  eachField(bytes, (field, wire, r) => {
    if (wire !== LEN) return false;
    if (field === 1) graph.nodes.push(readNode(r.bytes()));
    else if (field === 5) graph.initializers.push(readTensorName(r.bytes()));
    else if (field === 11) graph.inputs.push(readValueInfo(r.bytes()));
    else if (field === 12) graph.outputs.push(readValueInfo(r.bytes()));
    else return false;
    return true;
  });
  return graph;
}

/** NodeProto: input = 1, output = 2, op_type = 4, attribute = 5, domain = 7. */
function readNode(bytes: Uint8Array): Node {
  let opType = '';
  let domain = '';
  const inputs: string[] = [];
  const outputs: string[] = [];
  const attributes = new Map<string, Attribute>();
  eachField(bytes, (field, wire, r) => {
    if (wire !== LEN) return false;
    if (field === 1) inputs.push(r.string());
    else if (field === 2) outputs.push(r.string());
    else if (field === 4) opType = r.string();
    else if (field === 7) domain = r.string();
    else if (field === 5) attributes.set(...readAttribute(r.bytes()));
    else return false;
    return true;
  });
  return { opType, domain, inputs, outputs, attributes };
}

/** AttributeProto: name = 1, f = 2, i = 3, s = 4, floats = 7, ints = 8, strings = 9; tensors and graphs are "other". */
function readAttribute(bytes: Uint8Array): [string, Attribute] {
  const attr: Attribute = { floats: [], ints: [], strings: [], other: false };
  let name = '';
  eachField(bytes, (field, wire, r) => {
    switch (field) {
      case 1:
        name = r.string();
        return true;
      case 2:
        attr.f = r.float();
        return true;
      case 3:
        attr.i = Number(r.int64());
        return true;
      case 4:
        attr.s = r.string();
        return true;
      case 7:
        // Repeated scalars come packed or one per tag (onnx.proto is proto2); both are read.
        if (wire === LEN) for (const end = r.uint32() + r.pos; r.pos < end; ) attr.floats.push(r.float());
        else attr.floats.push(r.float());
        return true;
      case 8:
        if (wire === LEN) for (const end = r.uint32() + r.pos; r.pos < end; ) attr.ints.push(Number(r.int64()));
        else attr.ints.push(Number(r.int64()));
        return true;
      case 9:
        attr.strings.push(r.string());
        return true;
      case 5:
      case 6:
      case 10:
      case 11:
      case 22:
      case 23:
        attr.other = true;
        return false;
      default:
        return false;
    }
  });
  return [name, attr];
}

/** ValueInfoProto: name = 1, type = 2 (TypeProto: tensor_type = 1 (elem_type = 1, shape = 2 (dim = 1 (dim_value = 1)))). */
function readValueInfo(bytes: Uint8Array): ValueInfo {
  let name = '';
  let elemType = 0;
  const dims: (number | undefined)[] = [];
  eachField(bytes, (field, wire, r) => {
    if (field === 1 && wire === LEN) name = r.string();
    else if (field === 2 && wire === LEN) {
      eachField(r.bytes(), (tf, tw, type) => {
        if (tf !== 1 || tw !== LEN) return false;
        eachField(type.bytes(), (ef, ew, tensor) => {
          if (ef === 1 && ew === WireType.Varint) elemType = tensor.int32();
          else if (ef === 2 && ew === LEN) {
            eachField(tensor.bytes(), (sf, sw, shape) => {
              if (sf !== 1 || sw !== LEN) return false;
              let value: number | undefined;
              eachField(shape.bytes(), (df, dw, dim) => (df === 1 && dw === WireType.Varint ? ((value = Number(dim.int64())), true) : false));
              dims.push(value);
              return true;
            });
          } else return false;
          return true;
        });
        return true;
      });
    } else return false;
    return true;
  });
  return { name, elemType, rank: dims.length, ...(dims[1] !== undefined ? { width: dims[1] } : {}) };
}

/** TensorProto: name = 8. */
function readTensorName(bytes: Uint8Array): string {
  let name = '';
  eachField(bytes, (field, wire, r) => (field === 8 && wire === LEN ? ((name = r.string()), true) : false));
  return name;
}
