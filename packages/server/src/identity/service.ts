import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { type Clock, GenerationalMap, type IdGen, type Logger, PlatformError } from '@bulwark/core';
import type { EventBus } from '../bus/index.js';
import type { RegistryService } from '../registry/index.js';
import { type DeviceAuthority, fingerprintOf } from './authority.js';
import type { DeviceCertificate, IdentityRepository } from './identity.js';
import type { ManufacturerCas } from './manufacturers.js';
import { PlatformCrl, type PlatformCrls } from './crl.js';
import { IssuingCas } from './issuing-cas.js';
import { issueDeviceCertificate, publicKeyFromCsr } from './pki.js';
import { x509 } from './x509.js';

export interface IdentitySettings {
  readonly deviceCertValidityDays: number;
  readonly claimTokenTtlMs: number;
  /** How long a rotated-out certificate keeps working if its successor is never used. */
  readonly rotationOverlapMs: number;
  /** How long a published CRL is valid (nextUpdate); it is re-signed well before that. */
  readonly crlValidityMs: number;
}

export interface IssuedCertificate {
  readonly deviceId: string;
  readonly serial: string;
  readonly certificatePem: string;
  /** Root and trusted issuing CA certificates (the active one first), PEM, for the device's trust store. */
  readonly caChainPem: string;
  readonly notAfter: number;
}

export interface IssuedClaimToken {
  readonly deviceId: string;
  readonly token: string;
  readonly expiresAt: number;
}

/** What the gateway learns from a verified TLS peer certificate. */
export interface PeerCertificate {
  readonly deviceId: string;
  /** SHA-256 of the DER certificate, lower-case hex without separators. */
  readonly fingerprint: string;
  /** Serial number, hex, as the TLS stack reports it. */
  readonly serial: string;
  /** What just-in-time provisioning needs: the issuer's fingerprint, the DER and the validity. */
  readonly issuerFingerprint?: string;
  readonly der?: Buffer;
  readonly notBefore?: number;
  readonly notAfter?: number;
}

/**
 * How long a positive admission is remembered. Every change that takes an admission back is
 * also announced on the bus (revocation, suspension, decommissioning, trust and CRL changes)
 * and forgets it at once; the bound covers an announcement a node missed.
 */
export const ADMISSION_MEMORY_MS = 60_000;

/** A certificate in use, of an active device, admitted at `at`: a new session with it needs no store read. */
interface RememberedAdmission {
  readonly fingerprint: string;
  readonly notBefore: number;
  readonly notAfter: number;
  readonly at: number;
}

const TOKEN = /^bct\.([a-z0-9_]{4,64})\.([A-Za-z0-9_-]{32,128})$/;
const sha256 = (text: string) => createHash('sha256').update(text).digest();

/**
 * Device identities: enrollment with one-time claim tokens, issue from CSRs, rotation with
 * an overlap window, revocation with a re-signed CRL, and the per-session check the
 * gateway makes on every connection.
 */
export class IdentityService {
  readonly #crl: PlatformCrl;
  /** Rollover and retirement of the issuing CAs. */
  readonly issuingCas: IssuingCas;
  readonly #trustListeners = new Set<() => void | Promise<void>>();
  /** By device id: the last admission of each device (reconnect storms come from devices seen a moment ago). */
  readonly #admitted = new GenerationalMap<string, RememberedAdmission>(200_000);
  readonly #unsubscribe: (() => void)[] = [];

