import { createHash } from 'node:crypto';
import type { Clock, Logger } from '@bulwark/core';
import type { CaKeyStore } from './ca-keys.js';
import type { CaRecord, IdentityRepository } from './identity.js';
import { type CaKeyPair, createCaPair, createIssuingCa } from './pki.js';
import { x509 } from './x509.js';

export const ROOT_CA_ID = 'root';
/** The issuing CA made on the first start; later ones are `issuing-<UTC time>` (rollover). */
export const FIRST_ISSUING_CA_ID = 'issuing';

export function fingerprintOf(cert: x509.X509Certificate): string {
  return createHash('sha256').update(new Uint8Array(cert.rawData)).digest('hex');
}

/** One of the platform's issuing CAs that devices' certificates may chain through. */
export interface IssuingCa {
  readonly id: string;
  readonly pair: CaKeyPair;
  readonly fingerprint: string;
  readonly createdAt: number;
}

/**
 * The device CA: one root and its issuing intermediates, certificates in the store, private
 * keys in the `CaKeyStore`: sealed in the secret vault (never on disk in the clear), or made
 * and kept inside a PKCS#11 token.
 *
 * Of the issuing CAs not retired, the newest is the active one: it signs every new device
 * certificate (and the device gateways' server certificates). The others are previous ones,
 * kept trusted so that the certificates they issued work until those expire or are rotated;
 * a retired one is trusted no more. Every node holds the same view, read from the store when
 * the trust changes (`reload`).
 */
export class DeviceAuthority {
  #root: CaKeyPair | undefined;
  /** Active first, then previous ones newest first. */
  #trusted: readonly IssuingCa[] = [];
  #retired: readonly CaRecord[] = [];
  /** Keys read from the vault, by CA id: a reload reads only the ones it has not seen. */
  readonly #pairs = new Map<string, CaKeyPair>();

  private constructor(
    private readonly repo: IdentityRepository,
    private readonly keys: CaKeyStore,
  ) {}

  /** Loads the device CA, or creates root and first issuing CA on the first start. */
  static async open(repo: IdentityRepository, keys: CaKeyStore, clock: Clock, log: Logger): Promise<DeviceAuthority> {
    const cas = await repo.listCas();
    if (!cas.some((c) => c.id === ROOT_CA_ID) || !cas.some((c) => c.kind === 'issuing')) {
      const created = await createCaPair(clock.now(), 'Bulwark Device', { root: () => keys.generate(ROOT_CA_ID), issuing: () => keys.generate(FIRST_ISSUING_CA_ID) });
      await store(repo, keys, ROOT_CA_ID, 'root', created.root, clock.now());
      await store(repo, keys, FIRST_ISSUING_CA_ID, 'issuing', created.issuing, clock.now());
      log.info({ root: fingerprintOf(created.root.cert), issuing: fingerprintOf(created.issuing.cert), keys: keys.where }, 'created the device certificate authority');
    }
    const authority = new DeviceAuthority(repo, keys);
    await authority.reload();
    return authority;
  }

  get root(): CaKeyPair {
    if (!this.#root) throw new Error('the device CA is not loaded');
    return this.#root;
  }

  /** The active issuing CA, the one that signs new certificates. */
  get active(): IssuingCa {
    const active = this.#trusted[0];
    if (!active) throw new Error('the device CA has no active issuing CA');
    return active;
  }

  /** The active issuing CA's key pair. */
  get issuing(): CaKeyPair {
    return this.active.pair;
  }

  /** The issuing CAs whose certificates are accepted: the active one first, then previous ones, newest first. */
  get trusted(): readonly IssuingCa[] {
    return this.#trusted;
  }

  /** Issuing CAs no longer trusted, oldest first. */
  get retired(): readonly CaRecord[] {
    return this.#retired;
  }

  /**
   * Root, then the trusted issuing CAs (active first), PEM: what a device or a stock client
   * trusts. A client that trusts the root verifies a server certificate from any of them.
   */
  get chainPem(): string {
    return `${[this.root.cert, ...this.#trusted.map((c) => c.pair.cert)].map((c) => c.toString('pem')).join('\n')}\n`;
  }

  /** Whether `caId` is one of the trusted issuing CAs (active or previous). */
  isTrusted(caId: string): boolean {
    return this.#trusted.some((c) => c.id === caId);
  }

  /** Reads the CAs from the store (another node may have rolled over or retired one). */
  async reload(): Promise<void> {
    const cas = await this.repo.listCas();
    const root = cas.find((c) => c.id === ROOT_CA_ID);
    if (!root) throw new Error('the device root CA is missing from the store');
    // listCas orders by creation: the newest issuing CA not retired is the active one.
    const issuing = cas.filter((c) => c.kind === 'issuing');
    const live = issuing.filter((c) => c.disabledAt === null).reverse();
    if (live.length === 0) throw new Error('the device CA has no issuing CA that is not retired');
    const rootPair = await this.#pair(root);
    const trusted: IssuingCa[] = [];
    for (const c of live) trusted.push({ id: c.id, pair: await this.#pair(c), fingerprint: c.fingerprint, createdAt: c.createdAt });
    this.#root = rootPair;
    this.#trusted = trusted;
    this.#retired = issuing.filter((c) => c.disabledAt !== null);
    for (const c of this.#retired) this.#pairs.delete(c.id);
  }

  /**
   * A new issuing CA under the same root, stored with its key; it becomes the active one for
   * every node that reloads. Its id and subject name carry its creation time (UTC, seconds).
   */
  async createIssuing(nowMs: number): Promise<CaRecord> {
    const stamp = new Date(nowMs)
      .toISOString()
      .replace(/[-:]/g, '')
      .replace(/\.\d+Z$/, 'Z');
    const taken = new Set((await this.repo.listCas()).map((c) => c.id));
    let id = `issuing-${stamp.toLowerCase()}`;
    for (let n = 2; taken.has(id); n += 1) id = `issuing-${stamp.toLowerCase()}-${n}`;
    const pair = await createIssuingCa(this.root, nowMs, `CN=Bulwark Device Issuing CA ${stamp}${id.slice(`issuing-${stamp}`.length)}, O=Bulwark`, () => this.keys.generate(id));
    const record = await store(this.repo, this.keys, id, 'issuing', pair, nowMs);
    this.#pairs.set(id, pair);
    return record;
  }

  async #pair(record: CaRecord): Promise<CaKeyPair> {
    const known = this.#pairs.get(record.id);
    if (known) return known;
    const privateKey = await this.keys.load(record.id);
    if (!privateKey) throw new Error(`the private key of CA ${record.id} is missing (looked in the ${this.keys.where})`);
    const pair = { cert: new x509.X509Certificate(record.certPem), privateKey };
    this.#pairs.set(record.id, pair);
    return pair;
  }
}

async function store(repo: IdentityRepository, keys: CaKeyStore, id: string, kind: 'root' | 'issuing', pair: CaKeyPair, now: number): Promise<CaRecord> {
  await keys.keep(id, pair.privateKey);
  const record: CaRecord = { id, kind, name: pair.cert.subject, certPem: pair.cert.toString('pem'), fingerprint: fingerprintOf(pair.cert), provisioning: null, crlPem: null, createdAt: now, disabledAt: null };
  await repo.insertCa(record);
  return record;
}

/** Loads the device CA, or creates it on first start. */
export function loadOrCreateAuthority(repo: IdentityRepository, keys: CaKeyStore, clock: Clock, log: Logger): Promise<DeviceAuthority> {
  return DeviceAuthority.open(repo, keys, clock, log);
}
