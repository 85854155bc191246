/**
 * Runs async work one piece at a time, in call order; a piece that fails does not stop the
 * next. `idle()` resolves once everything queued so far (and anything it queued) has ended.
 */
export class Serial {
  #chain: Promise<unknown> = Promise.resolve();

  run<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.#chain.then(fn, fn);
    this.#chain = run.catch(() => undefined);
    return run;
  }

  async idle(): Promise<void> {
    for (let seen: Promise<unknown> | undefined; seen !== this.#chain;) {
      seen = this.#chain;
      await seen;
    }
  }
}
