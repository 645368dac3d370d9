/** What a replica tells the control tower it serves (GatewayReport in proto/sibyl/v1/deployment.proto). */
import { create } from '@bufbuild/protobuf';
import { timestampNow } from '@bufbuild/protobuf/wkt';
import { GatewayReportSchema, ShadowComparisonSchema, type GatewayReport, type LoadError, type ShadowComparison } from '../../proto/gen/sibyl/v1/deployment_pb.js';
import type { VersionStatistics } from '../../proto/gen/sibyl/v1/statistics_pb.js';
import type { RouteTable } from '../routing/route-table.ts';
import type { ShadowPairSnapshot } from '../shadow/shadow-stats.ts';

/** A version that failed to load, and why (LoadError's fields). */
export type VersionError = Readonly<Pick<LoadError, 'model' | 'version' | 'message'>>;

export interface ReportInput {
  readonly cell: string;
  readonly replica: string;
  readonly revision: bigint;
  /** The table being served: every route in it is reported as loaded, with its bundle hash. */
  readonly table: RouteTable;
  readonly errors: readonly VersionError[];
  readonly shadows?: readonly ShadowPairSnapshot[];
  /** Serving statistics per model version (gateway/stats/serving-statistics.ts). */
  readonly statistics?: readonly VersionStatistics[];
}

export function gatewayReport(r: ReportInput): GatewayReport {
  return create(GatewayReportSchema, {
    cell: r.cell,
    replica: r.replica,
    revision: r.revision,
    loaded: r.table.routes().map((route) => ({ model: route.model, version: route.version, bundleSha256: route.hash })),
    errors: r.errors.map((e) => ({ ...e })),
    time: timestampNow(),
    shadows: (r.shadows ?? []).map(shadowComparison),
    statistics: [...(r.statistics ?? [])],
  });
}

function shadowComparison(s: ShadowPairSnapshot): ShadowComparison {
  return create(ShadowComparisonSchema, {
    liveModel: s.live.model,
    liveVersion: s.live.version,
    shadowModel: s.shadow.model,
    shadowVersion: s.shadow.version,
    executed: BigInt(s.executed),
    shed: BigInt(s.shed),
    errors: Object.fromEntries(Object.entries(s.errors).map(([k, v]) => [k, BigInt(v)])),
    latencyMs: { ...s.latencyMs },
    outputs: Object.fromEntries(
      Object.entries(s.outputs).map(([name, o]) => [
        name,
        o.kind === 'number'
          ? { kind: 'number', count: BigInt(o.count), meanAbsDiff: o.meanAbsDiff, absDiff: { ...o.absDiff } }
          : { kind: 'label', count: BigInt(o.count), agreement: o.agreement },
      ]),
    ),
  });
}