  constructor(
    private readonly repo: IdentityRepository,
    private readonly registry: RegistryService,
    readonly authority: DeviceAuthority,
    private readonly settings: IdentitySettings,
    readonly manufacturers: ManufacturerCas,
    private readonly deps: { clock: Clock; ids: IdGen; bus: EventBus; log: Logger; audit: (action: string, actor: string, target: string, details: Record<string, unknown>) => Promise<void> },
  ) {
    this.#crl = new PlatformCrl(repo, authority, settings, deps);
    this.issuingCas = new IssuingCas(repo, authority, this.#crl, settings, deps);
  }

  /**
   * Loads the stored CRLs (signing fresh ones when they are missing or due) and starts
   * listening for trust changes made anywhere in the platform: revocations, re-signed CRLs,
   * issuing-CA rollovers, manufacturer CAs. Re-signing on a schedule is `startCrlSigning`
   * (one node of a cluster).
   */
  async start(): Promise<void> {
    const { bus } = this.deps;
    const forget = (e: { deviceId: string }) => this.#admitted.delete(e.deviceId);
    const reload = () => this.#reloadTrust();
    this.#unsubscribe.push(bus.subscribe('certificate.revoked', forget), bus.subscribe('device.suspended', forget), bus.subscribe('device.decommissioned', forget), bus.subscribe('crl.updated', reload), bus.subscribe('trust.changed', reload));
    if (!(await this.#crl.load())) await this.refreshCrl();
  }

  stop(): void {
    this.#crl.stopResigning();
    for (const u of this.#unsubscribe.splice(0)) u();
  }

  /**
   * Re-signs the CRLs before they expire, until `stopCrlSigning` (a singleton in a cluster);
   * first retires the previous issuing CAs none of whose certificates works any more (which
   * signs the lists anew itself).
   */
  startCrlSigning(): void {
    this.#crl.startResigning(async () => {
      if ((await this.issuingCas.retireDrained()).length === 0) await this.refreshCrl();
    });
  }

  stopCrlSigning(): void {
    this.#crl.stopResigning();
  }

  get crlPem(): PlatformCrls {
    return this.#crl.current;
  }

  /** Calls `fn` after the trust anchors or CRLs changed (here or on another node) and were reloaded. */
  onTrustChanged(fn: () => void | Promise<void>): () => void {
    this.#trustListeners.add(fn);
    return () => this.#trustListeners.delete(fn);
  }

  /** Signs fresh CRLs from the revocations in the store and tells every node to load them. */
  async refreshCrl(): Promise<void> {
    await this.#crl.sign();
    await this.deps.bus.publish({ type: 'crl.updated', caId: this.authority.active.id, crlNumber: 0 });
  }

  /** The store is the truth: the platform's CAs, CRLs and manufacturer CAs as they are now, then the listeners (TLS contexts). */
  async #reloadTrust(): Promise<void> {
    try {
      await this.authority.reload();
      await this.#crl.load();
      await this.manufacturers.load();
    } catch (err) {
      this.deps.log.error({ err }, 'could not reload CAs, CRLs and manufacturer CAs from the store; keeping the ones loaded');
    }
    // Admissions remembered before or during the reload were judged on the old trust.
    this.#admitted.clear();
    for (const fn of this.#trustListeners) await fn();
  }

  async createClaimTokens(deviceIds: readonly string[], options: { createdBy: string; ttlMs?: number; batchId?: string }): Promise<IssuedClaimToken[]> {
    const now = this.deps.clock.now();
    const expiresAt = now + (options.ttlMs ?? this.settings.claimTokenTtlMs);
    const issued: IssuedClaimToken[] = [];
    const records = [];
    for (const deviceId of deviceIds) {
      const device = await this.registry.get(deviceId);
      if (device.state === 'decommissioned' || device.state === 'suspended') {
        throw new PlatformError('BULWARK_ERR_LIFECYCLE', `device ${deviceId} is ${device.state}; it cannot be enrolled`);
      }
      const id = this.deps.ids.next('ct');
      const secret = randomBytes(32).toString('base64url');
      records.push({ id, secretHash: sha256(secret).toString('hex'), deviceId, batchId: options.batchId ?? null, expiresAt, usedAt: null, createdAt: now, createdBy: options.createdBy });
      issued.push({ deviceId, token: `bct.${id}.${secret}`, expiresAt });
    }
    await this.repo.insertClaimTokens(records);
    return issued;
  }

  /** The claim-token id inside a token's text, for lock-out accounting; nothing is checked. */
  claimTokenIdOf(text: string): string | undefined {
    return TOKEN.exec(text)?.[1];
  }

  /**
   * Enrolls a device: the claim token is checked and used up (exactly once, even under
   * concurrent attempts), the CSR's key is certified for the token's device.
   */
  async enroll(tokenText: string, csrPem: string): Promise<IssuedCertificate> {
    const invalid = () => new PlatformError('BULWARK_ERR_CLAIM_TOKEN_INVALID', 'the claim token is not valid');
    const m = TOKEN.exec(tokenText);
    if (!m?.[1] || !m[2]) throw invalid();
    const record = await this.repo.getClaimToken(m[1]);
    const given = sha256(m[2]);
    if (!record || !timingSafeEqual(given, Buffer.from(record.secretHash, 'hex'))) throw invalid();
    const publicKey = await publicKeyFromCsr(csrPem);
    const device = await this.registry.get(record.deviceId);
    if (device.state === 'decommissioned' || device.state === 'suspended') throw new PlatformError('BULWARK_ERR_LIFECYCLE', `device ${device.id} is ${device.state}`);
    if (!(await this.repo.useClaimToken(record.id, this.deps.clock.now()))) throw invalid();
    const issued = await this.#issue(device.id, publicKey);
    await this.registry.markProvisioned(device.id);
    return issued;
  }

  /** Throws BULWARK_ERR_CSR_INVALID unless the CSR is one this CA would certify. */
  async checkCsr(csrPem: string): Promise<void> {
    await publicKeyFromCsr(csrPem);
  }

  /** Certifies a CSR for a device directly (factory onboarding with CSRs). */
  async issueFromCsr(deviceId: string, csrPem: string): Promise<IssuedCertificate> {
    const device = await this.registry.get(deviceId);
    if (device.state === 'decommissioned' || device.state === 'suspended') throw new PlatformError('BULWARK_ERR_LIFECYCLE', `device ${deviceId} is ${device.state}`);
    const issued = await this.#issue(deviceId, await publicKeyFromCsr(csrPem));
    await this.registry.markProvisioned(deviceId);
    return issued;
  }

  /**
   * A device renews its certificate while the current one is valid. The old one keeps
   * working until the new one is first used, or until the overlap window ends.
   */
  async rotate(peer: PeerCertificate, csrPem: string): Promise<IssuedCertificate> {
    const current = await this.#liveCertificate(peer);
    const issued = await this.#issue(current.deviceId, await publicKeyFromCsr(csrPem));
    await this.deps.audit('certificate.rotate', `device:${current.deviceId}`, current.deviceId, { previousSerial: current.serial, serial: issued.serial });
    return issued;
  }

  /** Operator rotation: certify a new CSR; the device's other certificates retire as in `rotate`. */
  async reissue(deviceId: string, csrPem: string): Promise<IssuedCertificate> {
    return this.issueFromCsr(deviceId, csrPem);
  }

  async #issue(deviceId: string, publicKey: CryptoKey): Promise<IssuedCertificate> {
    const now = this.deps.clock.now();
    const ca = this.authority.active;
    const cert = await issueDeviceCertificate(ca.pair, { deviceId, publicKey, nowMs: now, validityDays: this.settings.deviceCertValidityDays });
    const record: DeviceCertificate = {
      serial: cert.serialNumber.toLowerCase(),
      deviceId,
      caId: ca.id,
      fingerprint: fingerprintOf(cert),
      notBefore: cert.notBefore.getTime(),
      notAfter: cert.notAfter.getTime(),
      pem: cert.toString('pem'),
      createdAt: now,
      firstUsedAt: null,
      supersededAt: null,
      revokedAt: null,
      revocationReason: null,
    };
    await this.repo.insertCertificate(record);
    // A new certificate retires the device's others: they keep working until it is first
    // used, or until the overlap window ends (enrollment again after a reset, rotation).
    await this.repo.supersedeOthers(deviceId, record.serial, now);
    this.#admitted.delete(deviceId);
    return { deviceId, serial: record.serial, certificatePem: record.pem, caChainPem: this.authority.chainPem, notAfter: record.notAfter };
  }

  async #liveCertificate(peer: PeerCertificate): Promise<DeviceCertificate> {
    const cert = (await this.repo.getCertificateByFingerprint(peer.fingerprint)) ?? (await this.#provisionJustInTime(peer));
    const now = this.deps.clock.now();
    if (!cert || cert.deviceId !== peer.deviceId) throw new PlatformError('BULWARK_ERR_DEVICE_NOT_ALLOWED', 'this certificate is not known to the platform');
    if (cert.revokedAt !== null) throw new PlatformError('BULWARK_ERR_DEVICE_NOT_ALLOWED', 'this certificate is revoked');
    // The TLS trust store refuses these at the handshake; a transport without one (CoAP) is refused here.
    if (!this.authority.isTrusted(cert.caId) && !this.manufacturers.enabled.some((c) => c.id === cert.caId)) {
      throw new PlatformError('BULWARK_ERR_DEVICE_NOT_ALLOWED', 'the CA that issued this certificate is no longer trusted');
    }
    if (cert.notAfter <= now || cert.notBefore > now) throw new PlatformError('BULWARK_ERR_DEVICE_NOT_ALLOWED', 'this certificate is outside its validity period');
    if (cert.supersededAt !== null && now - cert.supersededAt > this.settings.rotationOverlapMs) {
      await this.revokeCertificate(cert.serial, 'superseded');
      throw new PlatformError('BULWARK_ERR_DEVICE_NOT_ALLOWED', 'this certificate was replaced and its overlap window has ended');
    }
    return cert;
  }

  /**
   * A certificate from a registered manufacturer CA, seen for the first time: if the CA's
   * rule allows the device id, register the device and the certificate now.
   */
  async #provisionJustInTime(peer: PeerCertificate): Promise<DeviceCertificate | undefined> {
    const ca = peer.issuerFingerprint ? this.manufacturers.byFingerprint(peer.issuerFingerprint) : undefined;
    if (!ca || !peer.der || peer.notBefore === undefined || peer.notAfter === undefined) return undefined;
    if (!this.manufacturers.allows(ca, peer.deviceId)) {
      throw new PlatformError('BULWARK_ERR_DEVICE_NOT_ALLOWED', `device ${peer.deviceId} is not allowed by the provisioning rule of ${ca.name}`);
    }
    const now = this.deps.clock.now();
    const existing = await this.registry.find(peer.deviceId);
    if (existing) {
      // A manufacturer CA never takes over a device it did not provision: an existing device
      // qualifies only if every certificate it has came from this CA, or (with none yet) if
      // the rule names it explicitly in its allow list.
      const certs = await this.repo.listCertificates(peer.deviceId);
      const ownedHere = certs.length > 0 ? certs.every((c) => c.caId === ca.id) : ca.provisioning?.allowList?.includes(peer.deviceId) === true;
      if (!ownedHere) throw new PlatformError('BULWARK_ERR_DEVICE_NOT_ALLOWED', `device ${peer.deviceId} already exists and does not belong to ${ca.name}`);
    } else {
      await this.registry.create({ id: peer.deviceId, ...(ca.provisioning?.model ? { model: ca.provisioning.model } : {}), tags: [...(ca.provisioning?.tags ?? [])] });
    }
    const device = await this.registry.get(peer.deviceId);
    if (device.state === 'decommissioned' || device.state === 'suspended') throw new PlatformError('BULWARK_ERR_DEVICE_NOT_ALLOWED', `device ${device.id} is ${device.state}`);
    const record: DeviceCertificate = {
      serial: peer.serial,
      deviceId: peer.deviceId,
      caId: ca.id,
      fingerprint: peer.fingerprint,
      notBefore: peer.notBefore,
      notAfter: peer.notAfter,
      pem: x509.PemConverter.encode(new Uint8Array(peer.der), 'CERTIFICATE'),
      createdAt: now,
      firstUsedAt: null,
      supersededAt: null,
      revokedAt: null,
      revocationReason: null,
    };
    await this.repo.insertCertificate(record);
    await this.registry.markProvisioned(peer.deviceId);
    await this.deps.audit('device.provision-jit', 'system', peer.deviceId, { caId: ca.id, serial: peer.serial });
    this.deps.log.info({ deviceId: peer.deviceId, ca: ca.name }, 'provisioned a device just in time');
    return record;
  }

