/**
 * A wave's figures from the gateways' reports (ARCHITECTURE.md, "Rollouts"): per cell of the wave, the live
 * replicas' serving statistics (GatewayReport.statistics: requests, errors by code, a latency sketch per version,
 * over the replica's recent windows) of the rollout's version and of the version each cell served before, merged
 * over replicas (sketches add bin by bin) and over the wave; and, from every cell's reports, the version's
 * comparison with the live model when it ran as its shadow. Pure: the caller reads the reports.
 */
import { fromJson, type JsonValue } from '@bufbuild/protobuf';
import { ShadowComparisonSchema, type ShadowComparison } from '../../proto/gen/sibyl/v1/deployment_pb.js';
import { VersionStatisticsSchema, type VersionStatistics } from '../../proto/gen/sibyl/v1/statistics_pb.js';
import { mergeSketch, quantileOf, sketchFromMessage, type Sketch } from '../../stats/sketch.ts';
import type { ShadowFigures, StoredReport, VersionFigures, WaveFigures } from '../store/index.ts';

export interface FiguresInput {
  readonly model: string;
  readonly version: string;
  /** The wave's cells: the version each served before (its default then; '' for none) and its replicas' reports. */
  readonly cells: readonly { readonly cell: string; readonly previousVersion: string; readonly reports: readonly StoredReport[] }[];
  /** Every cell's reports, for the shadow comparison. */
  readonly allReports: readonly StoredReport[];
  readonly nowMs: number;
  /** Reports older than this are a replica that is gone, ms. */
  readonly staleAfterMs: number;
}

export function waveFigures(input: FiguresInput): WaveFigures {
  const live = (r: StoredReport) => input.nowMs - r.received.getTime() <= input.staleAfterMs;
  const all = new Tally();
  const before = new Tally();
  const previousVersions = new Set<string>();
  const replicas: string[] = [];
  const perCell: WaveFigures['perCell'] = [];
  for (const c of input.cells) {
    const mine = new Tally();
    const theirs = new Tally();
    const prev = c.previousVersion && c.previousVersion !== input.version ? c.previousVersion : '';
    if (prev) previousVersions.add(prev);
    for (const r of c.reports) {
      if (!live(r)) continue;
      replicas.push(`${c.cell}/${r.replica}`);
      for (const s of versionStatistics(r)) {
        if (s.model !== input.model) continue;
        if (s.version === input.version) {
          mine.add(s);
          all.add(s);
        } else if (prev && s.version === prev) {
          theirs.add(s);
          before.add(s);
        }
      }
    }
    perCell.push({ cell: c.cell, version: mine.figures(), ...(prev ? { previous: theirs.figures() } : {}) });
  }
  const shadow = shadowFigures(input.model, input.version, input.allReports.filter(live));
  return {
    replicas: replicas.sort(),
    version: all.figures(),
    ...(previousVersions.size ? { previous: { ...before.figures(), versions: [...previousVersions].sort() } } : {}),
    ...(shadow ? { shadow } : {}),
    perCell,
  };
}

/** Requests, errors and latency of one version, added up over windows, replicas and cells. */
class Tally {
  answered = 0;
  errors: Record<string, number> = {};
  failed = 0;
  latency: Sketch | undefined;

  add(s: VersionStatistics): void {
    this.answered += Number(s.requests);
    for (const [code, n] of Object.entries(s.errors)) {
      this.errors[code] = (this.errors[code] ?? 0) + Number(n);
      this.failed += Number(n);
    }
    if (s.latencyMs) {
      const l = sketchFromMessage(s.latencyMs);
      if (this.latency) mergeSketch(this.latency, l);
      else this.latency = l;
    }
  }

  figures(): VersionFigures {
    const requests = this.answered + this.failed;
    return {
      requests,
      errors: { ...this.errors },
      errorRate: requests ? this.failed / requests : 0,
      ...(this.latency && this.latency.count > 0 ? { p99Ms: quantileOf(this.latency, 0.99) } : {}),
    };
  }
}

function versionStatistics(r: StoredReport): VersionStatistics[] {
  const out: VersionStatistics[] = [];
  for (const json of r.statistics ?? []) {
    try {
      out.push(fromJson(VersionStatisticsSchema, json as JsonValue, { ignoreUnknownFields: true }));
    } catch {
      // A report this tower cannot read counts as no figures from that replica.
    }
  }
  return out;
}

/** The version as a shadow of the same model's live version, merged over replicas; undefined when it never ran so. */
function shadowFigures(model: string, version: string, reports: readonly StoredReport[]): ShadowFigures | undefined {
  let executed = 0;
  const labels = new Map<string, { n: number; agree: number }>();
  const numbers = new Map<string, { n: number; sum: number }>();
  for (const r of reports) {
    for (const json of r.shadows ?? []) {
      let s: ShadowComparison;
      try {
        s = fromJson(ShadowComparisonSchema, json as JsonValue, { ignoreUnknownFields: true });
      } catch {
        continue;
      }
      if (s.liveModel !== model || s.shadowModel !== model || s.shadowVersion !== version || s.liveVersion === version) continue;
      executed += Number(s.executed);
      for (const [name, o] of Object.entries(s.outputs)) {
        const n = Number(o.count);
        if (n === 0) continue;
        if (o.kind === 'label') {
          const t = labels.get(name) ?? { n: 0, agree: 0 };
          labels.set(name, { n: t.n + n, agree: t.agree + o.agreement * n });
        } else {
          const t = numbers.get(name) ?? { n: 0, sum: 0 };
          numbers.set(name, { n: t.n + n, sum: t.sum + o.meanAbsDiff * n });
        }
      }
    }
  }
  if (executed === 0) return undefined;
  const disagreement = [...labels.values()].map((t) => 1 - t.agree / t.n);
  const meanAbsDiff = [...numbers.values()].map((t) => t.sum / t.n);
  return {
    executed,
    ...(disagreement.length ? { disagreement: Math.max(...disagreement) } : {}),
    ...(meanAbsDiff.length ? { meanAbsDiff: Math.max(...meanAbsDiff) } : {}),
  };
}
