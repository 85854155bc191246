/**
 * Test-only: uncaught exceptions and unhandled rejections anywhere in the test process (an in-process server runs in it),
 * captured rather than left to the runner, which would fail whichever test owns the server's socket and stop the server:
 * the test that sent the bytes reports what they caused. One instance per test file, installed in `before`, removed in
 * `after`, and passed to the helpers that watch for faults.
 */
export class FaultCapture {
  readonly #faults: string[] = [];
  readonly #reported = new Set<string>();
  readonly #watchers = new Set<() => void>();
  readonly #onException = this.#record('uncaught exception');
  readonly #onRejection = this.#record('unhandled rejection');

  /** Starts capturing: the process's uncaught-exception capture callback and an unhandledRejection listener. */
  install(): void {
    process.setUncaughtExceptionCaptureCallback(this.#onException);
    process.on('unhandledRejection', this.#onRejection);
  }

  /** Stops capturing: faults go to the runner again. */
  uninstall(): void {
    process.setUncaughtExceptionCaptureCallback(null);
    process.off('unhandledRejection', this.#onRejection);
  }

  /** Faults captured so far: a mark to pass to `since` or `unreported`. */
  get count(): number {
    return this.#faults.length;
  }

  /** Races `p` against the next fault. */
  async orFault<T>(p: Promise<T>): Promise<T | 'fault'> {
    let seen = () => undefined as void;
    const watch = new Promise<'fault'>((resolve) => {
      seen = () => resolve('fault');
      this.#watchers.add(seen);
    });
    return Promise.race([p, watch]).finally(() => this.#watchers.delete(seen));
  }

  /** The faults since mark `from`, marked as reported by the caller. */
  since(from: number): string[] {
    return this.#faults.slice(from).map((f) => (this.#reported.add(f), f));
  }

  /** The faults since mark `from` that no caller of `since` reported. */
  unreported(from: number): string[] {
    return this.#faults.slice(from).filter((f) => !this.#reported.has(f));
  }

  #record(kind: string) {
    return (err: unknown) => {
      this.#faults.push(`${kind}: ${err instanceof Error ? err.stack : String(err)}`);
      this.#watchers.forEach((w) => w());
    };
  }
}
