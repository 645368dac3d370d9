/** Summarises a V8 .cpuprofile (from `node --cpu-prof`): the functions with the most self time. */
import { readFileSync } from 'node:fs';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
}

export interface SelfTime {
  readonly fn: string;
  /** Share of all samples, 0-1. */
  readonly share: number;
  readonly ms: number;
}

export function topSelfTime(file: string, limit = 25): { totalMs: number; top: SelfTime[] } {
  const p = JSON.parse(readFileSync(file, 'utf8')) as { nodes: ProfileNode[]; startTime: number; endTime: number; samples: number[] };
  const totalSamples = p.samples.length || 1;
  const totalMs = (p.endTime - p.startTime) / 1000;
  const msPerSample = totalMs / totalSamples;
  const by = new Map<string, number>();
  for (const n of p.nodes) {
    const f = n.callFrame;
    const where = f.url ? `${f.url.replace(/^file:\/\/.*?\/(node_modules|gateway|runtimes|proto)\//, '$1/')}:${f.lineNumber + 1}` : '';
    const key = `${f.functionName || '(anonymous)'} ${where}`.trim();
    by.set(key, (by.get(key) ?? 0) + (n.hitCount ?? 0));
  }
  const top = [...by.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, limit)
    .map(([fn, hits]) => ({ fn, share: Math.round((hits / totalSamples) * 1000) / 1000, ms: Math.round(hits * msPerSample) }));
  return { totalMs: Math.round(totalMs), top };
}

if (import.meta.main) {
  const r = topSelfTime(process.argv[2]!, Number(process.argv[3] ?? 25));
  for (const t of r.top) process.stdout.write(`${(t.share * 100).toFixed(1).padStart(5)}%  ${String(t.ms).padStart(6)} ms  ${t.fn}\n`);
}