  /** The same checks as admission, without side effects: for re-checking a live session. */
  async checkSession(peer: PeerCertificate): Promise<void> {
    const cert = await this.#liveCertificate(peer);
    const device = await this.registry.get(cert.deviceId);
    if (device.state !== 'provisioned' && device.state !== 'active') throw new PlatformError('BULWARK_ERR_DEVICE_NOT_ALLOWED', `device ${device.id} is ${device.state}`);
  }

  /**
   * The gateway's check for a new session: the certificate is the platform's, live, and
   * its device may connect. The first session with a rotated certificate retires the old ones.
   */
  async admitSession(peer: PeerCertificate): Promise<void> {
    const now = this.deps.clock.now();
    const known = this.#admitted.get(peer.deviceId);
    if (known && known.fingerprint === peer.fingerprint && now - known.at < ADMISSION_MEMORY_MS && known.notBefore <= now && now < known.notAfter) return;
    const cert = await this.#liveCertificate(peer);
    const device = await this.registry.get(cert.deviceId);
    if (device.state !== 'provisioned' && device.state !== 'active') {
      throw new PlatformError('BULWARK_ERR_DEVICE_NOT_ALLOWED', `device ${device.id} is ${device.state}`);
    }
    // Only the first session with a certificate writes (marks it used, retires the older ones).
    if (cert.firstUsedAt === null && (await this.repo.markUsed(cert.serial, this.deps.clock.now()))) {
      const older = (await this.repo.listCertificates(cert.deviceId)).filter((c) => c.serial !== cert.serial && c.supersededAt !== null && c.revokedAt === null);
      for (const c of older) {
        await this.revokeCertificate(c.serial, 'superseded');
        await this.deps.audit('certificate.revoke', 'system', c.serial, { deviceId: c.deviceId, reason: 'superseded', by: cert.serial });
      }
    }
    if (device.state === 'provisioned') await this.registry.markActive(device.id);
    // Remembered only when nothing but time can change the verdict without an announcement.
    if (cert.supersededAt === null) this.#admitted.set(device.id, { fingerprint: cert.fingerprint, notBefore: cert.notBefore, notAfter: cert.notAfter, at: now });
  }

