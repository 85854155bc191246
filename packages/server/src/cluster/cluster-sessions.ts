import type { Logger } from '@bulwark/core';
import { type MsgHdrs, type Subscription, headers } from '@nats-io/transport-node';
import type { EventBus } from '../bus/index.js';
import type { RegistryService } from '../registry/index.js';
import { LocalSessionTable, type LocalSessionTableDeps, type Admission, type DeliveryOptions, type KickReason, type LiveSession, type SessionConnection, type SessionTable } from '../gateway/index.js';
import type { NatsLink } from './nats.js';
import { KvSessionDirectory } from './session-directory.js';

/** How long a delivery routed to another node may take before it counts as not delivered. */
const DELIVER_TIMEOUT_MS = 5_000;

export interface ClusterSessionTableDeps extends Omit<LocalSessionTableDeps, 'directory'> {
  readonly registry: LocalSessionTableDeps['registry'] & Pick<RegistryService, 'forgetClaimsAbove'>;
  readonly link: NatsLink;
  readonly nodeId: string;
  readonly identity: LocalSessionTableDeps['identity'];
  readonly bus: EventBus;
  readonly log: Logger;
  /** KV replicas of the session directory (the NATS cluster's size, up to 3). */
  readonly replicas?: number;
}

const deliverSubject = (nodeId: string) => `bulwark.node.${nodeId}.deliver`;

/**
 * The session table of cluster mode: this node's sessions in a `LocalSessionTable`, every
 * node's in the session directory (NATS KV). A device holds one session in the cluster: a
 * connection on this node claims it, and the node holding an older claim ends its session
 * (`taken_over`). Deliveries to a device on another node go to that node over NATS; kicks
 * reach every node as bus events.
 */
export class ClusterSessionTable implements SessionTable {
  readonly #local: LocalSessionTable;
  readonly #directory: KvSessionDirectory;
  #subscription: Subscription | undefined;
  #serving: Promise<void> | undefined;
  #offReconnect: (() => void) | undefined;

  private constructor(
    private readonly deps: ClusterSessionTableDeps,
    directory: KvSessionDirectory,
    local: LocalSessionTable,
  ) {
    this.#directory = directory;
    this.#local = local;
  }

  static async open(deps: ClusterSessionTableDeps): Promise<ClusterSessionTable> {
    // The directory tells the local table about newer claims; the table needs the directory to claim.
    const ref: { local?: LocalSessionTable } = {};
    const directory = await KvSessionDirectory.open(
      deps.link,
      deps.nodeId,
      deps.log,
      (deviceId, owner) => {
        void ref.local?.claimedElsewhere(deviceId, owner.claim);
      },
      deps.replicas,
    );
    ref.local = new LocalSessionTable({ ...deps, directory });
    return new ClusterSessionTable(deps, directory, ref.local);
  }

  get directory(): KvSessionDirectory {
    return this.#directory;
  }

  async admit(connection: SessionConnection): Promise<Admission> {
    if (!this.deps.link.connected) return { admitted: false, reason: 'unavailable', message: 'the cluster bus is unreachable; retry later' };
    return this.#local.admit(connection);
  }

  isConnected(deviceId: string): boolean {
    return this.#local.isConnected(deviceId) || this.#directory.ownerOf(deviceId) !== undefined;
  }

  isHere(deviceId: string): boolean {
    return this.#local.isConnected(deviceId);
  }

