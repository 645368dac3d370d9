/**
 * The peers' table of a suite report: per peer configuration and protocol, max throughput, p50/p99 at half of that
 * peer's max, server CPU per request (the server's whole process tree's CPU over the max run / its ok per s), and
 * Sibyl's max on the same requests (the suite's "P sibyl" runs) over the peer's, with Sibyl's prediction log on and
 * off. Also which peers were skipped and why, and each venv's install step.
 */
import type { Measurement } from '../lib/report.ts';
import type { OipProtocol } from './agreement.ts';
import type { PeerResults } from './peers.ts';

export interface PeerRow {
  readonly server: string;
  readonly protocol: string;
  /** 'off', 'on', or how the server shares runs between requests. */
  readonly batching: string;
  readonly maxOkPerS: number;
  /** Errors of the max run, code → count (200/OK left out). */
  readonly maxErrors: Readonly<Record<string, number>>;
  readonly openRate: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  /** Server CPU (µs) per successful request at max; undefined when the CPU could not be sampled. */
  readonly cpuUsPerRequest: number | undefined;
  /** The server's CPU with no load (its process tree, before the runs), cores. */
  readonly idleCores: number | undefined;
  /** Sibyl's max / this max, same protocol and requests; Sibyl's prediction log to Kafka on, and off. */
  readonly sibylLogOn: number | undefined;
  readonly sibylLogOff: number | undefined;
}

export interface PeerSection {
  readonly rows: PeerRow[];
  /** Sibyl itself on the same requests, for reference (open loop at the rate the suite gave it). */
  readonly sibyl: PeerRow[];
  readonly skipped: { peer: string; why: string }[];
  readonly installS: Readonly<Record<string, number>>;
  readonly batching: Readonly<Record<string, string>>;
  readonly agreement: string[];
}

function cpuUs(m: Measurement | undefined, okPerS: number): number | undefined {
  return m?.serverCpu === undefined || okPerS <= 0 ? undefined : Math.round((m.serverCpu / okPerS) * 1e6);
}

function errors(codes: Readonly<Record<string, number>>): Record<string, number> {
  return Object.fromEntries(Object.entries(codes).filter(([k]) => k !== '200' && k !== 'OK'));
}

/** Builds the section from the peers' results and the suite's measurements (which hold CPU and Sibyl's runs). */
export function peerSection(results: PeerResults, runs: readonly Measurement[]): PeerSection {
  const byKey = new Map(runs.map((m) => [m.key, m]));
  const sibylMax = (protocol: OipProtocol, log: 'kafka' | 'log-off') => byKey.get(`P sibyl ${protocol}/eta-inline/${log}/max`);
  const sibylOpen = (protocol: OipProtocol, log: 'kafka' | 'log-off') => runs.find((m) => m.key.startsWith(`P sibyl ${protocol}/eta-inline/${log}/open@`));
  const ratio = (s: Measurement | undefined, peer: number) => (s && peer > 0 ? Math.round((s.steps[0]!.throughput / peer) * 100) / 100 : undefined);
  const rows = results.runs.map((r): PeerRow => ({
    server: r.label,
    protocol: r.protocol,
    batching: r.batching ? 'on' : 'off',
    maxOkPerS: r.max.throughput,
    maxErrors: errors(r.max.codes),
    openRate: r.open.rate,
    p50Ms: r.open.latency.p50,
    p99Ms: r.open.latency.p99,
    cpuUsPerRequest: cpuUs(byKey.get(`${r.key}/max`), r.max.throughput),
    idleCores: r.idleCores,
    sibylLogOn: ratio(sibylMax(r.protocol, 'kafka'), r.max.throughput),
    sibylLogOff: ratio(sibylMax(r.protocol, 'log-off'), r.max.throughput),
  }));
  const sibyl: PeerRow[] = [];
  for (const protocol of ['oip-rest', 'oip-grpc'] as const) {
    for (const log of ['kafka', 'log-off'] as const) {
      const max = sibylMax(protocol, log);
      const open = sibylOpen(protocol, log);
      if (!max || !open) continue;
      const s = max.steps[0]!;
      const o = open.steps[0]!;
      sibyl.push({ server: max.server, protocol, batching: 'concurrent requests share runs', maxOkPerS: s.throughput, maxErrors: errors(s.codes), openRate: o.rate, p50Ms: o.latency.p50, p99Ms: o.latency.p99, cpuUsPerRequest: cpuUs(max, s.throughput), idleCores: undefined, sibylLogOn: undefined, sibylLogOff: undefined });
    }
  }
  const installS = Object.fromEntries(Object.entries(results.installS).filter((e): e is [string, number] => e[1] !== undefined));
  const batching = Object.fromEntries(Object.entries(results.batching).filter((e): e is [string, string] => e[1] !== undefined));
  const agreement = results.runs.map((r) => `${r.label} ${r.protocol}: ${r.agreement}`);
  return { rows, sibyl, skipped: results.skipped, installS, batching, agreement };
}

function codes(c: Readonly<Record<string, number>>): string {
  const e = Object.entries(c);
  return e.length === 0 ? '0' : e.map(([k, v]) => `${k}: ${v}`).join(', ');
}

/** Markdown lines of the section. */
export function renderPeers(p: PeerSection): string[] {
  const out = [
    '## Peers: the same model and requests (delivery-eta/2, 20 features inline)',
    '',
    'Each peer on one worker/replica on core 1, its answers checked against Sibyl\'s for the same rows before load. ' +
      'Max: closed loop; p50/p99: open loop at half of that peer\'s max. CPU/request: the server\'s whole process tree over the max run (warm-up included) / its ok per s; ' +
      'idle: the same tree\'s CPU with no load, cores (included in CPU/request). ' +
      'Sibyl ÷ peer: Sibyl\'s max on the same protocol and requests (runs "P sibyl", this suite) over the peer\'s.',
    '',
    '| server | protocol | adaptive batching | max ok/s | errors at max | p50 / p99 ms (at rate/s) | CPU µs/request | idle CPU | Sibyl ÷ peer, log on | Sibyl ÷ peer, log off |',
    '| --- | --- | --- | ---: | --- | --- | ---: | ---: | ---: | ---: |',
  ];
  const fmt = (x: number | undefined) => (x === undefined ? '-' : String(x));
  for (const r of [...p.sibyl, ...p.rows]) {
    out.push(`| ${r.server} | ${r.protocol} | ${r.batching} | ${r.maxOkPerS} | ${codes(r.maxErrors)} | ${r.p50Ms} / ${r.p99Ms} (${r.openRate}) | ${fmt(r.cpuUsPerRequest)} | ${fmt(r.idleCores)} | ${fmt(r.sibylLogOn)} | ${fmt(r.sibylLogOff)} |`);
  }
  out.push('');
  for (const [peer, how] of Object.entries(p.batching)) out.push(`- ${peer} batching: ${how}`);
  for (const s of p.skipped) out.push(`- **skipped** ${s.peer}: ${s.why}`);
  const installs = Object.entries(p.installS).map(([k, v]) => `${k} ${v} s`);
  if (installs.length) out.push(`- install step in this run (near 0 when the venv was there): ${installs.join(', ')}`);
  for (const a of p.agreement) out.push(`- preflight ${a}`);
  out.push('');
  return out;
}
