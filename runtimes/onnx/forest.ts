/**
 * A tree ensemble (a regressor, or a binary classifier: `classify`) compiled to flat typed arrays and walked in
 * JavaScript, for the models onnxruntime spends most of a small run on: a gradient-boosted ensemble's nodes are
 * scattered through onnxruntime's memory, and on a gateway whose other work keeps evicting them each one-row run pays
 * a cache miss per node visited (measured in runtimes/onnx/README.md, "Compiled tree ensembles"). Here a tree's
 * nodes lie in depth-first order, 12 bytes each, the true child next to its parent, so a walk reads mostly
 * consecutive memory. A forest whose every branch is BRANCH_LEQ or BRANCH_LT (compiled as BRANCH_LEQ on the float32
 * below its threshold) and whose trees have at most 64 leaves (LightGBM's, scikit-learn's and XGBoost's usual
 * exports) is not walked at all: its rows are scored by their false nodes in WebAssembly (forest-scorer.ts), reading
 * the nodes in runs of consecutive memory with no chain of dependent loads; a row holding a NaN is still walked.
 *
 *   const c = compileForest(ensemble);           // { forest } | { unsupported: why }
 *   const out = c.forest.predict(matrix, rows);  // Float32Array, one value per row
 *
 * It computes what onnxruntime's TreeEnsembleRegressor computes with one thread, to the bit: per row, each tree's
 * leaf weight added in float32, in the order the trees first appear in the node attributes, then the base value;
 * the comparisons in float32 (inputs and thresholds are float32 values, compared exactly), a NaN taking the true
 * branch where `nodes_missing_value_tracks_true` says so. Not compiled (the model runs on onnxruntime): a regressor
 * with several targets, an aggregate other than SUM or a post-transform; a classifier other than the binary ones
 * `classify` serves; a leaf without exactly one weight. The runtime still checks
 * every compiled forest against onnxruntime on `probeRows` (three per branch node, on and around its threshold)
 * before serving with it (onnx-runtime.ts `forestDifferences`), and keeps onnxruntime for a model where one value
 * differs.
 */
import { falseNodeScorer, MAX_SCORED_LEAVES, type RowScorer, type ScoredNode } from './forest-scorer.ts';
import type { TreeEnsemble } from './tree-ensemble.ts';

export interface Forest {
  /** Features per row. */
  readonly width: number;
  readonly trees: number;
  readonly nodes: number;
  /** How rows are scored: by their false nodes (forest-scorer.ts; a row holding a NaN is walked), or walked. */
  readonly scoring: ForestScoring;
  /** A binary classifier's rule from score to label and probabilities (`classify`); undefined for a regressor. */
  readonly classes?: BinaryClasses;
  /** One score per row of `x` (row-major, `width` float32 values a row, `rows` rows): the trees' sum plus the base. */
  predict(x: Float32Array, rows: number): Float32Array;
}

/**
 * How a binary TreeEnsembleClassifier whose leaves all weigh class 0 (scikit-learn's gradient boosting, LightGBM's
 * and XGBoost's binary exports) turns a row's score into its label and its two probabilities, as onnxruntime does.
 */
export interface BinaryClasses {
  /** `classlabels_int64s`: the negative label, then the positive one. */
  readonly labels: readonly [number, number];
  /** Every leaf weight ≥ 0: the score is the positive class's probability, positive past 0.5. Else positive past 0. */
  readonly allPositive: boolean;
  /** `post_transform` LOGISTIC (else NONE). */
  readonly logistic: boolean;
}

export type ForestScoring = 'false-nodes' | 'walk';

export type ForestCompiled = { readonly forest: Forest } | { readonly unsupported: string };

const MODES = ['BRANCH_LEQ', 'BRANCH_LT', 'BRANCH_GTE', 'BRANCH_GT', 'BRANCH_EQ', 'BRANCH_NEQ'] as const;
const LEQ = 0;
const LT = 1;
/** A node's first word: -1 for a leaf, else feature | mode << 16 | missing-tracks-true << 20. */
const MODE_SHIFT = 16;
const MISSING_SHIFT = 20;
const MISSING_TRUE = 1 << MISSING_SHIFT;
const FEATURE_MASK = 0xffff;
/** Words per node: [meta, value (threshold, or a leaf's weight), the false child's word index]. */
const STRIDE = 3;

