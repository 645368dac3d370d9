/**
 * The online comparison of each (live, shadow) pair: how many shadow executions ran, were shed or failed, how long
 * the shadow took, and how far its outputs were from the live ones, output by output, by the comparison replays
 * use too (execution/comparison.ts: absolute differences of numbers and vectors, agreement of labels).
 * A pair is (live model, live version) against (shadow model, shadow version). Updated off the request path (by
 * the shadow runner); read by `/metrics` and `GET /v1/shadows`.
 */
import type { OutputSpec } from '../../runtimes/manifest.ts';
import { VersionComparison, type ComparisonSnapshot } from '../../execution/comparison.ts';

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

  constructor(live: { model: string; version: string; outputs: readonly OutputSpec[] }, shadow: { model: string; version: string; outputs: readonly OutputSpec[] }) {
    super(live, shadow);
    this.liveModel = live.model;
    this.liveVersion = live.version;
    this.shadowModel = shadow.model;
    this.shadowVersion = shadow.version;
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

/** All pairs of one gateway, created on first use. Pairs whose models were undeployed stay until `reset`. */
export class ShadowStats {
  readonly #pairs = new Map<string, ShadowPair>();

  pair(live: { model: string; version: string; outputs: readonly OutputSpec[] }, shadow: { model: string; version: string; outputs: readonly OutputSpec[] }): ShadowPair {
    const key = `${live.model}\u0000${live.version}\u0000${shadow.model}\u0000${shadow.version}`;
    let p = this.#pairs.get(key);
    if (!p) this.#pairs.set(key, (p = new ShadowPair(live, shadow)));
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
  }
}

const cmp = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);