  /**
   * Replaces a manufacturer CA's CRL and revokes here every certificate it lists, so live
   * sessions of those devices end now rather than at their next handshake.
   */
  async updateManufacturerCrl(caId: string, crlPem: string): Promise<number> {
    const ca = await this.manufacturers.updateCrl(caId, crlPem);
    const listed = new Set(new x509.X509Crl(crlPem).entries.map((e) => e.serialNumber.toLowerCase().replace(/^0+/, '')));
    const issuedHere = await this.repo.listCertificatesByCa(ca.id);
    let revoked = 0;
    for (const c of issuedHere) {
      if (c.revokedAt !== null || !listed.has(c.serial.toLowerCase().replace(/^0+/, ''))) continue;
      await this.revokeCertificate(c.serial, 'revoked by manufacturer CRL');
      revoked += 1;
    }
    return revoked;
  }

  listCertificates(deviceId: string): Promise<DeviceCertificate[]> {
    return this.repo.listCertificates(deviceId);
  }

  /**
   * Devices whose newest live certificate ends within `withinMs` from now, or has ended
   * (decommissioned devices left out), soonest first: the certificate-expiry report.
   */
  async expiring(withinMs: number, limit: number): Promise<{ readonly at: number; readonly certificates: DeviceCertificate[] }> {
    const at = this.deps.clock.now();
    return { at, certificates: await this.repo.listExpiring(at + withinMs, limit) };
  }

