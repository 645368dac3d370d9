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

export interface Profile {
  readonly nodes: readonly ProfileNode[];
  readonly startTime: number;
  readonly endTime: number;
  readonly samples?: readonly number[];
}

export function topSelfTime(file: string, limit = 25): { totalMs: number; top: SelfTime[] } {
  return topSelfTimeOf(JSON.parse(readFileSync(file, 'utf8')) as Profile, limit);
}

/** The same for a profile in hand (the inspector's `Profiler.stop`); `busyOnly`: shares of the samples not idle. */
export function topSelfTimeOf(p: Profile, limit = 25, busyOnly = false): { totalMs: number; top: SelfTime[] } {
  const idle = busyOnly ? p.nodes.reduce((n, node) => n + (node.callFrame.functionName === '(idle)' ? (node.hitCount ?? 0) : 0), 0) : 0;
  const totalSamples = (p.samples?.length ?? 0) - idle || 1;
  const totalMs = (p.endTime - p.startTime) / 1000;
  const msPerSample = totalMs / (p.samples?.length || 1);
  const by = new Map<string, number>();
  for (const n of p.nodes) {
    const f = n.callFrame;
    if (busyOnly && f.functionName === '(idle)') continue;
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
