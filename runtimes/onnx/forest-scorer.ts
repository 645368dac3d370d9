/**
 * A compiled forest's rows scored by their false nodes (the QuickScorer algorithm), in WebAssembly
 * (forest-scorer.wat). A tree's leaves are numbered left to right, the true branch being the left; every branch node
 * carries a mask that clears the leaves of its true subtree. For a row, per feature, the nodes are visited in
 * ascending order of threshold while the row's value is above the threshold: those nodes' tests (value <= threshold)
 * are false, and their masks are ANDed into their tree's bit set. A tree's exit leaf is then the leftmost leaf left
 * (the lowest bit set): the one a walk from the root reaches. So a row reads the ensemble's nodes in runs of
 * consecutive memory, with no chain of dependent loads (runtimes/onnx/README.md, "Compiled tree ensembles", has the
 * measurements).
 *
 * Only for forests whose every branch is BRANCH_LEQ (forest.ts checks; it compiles BRANCH_LT as BRANCH_LEQ) and whose trees have at most 64 leaves (one
 * i64 per tree). A row with a NaN is not scored here (the scorer answers NaN, and forest.ts walks that row), since
 * a NaN's branch depends on each node's missing-value flag.
 */
import { FOREST_SCORER_WASM } from './forest-scorer.wasm.ts';

/** A branch node as the scorer sees it. */
export interface ScoredNode {
  readonly feature: number;
  readonly threshold: number;
  readonly tree: number;
  /** The leaves of its true subtree: from `firstLeaf` (numbered from the tree's leftmost, 0) to before `endLeaf`. */
  readonly firstLeaf: number;
  readonly endLeaf: number;
}

/** One row's score (the sum of its leaves' weights, tree by tree in float32), or NaN when the row holds a NaN. */
export type RowScorer = (x: Float32Array, off: number) => number;

/** The most leaves a tree may have: one i64 bit set per tree. */
export const MAX_SCORED_LEAVES = 64;

/** The parts of the WebAssembly API used here (the project's TypeScript libraries do not declare it). */
interface Wasm {
  readonly Module: new (bytes: Uint8Array) => object;
  readonly Instance: new (module: object, imports: object) => { readonly exports: Record<string, unknown> };
}
interface WasmMemory {
  readonly buffer: ArrayBuffer;
  grow(pages: number): number;
}
type Score = (width: number, trees: number, bits: number, start: number, leafBase: number) => number;

const PAGE = 65536;
let compiled: object | undefined;

/**
 * The scorer of a forest of `width` features whose trees' leaf weights are `leaves` (per tree, left to right), or
 * undefined when a tree has more than MAX_SCORED_LEAVES leaves. Each scorer has its own module instance and memory.
 */
export function falseNodeScorer(width: number, leaves: readonly Float32Array[], nodes: readonly ScoredNode[]): RowScorer | undefined {
  if (leaves.some((l) => l.length > MAX_SCORED_LEAVES || l.length === 0)) return undefined;
  // A NaN threshold has no place in the ascending order (and no value is above it).
  if (nodes.some((node) => node.threshold !== node.threshold)) return undefined;
  const trees = leaves.length;
  const sorted = [...nodes].sort((a, b) => a.feature - b.feature || a.threshold - b.threshold);
  const align = (at: number): number => (at + 15) & ~15;
  const bits = align(width * 4);
  const start = align(bits + trees * 8);
  const leafBase = align(start + (width + 1) * 4);
  const weights = align(leafBase + trees * 4);
  const leafCount = leaves.reduce((k, l) => k + l.length, 0);
  const first = align(weights + leafCount * 4);
  const end = first + sorted.length * 16;

  const wasm = (globalThis as unknown as { WebAssembly: Wasm }).WebAssembly;
  compiled ??= new wasm.Module(Buffer.from(FOREST_SCORER_WASM, 'base64'));
  const instance = new wasm.Instance(compiled, {});
  const memory = instance.exports['memory'] as WasmMemory;
  const pages = Math.ceil(end / PAGE) - memory.buffer.byteLength / PAGE;
  if (pages > 0) memory.grow(pages);
  const view = new DataView(memory.buffer);
  let at = weights;
  for (let t = 0; t < trees; t++) {
    view.setInt32(leafBase + t * 4, at, true);
    for (const w of leaves[t]!) {
      view.setFloat32(at, w, true);
      at += 4;
    }
  }
  let k = 0;
  for (let f = 0; f < width; f++) {
    view.setInt32(start + f * 4, first + k * 16, true);
    for (; k < sorted.length && sorted[k]!.feature === f; k++) {
      const node = sorted[k]!;
      const a = first + k * 16;
      view.setFloat32(a, node.threshold, true);
      view.setInt32(a + 4, bits + node.tree * 8, true);
      view.setBigUint64(a + 8, ~(((1n << BigInt(node.endLeaf - node.firstLeaf)) - 1n) << BigInt(node.firstLeaf)) & 0xffff_ffff_ffff_ffffn, true);
    }
  }
  view.setInt32(start + width * 4, first + k * 16, true);
  if (k !== sorted.length) throw new Error(`a node's feature is outside the forest's ${width}`);

  const row = new Float32Array(memory.buffer, 0, width);
  const score = instance.exports['score'] as Score;
  return (x, off) => {
    for (let f = 0; f < width; f++) {
      const v = x[off + f]!;
      if (v !== v) return NaN;
      row[f] = v;
    }
    return score(width, trees, bits, start, leafBase);
  };
}
