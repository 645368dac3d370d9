/** The suite's report: its JSON shape and its Markdown rendering. */
import type { LatencySummary } from './histogram.ts';
import type { StepResult } from './loops.ts';
import type { Machine } from './machine.ts';
import { renderOverload, type OverloadResult } from './overload.ts';
import { renderPeers, type PeerSection } from '../peer/peer-report.ts';

export interface Measurement {
  readonly key: string;
  readonly server: string;
  readonly protocol: string;
  readonly mix: string;
  readonly mode: string;
  readonly tool: string;
  readonly steps: readonly StepResult[];
  /** CPU used by the server process during the run (generator process lifetime, warm-up included), cores. */
  readonly serverCpu?: number | undefined;
  readonly redisCpu?: number | undefined;
  /** Gateway counters that moved during the run (defaulted features, store failures, prediction-log counters). */
  readonly gatewayCounters?: Record<string, number> | undefined;
  /** The gateway's own p99, arrival to response (its sibyl_request_duration_seconds histogram), ms. */
  readonly gatewayP99Ms?: number | undefined;
}

export interface OrtResult {
  readonly model: string;
  readonly version: string;
  readonly runs: number;
  readonly throughput: number;
  readonly latency: LatencySummary;
  readonly cpu: number;
}

export interface Target {
  readonly target: string;
  readonly measured: string;
  readonly met: boolean;
}

export interface Report {
  machine: Machine;
  quick: boolean;
  settings: Record<string, number>;
  pinning: string;
  notes: string[];
  ort: OrtResult[];
  runs: Measurement[];
  ramp: OverloadResult | undefined;
  ratios?: { name: string; value: number }[];
  targets: Target[];
  profile: { file: string; totalMs: number; top: { fn: string; share: number; ms: number }[] } | undefined;
  /** The peers' comparison (loadtest/peer/), when any peer was selected. */
  peers?: PeerSection;
  durationS?: number;
}

const MIX: Record<string, string> = {
  'eta-store': 'delivery-eta, 7 request + 13 Redis features',
  'eta-inline': 'delivery-eta, 20 features inline',
  'mlp-tensor': 'tabular-mlp, FP32 [1,6]',
};

function codes(c: Readonly<Record<string, number>>): string {
  const bad = Object.entries(c).filter(([k]) => k !== '200' && k !== 'OK');
  return bad.length === 0 ? '0' : bad.map(([k, v]) => `${k}: ${v}`).join(', ');
}