export function compileForest(e: TreeEnsemble): ForestCompiled {
  const classes = e.op === 'classifier' ? binaryClassesOf(e) : undefined;
  if (typeof classes === 'string') return { unsupported: classes };
  if (e.op === 'regressor') {
    if (e.nTargets !== 1) return { unsupported: `n_targets ${e.nTargets} (one target only)` };
    if (e.aggregate !== 'SUM') return { unsupported: `aggregate_function ${e.aggregate} (SUM only)` };
    if (e.postTransform !== 'NONE') return { unsupported: `post_transform ${e.postTransform} (NONE only)` };
  }
  if (e.baseValues.length > 1) return { unsupported: `${e.baseValues.length} base_values` };
  if (e.width < 1 || e.width > FEATURE_MASK) return { unsupported: `input width ${e.width}` };
  const n = e.nodeIds.length;
  const columns = [e.nodeTreeIds, e.featureIds, e.modes, e.values, e.trueIds, e.falseIds];
  if (n === 0 || columns.some((c) => c.length !== n) || (e.missingTracksTrue.length !== 0 && e.missingTracksTrue.length !== n)) return { unsupported: 'node attributes of different lengths' };
  const w = e.targetIds.length;
  if ([e.targetTreeIds, e.targetNodeIds, e.targetWeights].some((c) => c.length !== w)) return { unsupported: 'target attributes of different lengths' };

  const { at, roots, problem } = nodeIndex(e);
  if (problem) return { unsupported: problem };
  const weight = new Map<number, number>();
  for (let j = 0; j < w; j++) {
    const i = at.get(nodeKey(e.targetTreeIds[j]!, e.targetNodeIds[j]!));
    if (i === undefined) return { unsupported: `a weight for node ${e.targetNodeIds[j]} of tree ${e.targetTreeIds[j]}, which does not exist` };
    if (e.targetIds[j] !== 0) return { unsupported: `target id ${e.targetIds[j]}` };
    if (weight.has(i)) return { unsupported: 'a leaf with several weights' };
    weight.set(i, e.targetWeights[j]!);
  }

  // One node more than the ensemble has: a walk in lockstep reads a leaf's third word, the last leaf's too.
  const words = new ArrayBuffer((n + 1) * STRIDE * 4);
  const meta = new Int32Array(words);
  const value = new Float32Array(words);
  const rootWords = new Int32Array(roots.length);
  let uniform = true;
  let next = 0;
  for (let t = 0; t < roots.length; t++) {
    rootWords[t] = next * STRIDE;
    const tree = e.nodeTreeIds[roots[t]!]!;
    // Depth first, the true child first; a node's false-child word is filled in when that child is placed.
    const stack: { i: number; parentWord: number }[] = [{ i: roots[t]!, parentWord: -1 }];
    const placed = new Set<number>();
    while (stack.length) {
      const { i, parentWord } = stack.pop()!;
      if (placed.has(i)) return { unsupported: `tree ${tree} is not a tree (node ${e.nodeIds[i]} reached twice)` };
      placed.add(i);
      const word = next++ * STRIDE;
      if (parentWord >= 0) meta[parentWord + 2] = word;
      if (e.modes[i] === 'LEAF') {
        const v = weight.get(i);
        if (v === undefined) return { unsupported: `leaf ${e.nodeIds[i]} of tree ${tree} has no weight` };
        meta[word] = -1;
        value[word + 1] = v;
        continue;
      }
      const mode = MODES.indexOf(e.modes[i] as (typeof MODES)[number]);
      if (mode < 0) return { unsupported: `node mode ${e.modes[i]}` };
      const feature = e.featureIds[i]!;
      if (feature < 0 || feature >= e.width) return { unsupported: `feature id ${feature} outside the input's ${e.width}` };
      // For a float32 value x, x < t is x <= the float32 below t, and a NaN fails both: a BRANCH_LT node (XGBoost's
      // exports) is walked and scored as BRANCH_LEQ on the float32 below its threshold (not below -Infinity).
      const asLeq = mode === LEQ || (mode === LT && e.values[i] !== -Infinity);
      if (!asLeq) uniform = false;
      meta[word] = feature | ((asLeq ? LEQ : mode) << MODE_SHIFT) | (e.missingTracksTrue[i] ? MISSING_TRUE : 0);
      value[word + 1] = mode === LT && asLeq ? stepF32(e.values[i]!, -1) : e.values[i]!;
      const t1 = at.get(nodeKey(tree, e.trueIds[i]!));
      const f1 = at.get(nodeKey(tree, e.falseIds[i]!));
      if (t1 === undefined || f1 === undefined) return { unsupported: `node ${e.nodeIds[i]} of tree ${tree} names a child that does not exist` };
      // Popped first: the true child lands right after its parent, the false child after the true subtree.
      stack.push({ i: f1, parentWord: word }, { i: t1, parentWord: -1 });
    }
  }
  if (next !== n) return { unsupported: `${n - next} nodes no tree reaches` };
  const base = e.baseValues[0] ?? 0;
  const width = e.width;
  const walk = uniform ? walkLeq : walkAnyMode;
  /** `leaves4`'s answer: the four leaves' word indices. */
  const leaf = new Int32Array(4);
  /** `leaves8`'s answer. */
  const leaf8 = new Int32Array(8);
  const scorer = uniform ? scorerOf(meta, value, rootWords, n, width) : undefined;
  return {
    forest: {
      width: e.width,
      trees: roots.length,
      nodes: n,
      scoring: scorer !== undefined ? 'false-nodes' : 'walk',
      ...(classes ? { classes } : {}),
      predict(x, rows) {
        const out = new Float32Array(rows);
        const T = rootWords.length;
        // With a scorer, every row is scored by its false nodes (a row holding a NaN is walked below). Otherwise
        // several rows go tree by tree, every row through one tree while its nodes are in the cache: in fours, their
        // walks in lockstep, when the forest is uniform (`leaves4`). Each row's sum still adds the trees in order, and a
        // Float32Array rounds every addition to float32 (a double sum of two float32 values rounded once to float32
        // is their float32 sum).
        const grouped = scorer !== undefined ? 0 : !uniform ? (rows > 1 ? rows : 0) : rows - (rows % 4);
        if (grouped > 0) {
          for (let t = 0; t < T; t++) {
            const root = rootWords[t]!;
            if (!uniform) {
              for (let r = 0, off = 0; r < grouped; r++, off += width) out[r] = out[r]! + value[walk(meta, value, root, x, off) + 1]!;
              continue;
            }
            for (let r = 0; r < grouped; r += 4) {
              const off = r * width;
              leaves4(meta, value, x, root, root, root, root, off, off + width, off + 2 * width, off + 3 * width, leaf);
              out[r] = out[r]! + value[leaf[0]! + 1]!;
              out[r + 1] = out[r + 1]! + value[leaf[1]! + 1]!;
              out[r + 2] = out[r + 2]! + value[leaf[2]! + 1]!;
              out[r + 3] = out[r + 3]! + value[leaf[3]! + 1]!;
            }
          }
        }
        // The rows left (a run of one to three rows is all of them) one at a time: by the scorer, else walked eight
        // trees at a time when uniform (`leaves8`), then four.
        for (let r = grouped, off = grouped * width; r < rows; r++, off += width) {
          if (scorer !== undefined) {
            const v = scorer(x, off);
            if (v === v) {
              out[r] = v;
              continue;
            }
          }
          let score = 0;
          let t = 0;
          if (uniform) {
            for (; t + 8 <= T; t += 8) {
              leaves8(meta, value, x, rootWords, t, off, leaf8);
              for (let k = 0; k < 8; k++) score = Math.fround(score + value[leaf8[k]! + 1]!);
            }
            for (; t + 4 <= T; t += 4) {
              leaves4(meta, value, x, rootWords[t]!, rootWords[t + 1]!, rootWords[t + 2]!, rootWords[t + 3]!, off, off, off, off, leaf);
              score = Math.fround(score + value[leaf[0]! + 1]!);
              score = Math.fround(score + value[leaf[1]! + 1]!);
              score = Math.fround(score + value[leaf[2]! + 1]!);
              score = Math.fround(score + value[leaf[3]! + 1]!);
            }
          }
          for (; t < T; t++) score = Math.fround(score + value[walk(meta, value, rootWords[t]!, x, off) + 1]!);
          out[r] = score;
        }
        if (base !== 0) for (let r = 0; r < rows; r++) out[r] = out[r]! + base;
        return out;
      },
    },
  };
}

