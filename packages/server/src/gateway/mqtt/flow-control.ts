import type { Client } from 'aedes';
import type { TokenBuckets } from './token-bucket.js';

/** Aedes 1.2 internals this file relies on (checked in its lib/client.js). */
interface AedesClientInternals {
  readonly conn: NodeJS.ReadableStream & { removeListener(e: 'readable', f: () => void): unknown; on(e: 'readable', f: () => void): unknown };
  readonly _nextBatch: () => void;
}

/**
 * Flow control for one session's PUBLISHes: a device over its rate is slowed, not cut off.
 *
 * Each PUBLISH needs a token from the device's bucket. Without one it is held (Aedes's
 * authorizePublish `done`, hence its PUBACK, is not called yet) until the bucket refills, and
 * later PUBLISHes queue behind it, so acknowledgements keep their order.
 *
 * Holding `done` alone does not stop Aedes from reading (lib/client.js, Aedes 1.2): it parses
 * a whole read chunk at once and handles every packet in it concurrently; it reads the next
 * chunk when its count of unfinished packets reaches zero, and every `readable` event of the
 * socket also counts one down. A client trickling small packets therefore gets every one read
 * and parsed while earlier ones wait (measured: 2977 of 3000 held). So while the session owes
 * tokens the socket's `readable` events are held back as well: Aedes then reads only when
 * the held packets finish, the socket's buffer fills to its high-water mark, and TCP pushes
 * back on the device. (`client.pause()` is no use: it drops the count-down of packets that
 * finish while paused, and the session stalls; `conn.pause()` does nothing to a stream read
 * through `readable`: measured, 2971 of 3000 trickled publishes still read.)
 *
 * A session whose held backlog still passes `backlogLimit` is past the hard abuse bound and
 * is disconnected (`onAbuse`).
 */
export class PublishFlow {
  readonly #held: (() => void)[] = [];
  #timer: NodeJS.Timeout | undefined;
  #gated = false;
  #missedReadable = false;
  #gate: (() => void) | undefined;
  #disposed = false;

  constructor(
    private readonly client: Client,
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
    this.#gated = true;
    if (this.#gate) return;
    const c = this.client as unknown as AedesClientInternals;
    const next = c._nextBatch;
    this.#gate = () => {
      if (this.#gated) this.#missedReadable = true;
      else next();
    };
    c.conn.removeListener('readable', next);
    c.conn.on('readable', this.#gate);
  }

  #openGate(): void {
    this.#gated = false;
    if (!this.#missedReadable) return;
    this.#missedReadable = false;
    (this.client as unknown as AedesClientInternals)._nextBatch();
  }
}
