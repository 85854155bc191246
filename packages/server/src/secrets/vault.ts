import { randomBytes } from 'node:crypto';
import { type Clock, type IdGen, type Logger, PlatformError } from '@bulwark/core';
import { KEY_BYTES, open, seal } from './envelope.js';
import { openKeyFile } from './master-key-file.js';
import { type MasterKey, memoryMasterKey, openTokenMasterKey } from './master-key.js';
import { type RotationDeps, type RotationReport, rotateFile, rotateToNext, rotateToken } from './rotation.js';
import type { HsmToken } from './hsm-token.js';
import type { DataKeyRecord, MasterKeySource, SecretRepository } from './secrets.js';

export type { RotationReport } from './rotation.js';

/** What this node holds and what the store names (ids only: fingerprints, never keys). */
export interface MasterKeyStatus {
  /** The key new data keys are wrapped under: the one the store uses. */
  readonly masterKeyId: string;
  /** Every master key this node holds (the current one first, then the next). */
  readonly masterKeyIds: readonly string[];
  /** The key a rotation re-wraps under (BULWARK_MASTER_KEY_NEXT), when one is given. */
  readonly nextMasterKeyId: string | null;
  /** Stored data keys by the master key that wraps them. */
  readonly dataKeys: Readonly<Record<string, number>>;
}

export interface VaultDeps {
  readonly clock: Clock;
  readonly ids: IdGen;
  readonly log: Logger;
  /** Told each time a data key names a master key this node does not hold (it is refused). */
  readonly onMissingKey?: (masterKeyId: string) => void;
  /**
   * Cluster mode: the live nodes that do not hold the given master key. A rotation that
   * would wrap under a key some live node lacks is refused before anything changes.
   */
  readonly nodesLacking?: (masterKeyId: string) => Promise<string[]>;
}

/**
 * Envelope encryption for every secret the platform stores. Secrets are sealed with a data
 * key (AES-256-GCM); data keys are stored wrapped by the master key, which never touches
 * the store. Rotating the master key re-wraps the data keys only, in one transaction, so no
 * secret is re-encrypted and readers never see a half-rotated store.
 *
 * A node holds a ring of master keys: the current one and, when the operator gives it, the
 * next one. It opens a data key wrapped by any key of the ring, and refuses (fails closed,
 * naming the key id) one wrapped by a key it does not hold.
 */
export class SecretVault {
  /** The key the store uses (new data keys are wrapped under it). */
  #master!: MasterKey;
  /** Every master key this node holds, by id. */
  readonly #ring = new Map<string, MasterKey>();
  #next: MasterKey | undefined;
  /** Unwrapped data keys by id, so a read costs one AES-GCM open, not two. */
  readonly #dataKeys = new Map<string, Buffer>();
  #activeDataKeyId!: string;
  #rotating = false;

  private readonly clock: Clock;
  private readonly ids: IdGen;
  private readonly log: Logger;

  private constructor(
    private readonly repo: SecretRepository,
    private readonly source: MasterKeySource,
    private readonly deps: VaultDeps,
  ) {
    this.clock = deps.clock;
    this.ids = deps.ids;
    this.log = deps.log;
  }

  /** Loads (or on first start creates) the master key and the active data key. */
  static async open(repo: SecretRepository, source: MasterKeySource, deps: VaultDeps): Promise<SecretVault> {
    const vault = new SecretVault(repo, source, deps);
    await vault.#load();
    return vault;
  }

  /** The key the store uses: new data keys are wrapped under it. */
  get masterKeyId(): string {
    return this.#master.id;
  }

  /** Every master key this node holds (ids), the current one first. */
  get masterKeyIds(): readonly string[] {
    return [...this.#ring.keys()];
  }

  get createdMasterKey(): boolean {
    return this.#createdMasterKey;
  }

  #createdMasterKey = false;

  async #load(): Promise<void> {
    const stored = await this.repo.listDataKeys();
    if (this.source.kind === 'provided') this.#loadRing(this.source, stored);
    else if (this.source.kind === 'token') this.#loadToken(this.source, stored);
    else this.#loadFile(this.source.path, stored);
    for (const k of stored) this.#dataKeys.set(k.id, this.#unwrap(k));
    const active = stored.filter((k) => k.retiredAt === null).at(-1);
    this.#activeDataKeyId = active ? active.id : await this.#createDataKey();
  }