const nodeKey = (tree: number, id: number): string => `${tree}:${id}`;

/** A classifier's rule (`BinaryClasses`), or why it is not compiled. */
function binaryClassesOf(e: TreeEnsemble): BinaryClasses | string {
  if (e.classLabels.length !== 2) return `${e.classLabels.length} class labels (binary classifiers only)`;
  if (e.targetIds.some((id) => id !== 0)) return 'weights for class 1 (binary classifiers whose leaves weigh class 0 only)';
  if (e.postTransform !== 'NONE' && e.postTransform !== 'LOGISTIC') return `post_transform ${e.postTransform} (NONE or LOGISTIC only)`;
  return { labels: [e.classLabels[0]!, e.classLabels[1]!], allPositive: e.targetWeights.every((w) => w >= 0), logistic: e.postTransform === 'LOGISTIC' };
}

/**
 * A binary classifier's outputs from its scores (`Forest.predict`), as onnxruntime's TreeEnsembleClassifier writes
 * them: the label, and the two classes' probabilities per row (row-major). With every leaf weight ≥ 0 the score is
 * the positive class's probability: [1 - s, s], positive past 0.5 (the post-transform is not applied). Otherwise the
 * row is positive past 0: LOGISTIC gives [σ(-s), σ(s)], NONE [-s, s]. Every value is rounded to float32 as
 * onnxruntime computes it, σ included (`logistic`), whose e^x can be one float32 step off onnxruntime's.
 */
