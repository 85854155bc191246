import type { Clock } from '@bulwark/core';

/** [at, key, generation] */
type Entry = [number, string, number];

/**
 * Deadlines keyed by name, on one timer: the earliest one's. A million devices that send
 * nothing cost nothing (a key enters only when something happens to its device), and a
 * million keys cost one timer and a heap.
 */
export class Deadlines {
  /** Min-heap of [at, key, generation]; an entry whose generation is not the key's current one is stale. */
  readonly #heap: Entry[] = [];
  readonly #current = new Map<string, number>();
  #generation = 0;
  #timer: NodeJS.Timeout | undefined;
  #timerAt = Infinity;
  #stopped = false;

  constructor(
    private readonly clock: Clock,
    private readonly due: (key: string) => void,
  ) {}

  /** Sets (or moves) the deadline of `key`. */
  set(key: string, at: number): void {
    const generation = (this.#generation += 1);
    this.#current.set(key, generation);
    this.#push([at, key, generation]);
    this.#arm();
  }

  cancel(key: string): void {
    this.#current.delete(key);
  }

  has(key: string): boolean {
    return this.#current.has(key);
  }

  get size(): number {
    return this.#current.size;
  }

  /** Runs every deadline that has passed; the timer calls it, tests with a fake clock may too. */
  run(): void {
    const now = this.clock.now();
    for (let top = this.#heap[0]; top && top[0] <= now; top = this.#heap[0]) {
      this.#pop();
      const [, key, generation] = top;
      if (this.#current.get(key) !== generation) continue;
      this.#current.delete(key);
      this.due(key);
    }
    this.#arm();
  }

  stop(): void {
    this.#stopped = true;
    clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  #arm(): void {
    if (this.#stopped) return;
    // Stale entries at the top are dropped here, so the timer follows a live deadline.
    while (this.#heap[0] && this.#current.get(this.#heap[0][1]) !== this.#heap[0][2]) this.#pop();
    const next = this.#heap[0]?.[0] ?? Infinity;
    if (next === this.#timerAt) return;
    clearTimeout(this.#timer);
    this.#timerAt = next;
    if (next === Infinity) return;
    // setTimeout takes at most 2^31-1 ms; a later deadline re-arms when the timer fires.
    this.#timer = setTimeout(
      () => {
        this.#timerAt = Infinity;
        this.run();
      },
      Math.min(Math.max(0, next - this.clock.now()), 2_147_483_647),
    );
    this.#timer.unref();
  }

  #push(e: Entry): void {
    const h = this.#heap;
    h.push(e);
    for (let i = h.length - 1; i > 0;) {
      const parent = (i - 1) >> 1;
      if ((h[parent] as Entry)[0] <= e[0]) break;
      h[i] = h[parent] as Entry;
      h[parent] = e;
      i = parent;
    }
  }

  #pop(): void {
    const h = this.#heap;
    const last = h.pop();
    if (!last || h.length === 0) return;
    h[0] = last;
    for (let i = 0; ;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let m = i;
      if (l < h.length && (h[l] as Entry)[0] < (h[m] as Entry)[0]) m = l;
      if (r < h.length && (h[r] as Entry)[0] < (h[m] as Entry)[0]) m = r;
      if (m === i) break;
      [h[i], h[m]] = [h[m] as Entry, h[i] as Entry];
      i = m;
    }
  }
}
