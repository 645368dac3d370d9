/**
 * The pod's `/metrics`: the Prometheus text expositions of its workers in one, each sample labelled with its
 * worker (`worker="0"`, ...), each family once (its HELP and TYPE, then every worker's samples).
 *
 * Series stay per worker rather than summed: a worker the supervisor restarts starts its counters from zero, which
 * Prometheus reads as a reset of that worker's series only; a sum would fall and turn every `rate()` over the pod
 * wrong. The pod's totals are `sum without (worker) (...)`.
 */

/** One worker's exposition (format 0.0.4, as `Telemetry.metricsText` gives it). */
export interface WorkerExposition {
  readonly worker: number;
  readonly text: string;
}

interface Family {
  help?: string;
  type?: string;
  readonly samples: string[];
}

/** Merges expositions (in the order given; pass them by worker) and appends `extra`, an exposition of its own. */
export function mergeExpositions(parts: readonly WorkerExposition[], extra = ''): string {
  const families = new Map<string, Family>();
  const family = (name: string): Family => {
    let f = families.get(name);
    if (!f) families.set(name, (f = { samples: [] }));
    return f;
  };
  for (const { worker, text } of parts) {
    let current: Family | undefined;
    for (const line of text.split('\n')) {
      if (line === '') continue;
      if (line.startsWith('#')) {
        const m = /^# (HELP|TYPE) (\S+)/.exec(line);
        if (!m) continue;
        current = family(m[2]!);
        if (m[1] === 'HELP') current.help ??= line;
        else current.type ??= line;
        continue;
      }
      // A sample before any HELP or TYPE line is a family of its own name.
      (current ?? family(metricName(line))).samples.push(withLabel(line, 'worker', String(worker)));
    }
  }
  const out: string[] = [];
  for (const f of families.values()) {
    if (f.help) out.push(f.help);
    if (f.type) out.push(f.type);
    out.push(...f.samples);
  }
  const body = out.length > 0 ? `${out.join('\n')}\n` : '';
  return extra === '' ? body : `${body}${extra.endsWith('\n') ? extra : `${extra}\n`}`;
}

function metricName(sample: string): string {
  const end = sample.search(/[{ ]/);
  return end < 0 ? sample : sample.slice(0, end);
}

/** `name{a="b"} 1` → `name{worker="0",a="b"} 1`; `name 1` → `name{worker="0"} 1`. */
export function withLabel(sample: string, label: string, value: string): string {
  const end = sample.search(/[{ ]/);
  if (end < 0) return sample;
  const pair = `${label}="${value}"`;
  if (sample[end] === ' ') return `${sample.slice(0, end)}{${pair}}${sample.slice(end)}`;
  const rest = sample.slice(end + 1);
  return `${sample.slice(0, end)}{${pair}${rest.startsWith('}') ? '' : ','}${rest}`;
}