export function classify(c: BinaryClasses, scores: Float32Array, rows: number): { labels: BigInt64Array; probabilities: Float32Array } {
  const labels = new BigInt64Array(rows);
  const probabilities = new Float32Array(rows * 2);
  const negative = BigInt(c.labels[0]);
  const positive = BigInt(c.labels[1]);
  for (let r = 0; r < rows; r++) {
    const s = scores[r]!;
    const isPositive = c.allPositive ? s > 0.5 : s > 0;
    labels[r] = isPositive ? positive : negative;
    if (c.allPositive) {
      probabilities[2 * r] = 1 - s;
      probabilities[2 * r + 1] = s;
    } else if (c.logistic) {
      probabilities[2 * r] = logistic(-s);
      probabilities[2 * r + 1] = logistic(s);
    } else {
      probabilities[2 * r] = -s;
      probabilities[2 * r + 1] = s;
    }
  }
  return { labels, probabilities };
}

/**
 * The logistic function in float32 as onnxruntime's tree ensembles compute it: 1 / (1 + e^-|v|), taken from 1 for a
 * negative v, every step rounded to float32. e^x in double rounded once to float32 is float32's correctly rounded
 * e^x; the C library's expf, which onnxruntime calls, is not correctly rounded for about 6 arguments in 10,000, and
 * 1 / (1 + e^x) then differs by one float32 step for about 4 in 100,000 (runtimes/onnx/README.md, "Binary
 * classifiers"). The load-time check allows that step.
 */
function logistic(v: number): number {
  const e = Math.fround(Math.exp(-Math.abs(v)));
  const p = Math.fround(1 / Math.fround(1 + e));
  return v < 0 ? Math.fround(1 - p) : p;
}

/**
 * The false-node scorer (forest-scorer.ts) of a uniform forest, from its layout, or undefined when a tree has more
 * leaves than it takes. In word order a tree's leaves come left to right (depth first, the true child first), so a
 * branch node's true subtree holds the leaves between its own word and its false child's.
 */
