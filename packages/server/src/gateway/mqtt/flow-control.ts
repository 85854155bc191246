import type { TokenBuckets } from './token-bucket.js';

/** The connection's socket reads, paused while a hold is on. */
export interface Reader {
  hold(on: boolean): void;
}

/**
 * Flow control for one session's PUBLISHes: a device over its rate is slowed, not cut off.
 *
 * Each PUBLISH needs a token from the device's bucket. Without one it is held (not handled,
 * hence not acknowledged) until the bucket refills, and later PUBLISHes queue behind it, so
 * acknowledgements keep their order. While the session owes tokens its socket is not read:
 * the socket's buffer fills, and TCP pushes back on the device. What was already read (one
 * chunk, at most a few hundred packets) waits in the held queue.
 *
 * A session whose held backlog still passes `backlogLimit` is past the hard abuse bound and
 * is disconnected (`onAbuse`).
 */
export class PublishFlow {
  readonly #held: (() => void)[] = [];
  #timer: NodeJS.Timeout | undefined;
  #gated = false;
  #disposed = false;

  constructor(
    private readonly reader: Reader,
    private readonly deviceId: string,
    private readonly buckets: TokenBuckets,
    private readonly backlogLimit: number,
    private readonly hooks: { onHeld(): void; onAbuse(backlog: number): void },
  ) {}

  /** Held PUBLISHes now. */
  get backlog(): number {
    return this.#held.length;
  }

  /** Runs `go` once this PUBLISH has its token: now, or after the ones held before it. */
  admit(go: () => void): void {
    if (this.#disposed) return;
    if (this.#held.length === 0) {
      const waitMs = this.buckets.tryTake(this.deviceId);
      if (waitMs === 0) return go();
      this.#closeGate();
      this.#arm(waitMs);
    }
    this.#held.push(go);
    this.hooks.onHeld();
    if (this.#held.length > this.backlogLimit) {
      const backlog = this.#held.length;
      this.dispose();
      this.hooks.onAbuse(backlog);
    }
  }

  /** The session ended: held PUBLISHes are dropped unacknowledged (a QoS 1 sender sends them again). */
  dispose(): void {
    this.#disposed = true;
    this.#held.length = 0;
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  #arm(waitMs: number): void {
    this.#timer = setTimeout(this.#release, waitMs);
  }

  readonly #release = (): void => {
    this.#timer = undefined;
    while (this.#held.length > 0 && !this.#disposed) {
      const waitMs = this.buckets.tryTake(this.deviceId);
      if (waitMs > 0) return this.#arm(waitMs);
      this.#held.shift()?.();
    }
    if (!this.#disposed) this.#openGate();
  };

  #closeGate(): void {
    if (this.#gated) return;
    this.#gated = true;
    this.reader.hold(true);
  }

  #openGate(): void {
    if (!this.#gated) return;
    this.#gated = false;
    this.reader.hold(false);
  }
}
