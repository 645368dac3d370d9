/**
 * The loop of the micro-benchmarks that time named cases against each other: every round runs each case `n` times
 * in turn (so a drift of the machine's speed reaches every case alike), timed by the process's CPU
 * (process.cpuUsage); prints each case's median µs per call over the rounds, with the range.
 */
export function runCases(cases: Record<string, (i: number) => void>, n: number, rounds: number): void {
  const samples = new Map<string, number[]>();
  for (let r = 0; r < rounds; r++) {
    for (const [name, fn] of Object.entries(cases)) {
      const c0 = process.cpuUsage();
      for (let i = 0; i < n; i++) fn(i);
      const c = process.cpuUsage(c0);
      samples.set(name, [...(samples.get(name) ?? []), (c.user + c.system) / n]);
    }
  }
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1]!;
  for (const [name, xs] of samples) console.log(`${median(xs).toFixed(2).padStart(7)} µs  (${Math.min(...xs).toFixed(2)}-${Math.max(...xs).toFixed(2)})  ${name}`);
}
