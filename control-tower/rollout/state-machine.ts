/**
 * What a rollout does next (ARCHITECTURE.md, "Rollouts"), as a pure function of its stored record, the time and
 * what the current wave's live gateway replicas last reported. The driver (driver.ts) carries the step out through
 * the store, whose transitions check that the rollout is still where this function saw it.
 *
 *   pending ──apply──> applying ──(every live replica serves the wave's revision)──> baking ──(bake over)──>
 *   checking ──(every live replica reported after the bake, or the report timeout)──> judge: passed ──> pending
 *   (next wave) | completed;  failed ──> halted.  Applying longer than the apply timeout ──> halted (naming the
 *   load errors, if any: a gateway retries a failed load, and a sandbox that did not start in time on a busy node
 *   may load the next time); baking or checking, the version fails to load ──> halted at once; an operator's
 *   halt ──> halted.
 *
 * Times come from the record (appliedAt, bakeEndsAt), so a restarted tower resumes a bake where it was.
 */
import { FINISHED, type Rollout, type StoredReport } from '../store/index.ts';

/** One live gateway replica of a wave's cell, as its last report shows it. */
export interface ReplicaView {
  readonly cell: string;
  readonly replica: string;
  /** The revision it serves. */
  readonly revision: number;
  /** When the tower received its last report, ms since the epoch. */
  readonly receivedMs: number;
  /** Whether the rollout's version is in its route table. */
  readonly loaded: boolean;
  /** Its load error of the rollout's version, if it reported one. */
  readonly loadError?: string | undefined;
}

export type Step =
  | { readonly kind: 'apply' }
  | { readonly kind: 'bake' }
  | { readonly kind: 'check' }
  | { readonly kind: 'judge' }
  | { readonly kind: 'halt'; readonly reason: string }
  | { readonly kind: 'wait'; readonly why: string }
  | { readonly kind: 'done' };

/** The live replicas of `cells` (reports within `staleAfterMs` of `nowMs`) and what they say of model/version. */
export function replicaViews(model: string, version: string, reports: readonly StoredReport[], nowMs: number, staleAfterMs: number): ReplicaView[] {
  return reports
    .filter((r) => nowMs - r.received.getTime() <= staleAfterMs)
    .map((r) => {
      const error = r.errors.find((e) => e.model === model && e.version === version);
      return {
        cell: r.cell,
        replica: r.replica,
        revision: r.revision,
        receivedMs: r.received.getTime(),
        loaded: r.loaded.some((l) => l.model === model && l.version === version),
        ...(error ? { loadError: error.message } : {}),
      };
    });
}

export function nextStep(r: Rollout, nowMs: number, replicas: readonly ReplicaView[]): Step {
  if (FINISHED.has(r.state)) return { kind: 'done' };
  const wave = r.waves[r.wave]!;
  if (r.state === 'pending') return { kind: 'apply' };
  const inWave = replicas.filter((x) => wave.cells.includes(x.cell));
  const failing = inWave.filter((x) => x.loadError !== undefined && x.revision >= (wave.revisions?.[x.cell] ?? 0));
  const loadFailure = (x: ReplicaView) => `${r.model}/${r.version} failed to load in cell ${x.cell} (replica ${x.replica}): ${x.loadError}`;

  if (r.state === 'applying') {
    const behind = inWave.filter((x) => x.revision < (wave.revisions?.[x.cell] ?? 0) || !x.loaded);
    if (behind.length === 0) return { kind: 'bake' };
    const since = Date.parse(wave.appliedAt ?? '');
    if (nowMs - since > r.spec.applyTimeoutMs) {
      if (failing[0]) return { kind: 'halt', reason: `wave ${wave.name}: ${loadFailure(failing[0])}${failing.length > 1 ? ` (and ${failing.length - 1} more)` : ''}` };
      const names = behind.map((x) => `${x.cell}/${x.replica} at revision ${x.revision}`).join(', ');
      return { kind: 'halt', reason: `wave ${wave.name}: gateways did not serve the change within ${r.spec.applyTimeoutMs} ms (${names})` };
    }
    return { kind: 'wait', why: `${behind.length} replica(s) not serving the change yet${failing.length ? ` (${failing.length} failed to load; gateways retry)` : ''}` };
  }
  if (failing[0]) return { kind: 'halt', reason: `wave ${wave.name}: ${loadFailure(failing[0])}` };

  const bakeEnds = Date.parse(wave.bakeEndsAt ?? '');
  if (r.state === 'baking') return nowMs >= bakeEnds ? { kind: 'check' } : { kind: 'wait', why: `baking until ${wave.bakeEndsAt}` };

  // checking: the figures must cover the whole bake, so every live replica must have reported after it ended.
  const late = inWave.filter((x) => x.receivedMs <= bakeEnds);
  if (late.length === 0 || nowMs - bakeEnds >= r.spec.reportTimeoutMs) return { kind: 'judge' };
  return { kind: 'wait', why: `${late.length} replica(s) have not reported since the bake ended` };
}
