import type { Logger } from '@bulwark/core';
import { type JetStreamManager, jetstream, jetstreamManager } from '@nats-io/jetstream';
import { type KV, type KvWatchEntry, Kvm } from '@nats-io/kv';
import type { QueuedIterator } from '@nats-io/transport-node';
import type { SessionDirectory } from '../gateway/index.js';
import { type NatsLink, readKvFromLeader, whileElecting } from './nats.js';

export const SESSIONS_BUCKET = 'bulwark_sessions';
const SNAPSHOT_TIMEOUT_MS = 30_000;
/** How often the watch is checked for a stall. */
const WATCHDOG_MS = 2_000;

/** What the directory holds per device. */
interface Claim {
  /** Device id (keys are encoded: device ids may hold ":" and end with "."). */
  readonly d: string;
  /** Node id. */
  readonly n: string;
  readonly at: number;
}

export interface SessionOwner {
  readonly node: string;
  readonly claim: number;
}

const keyOf = (deviceId: string) => Buffer.from(deviceId, 'utf8').toString('base64url');

/**
 * The cluster's session directory: device → node, in a NATS KV bucket (one value per key).
 * A claim is the revision of the put, so claims of one device are ordered across nodes.
 * Every node watches the bucket: it learns where each device is (to route deliveries and
 * answer `isConnected`) and when another node took one of its devices (`onClaimed`).
 */
export class KvSessionDirectory implements SessionDirectory {
  readonly #owners = new Map<string, SessionOwner>();
  /** Newest claim seen per device, also for this node's own (a watch can run ahead of a put's reply). */
  readonly #latest = new Map<string, number>();
  #watching: Promise<void> | undefined;
  #stopWatch: (() => void) | undefined;
  /** Highest bucket revision the watch has delivered. */
  #highest = 0;
  #snapshot = { until: Infinity, done: () => undefined as void };
  #stale = 0;
  #watchdog: NodeJS.Timeout | undefined;
  /** `#highest` at the watchdog's previous look (-1: none yet). */
  #highestAtLastLook = -1;
  #looking = false;

  private constructor(
    private readonly kv: KV,
    private readonly jsm: JetStreamManager,
    private readonly nodeId: string,
    private readonly log: Logger,
    private readonly onClaimed: (deviceId: string, owner: SessionOwner) => void,
  ) {}

  static async open(link: NatsLink, nodeId: string, log: Logger, onClaimed: (deviceId: string, owner: SessionOwner) => void, replicas = 1): Promise<KvSessionDirectory> {
    const kv = await whileElecting(() => new Kvm(jetstream(link.nc)).create(SESSIONS_BUCKET, { history: 1, replicas }));
    return new KvSessionDirectory(kv, await jetstreamManager(link.nc), nodeId, log, onClaimed);
  }