function scorerOf(meta: Int32Array, value: Float32Array, rootWords: Int32Array, n: number, width: number): RowScorer | undefined {
  const T = rootWords.length;
  const leaves: Float32Array[] = [];
  const nodes: ScoredNode[] = [];
  /** Per node, the leaves of its tree before it. */
  const before = new Int32Array(n + 1);
  for (let t = 0; t < T; t++) {
    const first = rootWords[t]! / STRIDE;
    const last = t + 1 < T ? rootWords[t + 1]! / STRIDE : n;
    const weights: number[] = [];
    for (let i = first; i < last; i++) {
      before[i] = weights.length;
      if (meta[i * STRIDE]! < 0) weights.push(value[i * STRIDE + 1]!);
    }
    if (weights.length > MAX_SCORED_LEAVES) return undefined;
    leaves.push(Float32Array.from(weights));
    for (let i = first; i < last; i++) {
      const m = meta[i * STRIDE]!;
      if (m < 0) continue;
      nodes.push({ feature: m & FEATURE_MASK, threshold: value[i * STRIDE + 1]!, tree: t, firstLeaf: before[i]!, endLeaf: before[meta[i * STRIDE + 2]! / STRIDE]! });
    }
  }
  return falseNodeScorer(width, leaves, nodes);
}

/**
 * Where each node (`nodeKey(tree, id)`) sits in the attributes, and each tree's root: its first node, the trees in
 * the order they first appear (onnxruntime's order); `problem` when a node is declared twice or a tree's nodes are not
 * consecutive.
 */
function nodeIndex(e: TreeEnsemble): { at: Map<string, number>; roots: number[]; problem?: string } {
  const at = new Map<string, number>();
  const roots: number[] = [];
  const seenTrees = new Set<number>();
  let problem: string | undefined;
  for (let i = 0; i < e.nodeIds.length; i++) {
    const tree = e.nodeTreeIds[i]!;
    const k = nodeKey(tree, e.nodeIds[i]!);
    if (at.has(k)) problem ??= `node ${e.nodeIds[i]} of tree ${tree} declared twice`;
    at.set(k, i);
    if (i === 0 || e.nodeTreeIds[i - 1] !== tree) {
      if (seenTrees.has(tree)) problem ??= `tree ${tree}'s nodes are not consecutive`;
      seenTrees.add(tree);
      roots.push(i);
    }
  }
  return problem ? { at, roots, problem } : { at, roots };
}

/** The leaf's word index for a row at `off` of `x`, every node BRANCH_LEQ (the common export: LightGBM, scikit-learn). */
function walkLeq(meta: Int32Array, value: Float32Array, word: number, x: Float32Array, off: number): number {
  for (let m = meta[word]!; m >= 0; m = meta[word]!) {
    const v = x[off + (m & FEATURE_MASK)]!;
    if (v <= value[word + 1]! || (v !== v && (m & MISSING_TRUE) !== 0)) word += STRIDE;
    else word = meta[word + 2]!;
  }
  return word;
}

/**
 * Four walks of a uniform (BRANCH_LEQ) forest in lockstep: from words `a`..`d` for the rows at `oa`..`od` of `x`,
 * writing the four leaves' word indices to `leaf`. A walk is a chain of dependent loads, each step waiting for the
 * one before, with a branch at every node that depends on the row (hard to predict); four independent chains,
 * stepped without a branch (a walk that reached its leaf stays there), let the processor overlap them. Measured
 * (`loadtest/micro/forest.bench.ts --baseline`): runtimes/onnx/README.md, "Compiled tree ensembles".
 */
function leaves4(meta: Int32Array, value: Float32Array, x: Float32Array, a: number, b: number, c: number, d: number, oa: number, ob: number, oc: number, od: number, leaf: Int32Array): void {
  for (;;) {
    const ma = meta[a]!;
    const mb = meta[b]!;
    const mc = meta[c]!;
    const md = meta[d]!;
    // A leaf's first word is -1: all four are leaves when the AND of their words is negative.
    if ((ma & mb & mc & md) < 0) break;
    a = stepLeq(meta, value, x, a, ma, oa);
    b = stepLeq(meta, value, x, b, mb, ob);
    c = stepLeq(meta, value, x, c, mc, oc);
    d = stepLeq(meta, value, x, d, md, od);
  }
  leaf[0] = a;
  leaf[1] = b;
  leaf[2] = c;
  leaf[3] = d;
}

