import type { Logger } from '@bulwark/core';
import { type JetStreamManager, jetstream, jetstreamManager } from '@nats-io/jetstream';
import { type KV, Kvm } from '@nats-io/kv';
import { type NatsLink, STOP_STEP_MS, readKvFromLeader, settledWithin, whileElecting } from './nats.js';

export const NODES_BUCKET = 'bulwark_nodes';

/** One node as the cluster sees it. */
export interface ClusterNode {
  readonly id: string;
  readonly version: string;
  readonly startedAt: number;
  readonly heartbeatAt: number;
  /** Device sessions the node holds. */
  readonly sessions: number;
  /** Singletons the node leads (rollout engine, retention, CRL signing). */
  readonly leads: readonly string[];
  /** Whether its lease is current (last heartbeat within the lease). */
  readonly alive: boolean;
  /** Whether it is draining (out of the load balancer, ending its sessions). */
  readonly draining: boolean;
  /** The NATS server it is connected to (host:port). */
  readonly natsServer?: string;
  /** Fingerprints of the master keys the node holds (never the keys); absent from older nodes. */
  readonly masterKeyIds?: readonly string[];
  /** Fingerprint of the node's firmware root key set, `none` without one; absent from older nodes. */
  readonly firmwareRootId?: string;
}

/** The keys a node holds, by fingerprint, published with its heartbeat. */
export type NodeKeys = Pick<ClusterNode, 'masterKeyIds' | 'firmwareRootId'>;

export interface NodeFacts {
  sessions(): number;
  leads(): readonly string[];
  draining(): boolean;
  keys?(): NodeKeys;
}

/**
 * Node heartbeats in a NATS KV bucket whose entries expire after the lease (a bucket-wide
 * max age: Debian's nats-server 2.9.10 ignores per-key TTLs). A node that stops beating is
 * gone once its lease is over: `onGone` is told, once per node, so that the survivors clean
 * what it held.
 */
export class ClusterNodes {
  #timer: NodeJS.Timeout | undefined;
  readonly #known = new Set<string>();
  /** The bucket's keys at the last successful listing. */
  #lastKeys: string[] = [];
  #beating: Promise<void> = Promise.resolve();
  /** KV revision of this node's last heartbeat (0 before the first). */
  #revision = 0;

  private constructor(
    private readonly kv: KV,
    private readonly jsm: JetStreamManager,
    private readonly natsServer: () => string,
    private readonly self: { readonly id: string; readonly version: string; readonly startedAt: number },
    private readonly facts: NodeFacts,
    private readonly leaseMs: number,
    private readonly log: Logger,
    private readonly onGone: (nodeId: string, decidedAt: number) => Promise<void>,
    private readonly onLeaseLost: () => Promise<void>,
    /** Wall clock (heartbeat times are compared across nodes); a test makes one node's beats late. */
    private readonly now: () => number,
  ) {}

  static async open(
    link: NatsLink,
    self: { id: string; version: string; startedAt: number },
    facts: NodeFacts,
    options: {
      leaseMs: number;
      replicas?: number;
      log: Logger;
      onGone: (nodeId: string, decidedAt: number) => Promise<void>;
      onLeaseLost: () => Promise<void>;
      now?: () => number;
    },
  ): Promise<ClusterNodes> {
    const kv = await whileElecting(() => new Kvm(jetstream(link.nc)).create(NODES_BUCKET, { history: 1, ttl: options.leaseMs, replicas: options.replicas ?? 1 }));
    return new ClusterNodes(kv, await jetstreamManager(link.nc, { timeout: 2_000 }), () => link.nc.getServer(), self, facts, options.leaseMs, options.log, options.onGone, options.onLeaseLost, options.now ?? Date.now);
  }

