/**
 * Counters scraped from the gateway's /metrics (Prometheus text) around a run, so a report can say whether features
 * were defaulted (store slow or down) or prediction-log records spilled while the load ran: a fast answer made of
 * defaults is not the scenario that was asked for.
 */
const WATCHED = ['sibyl_features_defaulted_total', 'sibyl_feature_store_failures_total', 'sibyl_prediction_log_'];

/** Metric family name → sum of its samples, for the watched families; empty when /metrics does not answer. */
export async function scrape(baseUrl: string): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const line of (await metricsText(baseUrl)).split('\n')) {
    if (line.startsWith('#') || !WATCHED.some((w) => line.startsWith(w))) continue;
    const name = line.split(/[{ ]/)[0]!;
    const v = Number(line.slice(line.lastIndexOf(' ') + 1));
    if (Number.isFinite(v)) out[name] = (out[name] ?? 0) + v;
  }
  return out;
}

/** after - before, keeping only the counters that moved (gauges are reported as their value after). */
export function delta(before: Record<string, number>, after: Record<string, number>): Record<string, number> {
  const d: Record<string, number> = {};
  for (const [k, v] of Object.entries(after)) {
    const change = k.endsWith('_total') ? v - (before[k] ?? 0) : v;
    if (change !== 0) d[k] = change;
  }
  return d;
}

/** Cumulative bucket counts (upper bound in seconds → count) of one histogram family, summed over its series. */
export type Buckets = Map<number, number>;

/** `exclude`: series whose labels contain this text are left out (e.g. `model=""`, the gateway's refusals). */
export async function scrapeBuckets(baseUrl: string, family: string, exclude?: string): Promise<Buckets> {
  return bucketsOf(await metricsText(baseUrl), family, exclude);
}

/** The /metrics text, or '' when it does not answer. */
export async function metricsText(baseUrl: string): Promise<string> {
  try {
    return await (await fetch(`${baseUrl}/metrics`)).text();
  } catch {
    return '';
  }
}

/** One histogram family's cumulative buckets in a /metrics text (see scrapeBuckets). */
export function bucketsOf(text: string, family: string, exclude?: string): Buckets {
  const out: Buckets = new Map();
  const prefix = `${family}_bucket{`;
  for (const line of text.split('\n')) {
    if (!line.startsWith(prefix) || (exclude !== undefined && line.includes(exclude))) continue;
    const le = /le="([^"]+)"/.exec(line)?.[1];
    if (le === undefined) continue;
    const bound = le === '+Inf' ? Infinity : Number(le);
    out.set(bound, (out.get(bound) ?? 0) + Number(line.slice(line.lastIndexOf(' ') + 1)));
  }
  return out;
}

/** One family's samples in a /metrics text summed by the value of one label (e.g. refusals by `reason`). */
export function valuesBy(text: string, family: string, label: string): Record<string, number> {
  const out: Record<string, number> = {};
  const at = new RegExp(`${label}="([^"]*)"`);
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${family}{`)) continue;
    const key = at.exec(line)?.[1];
    const v = Number(line.slice(line.lastIndexOf(' ') + 1));
    if (key !== undefined && Number.isFinite(v)) out[key] = (out[key] ?? 0) + v;
  }
  return out;
}

/** The sum of one family's samples in a /metrics text (a counter over its series), or undefined when absent. */
export function valueOf(text: string, family: string): number | undefined {
  let sum: number | undefined;
  for (const line of text.split('\n')) {
    if (!(line.startsWith(`${family} `) || line.startsWith(`${family}{`))) continue;
    const v = Number(line.slice(line.lastIndexOf(' ') + 1));
    if (Number.isFinite(v)) sum = (sum ?? 0) + v;
  }
  return sum;
}

/**
 * The q-quantile (0..1) of what was recorded between two scrapes, in ms, interpolated linearly inside its bucket
 * the way Prometheus's histogram_quantile does; undefined when nothing was recorded. Resolution is the buckets'.
 */
export function bucketQuantileMs(q: number, before: Buckets, after: Buckets): number | undefined {
  const bounds = [...after.keys()].sort((a, b) => a - b);
  const cum = bounds.map((b) => (after.get(b) ?? 0) - (before.get(b) ?? 0));
  const total = cum[cum.length - 1] ?? 0;
  if (total <= 0) return undefined;
  const rank = q * total;
  for (let i = 0; i < bounds.length; i++) {
    if (cum[i]! < rank) continue;
    const hi = bounds[i]!;
    const lo = i === 0 ? 0 : bounds[i - 1]!;
    if (hi === Infinity) return lo * 1000;
    const below = i === 0 ? 0 : cum[i - 1]!;
    const inBucket = cum[i]! - below;
    return Math.round((lo + (hi - lo) * (inBucket > 0 ? (rank - below) / inBucket : 1)) * 1e6) / 1000;
  }
  return undefined;
}