  /**
   * Keys from the operator: the current one and maybe the next. Every stored data key must be
   * wrapped by one of them, or the node does not start (it would serve half the secrets).
   */
  #loadRing(source: { key: Buffer; next?: Buffer }, stored: readonly DataKeyRecord[]): void {
    const current = memoryMasterKey(source.key);
    this.#ring.set(current.id, current);
    if (source.next) {
      this.#next = memoryMasterKey(source.next);
      if (this.#next.id === current.id) this.log.warn({ masterKeyId: current.id }, 'BULWARK_MASTER_KEY_NEXT is the same key as BULWARK_MASTER_KEY');
      this.#ring.set(this.#next.id, this.#next);
    }
    const missing = [...new Set(stored.map((k) => k.masterKeyId))].filter((id) => !this.#ring.has(id));
    for (const id of missing) this.deps.onMissingKey?.(id);
    if (missing.length > 0) {
      throw new PlatformError(
        'BULWARK_ERR_MASTER_KEY_INVALID',
        `the master key does not match the store: data keys are wrapped by master key ${missing.join(', ')}, which this node does not hold (it holds ${this.#describeRing()}); ` + 'give it that key as BULWARK_MASTER_KEY or BULWARK_MASTER_KEY_NEXT',
      );
    }
    // After a rotation the store names the next key: new data keys go under it too.
    const inUse = stored.at(-1)?.masterKeyId;
    this.#master = (inUse === undefined ? undefined : this.#ring.get(inUse)) ?? current;
  }

  #describeRing(): string {
    return [...this.#ring.keys()].map((id) => (id === this.#next?.id && this.#ring.size > 1 ? `${id} (next)` : id)).join(', ');
  }

  /** The generated key file (embedded mode), with the recovery of an interrupted rotation. */
  #loadFile(path: string, stored: readonly DataKeyRecord[]): void {
    const file = openKeyFile(path, new Set(stored.map((k) => k.masterKeyId)), this.log);
    this.#createdMasterKey = file.created;
    this.#master = memoryMasterKey(file.key);
    this.#ring.set(this.#master.id, this.#master);
  }

