/**
 * Gathers what is written during one run of microtasks and hands it to `handle` in one call at the end of that run
 * (a microtask queued by the first item). The prediction sinks append their records this way: the requests that one
 * coalesced model run answers resume in the same run of microtasks, so their records go to disk in one write instead
 * of one each (ARCHITECTURE.md, "The prediction log"). `add` returns a promise that resolves once `handle` has
 * returned for the item's batch (it never rejects); a writer that must not answer before its record is on disk
 * awaits it. `flush` hands over what is waiting at once (a sink's flush and shutdown call it first).
 */
export class MicrotaskBatch<T> {
  readonly #handle: (items: T[]) => void;
  #items: T[] = [];
  #handed: Promise<void> | undefined;
  #resolve: (() => void) | undefined;
  readonly #flushLater = (): void => this.flush();

  constructor(handle: (items: T[]) => void) {
    this.#handle = handle;
  }

  add(item: T): Promise<void> {
    if (this.#items.push(item) === 1) {
      this.#handed = new Promise<void>((resolve) => (this.#resolve = resolve));
      queueMicrotask(this.#flushLater);
    }
    return this.#handed!;
  }

  /** The oldest item waiting, if any. */
  first(): T | undefined {
    return this.#items[0];
  }

  flush(): void {
    const items = this.#items;
    if (items.length === 0) return;
    const resolve = this.#resolve!;
    this.#items = [];
    this.#handed = undefined;
    this.#resolve = undefined;
    try {
      this.#handle(items);
    } finally {
      resolve();
    }
  }
}
