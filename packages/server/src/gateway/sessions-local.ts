import { type Logger, PlatformError } from '@bulwark/core';
import type { EventBus } from '../bus/index.js';
import type { IdentityService, PeerCertificate } from '../identity/index.js';
import type { RegistryService } from '../registry/index.js';
import { type Admission, type DeliveryOptions, type KickReason, type LiveSession, type SessionConnection, type SessionDirectory, type SessionHandle, type SessionTable, usesSerial } from './sessions.js';

export interface LocalSessionTableDeps {
  readonly identity: Pick<IdentityService, 'admitSession' | 'checkSession'>;
  readonly registry: Pick<RegistryService, 'recordConnect' | 'recordDisconnect'>;
  readonly bus: EventBus;
  readonly log: Logger;
  /** Cluster mode: where this node claims the sessions it holds (none in embedded mode). */
  readonly directory?: SessionDirectory;
}

class LocalSession implements SessionHandle {
  endReason: string | undefined;
  reported = false;
  /** The directory's claim for this session (0 without a directory). */
  claim = 0;

  constructor(
    readonly connection: SessionConnection,
    private readonly onClosed: (s: LocalSession, reason: string) => void,
  ) {}

  get deviceId(): string {
    return this.connection.peer.deviceId;
  }

  get peer(): PeerCertificate {
    return this.connection.peer;
  }

  ending(reason: string): void {
    this.endReason ??= reason;
  }

  closed(transportReason: string): string | undefined {
    if (this.reported) return undefined;
    this.reported = true;
    const why = this.endReason ?? transportReason;
    this.onClosed(this, why);
    return why;
  }
}

/** The session table of one process (embedded mode): a map from device id to its live session. */
export class LocalSessionTable implements SessionTable {
  readonly #sessions = new Map<string, LocalSession>();
  readonly #unsubscribe: (() => void)[] = [];
  /**
   * Counts the revocations, suspensions and decommissionings heard. An admission during
   * which none arrived needs no second read: every one committed before it began is in what
   * it read, and every one heard after it registered finds the session and kicks it.
   */
  #kicksHeard = 0;

  constructor(private readonly deps: LocalSessionTableDeps) {}

  async admit(connection: SessionConnection): Promise<Admission> {
    const { peer } = connection;
    const kicksBefore = this.#kicksHeard;
    try {
      await this.deps.identity.admitSession(peer);
    } catch (err) {
      return { admitted: false, reason: 'not_admitted', message: err instanceof PlatformError ? err.message : 'internal error' };
    }
    const { directory } = this.deps;
    let claim = 0;
    if (directory) {
      try {
        claim = await directory.claim(peer.deviceId);
      } catch (err) {
        this.deps.log.warn({ err, deviceId: peer.deviceId }, 'cannot record the session in the cluster directory: refusing it for now');
        return { admitted: false, reason: 'unavailable', message: 'the cluster cannot take sessions now; retry later' };
      }
    }
    // Registered from here on, so that a revocation or suspension arriving now finds it; one that
    // arrived while admitSession was reading is caught by the re-check below.
    const session = new LocalSession(connection, (s, why) => this.#closed(s, why));
    session.claim = claim;
    const older = this.#sessions.get(peer.deviceId);
    this.#sessions.set(peer.deviceId, session);
    if (older) this.#end(older, 'taken_over');
    if (directory?.newerClaim(peer.deviceId, claim)) this.#end(session, 'taken_over');
    // With its claim: a connect that lands after a newer session's (another node's) changes nothing.
    void this.deps.registry.recordConnect(peer.deviceId, claim, connection.address).catch((err: unknown) => this.deps.log.error({ err }, 'could not record a connect'));
    if (this.#kicksHeard !== kicksBefore) {
      void this.deps.identity.checkSession(peer).catch(() => {
        if (this.#sessions.get(peer.deviceId) === session) this.#end(session, 'admission_revoked');
      });
    }
    return { admitted: true, session };
  }

  isConnected(deviceId: string): boolean {
    return this.#sessions.has(deviceId);
  }

  isHere(deviceId: string): boolean {
    return this.#sessions.has(deviceId);
  }

  publishToDevice(deviceId: string, topic: string, payload: Buffer, qos: 0 | 1, options?: DeliveryOptions): Promise<boolean> {
    const session = this.#sessions.get(deviceId);
    return session ? session.connection.deliver(topic, payload, qos, options) : Promise.resolve(false);
  }

  async kick(deviceId: string, reason: KickReason, match: (s: LiveSession) => boolean = () => true): Promise<boolean> {
    const session = this.#sessions.get(deviceId);
    if (!session || !match(session)) return false;
    this.#end(session, reason);
    return true;
  }

  /**
   * Cluster mode: another node claimed the device with `claim`; a session here with an older
   * claim is taken over. Resolves whether one was ended.
   */
  async claimedElsewhere(deviceId: string, claim: number): Promise<boolean> {
    return this.kick(deviceId, 'taken_over', (s) => (s as LocalSession).claim < claim);
  }

  /**
   * Cluster mode: `session` holds a new claim after this node lost its lease; connectivity is
   * recorded again. False when the session is no longer this node's current one.
   */
  reclaim(session: LiveSession, claim: number): boolean {
    const current = this.#sessions.get(session.deviceId);
    if (current !== session) return false;
    current.claim = claim;
    if (this.deps.directory?.newerClaim(session.deviceId, claim)) this.#end(current, 'taken_over');
    else void this.deps.registry.recordConnect(session.deviceId, claim, current.connection.address).catch((err: unknown) => this.deps.log.error({ err }, 'could not record a connect'));
    return true;
  }

  /** The directory claim of the device's session here, if it has one. */
  claimOf(deviceId: string): number | undefined {
    return this.#sessions.get(deviceId)?.claim;
  }

  local(): IterableIterator<LiveSession> {
    return this.#sessions.values();
  }

  get localCount(): number {
    return this.#sessions.size;
  }

  start(): void {
    if (this.#unsubscribe.length > 0) return;
    const { bus } = this.deps;
    this.#unsubscribe.push(
      bus.subscribe('certificate.revoked', (e) => this.#heard(e.deviceId, 'certificate_revoked', usesSerial(e.serial))),
      bus.subscribe('device.suspended', (e) => this.#heard(e.deviceId, 'device_suspended')),
      bus.subscribe('device.decommissioned', (e) => this.#heard(e.deviceId, 'device_decommissioned')),
    );
  }

  stop(): void {
    for (const u of this.#unsubscribe.splice(0)) u();
    for (const s of this.#sessions.values()) s.ending('server_stopping');
  }

  #heard(deviceId: string, reason: KickReason, match?: (s: LiveSession) => boolean): void {
    this.#kicksHeard += 1;
    void this.kick(deviceId, reason, match);
  }

  #end(session: LocalSession, reason: string): void {
    session.ending(reason);
    this.deps.log.info({ deviceId: session.deviceId, reason }, 'disconnecting device');
    session.connection.end();
  }

  #closed(session: LocalSession, why: string): void {
    if (this.#sessions.get(session.deviceId) !== session) return;
    this.#sessions.delete(session.deviceId);
    this.deps.directory?.release(session.deviceId, session.claim);
    void this.deps.registry.recordDisconnect(session.deviceId, session.claim, why).catch((err: unknown) => this.deps.log.error({ err }, 'could not record a disconnect'));
  }
}
