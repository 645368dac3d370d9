/**
 * A traffic split among versions of a model's live route: weighted arms, sticky by a key the request names.
 *
 * The same (model, key) always lands in the same arm, in every replica and every cell, for as long as the weights
 * stay the same: the arm comes from a hash of the model name and the key, never from state. Moving weight from one
 * arm to the next moves only the keys in between (arms are laid out on [0, 1) in order). A request without a key
 * gets a uniformly random arm.
 */
export interface SplitArm {
  /** The name the response and the log carry (`arm`); defaults to the version. */
  readonly arm: string;
  /** A version (not an alias) of the model. */
  readonly version: string;
  /** Relative weight, >= 0; the weights of a split sum to more than 0. */
  readonly weight: number;
}

export class TrafficSplit {
  readonly arms: readonly SplitArm[];
  /** Upper bound of each arm on [0, 1). */
  readonly #bounds: Float64Array;

  /** Throws Error (a configuration problem, caught where the split is built) for an unusable list of arms. */
  constructor(arms: readonly SplitArm[]) {
    if (arms.length === 0) throw new Error('a traffic split needs at least one arm');
    const names = new Set<string>();
    let total = 0;
    for (const a of arms) {
      if (!Number.isFinite(a.weight) || a.weight < 0) throw new Error(`split arm ${a.arm}: weight must be a finite number >= 0`);
      if (names.has(a.arm)) throw new Error(`split arm ${a.arm} appears twice`);
      names.add(a.arm);
      total += a.weight;
    }
    if (total <= 0) throw new Error('the weights of a traffic split must sum to more than 0');
    this.arms = arms;
    this.#bounds = new Float64Array(arms.length);
    let acc = 0;
    arms.forEach((a, i) => {
      acc += a.weight / total;
      this.#bounds[i] = acc;
    });
    this.#bounds[arms.length - 1] = 1;
  }

  /** The arm for a request: sticky by `key` when it is not empty, else random. */
  pick(model: string, key: string): SplitArm {
    return this.arms[this.pickIndex(model, key)]!;
  }

  /** Index in `arms` of `pick`'s arm. */
  pickIndex(model: string, key: string): number {
    return this.indexAt(key === '' ? Math.random() : stickyPoint(model, key));
  }

  /** Index of the arm covering `point` in [0, 1). */
  indexAt(point: number): number {
    const b = this.#bounds;
    for (let i = 0; i < b.length - 1; i++) if (point < b[i]!) return i;
    return b.length - 1;
  }
}

/**
 * A point in [0, 1) from (model, key): 32-bit FNV-1a over the UTF-16 code units of `model`, a separator and `key`,
 * finished with MurmurHash3's fmix32 so that keys differing in their last characters spread over the whole range.
 */
export function stickyPoint(model: string, key: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < model.length; i++) h = Math.imul(h ^ model.charCodeAt(i), 0x01000193);
  h = Math.imul(h ^ 0, 0x01000193);
  for (let i = 0; i < key.length; i++) h = Math.imul(h ^ key.charCodeAt(i), 0x01000193);
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return (h >>> 0) / 4294967296;
}
