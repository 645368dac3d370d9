/** A small deterministic random generator for tests, so that a failure names an input that can be made again. */
export function seeded(seed: number): { rand: () => number; pick: <T>(xs: readonly T[]) => T } {
  const rand = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
  const pick = <T,>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)]!;
  return { rand, pick };
}
