import type { Clock, Logger } from '@bulwark/core';
import { type DeviceAuthority, type IssuingCa, ROOT_CA_ID } from './authority.js';
import type { DeviceCertificate, IdentityRepository } from './identity.js';
import { type RevokedEntry, buildCrl, crlPem } from './pki.js';
import { x509 } from './x509.js';

export interface PlatformCrls {
  /** The root CA's CRL: it lists the retired issuing CAs. */
  readonly root: string;
  /** The CRL of each trusted issuing CA that has one loaded, by CA id, the active CA first. */
  readonly byCa: ReadonlyMap<string, string>;
  /** Those CRLs one after the other, PEM (one CRL while a single issuing CA is trusted). */
  readonly issuing: string;
}

const crls = (root: string, byCa: ReadonlyMap<string, string>): PlatformCrls => ({ root, byCa, issuing: [...byCa.values()].join('') });

const entryOf =
  (now: number) =>
  (c: DeviceCertificate): RevokedEntry => ({
    serial: c.serial,
    revokedAtMs: c.revokedAt ?? now,
    reason: c.revocationReason === 'superseded' ? x509.X509CrlReason.superseded : c.revocationReason === 'decommissioned' ? x509.X509CrlReason.cessationOfOperation : x509.X509CrlReason.unspecified,
  });

/**
 * The CRLs of the platform's own CAs, signed once and kept in the store, so that every node
 * of a cluster serves and enforces the same lists: a node signs after each revocation it
 * makes, one node (the `crl` singleton) re-signs before expiry, and every node loads the
 * stored lists when told that they changed. Each trusted issuing CA signs its own list (the
 * gateway checks revocation for every CA in a chain); the root's lists the retired ones.
 *
 * The CRL number is taken before the revocations are read: whichever signer takes the
 * highest number read them last, so the list kept (only the holder of the highest number
 * may store it) never misses a revocation committed before it was signed.
 */
export class PlatformCrl {
  #current: PlatformCrls = crls('', new Map());
  #timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly repo: IdentityRepository,
    private readonly authority: DeviceAuthority,
    private readonly settings: { readonly crlValidityMs: number },
    private readonly deps: { clock: Clock; log: Logger },
  ) {}

  get current(): PlatformCrls {
    return this.#current;
  }

  /** How often the lists are re-signed: a quarter of their validity, at most daily. */
  get resignIntervalMs(): number {
    return Math.min(86_400_000, this.settings.crlValidityMs / 4);
  }

  /** Signs every list and stores them; false when a later signer's list superseded one of them. */
  async sign(): Promise<boolean> {
    const now = this.deps.clock.now();
    const next = now + this.settings.crlValidityMs;
    const numbered: [IssuingCa, number][] = [];
    for (const ca of this.authority.trusted) numbered.push([ca, await this.repo.nextCrlNumber(ca.id, now)]);
    const rootNumber = await this.repo.nextCrlNumber(ROOT_CA_ID, now);
    // An entry stays for one CRL validity past the certificate's end, so that at least one
    // regularly scheduled CRL issued after the certificate expired lists it (RFC 5280 5.1.2.6).
    const listedAfter = now - this.settings.crlValidityMs;
    const byCa = new Map<string, string>();
    for (const [ca, number] of numbered) {
      const revoked = await this.repo.listRevoked(ca.id, listedAfter);
      byCa.set(ca.id, crlPem(await buildCrl(ca.pair, revoked.map(entryOf(now)), number, now, next)));
    }
    const retired = this.authority.retired.flatMap((c): RevokedEntry[] => {
      const cert = new x509.X509Certificate(c.certPem);
      return cert.notAfter.getTime() > listedAfter ? [{ serial: cert.serialNumber.toLowerCase(), revokedAtMs: c.disabledAt ?? now, reason: x509.X509CrlReason.superseded }] : [];
    });
    const root = crlPem(await buildCrl(this.authority.root, retired, rootNumber, now, next));
    let kept = true;
    for (const [ca, number] of numbered) kept = (await this.repo.saveCrl(ca.id, number, byCa.get(ca.id) ?? '')) && kept;
    kept = (await this.repo.saveCrl(ROOT_CA_ID, rootNumber, root)) && kept;
    if (kept) {
      this.#current = crls(root, byCa);
      return true;
    }
    // Another node signed meanwhile, after this one's numbers: its lists are the ones to serve.
    await this.load();
    return false;
  }

  /**
   * Loads the stored lists; true when every one is present, signed by its CA and not past a
   * quarter of its validity (otherwise the caller signs fresh ones). A list that is missing or
   * unusable keeps the one loaded before, if any.
   */
  async load(): Promise<boolean> {
    const cas = await this.repo.listCas();
    const stored = (id: string) => cas.find((c) => c.id === id)?.crlPem ?? null;
    let complete = true;
    const byCa = new Map<string, string>();
    for (const ca of this.authority.trusted) {
      const usable = await this.#usable(stored(ca.id), ca.pair.cert);
      complete &&= usable?.fresh === true;
      const pem = usable?.pem ?? this.#current.byCa.get(ca.id);
      if (pem !== undefined) byCa.set(ca.id, pem);
    }
    const root = await this.#usable(stored(ROOT_CA_ID), this.authority.root.cert);
    complete &&= root?.fresh === true;
    this.#current = crls(root?.pem ?? this.#current.root, byCa);
    return complete;
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

  /** Runs `resign` on a schedule (on one node of a cluster: the `crl` singleton). */
  startResigning(resign: () => Promise<void>): void {
    this.stopResigning();
    this.#timer = setInterval(() => {
      resign().catch((err: unknown) => this.deps.log.error({ err }, 'could not re-sign the CRL'));
    }, this.resignIntervalMs);
    this.#timer.unref();
  }

  stopResigning(): void {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
  }
}
