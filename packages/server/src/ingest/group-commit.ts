/**
 * Group commit: callers add items and wait; items are written together, one transaction per
 * batch, when the batch is full or `maxDelayMs` after its first item. Every caller learns
 * its own item's result only once the whole batch is durable, so an acknowledgement sent
 * after `add` resolves is an acknowledgement of stored data.
 */
export class GroupCommit<T, R> {
  #batch: { item: T; resolve: (r: R) => void; reject: (e: unknown) => void }[] = [];
  #timer: NodeJS.Timeout | undefined;
  #inFlight = new Set<Promise<void>>();

  constructor(
    private readonly write: (items: T[]) => Promise<R[]>,
    private readonly options: { maxItems: number; maxDelayMs: number; onBatch?: (size: number, ms: number) => void },
  ) {}

  add(item: T): Promise<R> {
    return new Promise<R>((resolve, reject) => {
      this.#batch.push({ item, resolve, reject });
      if (this.#batch.length >= this.options.maxItems) this.#flush();
      else this.#timer ??= setTimeout(() => this.#flush(), this.options.maxDelayMs);
    });
  }

  /** Writes what is waiting and resolves when every batch under way is done. */
  async drain(): Promise<void> {
    this.#flush();
    await Promise.all([...this.#inFlight]);
  }

  #flush(): void {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
    const batch = this.#batch;
    if (batch.length === 0) return;
    this.#batch = [];
    const started = performance.now();
    const done = this.write(batch.map((b) => b.item)).then(
      (results) => {
        this.options.onBatch?.(batch.length, performance.now() - started);
        batch.forEach((b, i) => b.resolve(results[i] as R));
      },
      (err: unknown) => batch.forEach((b) => b.reject(err)),
    );
    const tracked = done.finally(() => this.#inFlight.delete(tracked));
    this.#inFlight.add(tracked);
  }
}