/**
 * Eight walks of one row (at `off`) in lockstep, through the trees rooted at `roots[t]`..`roots[t + 7]`, writing the
 * eight leaves' word indices to `leaf`: `leaves4` with twice the chains in flight, for a row that walks alone (a run of
 * one to three rows), whose nodes are mostly out of the cache, so that each step waits on memory.
 */
function leaves8(meta: Int32Array, value: Float32Array, x: Float32Array, roots: Int32Array, t: number, off: number, leaf: Int32Array): void {
  let a = roots[t]!;
  let b = roots[t + 1]!;
  let c = roots[t + 2]!;
  let d = roots[t + 3]!;
  let e = roots[t + 4]!;
  let f = roots[t + 5]!;
  let g = roots[t + 6]!;
  let h = roots[t + 7]!;
  for (;;) {
    const ma = meta[a]!;
    const mb = meta[b]!;
    const mc = meta[c]!;
    const md = meta[d]!;
    const me = meta[e]!;
    const mf = meta[f]!;
    const mg = meta[g]!;
    const mh = meta[h]!;
    if ((ma & mb & mc & md & me & mf & mg & mh) < 0) break;
    a = stepLeq(meta, value, x, a, ma, off);
    b = stepLeq(meta, value, x, b, mb, off);
    c = stepLeq(meta, value, x, c, mc, off);
    d = stepLeq(meta, value, x, d, md, off);
    e = stepLeq(meta, value, x, e, me, off);
    f = stepLeq(meta, value, x, f, mf, off);
    g = stepLeq(meta, value, x, g, mg, off);
    h = stepLeq(meta, value, x, h, mh, off);
  }
  leaf[0] = a;
  leaf[1] = b;
  leaf[2] = c;
  leaf[3] = d;
  leaf[4] = e;
  leaf[5] = f;
  leaf[6] = g;
  leaf[7] = h;
}

/**
 * One step of a `leaves4` walk without a branch: from `word` (its first word `m`) for the row at `off`, the true
 * child (the next node) when v <= threshold, or v is NaN and the node sends missing values there (as in walkLeq; a
 * comparison's boolean is taken as 0 or 1 by `|`), else the false child (the node's third word); at a leaf (`m` is
 * -1, its feature bits then reading column 0 harmlessly) `word` itself.
 */
function stepLeq(meta: Int32Array, value: Float32Array, x: Float32Array, word: number, m: number, off: number): number {
  const atLeaf = m >> 31;
  const v = x[off + (m & FEATURE_MASK & ~atLeaf)]!;
  const toTrue = ((v <= value[word + 1]!) as unknown as number) | (((v !== v) as unknown as number) & (m >> MISSING_SHIFT));
  const falseChild = meta[word + 2]!;
  return (word & atLeaf) | ((falseChild + ((word + STRIDE - falseChild) & -toTrue)) & ~atLeaf);
}

/** The same for an ensemble with other comparisons (XGBoost's exports use BRANCH_LT). */
function walkAnyMode(meta: Int32Array, value: Float32Array, word: number, x: Float32Array, off: number): number {
  for (let m = meta[word]!; m >= 0; m = meta[word]!) {
    const v = x[off + (m & FEATURE_MASK)]!;
    const th = value[word + 1]!;
    let go: boolean;
    switch ((m >> MODE_SHIFT) & 7) {
      case 0:
        go = v <= th;
        break;
      case 1:
        go = v < th;
        break;
      case 2:
        go = v >= th;
        break;
      case 3:
        go = v > th;
        break;
      case 4:
        go = v === th;
        break;
      default:
        go = v !== th;
    }
    if (go || (v !== v && (m & MISSING_TRUE) !== 0)) word += STRIDE;
    else word = meta[word + 2]!;
  }
  return word;
}

/**
 * Rows that probe a forest where a compiled copy can go wrong, built from the ONNX attributes (not from the compiled
 * layout they check): for every branch node, rows that follow the path to it (each feature kept within what the
 * comparisons above it allow) with the node's feature on its threshold, one float32 step past it, and NaN. So every
 * comparison, mode and missing-value rule is taken both ways on the rows that reach it. Three rows per branch node,
 * `width` float32 values each, row-major.
 */
