/**
 * Counters scraped from the gateway's /metrics (Prometheus text) around a run, so a report can say whether features
 * were defaulted (store slow or down) or prediction-log records spilled while the load ran: a fast answer made of
 * defaults is not the scenario that was asked for.
 */
const WATCHED = ['sibyl_features_defaulted_total', 'sibyl_feature_store_failures_total', 'sibyl_prediction_log_'];

/** Metric family name → sum of its samples, for the watched families; empty when /metrics does not answer. */
export async function scrape(baseUrl: string): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  try {
    const res = await fetch(`${baseUrl}/metrics`);
    const text = await res.text();
    for (const line of text.split('\n')) {
      if (line.startsWith('#') || !WATCHED.some((w) => line.startsWith(w))) continue;
      const name = line.split(/[{ ]/)[0]!;
      const v = Number(line.slice(line.lastIndexOf(' ') + 1));
      if (Number.isFinite(v)) out[name] = (out[name] ?? 0) + v;
    }
  } catch {
    /* no metrics */
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
