import type { Clock, Logger } from '@bulwark/core';
import { type DeviceAuthority, ISSUING_CA_ID, ROOT_CA_ID } from './authority.js';
import type { IdentityRepository } from './identity.js';
import { buildCrl, crlPem } from './pki.js';
import { x509 } from './x509.js';

export interface CrlPair {
  readonly issuing: string;
  readonly root: string;
}

/**
 * The CRLs of the platform's own CAs, signed once and kept in the store, so that every node
 * of a cluster serves and enforces the same list: a node signs after each revocation it
 * makes, one node (the `crl` singleton) re-signs before expiry, and every node loads the
 * stored list when told that it changed.
 *
 * The CRL number is taken before the revocations are read: whichever signer takes the
 * highest number read them last, so the list kept (only the holder of the highest number
 * may store it) never misses a revocation committed before it was signed.
 */
export class PlatformCrl {
  #current: CrlPair = { issuing: '', root: '' };
  #timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly repo: IdentityRepository,
    private readonly authority: DeviceAuthority,
    private readonly settings: { readonly crlValidityMs: number },
    private readonly deps: { clock: Clock; log: Logger },
  ) {}

  get current(): CrlPair {
    return this.#current;
  }

  /** How often the lists are re-signed: a quarter of their validity, at most daily. */
  get resignIntervalMs(): number {
    return Math.min(86_400_000, this.settings.crlValidityMs / 4);
  }

  /** Signs both lists and stores them; false when a later signer's list superseded this one. */
  async sign(): Promise<boolean> {
    const now = this.deps.clock.now();
    const next = now + this.settings.crlValidityMs;
    const issuingNumber = await this.repo.nextCrlNumber(ISSUING_CA_ID, now);
    const rootNumber = await this.repo.nextCrlNumber(ROOT_CA_ID, now);
    // An entry stays for one CRL validity past the certificate's end, so that at least one
    // regularly scheduled CRL issued after the certificate expired lists it (RFC 5280 5.1.2.6).
    const revoked = await this.repo.listRevoked(ISSUING_CA_ID, now - this.settings.crlValidityMs);
    const entries = revoked.map((c) => ({
      serial: c.serial, revokedAtMs: c.revokedAt ?? now,
      reason: c.revocationReason === 'superseded' ? x509.X509CrlReason.superseded : c.revocationReason === 'decommissioned' ? x509.X509CrlReason.cessationOfOperation : x509.X509CrlReason.unspecified,
    }));
    const issuing = crlPem(await buildCrl(this.authority.issuing, entries, issuingNumber, now, next));
    const root = crlPem(await buildCrl(this.authority.root, [], rootNumber, now, next));
    const keptIssuing = await this.repo.saveCrl(ISSUING_CA_ID, issuingNumber, issuing);
    const keptRoot = await this.repo.saveCrl(ROOT_CA_ID, rootNumber, root);
    if (keptIssuing && keptRoot) {
      this.#current = { issuing, root };
      return true;
    }
    // Another node signed meanwhile, after this one's numbers: its lists are the ones to serve.
    await this.load();
    return false;
  }

  /**
   * Loads the stored lists; true when both are present, signed by this platform's CAs and
   * not past a quarter of their validity (otherwise the caller signs fresh ones).
   */
  async load(): Promise<boolean> {
    const cas = await this.repo.listCas();
    const stored = (id: string) => cas.find((c) => c.id === id)?.crlPem ?? null;
    const issuing = await this.#usable(stored(ISSUING_CA_ID), this.authority.issuing.cert);
    const root = await this.#usable(stored(ROOT_CA_ID), this.authority.root.cert);
    if (!issuing || !root) return false;
    this.#current = { issuing: issuing.pem, root: root.pem };
    return issuing.fresh && root.fresh;
  }

  async #usable(pem: string | null, ca: x509.X509Certificate): Promise<{ pem: string; fresh: boolean } | undefined> {
    if (pem === null) return undefined;
    try {
      const crl = new x509.X509Crl(pem);
      if (!(await crl.verify({ publicKey: ca.publicKey }))) throw new Error('not signed by the CA');
      const nextUpdate = crl.nextUpdate?.getTime() ?? 0;
      const now = this.deps.clock.now();
      if (nextUpdate <= now) return undefined;
      return { pem, fresh: nextUpdate - now > this.settings.crlValidityMs - this.resignIntervalMs };
    } catch (err) {
      this.deps.log.warn({ err, ca: ca.subject }, 'the stored CRL is unusable; signing a new one');
      return undefined;
    }
  }

  /** Re-signs on a schedule (on one node of a cluster: the `crl` singleton). */
  startResigning(onSigned: () => Promise<void>): void {
    this.stopResigning();
    this.#timer = setInterval(() => {
      this.sign().then(onSigned).catch((err: unknown) => this.deps.log.error({ err }, 'could not re-sign the CRL'));
    }, this.resignIntervalMs);
    this.#timer.unref();
  }

  stopResigning(): void {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
  }
}
