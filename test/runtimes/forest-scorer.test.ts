/**
 * The false-node scorer (runtimes/onnx/forest-scorer.ts): on random trees of 1 to 64 leaves it finds the leaf a walk
 * from the root finds, for every row, and sums the weights as a float32 walk does; it declines what it cannot score;
 * and its committed WebAssembly is what forest-scorer.wat assembles to.
 */
import { describe, expect, it } from 'vitest';
import { falseNodeScorer, MAX_SCORED_LEAVES, type ScoredNode } from '../../runtimes/onnx/forest-scorer.ts';
import { FOREST_SCORER_WASM } from '../../runtimes/onnx/forest-scorer.wasm.ts';
import { forestScorerWasm } from '../../scripts/forest-scorer-wasm.ts';
import { seeded } from '../helpers/seeded.ts';

type Tree = { readonly leaf: number } | { readonly feature: number; readonly threshold: number; readonly yes: Tree; readonly no: Tree };

const f32 = Math.fround;

/** A random tree of exactly `leaves` leaves; `chain` puts all but one leaf under the true branch at every level. */
function randomTree(random: () => number, leaves: number, width: number, chain = false): Tree {
  if (leaves === 1) return { leaf: f32(random() * 10 - 5) };
  const left = chain ? leaves - 1 : 1 + Math.floor(random() * (leaves - 1));
  // Thresholds from a small set, so that rows land on them exactly too.
  return { feature: Math.floor(random() * width), threshold: f32(Math.round(random() * 16 - 8) / 4), yes: randomTree(random, left, width, chain), no: randomTree(random, leaves - left, width, chain) };
}

/** The tree's leaves left to right and its branch nodes as the scorer takes them. */
function flatten(tree: Tree, t: number): { weights: number[]; nodes: ScoredNode[] } {
  const weights: number[] = [];
  const nodes: ScoredNode[] = [];
  const visit = (n: Tree): void => {
    if ('leaf' in n) {
      weights.push(n.leaf);
      return;
    }
    const firstLeaf = weights.length;
    visit(n.yes);
    nodes.push({ feature: n.feature, threshold: n.threshold, tree: t, firstLeaf, endLeaf: weights.length });
    visit(n.no);
  };
  visit(tree);
  return { weights, nodes };
}

function walk(tree: Tree, x: Float32Array, off: number): number {
  let n = tree;
  while (!('leaf' in n)) n = x[off + n.feature]! <= n.threshold ? n.yes : n.no;
  return n.leaf;
}

describe('false-node scorer', () => {
  it('finds the leaf a walk finds, and sums the trees in order in float32, on trees of 1 to 64 leaves', () => {
    const random = seeded(2024).rand;
    const width = 5;
    const trees: Tree[] = [randomTree(random, 64, width, true), randomTree(random, 1, width), randomTree(random, 2, width)];
    for (let i = 0; i < 60; i++) trees.push(randomTree(random, 1 + Math.floor(random() * MAX_SCORED_LEAVES), width));
    const flat = trees.map((t, i) => flatten(t, i));
    const scorer = falseNodeScorer(width, flat.map((f) => Float32Array.from(f.weights)), flat.flatMap((f) => f.nodes));
    expect(scorer).toBeDefined();
    const rows = 3000;
    const x = new Float32Array(rows * width).map(() => (random() < 0.3 ? Math.round(random() * 16 - 8) / 4 : random() * 6 - 3));
    let differ = 0;
    for (let r = 0; r < rows; r++) {
      let want = 0;
      for (const t of trees) want = f32(want + walk(t, x, r * width));
      if (!Object.is(scorer!(x, r * width), want)) differ++;
    }
    expect(differ).toBe(0);
  });

  it('answers NaN for a row holding a NaN (the forest walks it), and declines trees it cannot score', () => {
    const random = seeded(7).rand;
    const tree = flatten(randomTree(random, 8, 3), 0);
    const scorer = falseNodeScorer(3, [Float32Array.from(tree.weights)], tree.nodes)!;
    expect(scorer(new Float32Array([0.5, NaN, 1]), 0)).toBeNaN();
    expect(scorer(new Float32Array([0.5, 0, 1]), 0)).not.toBeNaN();
    const big = flatten(randomTree(random, MAX_SCORED_LEAVES + 1, 3), 0);
    expect(falseNodeScorer(3, [Float32Array.from(big.weights)], big.nodes)).toBeUndefined();
    const nanThreshold = tree.nodes.map((n, i) => (i === 0 ? { ...n, threshold: NaN } : n));
    expect(falseNodeScorer(3, [Float32Array.from(tree.weights)], nanThreshold)).toBeUndefined();
  });

  it('loads the module forest-scorer.wat assembles to (npm run gen:forest-scorer)', async () => {
    expect(FOREST_SCORER_WASM).toBe(Buffer.from(await forestScorerWasm()).toString('base64'));
  });
});
