import type { Logger } from '@bulwark/core';
import { jetstream } from '@nats-io/jetstream';
import { type KV, Kvm } from '@nats-io/kv';
import { type NatsLink, STOP_STEP_MS, settledWithin, whileElecting } from './nats.js';

export const LEASES_BUCKET = 'bulwark_leases';

/** A job that must run on exactly one node at a time. */
export interface SingletonJob {
  start(): void | Promise<void>;
  stop(): void | Promise<void>;
}

interface Held {
  readonly job: SingletonJob;
  /** One of several equal jobs (a stream partition's writer) that the nodes share out evenly. */
  readonly shared: boolean;
  /** KV revision of the last renewal: the fencing token, and what the next renewal must match. */
  revision: number;
  renewedAt: number;
  leading: boolean;
}

/**
 * Singletons under leases in a NATS KV bucket whose max age is the lease (2.9.10 has no
 * per-key TTL). A node takes a free lease with `create` (fails while another holds it) and
 * renews it with `update` on the revision it holds (fails once another took it), every fifth
 * of the lease. A node that cannot renew within two thirds of the lease stops the job on its
 * own, before the lease expires and another node may start it: two leaders never overlap
 * while clocks run at the same rate.
 */
export class Leases {
  readonly #jobs = new Map<string, Held>();
  #timer: NodeJS.Timeout | undefined;
  #ticking: Promise<void> = Promise.resolve();
  #peers: (() => Promise<number>) | undefined;
  #share = Number.POSITIVE_INFINITY;

  private constructor(
    private readonly kv: KV,
    private readonly nodeId: string,
    private readonly leaseMs: number,
    private readonly log: Logger,
  ) {}

  static async open(link: NatsLink, nodeId: string, options: { leaseMs: number; replicas?: number; log: Logger }): Promise<Leases> {
    const kv = await whileElecting(() => new Kvm(jetstream(link.nc)).create(LEASES_BUCKET, { history: 1, ttl: options.leaseMs, replicas: options.replicas ?? 1 }));
    return new Leases(kv, nodeId, options.leaseMs, options.log);
  }

  /** Registers a singleton; it starts when this node takes its lease. */
  add(name: string, job: SingletonJob): void {
    this.#jobs.set(name, { job, shared: false, revision: 0, renewedAt: 0, leading: false });
  }

  /**
   * Registers one of a set of equal jobs that the live nodes share: a node leads at most
   * its share (the set divided by the live nodes, rounded up) and gives up the rest, which
   * the other nodes then take.
   */
  addShared(name: string, job: SingletonJob): void {
    this.#jobs.set(name, { job, shared: true, revision: 0, renewedAt: 0, leading: false });
  }

  /** How many nodes are alive (for the shares of shared jobs). */
  countPeers(peers: () => Promise<number>): void {
    this.#peers = peers;
  }

  /** Names of the singletons this node leads now. */
  leads(): string[] {
    return [...this.#jobs]
      .filter(([, h]) => h.leading)
      .map(([name]) => name)
      .sort();
  }

  async start(): Promise<void> {
    await this.tick();
    this.#timer = setInterval(
      () => {
        this.#ticking = this.#ticking.then(() => this.tick());
      },
      Math.max(100, Math.floor(this.leaseMs / 5)),
    );
    this.#timer.unref();
  }

  /** Takes free leases, renews held ones, and stops jobs whose lease could not be renewed in time. */
  async tick(): Promise<void> {
    const shared = [...this.#jobs.values()].filter((h) => h.shared);
    if (this.#peers && shared.length > 0) {
      const peers = await this.#peers().catch(() => 0);
      if (peers > 0) this.#share = Math.ceil(shared.length / peers);
    }
    let sharedHeld = shared.filter((h) => h.leading).length;
    for (const [name, held] of this.#jobs) {
      if (held.shared && held.leading && sharedHeld > this.#share) {
        // More than this node's share: hand it over (another node takes it on its next tick).
        sharedHeld -= 1;
        await this.#stopLeading(held);
        await this.#handOver(name, held);
        continue;
      }
      if (held.shared && !held.leading && sharedHeld >= this.#share) continue;
      const value = JSON.stringify({ node: this.nodeId, at: Date.now() });
      try {
        held.revision = held.leading ? await this.kv.update(name, value, held.revision) : await this.kv.create(name, value);
        held.renewedAt = Date.now();
        if (!held.leading) {
          held.leading = true;
          if (held.shared) sharedHeld += 1;
          this.log.info({ singleton: name, fence: held.revision }, 'this node now leads a singleton');
          await held.job.start();
        }
      } catch (err) {
        // Another node holds it (create refused), took it (update refused), or NATS is away.
        if (held.leading && (isConflict(err) || Date.now() - held.renewedAt > (this.leaseMs * 2) / 3)) {
          held.leading = false;
          if (held.shared) sharedHeld -= 1;
          this.log.warn({ singleton: name, err: (err as Error).message }, "lost a singleton's lease: stopping it here");
          await held.job.stop();
        }
      }
    }
  }

  /** Stops every job and gives up the leases, so that another node takes them at once. */
  async stop(): Promise<void> {
    clearInterval(this.#timer);
    // A round of renewals under way when NATS went away waits for the client's reconnects.
    await settledWithin(this.#ticking, STOP_STEP_MS, 'lease renewals', this.log);
    const handovers: Promise<void>[] = [];
    for (const [name, held] of this.#jobs) {
      if (!held.leading) continue;
      await this.#stopLeading(held);
      handovers.push(this.#handOver(name, held));
    }
    // Given back together, so that other nodes take them at once; unanswered, each expires after leaseMs.
    await settledWithin(Promise.all(handovers), STOP_STEP_MS, 'hand the singletons over', this.log);
  }

  async #stopLeading(held: Held): Promise<void> {
    held.leading = false;
    await held.job.stop();
  }

  /** Gives the lease back (after its job stopped); never rejects. */
  #handOver(name: string, held: Held): Promise<void> {
    return this.kv.delete(name, { previousSeq: held.revision }).then(
      () => this.log.info({ singleton: name }, 'this node handed a singleton over'),
      () => undefined,
    );
  }
}

function isConflict(err: unknown): boolean {
  return /wrong last sequence|key exists/i.test((err as Error).message ?? '');
}
