/**
 * Where a process's CPU went, by part, from a V8 .cpuprofile (`node --cpu-prof`): every sample is charged to the
 * part that owns it, the innermost frame of the stack that belongs to a library or a folder of Sibyl's (a sample in
 * Node's own streams, timers or HTTP/2 code is charged to the code that called it: a `stream.write` of grpc-js is
 * grpc-js's time). Stacks made of Node's code only (a socket read before any handler runs) are "node: <module>";
 * V8's pseudo-frames are their own parts: "(garbage collector)", "(program)" (native work outside any JS frame).
 * Only samples inside the given windows (monotonic clock, µs, as `process.hrtime.bigint() / 1000n`, which is the
 * profile's own clock) are counted; "(idle)" never is.
 */
import { readFileSync } from 'node:fs';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}
interface Profile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

/** [url pattern, part]: the first match names a frame's part. Frames that match none are Node's own or unknown. */
const PARTS: readonly [RegExp, string][] = [
  [/node_modules\/@grpc\/grpc-js\//, 'grpc-js'],
  [/node_modules\/@grpc\//, 'grpc-js (health, reflection)'],
  [/node_modules\/grpc-health-check\//, 'grpc-js (health, reflection)'],
  [/node_modules\/@bufbuild\/protobuf\/|\/proto\/gen\//, 'protobuf-es (decode, encode, create)'],
  [/\/gateway\/transport\//, 'doors (gateway/transport)'],
  [/\/gateway\/pipeline\/admission/, 'admission'],
  [/\/gateway\/pipeline\/record|\/gateway\/log\/|node_modules\/@platformatic\/kafka|node_modules\/kafkajs/, 'prediction log (record, sink, Kafka client)'],
  [/\/gateway\/pipeline\//, 'pipeline (entry)'],
  [/\/gateway\/telemetry\/|node_modules\/@opentelemetry\//, 'telemetry (span, metrics)'],
  [/\/gateway\/features\/|node_modules\/ioredis\/|node_modules\/@ioredis\/|node_modules\/redis-parser\//, 'feature store (Redis client)'],
  [/\/execution\//, 'execution (execute, feature plan)'],
  [/\/runtimes\/|node_modules\/onnxruntime/, 'runtime (ONNX)'],
  [/\/gateway\/stats\/|\/stats\/|node_modules\/@datadog\//, 'serving statistics'],
  [/\/gateway\/shadow\//, 'shadows'],
  [/\/gateway\/routing\//, 'routing'],
  [/\/core\//, 'core'],
  [/node_modules\/pino/, 'logger'],
  [/\/loadtest\//, 'load-test code (the echo handler)'],
  [/\/gateway\//, 'gateway (other)'],
  [/node_modules\//, 'other libraries'],
];

/** Parts that are libraries used by several of Sibyl's parts: their time is labelled with the caller's part. */
const LIBRARY_PARTS = new Set(['grpc-js', 'protobuf-es (decode, encode, create)', 'other libraries']);

function partOfUrl(url: string): string | undefined {
  if (!url) return undefined;
  for (const [re, part] of PARTS) if (re.test(url)) return part;
  return undefined;
}

/** Node's own module of a frame ("http2", "streams", "timers"...), for stacks that hold no library frame. */
function nodeModuleOf(url: string): string | undefined {
  const m = /^node:(?:internal\/)?([a-z_0-9]+)/.exec(url);
  return m ? m[1] : undefined;
}

export interface Breakdown {
  /** Non-idle samples counted. */
  readonly samples: number;
  /** Sampled time in the windows that was not idle, ms. */
  readonly busyMs: number;
  /** part → share of the non-idle samples, 0-1, largest first. */
  readonly parts: readonly { part: string; share: number }[];
  /** function (with file and line) → share of the non-idle samples (self time), largest first. */
  readonly top: readonly { fn: string; share: number }[];
}

export function breakdown(file: string, windows: readonly { startUs: number; endUs: number }[], topN = 30): Breakdown {
  const p = JSON.parse(readFileSync(file, 'utf8')) as Profile;
  const byId = new Map<number, ProfileNode>();
  const parent = new Map<number, number>();
  for (const n of p.nodes) {
    byId.set(n.id, n);
    for (const c of n.children ?? []) parent.set(c, n.id);
  }
  const owner = new Map<number, string>();
  const ownerOf = (id: number): string => {
    const cached = owner.get(id);
    if (cached !== undefined) return cached;
    const leaf = byId.get(id)!.callFrame;
    let part: string | undefined;
    if (leaf.functionName === '(garbage collector)' || leaf.functionName === '(program)' || leaf.functionName === '(idle)') part = leaf.functionName;
    let nodePart: string | undefined;
    let cur: number | undefined = id;
    for (; part === undefined && cur !== undefined; cur = parent.get(cur)) {
      const f = byId.get(cur)!.callFrame;
      part = partOfUrl(f.url);
      nodePart ??= nodeModuleOf(f.url);
    }
    // A library's time on behalf of Sibyl's code names the part that called it (protobuf-es ← doors is the doors'
    // decoding; grpc-js ← doors is the answer the door hands back: serialization, headers, data and trailers).
    if (part !== undefined && LIBRARY_PARTS.has(part)) {
      for (let up: number | undefined = cur; up !== undefined; up = parent.get(up)) {
        const f = byId.get(up)!.callFrame;
        if (f.url.includes('/node_modules/')) continue;
        const caller = partOfUrl(f.url);
        if (caller !== undefined && !LIBRARY_PARTS.has(caller)) {
          part = `${part} ← ${caller}`;
          break;
        }
      }
    }
    part ??= nodePart !== undefined ? `node: ${nodePart}` : `(${leaf.functionName || 'anonymous'})`;
    owner.set(id, part);
    return part;
  };
  const label = (id: number): string => {
    const f = byId.get(id)!.callFrame;
    const where = f.url ? ` ${f.url.replace(/^file:\/\/.*?\/(node_modules|gateway|runtimes|proto|execution|core|loadtest)\//, '$1/')}:${f.lineNumber + 1}` : '';
    return `${f.functionName || '(anonymous)'}${where}`;
  };

  const parts = new Map<string, number>();
  const self = new Map<string, number>();
  let samples = 0;
  let busyUs = 0;
  let t = p.startTime;
  for (let i = 0; i < p.samples.length; i++) {
    const dt = p.timeDeltas[i] ?? 0;
    t += dt;
    if (!windows.some((w) => t >= w.startUs && t < w.endUs)) continue;
    const id = p.samples[i]!;
    const part = ownerOf(id);
    if (part === '(idle)') continue;
    samples++;
    busyUs += dt;
    parts.set(part, (parts.get(part) ?? 0) + 1);
    const fn = label(id);
    self.set(fn, (self.get(fn) ?? 0) + 1);
  }
  const share = (m: Map<string, number>, n: number) =>
    [...m.entries()]
      .sort((a, b) => b[1] - a[1])
      .slice(0, n)
      .map(([k, v]) => ({ k, share: v / (samples || 1) }));
  return {
    samples,
    busyMs: Math.round(busyUs / 1000),
    parts: share(parts, Infinity).map(({ k, share }) => ({ part: k, share })),
    top: share(self, topN).map(({ k, share }) => ({ fn: k, share })),
  };
}

if (import.meta.main) {
  // node loadtest/lib/profile-breakdown.ts <file.cpuprofile> [topN]: the whole profile, by part and by function.
  const b = breakdown(process.argv[2]!, [{ startUs: 0, endUs: Infinity }], Number(process.argv[3] ?? 30));
  process.stdout.write(`${b.samples} samples, ${b.busyMs} ms busy\n`);
  for (const p of b.parts) process.stdout.write(`${(p.share * 100).toFixed(1).padStart(5)}%  ${p.part}\n`);
  process.stdout.write('\n');
  for (const t of b.top) process.stdout.write(`${(t.share * 100).toFixed(1).padStart(5)}%  ${t.fn}\n`);
}