  async publishToDevice(deviceId: string, topic: string, payload: Buffer, qos: 0 | 1, options?: DeliveryOptions): Promise<boolean> {
    if (this.#local.isConnected(deviceId)) return this.#local.publishToDevice(deviceId, topic, payload, qos, options);
    const owner = this.#directory.ownerOf(deviceId);
    if (!owner) return false;
    const h = headers();
    h.set('device', deviceId);
    h.set('topic', topic);
    h.set('qos', String(qos));
    if (options?.expiresAt !== undefined) h.set('expires-at', String(options.expiresAt));
    if (options?.responseTopic !== undefined) h.set('response-topic', options.responseTopic);
    if (options?.correlationData !== undefined) h.set('correlation', options.correlationData.toString('base64'));
    try {
      const reply = await this.deps.link.nc.request(deliverSubject(owner.node), payload, { timeout: DELIVER_TIMEOUT_MS, headers: h });
      return reply.string() === '1';
    } catch (err) {
      this.deps.log.warn({ err, deviceId, node: owner.node }, 'a delivery routed to another node failed');
      return false;
    }
  }

  kick(deviceId: string, reason: KickReason, match?: (session: LiveSession) => boolean): Promise<boolean> {
    return this.#local.kick(deviceId, reason, match);
  }

  local(): IterableIterator<LiveSession> {
    return this.#local.local();
  }

  get localCount(): number {
    return this.#local.localCount;
  }

  /**
   * Loads the directory, forgets stored claims it never issued, serves deliveries routed here,
   * and re-checks sessions after every NATS reconnect.
   */
  async load(): Promise<void> {
    await this.#directory.start();
    // The store keeps each device's last claim and refuses a connect with an older one. Claims
    // above the bucket's last revision come from a bucket it replaced (a new one counts from 1
    // again): left there, they would refuse every connect of their devices. (A claim another node
    // records between the read and the write is set to 0 too: 0 is "no claim known", harmless.)
    const last = await this.#directory.lastRevision();
    const forgotten = await this.deps.registry.forgetClaimsAbove(last);
    if (forgotten > 0) this.deps.log.warn({ forgotten, lastRevision: last }, 'stored session claims above the session directory forgotten (the directory was made anew)');
    this.#subscription = this.deps.link.nc.subscribe(deliverSubject(this.deps.nodeId));
    this.#serving = this.#serve(this.#subscription);
    this.#offReconnect = this.deps.link.onReconnect(() => void this.#resync());
  }

  start(): void {
    this.#local.start();
  }

  stop(): void {
    this.#offReconnect?.();
    this.#subscription?.unsubscribe();
    this.#local.stop();
  }

  async close(): Promise<void> {
    this.stop();
    await this.#serving;
    await this.#directory.stop();
  }

  async #serve(sub: Subscription): Promise<void> {
    for await (const msg of sub) {
      const h = msg.headers;
      const deviceId = h?.get('device') ?? '';
      const topic = h?.get('topic') ?? '';
      const delivered = deviceId !== '' && topic !== '' ? await this.#local.publishToDevice(deviceId, topic, Buffer.from(msg.data), h?.get('qos') === '0' ? 0 : 1, optionsOf(h)).catch(() => false) : false;
      msg.respond(delivered ? '1' : '0');
    }
  }

  /**
   * This node's lease expired while it was silent: the others removed its claims and marked
   * its devices offline. Every local session claims its device again (a newer claim by
   * another node, made meanwhile, ends the local session as a takeover).
   */
  async reclaimAll(): Promise<void> {
    let reclaimed = 0;
    for (const s of [...this.#local.local()]) {
      try {
        const claim = await this.#directory.claim(s.deviceId);
        if (this.#local.reclaim(s, claim)) reclaimed += 1;
      } catch (err) {
        this.deps.log.warn({ err, deviceId: s.deviceId }, 'could not claim a session again');
      }
    }
    this.deps.log.info({ reclaimed }, 'sessions claimed again after the lease expired');
  }

  /**
   * After NATS was away this node may have missed events and claims: every local session is
   * checked again — admission (a revocation may have passed) and claim (another node may
   * have taken the device, or the claim expired with this node's lease).
   */
  async #resync(): Promise<void> {
    const sessions = [...this.#local.local()];
    let ended = 0;
    for (const s of sessions) {
      const claim = this.#local.claimOf(s.deviceId) ?? 0;
      const [admitted, where] = await Promise.all([
        this.deps.identity.checkSession(s.peer).then(
          () => true,
          () => false,
        ),
        this.#directory.stillMine(s.deviceId, claim).catch(() => 'mine' as const),
      ]);
      const reason: KickReason | undefined = !admitted ? 'admission_revoked' : where === 'taken' ? 'taken_over' : where === 'gone' ? 'claim_lost' : undefined;
      if (reason && (await this.#local.kick(s.deviceId, reason, (x) => x === s))) ended += 1;
    }
    this.deps.log.info({ sessions: sessions.length, ended }, 'sessions re-checked after the NATS connection came back');
  }
}

function optionsOf(h: MsgHdrs | undefined): DeliveryOptions | undefined {
  if (!h) return undefined;
  const expiresAt = h.get('expires-at');
  const responseTopic = h.get('response-topic');
  const correlation = h.get('correlation');
  if (!expiresAt && !responseTopic && !correlation) return undefined;
  return {
    ...(expiresAt ? { expiresAt: Number(expiresAt) } : {}),
    ...(responseTopic ? { responseTopic } : {}),
    ...(correlation ? { correlationData: Buffer.from(correlation, 'base64') } : {}),
  };
}
