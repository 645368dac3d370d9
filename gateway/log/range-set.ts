/**
 * A set of line numbers kept as sorted, disjoint, merged half-open ranges [lo, hi): the lines of a write-ahead
 * log segment that Kafka acknowledged. Acknowledgements arrive mostly in order, so a set is usually one range and
 * `add` at the end is O(1); out-of-order batches leave a few gaps until they are filled.
 */
export class RangeSet {
  /** Flat [lo0, hi0, lo1, hi1, ...], sorted, with hi(k) < lo(k+1). */
  #r: number[] = [];
  #covered = 0;

  /** How many numbers the set holds. */
  get covered(): number {
    return this.#covered;
  }

  /** Adds [lo, hi); returns how many of those numbers were not in the set yet. */
  add(lo: number, hi: number): number {
    if (hi <= lo) return 0;
    const r = this.#r;
    const n = r.length;
    // Fast path: at or after the end of the last range.
    if (n === 0 || lo > r[n - 1]!) {
      r.push(lo, hi);
      this.#covered += hi - lo;
      return hi - lo;
    }
    if (lo === r[n - 1]!) {
      r[n - 1] = hi;
      this.#covered += hi - lo;
      return hi - lo;
    }
    // General case: merge every range that touches [lo, hi).
    let i = 0;
    while (i < n && r[i + 1]! < lo) i += 2;
    let j = i;
    let newLo = lo;
    let newHi = hi;
    let before = 0;
    while (j < n && r[j]! <= hi) {
      newLo = Math.min(newLo, r[j]!);
      newHi = Math.max(newHi, r[j + 1]!);
      before += r[j + 1]! - r[j]!;
      j += 2;
    }
    r.splice(i, j - i, newLo, newHi);
    const added = newHi - newLo - before;
    this.#covered += added;
    return added;
  }

  has(x: number): boolean {
    const r = this.#r;
    // Binary search over the ranges for the last one starting at or before x.
    let lo = 0;
    let hi = r.length / 2 - 1;
    let found = -1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      if (r[mid * 2]! <= x) {
        found = mid;
        lo = mid + 1;
      } else hi = mid - 1;
    }
    return found >= 0 && x < r[found * 2 + 1]!;
  }

  /** How many numbers in [0, end) the set holds. */
  coveredBelow(end: number): number {
    const r = this.#r;
    let c = 0;
    for (let i = 0; i < r.length && r[i]! < end; i += 2) c += Math.min(r[i + 1]!, end) - r[i]!;
    return c;
  }

  /** The ranges, in order. */
  *ranges(): Generator<[number, number]> {
    for (let i = 0; i < this.#r.length; i += 2) yield [this.#r[i]!, this.#r[i + 1]!];
  }

  /** The ranges as `lo hi` lines (the acks file format). */
  toLines(): string {
    let s = '';
    for (let i = 0; i < this.#r.length; i += 2) s += `${this.#r[i]} ${this.#r[i + 1]}\n`;
    return s;
  }

  /** Reads `lo hi` lines; malformed lines (a torn last write) are skipped. */
  static fromLines(text: string): RangeSet {
    const set = new RangeSet();
    for (const line of text.split('\n')) {
      const m = /^(\d+) (\d+)$/.exec(line);
      if (m) set.add(Number(m[1]), Number(m[2]));
    }
    return set;
  }
}
