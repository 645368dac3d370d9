/**
 * In-process fan-out of cell revision bumps. `publish` may be called more than once for the same bump (after the
 * local commit and again from LISTEN/NOTIFY): a listener hears each revision of a cell at most once, in increasing
 * order, and never a revision lower than one already published.
 */
export interface RevisionNotifier {
  /** Subscribes to `cell`; returns the unsubscribe function. A listener that throws does not stop the others. */
  on(cell: string, listener: (revision: number) => void): () => void;
  publish(cell: string, revision: number): void;
}

export function createRevisionNotifier(): RevisionNotifier {
  const listeners = new Map<string, Set<(revision: number) => void>>();
  const latest = new Map<string, number>();
  return {
    on(cell, listener) {
      let set = listeners.get(cell);
      if (!set) listeners.set(cell, (set = new Set()));
      set.add(listener);
      return function off() {
        set.delete(listener);
        if (set.size === 0 && listeners.get(cell) === set) listeners.delete(cell);
      };
    },
    publish(cell, revision) {
      if ((latest.get(cell) ?? 0) >= revision) return;
      latest.set(cell, revision);
      for (const listener of [...(listeners.get(cell) ?? [])]) {
        try {
          listener(revision);
        } catch {
          // A listener's failure is its own.
        }
      }
    },
  };
}