export function probeRows(e: TreeEnsemble): Float32Array {
  const { at, roots } = nodeIndex(e);
  const branches = e.modes.reduce((k, m) => k + (m === 'LEAF' ? 0 : 1), 0);
  const x = new Float32Array(branches * 3 * e.width);
  let row = 0;
  const lo = new Float64Array(e.width).fill(-Infinity);
  const hi = new Float64Array(e.width).fill(Infinity);
  const emit = (f: number, v: number): void => {
    const off = row++ * e.width;
    for (let k = 0; k < e.width; k++) x[off + k] = lo[k] !== -Infinity ? lo[k]! : hi[k] !== Infinity ? hi[k]! : 0;
    x[off + f] = v;
  };
  // Depth first, each feature's interval narrowed on the way down: a visit applies its node's interval, and the
  // entry under it restores the parent's once the node's subtree is done.
  type Entry = { readonly visit: boolean; readonly i: number; readonly f: number; readonly lo: number; readonly hi: number };
  const stack: Entry[] = roots.map((i) => ({ visit: true, i, f: -1, lo: 0, hi: 0 }));
  while (stack.length) {
    const top = stack.pop()!;
    if (top.f >= 0) {
      lo[top.f] = top.lo;
      hi[top.f] = top.hi;
    }
    if (!top.visit || e.modes[top.i] === 'LEAF') continue;
    const i = top.i;
    const mode = e.modes[i]!;
    const f = e.featureIds[i]!;
    const th = e.values[i]!;
    if (f < 0 || f >= e.width) continue;
    emit(f, th);
    emit(f, mode === 'BRANCH_LT' || mode === 'BRANCH_GTE' ? stepF32(th, -1) : stepF32(th, 1));
    emit(f, NaN);
    const tree = e.nodeTreeIds[i]!;
    for (const [id, taken] of [[e.falseIds[i]!, false], [e.trueIds[i]!, true]] as const) {
      const child = at.get(nodeKey(tree, id));
      if (child === undefined) continue;
      const [l, h] = narrowed(mode, th, taken, lo[f]!, hi[f]!);
      stack.push({ visit: false, i: -1, f, lo: lo[f]!, hi: hi[f]! }, { visit: true, i: child, f, lo: l, hi: h });
    }
  }
  return x.subarray(0, row * e.width);
}

/**
 * The part of [lo, hi] whose values take a comparison's `taken` branch. "Not equal" keeps the side above the
 * threshold, or the side below when nothing is left above (an interval cannot leave out one point).
 */
function narrowed(mode: string, th: number, taken: boolean, lo: number, hi: number): [number, number] {
  const above: [number, number] = [Math.max(lo, stepF32(th, 1)), hi];
  const below: [number, number] = [lo, Math.min(hi, stepF32(th, -1))];
  switch (mode) {
    case 'BRANCH_LEQ':
      return taken ? [lo, Math.min(hi, th)] : above;
    case 'BRANCH_LT':
      return taken ? below : [Math.max(lo, th), hi];
    case 'BRANCH_GTE':
      return taken ? [Math.max(lo, th), hi] : below;
    case 'BRANCH_GT':
      return taken ? above : [lo, Math.min(hi, th)];
    default: {
      if (taken === (mode === 'BRANCH_EQ')) return [Math.max(lo, th), Math.min(hi, th)];
      return above[0] <= above[1] ? above : below;
    }
  }
}

const stepBuf = new Float32Array(2);
const stepBits = new Int32Array(stepBuf.buffer);
/** The next float32 after `v` towards +inf (`dir` 1) or -inf (-1). */
function stepF32(v: number, dir: 1 | -1): number {
  stepBuf[0] = v;
  if (stepBuf[0] === 0) return dir * 1.4e-45;
  stepBits[0]! += stepBuf[0]! > 0 === (dir > 0) ? 1 : -1;
  return stepBuf[0]!;
}

/** Two float32 values equal, or neighbours (one step apart, the same sign). */
export function withinOneFloat32Step(a: number | undefined, b: number | undefined): boolean {
  if (Object.is(a, b)) return true;
  if (a === undefined || b === undefined) return false;
  stepBuf[0] = a;
  stepBuf[1] = b;
  return stepBuf[0]! > 0 === stepBuf[1]! > 0 && Math.abs(stepBits[0]! - stepBits[1]!) === 1;
}