  /** A master key inside a PKCS#11 token: made there on the first start, never read out. */
  #loadToken(source: { token: HsmToken; label: string }, stored: readonly DataKeyRecord[]): void {
    const opened = openTokenMasterKey(source.token, source.label, new Set(stored.map((k) => k.masterKeyId)), this.log);
    this.#createdMasterKey = opened.created;
    this.#master = opened.key;
    this.#ring.set(this.#master.id, this.#master);
  }

  #unwrap(k: DataKeyRecord): Buffer {
    const master = this.#ring.get(k.masterKeyId);
    if (!master) {
      this.deps.onMissingKey?.(k.masterKeyId);
      throw new PlatformError('BULWARK_ERR_MASTER_KEY_INVALID', `data key ${k.id} is wrapped by master key ${k.masterKeyId}, which this node does not hold (it holds ${this.#describeRing()})`);
    }
    return master.unwrap(k.wrapped, `data-key:${k.id}`);
  }

  async #createDataKey(): Promise<string> {
    const id = this.ids.next('dk');
    const key = randomBytes(KEY_BYTES);
    await this.repo.insertDataKey({ id, wrapped: this.#master.wrap(key, `data-key:${id}`), masterKeyId: this.#master.id, createdAt: this.clock.now(), retiredAt: null });
    this.#dataKeys.set(id, key);
    return id;
  }

  async put(name: string, plaintext: Buffer): Promise<void> {
    const key = this.#dataKeys.get(this.#activeDataKeyId);
    if (!key) throw new PlatformError('BULWARK_ERR_MASTER_KEY_INVALID', 'the active data key is not loaded');
    await this.repo.putSecret({ name, dataKeyId: this.#activeDataKeyId, sealed: seal(key, plaintext, `secret:${name}`), updatedAt: this.clock.now() });
  }

  async get(name: string): Promise<Buffer | undefined> {
    const stored = await this.repo.getSecret(name);
    if (!stored) return undefined;
    return open(await this.#dataKey(stored.dataKeyId, `secret "${name}"`), stored.sealed, `secret:${name}`);
  }

  /**
   * Encrypts a small value stored elsewhere (a sensitive telemetry field) with the active
   * data key: `enc:<data key id>:<sealed>`. `context` binds it to its place (device and field).
   */
  encryptValue(plaintext: Buffer, context: string): string {
    const key = this.#dataKeys.get(this.#activeDataKeyId);
    if (!key) throw new PlatformError('BULWARK_ERR_MASTER_KEY_INVALID', 'the active data key is not loaded');
    return `enc:${this.#activeDataKeyId}:${seal(key, plaintext, `value:${context}`)}`;
  }

  async decryptValue(text: string, context: string): Promise<Buffer> {
    const m = /^enc:([a-z0-9_]+):(.+)$/.exec(text);
    if (!m?.[1] || !m[2]) throw new PlatformError('BULWARK_ERR_SECRET_CORRUPT', 'not an encrypted value');
    return open(await this.#dataKey(m[1], 'an encrypted value'), m[2], `value:${context}`);
  }

  async #dataKey(id: string, what: string): Promise<Buffer> {
    let key = this.#dataKeys.get(id);
    if (!key) {
      // Another node may have added a data key since this one loaded.
      const record = (await this.repo.listDataKeys()).find((k) => k.id === id);
      if (!record) throw new PlatformError('BULWARK_ERR_SECRET_CORRUPT', `${what} names data key ${id}, which does not exist`);
      key = this.#unwrap(record);
      this.#dataKeys.set(record.id, key);
    }
    return key;
  }

  /** Returns the named secret, creating it with `make` the first time. */
  async getOrCreate(name: string, make: () => Buffer): Promise<Buffer> {
    const existing = await this.get(name);
    if (existing) return existing;
    const value = make();
    await this.put(name, value);
    return value;
  }

  listNames(): Promise<string[]> {
    return this.repo.listSecretNames();
  }

  /** Ids only: what this node holds and which keys the stored data keys name. */
  async status(): Promise<MasterKeyStatus> {
    const dataKeys: Record<string, number> = {};
    for (const k of await this.repo.listDataKeys()) dataKeys[k.masterKeyId] = (dataKeys[k.masterKeyId] ?? 0) + 1;
    return { masterKeyId: this.#master.id, masterKeyIds: this.masterKeyIds, nextMasterKeyId: this.#next?.id ?? null, dataKeys };
  }

  /**
   * Master keys that wrap a stored data key this node could not open: not loaded yet, and
   * wrapped by a key it does not hold. Empty when every secret is readable here.
   */
  async missingMasterKeys(): Promise<string[]> {
    const stored = await this.repo.listDataKeys();
    return [...new Set(stored.filter((k) => !this.#dataKeys.has(k.id) && !this.#ring.has(k.masterKeyId)).map((k) => k.masterKeyId))];
  }

  /**
   * Replaces the master key while the platform keeps serving: data keys stay the same (so
   * every secret and every cached key stays valid); only their wrapping changes.
   * A generated key file gets a new random key. Keys from the operator are re-wrapped under
   * BULWARK_MASTER_KEY_NEXT: idempotent (a data key already under it is left alone), so a
   * rotation that failed is simply asked for again.
   */
  async rotateMasterKey(): Promise<RotationReport> {
    if (this.source.kind === 'provided' && !this.#next) {
      throw new PlatformError('BULWARK_ERR_MASTER_KEY_EXTERNAL', 'the master key comes from BULWARK_MASTER_KEY; the platform cannot replace it: give every node the new key as BULWARK_MASTER_KEY_NEXT, then rotate');
    }
    if (this.#rotating) throw new PlatformError('BULWARK_ERR_CONFLICT', 'a master-key rotation is already running');
    this.#rotating = true;
    try {
      const previous = this.#master;
      if (this.source.kind === 'provided') {
        const report = await rotateToNext(this.#rotationDeps(), this.#next!);
        this.#master = this.#next!;
        this.log.info({ ...report }, 'master key rotated to BULWARK_MASTER_KEY_NEXT');
        return report;
      }
      const { next, report } = this.source.kind === 'file' ? await rotateFile(this.#rotationDeps(), this.source.path) : await rotateToken(this.#rotationDeps(), this.source.token, this.source.label);
      this.#master = next;
      this.#ring.delete(previous.id);
      this.#ring.set(next.id, next);
      this.log.info({ ...report }, 'master key rotated');
      return report;
    } finally {
      this.#rotating = false;
    }
  }

  /** What a rotation needs from the vault: the store, the key in use, re-wrapping with the keys it has open. */
  #rotationDeps(): RotationDeps {
    return {
      repo: this.repo,
      previous: this.#master,
      nodesLacking: async (id) => (await this.deps.nodesLacking?.(id)) ?? [],
      rewrap: async (next, skipDone) =>
        (await this.repo.listDataKeys())
          .filter((r) => !skipDone || r.masterKeyId !== next.id)
          .map((r) => {
            const key = this.#dataKeys.get(r.id) ?? this.#unwrap(r);
            return { id: r.id, wrapped: next.wrap(key, `data-key:${r.id}`), masterKeyId: next.id };
          }),
    };
  }
}