  /** Beats now, then every fifth of the lease. */
  async start(): Promise<void> {
    await this.beat();
    this.#timer = setInterval(
      () => {
        this.#beating = this.#beating.then(() => this.beat()).catch((err: unknown) => this.log.warn({ err }, 'cluster heartbeat failed'));
      },
      Math.max(200, Math.floor(this.leaseMs / 5)),
    );
    this.#timer.unref();
  }

  /** Writes this node's heartbeat and looks for nodes whose lease ran out. */
  async beat(): Promise<void> {
    const now = this.now();
    const value = JSON.stringify({
      id: this.self.id,
      version: this.self.version,
      startedAt: this.self.startedAt,
      heartbeatAt: now,
      sessions: this.facts.sessions(),
      leads: this.facts.leads(),
      draining: this.facts.draining(),
      natsServer: this.natsServer(),
      ...this.facts.keys?.(),
    });
    if (this.#revision === 0) this.#revision = await this.kv.put(this.self.id, value);
    else {
      try {
        this.#revision = await this.kv.update(this.self.id, value, this.#revision);
      } catch (err) {
        if (!/wrong last sequence/i.test((err as Error).message)) throw err;
        // This node fell silent for longer than its lease (a stall, a partition): the others
        // have removed its claims and marked its devices offline. It takes them back.
        this.log.warn({ node: this.self.id }, "this node's lease expired while it was silent: claiming its sessions again");
        this.#revision = await this.kv.put(this.self.id, value);
        await this.onLeaseLost();
      }
    }
    const alive = new Set((await this.list()).filter((n) => n.alive).map((n) => n.id));
    for (const id of alive) this.#known.add(id);
    for (const id of [...this.#known]) {
      if (alive.has(id) || id === this.self.id) continue;
      const decidedAt = this.now();
      if (await this.#fence(id)) {
        this.log.warn({ node: id }, "a node's lease expired: cleaning the sessions it held");
        await this.onGone(id, decidedAt);
      }
      this.#known.delete(id);
    }
  }

  /**
   * Makes sure a node seen silent for longer than its lease learns it: its heartbeat entry is
   * deleted, only while it is still the one read (false when the node beat meanwhile). A node
   * only late with its beats (a stall, a slow NATS server) could otherwise go on holding
   * sessions that the others had just marked offline and unclaimed: its next heartbeat finds
   * the entry gone and it claims its sessions again (onLeaseLost).
   */
  async #fence(id: string): Promise<boolean> {
    const e = await readKvFromLeader(this.jsm, NODES_BUCKET, id);
    if (!e) return true;
    let heartbeatAt = 0;
    try {
      heartbeatAt = e.json<{ heartbeatAt: number }>().heartbeatAt;
    } catch {
      // Not a heartbeat: nothing to keep.
    }
    // Back already (restarted under the same id, or its beat was only late).
    if (this.now() - heartbeatAt < this.leaseMs) return false;
    try {
      await this.kv.delete(id, { previousSeq: e.seq });
      return true;
    } catch (err) {
      if (/wrong last sequence/i.test((err as Error).message)) return false;
      throw err;
    }
  }

  /** Every node with a heartbeat still in the bucket (each read from the stream's leader). */
  async list(): Promise<ClusterNode[]> {
    const now = this.now();
    const nodes: ClusterNode[] = [];
    for (const key of await this.#keys()) {
      const e = await readKvFromLeader(this.jsm, NODES_BUCKET, key);
      if (!e) continue;
      try {
        const n = e.json<Omit<ClusterNode, 'alive'>>();
        nodes.push({ ...n, draining: n.draining === true, alive: now - n.heartbeatAt < this.leaseMs });
      } catch {
        // A value that is not a heartbeat is not a node.
      }
    }
    return nodes.sort((a, b) => a.id.localeCompare(b.id));
  }

  /**
   * The bucket's keys, from the stream's subject list (its leader answers). Not `kv.keys()`:
   * that makes a consumer each time, and after the loss of a NATS server, 2.9.10 still
   * places some of them on the dead one, where they time out (measured: about one in three).
   */
  async #keys(): Promise<string[]> {
    try {
      const info = await this.jsm.streams.info(`KV_${NODES_BUCKET}`, { subjects_filter: `$KV.${NODES_BUCKET}.>` });
      const keys = Object.keys(info.state.subjects ?? {}).map((subject) => subject.slice(`$KV.${NODES_BUCKET}.`.length));
      this.#lastKeys = keys;
      return keys;
    } catch (err) {
      // The stream's leader did not answer (a NATS server died, an election): the nodes known so
      // far are read one by one instead (direct reads, which any replica answers).
      this.log.debug({ err }, 'could not list the heartbeat bucket; reading the nodes known so far');
      return [...new Set([...this.#lastKeys, ...this.#known, this.self.id])];
    }
  }

  /** Treats `nodeId` as gone from now on if it never beats again (learned from its sessions). */
  know(nodeId: string): void {
    if (nodeId !== this.self.id) this.#known.add(nodeId);
  }

  async stop(): Promise<void> {
    clearInterval(this.#timer);
    await settledWithin(this.#beating, STOP_STEP_MS, 'heartbeat', this.log);
    // Leaving on purpose: the lease ends now rather than when it expires (unanswered: when it expires).
    await settledWithin(this.kv.delete(this.self.id), STOP_STEP_MS, 'heartbeat removal', this.log);
  }
}
