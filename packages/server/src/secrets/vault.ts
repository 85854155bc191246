import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { type Clock, type IdGen, type Logger, PlatformError } from '@bulwark/core';
import { KEY_BYTES, keyFingerprint, open, seal } from './envelope.js';
import { discardNextKey, newMasterKey, nextPath, promoteNextKey, readKeyFile, writeKeyFile } from './master-key-file.js';
import type { DataKeyRecord, MasterKeySource, SecretRepository } from './secrets.js';

export interface RotationReport {
  readonly previousMasterKeyId: string;
  readonly masterKeyId: string;
  readonly dataKeysRewrapped: number;
}

interface MasterKey {
  readonly id: string;
  readonly key: Buffer;
}

/**
 * Envelope encryption for every secret the platform stores. Secrets are sealed with a data
 * key (AES-256-GCM); data keys are stored wrapped by the master key, which never touches
 * the store. Rotating the master key re-wraps the data keys only, in one transaction, so no
 * secret is re-encrypted and readers never see a half-rotated store.
 */
export class SecretVault {
  #master!: MasterKey;
  /** Unwrapped data keys by id, so a read costs one AES-GCM open, not two. */
  readonly #dataKeys = new Map<string, Buffer>();
  #activeDataKeyId!: string;
  #rotating = false;

  private constructor(
    private readonly repo: SecretRepository,
    private readonly source: MasterKeySource,
    private readonly clock: Clock,
    private readonly ids: IdGen,
    private readonly log: Logger,
  ) {}

  /** Loads (or on first start creates) the master key and the active data key. */
  static async open(repo: SecretRepository, source: MasterKeySource, deps: { clock: Clock; ids: IdGen; log: Logger }): Promise<SecretVault> {
    const vault = new SecretVault(repo, source, deps.clock, deps.ids, deps.log);
    await vault.#load();
    return vault;
  }

  get masterKeyId(): string {
    return this.#master.id;
  }

  get createdMasterKey(): boolean {
    return this.#createdMasterKey;
  }

  #createdMasterKey = false;

  async #load(): Promise<void> {
    const stored = await this.repo.listDataKeys();
    const candidates = this.#candidateMasterKeys();
    const named = new Set(stored.map((k) => k.masterKeyId));
    const current = candidates.find((c) => named.has(c.id)) ?? (stored.length === 0 ? candidates[0] : undefined);
    if (!current) {
      throw new PlatformError('BULWARK_ERR_MASTER_KEY_INVALID',
        `the master key does not match the store: data keys are wrapped by ${[...named].join(', ')}, the key on hand is ${candidates.map((c) => c.id).join(', ') || 'missing'}`);
    }
    this.#master = current;
    this.#finishInterruptedRotation(current);
    for (const k of stored) this.#dataKeys.set(k.id, this.#unwrap(k));
    const active = stored.filter((k) => k.retiredAt === null).at(-1);
    this.#activeDataKeyId = active ? active.id : await this.#createDataKey();
  }

  /** The key in use, plus a pending rotated key if a rotation was interrupted. */
  #candidateMasterKeys(): MasterKey[] {
    if (this.source.kind === 'provided') return [toMaster(this.source.key)];
    const path = this.source.path;
    const out: MasterKey[] = [];
    const current = readKeyFile(path);
    const pending = readKeyFile(nextPath(path));
    if (current) out.push(toMaster(current));
    if (pending) out.push(toMaster(pending));
    if (out.length === 0) {
      const key = newMasterKey();
      writeKeyFile(path, key);
      this.#createdMasterKey = true;
      this.log.info({ path }, 'created a new master key');
      out.push(toMaster(key));
    }
    return out;
  }

  #finishInterruptedRotation(inUse: MasterKey): void {
    if (this.source.kind !== 'file' || !existsSync(nextPath(this.source.path))) return;
    const pending = readKeyFile(nextPath(this.source.path));
    if (pending && keyFingerprint(pending) === inUse.id) {
      promoteNextKey(this.source.path);
      this.log.warn({ masterKeyId: inUse.id }, 'finished a master-key rotation that was interrupted after the store was re-wrapped');
    } else {
      discardNextKey(this.source.path);
      this.log.warn({}, 'discarded a master key from a rotation that was interrupted before the store was re-wrapped');
    }
  }

  #unwrap(k: DataKeyRecord): Buffer {
    if (k.masterKeyId !== this.#master.id) {
      throw new PlatformError('BULWARK_ERR_MASTER_KEY_INVALID', `data key ${k.id} is wrapped by master key ${k.masterKeyId}, not by ${this.#master.id}`);
    }
    return open(this.#master.key, k.wrapped, `data-key:${k.id}`);
  }

  async #createDataKey(): Promise<string> {
    const id = this.ids.next('dk');
    const key = randomBytes(KEY_BYTES);
    await this.repo.insertDataKey({ id, wrapped: seal(this.#master.key, key, `data-key:${id}`), masterKeyId: this.#master.id, createdAt: this.clock.now(), retiredAt: null });
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

  /**
   * Replaces the master key while the platform keeps serving: data keys stay the same (so
   * every secret and every cached key stays valid); only their wrapping changes.
   */
  async rotateMasterKey(): Promise<RotationReport> {
    if (this.source.kind !== 'file') {
      throw new PlatformError('BULWARK_ERR_MASTER_KEY_EXTERNAL', 'the master key comes from BULWARK_MASTER_KEY; the platform cannot replace it');
    }
    if (this.#rotating) throw new PlatformError('BULWARK_ERR_CONFLICT', 'a master-key rotation is already running');
    this.#rotating = true;
    try {
      const previous = this.#master;
      const next = toMaster(newMasterKey());
      discardNextKey(this.source.path);
      writeKeyFile(nextPath(this.source.path), next.key);
      const records = await this.repo.listDataKeys();
      const rewrapped = records.map((r) => {
        const key = this.#dataKeys.get(r.id) ?? this.#unwrap(r);
        return { id: r.id, wrapped: seal(next.key, key, `data-key:${r.id}`), masterKeyId: next.id };
      });
      try {
        await this.repo.rewrapDataKeys(rewrapped);
      } catch (err) {
        // The commit may have happened even though we saw an error (a connection lost after
        // COMMIT). Drop the new key only when the store provably still names the old one;
        // otherwise leave master.key.next for the next start to promote or discard.
        const now = await this.repo.listDataKeys().catch(() => undefined);
        if (now?.every((k) => k.masterKeyId === previous.id)) discardNextKey(this.source.path);
        throw err;
      }
      promoteNextKey(this.source.path);
      this.#master = next;
      this.log.info({ previousMasterKeyId: previous.id, masterKeyId: next.id, dataKeys: rewrapped.length }, 'master key rotated');
      return { previousMasterKeyId: previous.id, masterKeyId: next.id, dataKeysRewrapped: rewrapped.length };
    } finally {
      this.#rotating = false;
    }
  }
}

function toMaster(key: Buffer): MasterKey {
  return { id: keyFingerprint(key), key };
}
