/**
 * The online comparison of each (live, shadow) pair: how many shadow executions ran, were shed or failed, how long
 * the shadow took, and how far its outputs were from the live ones, output by output, by the comparison replays
 * use too (execution/comparison.ts: absolute differences of numbers and vectors, agreement of labels).
 * A pair is (live model, live version) against (shadow model, shadow version). Updated off the request path (by
 * the shadow runner); read by `/metrics` and `GET /v1/shadows`.
 *
 * Latency is kept twice: in an HDR histogram for the percentiles of the reports (`/v1/shadows`, the gateway's report
 * to the tower), and in the explicit buckets of the request latency histograms for Prometheus
 * (`sibyl_shadow_latency_seconds`, `latencyFamily`), so that percentiles are computed where they are aggregated.
 * Reported percentiles never exceed the maximum (an HDR bucket's upper end can).
 */
import type { OutputRow } from '../../runtimes/contract.ts';
import type { OutputSpec } from '../../runtimes/manifest.ts';
import { VersionComparison, type ComparisonSnapshot } from '../../execution/comparison.ts';
import { HistogramFamily, LATENCY_BUCKETS_SECONDS, type HistogramCell } from '../telemetry/metric-families.ts';

export type { OutputComparison, Percentiles } from '../../execution/comparison.ts';

export interface ShadowPairSnapshot extends ComparisonSnapshot {
  readonly live: { readonly model: string; readonly version: string };
  readonly shadow: { readonly model: string; readonly version: string };
  /** Shadow executions not run because the queue was full or the gateway was busy. */
  readonly shed: number;
}

/** Failed executions count by code (DEADLINE_EXCEEDED for a shadow past its own deadline). */
export class ShadowPair extends VersionComparison {
  readonly liveModel: string;
  readonly liveVersion: string;
  readonly shadowModel: string;
  readonly shadowVersion: string;
  shed = 0;
  /** Seconds, in the buckets of `latencyFamily` (labels model, version, shadow_model, shadow_version). */
  readonly latencyCell: HistogramCell;

  constructor(
    live: { model: string; version: string; outputs: readonly OutputSpec[] },
    shadow: { model: string; version: string; outputs: readonly OutputSpec[] },
    latencyFamily: HistogramFamily = new HistogramFamily(SHADOW_LATENCY, LATENCY_BUCKETS_SECONDS),
  ) {
    super(live, shadow);
    this.liveModel = live.model;
    this.liveVersion = live.version;
    this.shadowModel = shadow.model;
    this.shadowVersion = shadow.version;
    this.latencyCell = latencyFamily.cell({ model: live.model, version: live.version, shadow_model: shadow.model, shadow_version: shadow.version });
  }

  /** Records one successful shadow execution: per row, live outputs against shadow outputs. */
  override recordSuccess(latencyMs: number, live: readonly OutputRow[], shadow: readonly OutputRow[]): void {
    super.recordSuccess(latencyMs, live, shadow);
    this.latencyCell.record(latencyMs / 1000);
  }

  /** Records a failed shadow execution (DEADLINE_EXCEEDED for a shadow past its own deadline). */
  override recordError(latencyMs: number, code: string): void {
    super.recordError(latencyMs, code);
    this.latencyCell.record(latencyMs / 1000);
  }

  recordShed(): void {
    this.shed++;
  }

  override snapshot(): ShadowPairSnapshot {
    const c = super.snapshot();
    return {
      live: { model: this.liveModel, version: this.liveVersion },
      shadow: { model: this.shadowModel, version: this.shadowVersion },
      executed: c.executed,
      shed: this.shed,
      errors: c.errors,
      latencyMs: c.latencyMs,
      outputs: c.outputs,
    };
  }
}

const SHADOW_LATENCY = { name: 'sibyl_shadow_latency_seconds', description: 'Shadow execution latency (its own enrichment and model call).', unit: 's' };

/** All pairs of one gateway, created on first use. Pairs whose models were undeployed stay until `reset`. */
export class ShadowStats {
  readonly #pairs = new Map<string, ShadowPair>();
  /** Every pair's latency histogram, for the metric reader (otel-telemetry.ts). */
  readonly latencyFamily = new HistogramFamily(SHADOW_LATENCY, LATENCY_BUCKETS_SECONDS);

  pair(live: { model: string; version: string; outputs: readonly OutputSpec[] }, shadow: { model: string; version: string; outputs: readonly OutputSpec[] }): ShadowPair {
    const key = `${live.model}\u0000${live.version}\u0000${shadow.model}\u0000${shadow.version}`;
    let p = this.#pairs.get(key);
    if (!p) this.#pairs.set(key, (p = new ShadowPair(live, shadow, this.latencyFamily)));
    return p;
  }

  /** Every pair, sorted by live model, live version, shadow model, shadow version. */
  snapshot(): ShadowPairSnapshot[] {
    return [...this.#pairs.values()]
      .sort((a, b) => cmp(a.liveModel, b.liveModel) || cmp(a.liveVersion, b.liveVersion) || cmp(a.shadowModel, b.shadowModel) || cmp(a.shadowVersion, b.shadowVersion))
      .map((p) => p.snapshot());
  }

  reset(): void {
    this.#pairs.clear();
    this.latencyFamily.cells.length = 0;
  }
}

const cmp = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);
