/**
 * The online feature store role. Implementations: memory-feature-store.ts (embedded default, seeded from a file),
 * redis-feature-store.ts (production).
 *
 * Layout: one hash per entity, key `{prefix}:{entity}:{id}`, one field per feature, values as strings.
 */
import { SibylError } from '../core/errors.ts';

export interface FeatureLookup {
  /** Full key, prefix included, e.g. `sibyl:restaurant:r42`. */
  readonly key: string;
  /** Hash fields to read. */
  readonly fields: readonly string[];
}

export interface FeatureStore {
  readonly kind: string;
  /**
   * Reads all lookups in ONE round trip. Resolves to one array per lookup (same order), each value the field's
   * string or null when absent. Rejects (never hangs) when the store is down or slower than `timeoutMs`
   * milliseconds; the caller then falls back to the declared defaults.
   */
  read(lookups: readonly FeatureLookup[], timeoutMs: number): Promise<(string | null)[][]>;
  /** Writes entity rows (for loaders and tests): each entry sets the given fields of one key. */
  write(entries: readonly { key: string; fields: Readonly<Record<string, string>> }[]): Promise<void>;
  /** True when the last round trip succeeded (for readiness and metrics). */
  readonly healthy: boolean;
  close(): Promise<void>;
}

export function featureKey(prefix: string, entity: string, id: string): string {
  return `${prefix}:${entity}:${id}`;
}

/**
 * The store of executions whose rows carry every feature inline (test cases, `sibyl rules run` without Redis): it is
 * never read, and says so (FAILED_PRECONDITION) if it is.
 */
export const inlineOnly: FeatureStore = {
  kind: 'inline-only',
  healthy: true,
  read: () => Promise.reject(new SibylError('FAILED_PRECONDITION', 'every feature was given inline; the store is not read')),
  write: () => Promise.reject(new SibylError('FAILED_PRECONDITION', 'there is no feature store here')),
  close: () => Promise.resolve(),
};
