/**
 * Bounded work per turn of the event loop: at most `perTurn` tasks run in one turn; the rest
 * wait, in order, for the next turn (setImmediate, after the poll phase has served other
 * sockets and the HTTP API). Without it, a group commit that resolves the acknowledgements of
 * many devices at once would hand every client's next publishes to the pipeline in one
 * macrotask, and `/healthz` would wait for all of it. (The gateway also stops reading a
 * connection while it has publishes waiting here.)
 */
export class TurnBudget {
  readonly #queue: ((late: boolean) => void)[] = [];
  #used = 0;
  #armed = false;

  constructor(readonly perTurn: number) {}

  /** Runs the task now and returns true, or queues it for a later turn and returns false; `late` tells the task which. */
  run(task: (late: boolean) => void): boolean {
    if (this.#queue.length === 0 && this.#used < this.perTurn) {
      this.#used += 1;
      this.#arm();
      task(false);
      return true;
    }
    this.#queue.push(task);
    this.#arm();
    return false;
  }

  /** Tasks waiting for a later turn. */
  get waiting(): number {
    return this.#queue.length;
  }

  #arm(): void {
    if (this.#armed) return;
    this.#armed = true;
    setImmediate(this.#turn);
  }

  readonly #turn = (): void => {
    this.#armed = false;
    const now = this.#queue.splice(0, this.perTurn);
    this.#used = now.length;
    if (this.#queue.length > 0 || now.length > 0) this.#arm();
    for (const task of now) task(true);
  };
}
