/**
 * Resolves the callers of a durable batch, `perTurn` at a time: each caller's continuation
 * (an acknowledgement, the rest of its pipeline) runs when it is resolved, and a batch that
 * grew to thousands under load would otherwise run them all in one turn while HTTP waits.
 */
function resumeInTurns<R>(batch: readonly { resolve: (r: R) => void }[], results: readonly R[], perTurn: number): void {
  let next = 0;
  const turn = () => {
    const end = Math.min(batch.length, next + perTurn);
    for (; next < end; next += 1) batch[next]?.resolve(results[next] as R);
    if (next < batch.length) setImmediate(turn);
  };
  turn();
}

/**
 * Group commit: callers add items and wait; items are written together, one transaction per
 * batch, when the batch is full or `maxDelayMs` after its first item. Every caller learns
 * its own item's result only once the whole batch is durable, so an acknowledgement sent
 * after `add` resolves is an acknowledgement of stored data.
 *
 * At most `maxInFlight` batches are being written at once (one committing, one ready behind
 * it). While both slots are taken the next batch keeps growing past `maxItems`, and is
 * written as one transaction when a slot frees: under load the cost of a commit (its fsync)
 * is shared by more messages instead of queueing one small transaction after another.
 */
export class GroupCommit<T, R> {
  #batch: { item: T; resolve: (r: R) => void; reject: (e: unknown) => void }[] = [];
  #timer: NodeJS.Timeout | undefined;
  /** The batch is due (full or past its delay) and waits only for a free slot. */
  #due = false;
  #inFlight = new Set<Promise<void>>();

  constructor(
    private readonly write: (items: T[]) => Promise<R[]>,
    private readonly options: {
      maxItems: number;
      maxDelayMs: number;
      maxInFlight?: number;
      onBatch?: (size: number, ms: number) => void;
      /** Callers resumed per turn of the event loop once their batch is durable (default 256); the rest on the next turns. */
      resumePerTurn?: number;
    },
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
    while (this.#batch.length > 0 || this.#inFlight.size > 0) {
      this.#flush();
      await Promise.all([...this.#inFlight]);
    }
  }

  #flush(): void {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
    if (this.#batch.length === 0) return;
    if (this.#inFlight.size >= (this.options.maxInFlight ?? 2)) {
      this.#due = true; // written as soon as a batch under way finishes
      return;
    }
    this.#due = false;
    const batch = this.#batch;
    this.#batch = [];
    const started = performance.now();
    const done = this.write(batch.map((b) => b.item)).then(
      (results) => {
        this.options.onBatch?.(batch.length, performance.now() - started);
        resumeInTurns(batch, results, this.options.resumePerTurn ?? 256);
      },
      (err: unknown) => batch.forEach((b) => b.reject(err)),
    );
    const tracked = done.finally(() => {
      this.#inFlight.delete(tracked);
      if (this.#due) this.#flush();
    });
    this.#inFlight.add(tracked);
  }
}