  async revokeCertificate(serial: string, reason: string): Promise<DeviceCertificate> {
    const cert = await this.repo.getCertificate(serial.toLowerCase());
    if (!cert) throw new PlatformError('BULWARK_ERR_NOT_FOUND', `no certificate with serial ${serial}`);
    if (!(await this.repo.revoke(cert.serial, this.deps.clock.now(), reason))) throw new PlatformError('BULWARK_ERR_CONFLICT', `certificate ${serial} is already revoked`);
    await this.refreshCrl();
    await this.deps.bus.publish({ type: 'certificate.revoked', deviceId: cert.deviceId, serial: cert.serial, reason });
    return (await this.repo.getCertificate(cert.serial)) ?? cert;
  }

  /** Revokes every live certificate of a device; returns how many. */
  async revokeDevice(deviceId: string, reason: string): Promise<number> {
    await this.registry.get(deviceId);
    const now = this.deps.clock.now();
    const live = (await this.repo.listCertificates(deviceId)).filter((c) => c.revokedAt === null);
    let n = 0;
    for (const c of live) if (await this.repo.revoke(c.serial, now, reason)) n += 1;
    await this.refreshCrl();
    for (const c of live) await this.deps.bus.publish({ type: 'certificate.revoked', deviceId, serial: c.serial, reason });
    return n;
  }
}