export function renderMarkdown(r: Report): string {
  const m = r.machine;
  const out: string[] = [];
  out.push(`# Sibyl benchmark results${r.quick ? ' (quick run)' : ''}`, '');
  out.push(
    `Run ${m.date} at commit \`${m.commit}\`, ${r.durationS ?? '?'} s, \`npm run bench${r.quick ? ' -- --quick' : ''}\`.`,
    '',
    `**Machine**: ${m.cores} cores (${m.cpu}), ${m.memoryGb} GB, Linux ${m.kernel}, Node ${m.node}; load average at start ${m.loadAverageAtStart.join(' / ')}. ` +
      'The two cores are shared by the load generator, the server under test, Redis and Kafka (and by whatever else runs on the machine: ' +
      'compare numbers within one run, not across runs).',
    '',
    `**Pinning**: ${r.pinning}.`,
    '',
    `**Settings**: closed loop (max throughput) with ${r.settings['concurrency']} concurrent requests (HTTP: autocannon, one connection each; gRPC: this generator, the gRPC protocol on node:http2 (lib/h2-grpc-sender.ts), 4 connections), ` +
      `${r.settings['measuredS']} s measured after ${r.settings['warmupS']} s warm-up; open loop (constant arrival rate, latency from the scheduled send time) at the rate shown, ` +
      'same durations; open loops run on Go generators when they are installed, vegeta for HTTP and grpc-open (grpc-go) for gRPC; the Runs table names the tool and how late its pacer started requests (start lag p99, part of every latency). ' +
      '"gateway p99" is the gateway\'s own view, arrival of the request in its handler to the response, interpolated in its Prometheus histogram buckets (25 bounds from 10 µs to 2.5 s: 0.05-0.1 ms apart from 0.1 to 0.6 ms, then 0.75, 1, 1.5, 2, 2.5, 5 ms ...): ' +
      'the client p99 minus it is what the transport, the kernel and the generator added. Request mixes are drawn with a fixed seed from the seeded feature population.',
    '',
  );
  for (const n of r.notes) out.push(`- ${n}`);
  if (r.notes.length) out.push('');

  if (r.targets.length) {
    out.push('## Targets', '', '| target | measured | met |', '| --- | --- | --- |');
    for (const t of r.targets) out.push(`| ${t.target} | ${t.measured} | ${t.met ? 'yes' : '**no**'} |`);
    out.push('');
  }

  out.push('## Runs', '', '| run | server | protocol | request | load | ok/s | p50 ms | p90 ms | p99 ms | p99.9 ms | gateway p99 ms | errors | server CPU | generator CPU |', '| --- | --- | --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | --- | ---: | ---: |');
  for (const run of r.runs) {
    if (run.mode === 'ramp') continue;
    const s = run.steps[0]!;
    const lag = s.startLagP99Ms === undefined ? '' : `, ${run.tool.replace(/ \(open loop\)$/, '')}, start lag p99 ${s.startLagP99Ms} ms`;
    const load = run.mode === 'closed' ? `closed, ${run.tool}` : `open @ ${s.rate}/s${lag}`;
    const l = s.latency;
    out.push(`| ${run.key} | ${run.server} | ${run.protocol} | ${MIX[run.mix] ?? run.mix} | ${load} | ${s.throughput} | ${l.p50} | ${l.p90} | ${l.p99} | ${l.p999} | ${run.gatewayP99Ms ?? '-'} | ${codes(s.codes)} | ${run.serverCpu === undefined ? '-' : `${Math.round(run.serverCpu * 100)}%`} | ${Math.round(s.generatorCpu * 100)}% |`);
  }
  out.push('');
  const counters = r.runs.filter((x) => x.gatewayCounters && Object.keys(x.gatewayCounters).length > 0);
  if (counters.length) {
    out.push('Gateway counters that moved during each run (from its /metrics; defaulted features mean Redis answered late or not at all):', '');
    for (const x of counters) out.push(`- ${x.key}: ${Object.entries(x.gatewayCounters!).map(([k, v]) => `${k} ${v}`).join(', ')}`);
    out.push('');
  }
  if (r.ort.length) {
    out.push('## Model ceiling: raw `session.run` loop (one row, one run at a time, the gateway\'s session options, core 1)', '', '| model | runs/s | p50 ms | p99 ms | p99.9 ms |', '| --- | ---: | ---: | ---: | ---: |');
    for (const o of r.ort) out.push(`| ${o.model}/${o.version} | ${o.throughput} | ${o.latency.p50} | ${o.latency.p99} | ${o.latency.p999} |`);
    out.push('');
  }
  if (r.peers) out.push(...renderPeers(r.peers));
  if (r.ratios?.length) {
    out.push('## Ratios (max throughput, same run)', '', '| ratio | value |', '| --- | ---: |');
    for (const x of r.ratios) out.push(`| ${x.name} | ${x.value} |`);
    out.push('');
  }
  if (r.ramp) out.push(...renderOverload(r.ramp));
  if (r.profile) {
    out.push(`## Gateway CPU profile (self time, whole Kafka-on gateway run, ${r.profile.totalMs} ms)`, '', '| share | ms | function |', '| ---: | ---: | --- |');
    for (const t of r.profile.top) out.push(`| ${(t.share * 100).toFixed(1)}% | ${t.ms} | \`${t.fn}\` |`);
    out.push('');
  }
  return `${out.join('\n')}\n`;
}