  /**
   * Loads every claim and follows new ones. Claims this node left from an earlier life (it
   * restarted) are removed: no session survives a restart of its node.
   */
  async start(): Promise<void> {
    this.#follow(await this.kv.watch(), true);
    // The snapshot is in once the watch has reached the bucket's last revision as of now.
    const status = await this.kv.status();
    const until = status.streamInfo.state.last_seq;
    if (status.values > 0 && this.#highest < until) {
      let timer: NodeJS.Timeout | undefined;
      const loaded = await Promise.race([new Promise<boolean>((resolve) => (this.#snapshot = { until, done: () => resolve(true) })), new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), SNAPSHOT_TIMEOUT_MS)))]);
      clearTimeout(timer);
      if (!loaded) this.log.warn({ until, highest: this.#highest }, 'the session directory snapshot is still loading; going on with what arrived');
    }
    if (this.#stale > 0) this.log.info({ stale: this.#stale }, "removed this node's session claims from before its restart");
    this.#watchdog = setInterval(() => void this.#lookAtWatch(), WATCHDOG_MS);
    this.#watchdog.unref();
  }

  /** Applies every change of the bucket as the watch delivers it; `first`: the watch that loads the directory at start. */
  #follow(watch: QueuedIterator<KvWatchEntry>, first: boolean): void {
    this.#stopWatch = () => watch.stop();
    this.#watching = (async () => {
      for await (const e of watch) this.#apply(e, first);
    })().catch((err: unknown) => this.log.error({ err }, 'the session directory watch ended'));
  }

  #apply(e: KvWatchEntry, first: boolean): void {
    this.#highest = Math.max(this.#highest, e.revision);
    if (this.#highest >= this.#snapshot.until) this.#snapshot.done();
    if (e.operation !== 'PUT') {
      const deviceId = Buffer.from(e.key, 'base64url').toString('utf8');
      const owner = this.#owners.get(deviceId);
      // A delete names no claim: it ends the owner's entry only when nothing newer replaced it.
      if (owner && owner.claim < e.revision) this.#owners.delete(deviceId);
      return;
    }
    let value: Claim;
    try {
      value = e.json<Claim>();
    } catch {
      return;
    }
    this.#latest.set(value.d, Math.max(this.#latest.get(value.d) ?? 0, e.revision));
    if (value.n === this.nodeId) {
      if (first && !e.isUpdate) {
        this.#stale += 1;
        void this.kv.delete(e.key, { previousSeq: e.revision }).catch(() => undefined);
      }
      this.#owners.delete(value.d);
      return;
    }
    this.#owners.set(value.d, { node: value.n, claim: e.revision });
    this.onClaimed(value.d, { node: value.n, claim: e.revision });
  }

  /**
   * The watch's consumer can stall without an error: after the loss of a NATS server, 2.9.10
   * may leave it (or place its replacement) on the dead server. When the bucket is ahead of
   * the watch and the watch has not moved since the last look, it follows again from where it
   * stopped (history 1: each key's newest value since then is delivered).
   */
  async #lookAtWatch(): Promise<void> {
    if (this.#looking) return;
    this.#looking = true;
    const seen = this.#highest;
    try {
      const last = (await this.jsm.streams.info(`KV_${SESSIONS_BUCKET}`)).state.last_seq;
      if (last > seen && seen === this.#highestAtLastLook) {
        this.log.warn({ seen, last }, 'the session directory watch stalled: following the bucket again from where it stopped');
        this.#stopWatch?.();
        this.#follow(await this.kv.watch({ resumeFromRevision: seen + 1 }), false);
      }
    } catch (err) {
      // NATS unreachable or electing: the next look tries again.
      this.log.debug({ err }, 'could not check the session directory watch');
    } finally {
      this.#looking = false;
    }
    this.#highestAtLastLook = seen;
  }

  async claim(deviceId: string): Promise<number> {
    // A device waits for its CONNACK while the bucket elects a new leader (a NATS server died), rather than being refused.
    const revision = await whileElecting(() => this.kv.put(keyOf(deviceId), JSON.stringify({ d: deviceId, n: this.nodeId, at: Date.now() } satisfies Claim)));
    this.#latest.set(deviceId, Math.max(this.#latest.get(deviceId) ?? 0, revision));
    return revision;
  }

  /**
   * The bucket's last revision now: no claim issued so far is higher. A claim is a revision of
   * the bucket (its stream's sequence, which a put or a delete of any key moves on), so the
   * claims of a device only grow, across nodes, NATS servers restarted or lost, and leases lost
   * and claimed again, as long as the bucket lives; a bucket made anew (JetStream's storage
   * lost, the bucket deleted) counts from 1 again.
   */
  async lastRevision(): Promise<number> {
    return (await this.kv.status()).streamInfo.state.last_seq;
  }

  release(deviceId: string, claim: number): void {
    if (claim === 0) return;
    // Only while the claim is still the device's latest: a takeover since then stays.
    void this.kv.delete(keyOf(deviceId), { previousSeq: claim }).catch(() => undefined);
  }

  newerClaim(deviceId: string, claim: number): boolean {
    return (this.#latest.get(deviceId) ?? 0) > claim;
  }

  /** The node holding the device's session, when it is another node. */
  ownerOf(deviceId: string): SessionOwner | undefined {
    return this.#owners.get(deviceId);
  }

  /** Devices another node holds, by node. */
  countsByNode(): Map<string, number> {
    const counts = new Map<string, number>();
    for (const o of this.#owners.values()) counts.set(o.node, (counts.get(o.node) ?? 0) + 1);
    return counts;
  }

  /**
   * Removes the claims of nodes that are gone (their lease expired), each only while it is
   * still the device's latest. Returns the devices whose claims were removed.
   */
  async forgetNodes(gone: ReadonlySet<string>): Promise<number> {
    let removed = 0;
    for (const [deviceId, owner] of this.#owners) {
      if (!gone.has(owner.node)) continue;
      this.#owners.delete(deviceId);
      removed += 1;
      await this.kv.delete(keyOf(deviceId), { previousSeq: owner.claim }).catch(() => undefined);
    }
    return removed;
  }

  /**
   * After a reconnect: whether this node's claim is still the device's current one (read from
   * the stream's leader: a lagging replica's "no such key" would end a live session as `claim_lost`).
   */
  async stillMine(deviceId: string, claim: number): Promise<'mine' | 'taken' | 'gone'> {
    const e = await readKvFromLeader(this.jsm, SESSIONS_BUCKET, keyOf(deviceId));
    if (!e) return 'gone';
    if (e.seq === claim) return 'mine';
    return e.seq > claim ? 'taken' : 'gone';
  }

  async stop(): Promise<void> {
    clearInterval(this.#watchdog);
    this.#stopWatch?.();
    await this.#watching;
  }
}
