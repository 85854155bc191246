import { type Clock, type Logger, PlatformError } from '@bulwark/core';
import type { EventBus } from '../bus/index.js';
import type { DeviceAuthority } from './authority.js';
import type { PlatformCrl } from './crl.js';
import type { CaRecord, IdentityRepository } from './identity.js';
import { x509 } from './x509.js';

export type IssuingCaState = 'active' | 'previous' | 'retired';

export interface IssuingCaView {
  readonly id: string;
  /** The subject name. */
  readonly name: string;
  readonly fingerprint: string;
  readonly state: IssuingCaState;
  /** Device certificates from it that still work: not revoked, not ended, not superseded past the rotation overlap. */
  readonly liveCertificates: number;
  readonly notBefore: number;
  readonly notAfter: number;
  readonly createdAt: number;
  readonly retiredAt: number | null;
  readonly certificatePem: string;
}

/** The active CA plus previous ones still trusted: a bound on how many generations overlap. */
export const MAX_TRUSTED_ISSUING_CAS = 4;

/**
 * Issuing-CA rollover: a new issuing CA under the same root takes over signing, the previous
 * ones stay trusted while certificates they issued still work, and each is retired when its
 * last one has ended or been rotated (checked at every scheduled CRL re-signing), or when an
 * operator says so. Every change is stored, then announced: each node reloads its CAs, CRLs
 * and TLS trust (new handshakes only; live sessions stay).
 */
export class IssuingCas {
  constructor(
    private readonly repo: IdentityRepository,
    private readonly authority: DeviceAuthority,
    private readonly crl: PlatformCrl,
    private readonly settings: { readonly rotationOverlapMs: number },
    private readonly deps: { clock: Clock; bus: EventBus; log: Logger; audit: (action: string, actor: string, target: string, details: Record<string, unknown>) => Promise<void> },
  ) {}

  /** Every issuing CA, the active one first, then newest first; as the store has them now. */
  async list(): Promise<IssuingCaView[]> {
    const records = (await this.repo.listCas()).filter((c) => c.kind === 'issuing').reverse();
    const activeId = records.find((c) => c.disabledAt === null)?.id;
    const views: IssuingCaView[] = [];
    for (const c of records) views.push(await this.#view(c, c.id === activeId ? 'active' : c.disabledAt === null ? 'previous' : 'retired'));
    return views.sort((a, b) => Number(b.state === 'active') - Number(a.state === 'active'));
  }

  async get(id: string): Promise<IssuingCaView> {
    const ca = (await this.list()).find((c) => c.id === id);
    if (!ca) throw new PlatformError('BULWARK_ERR_NOT_FOUND', `no issuing CA ${id}`);
    return ca;
  }

  /** A new issuing CA becomes the active one; the one active until now stays trusted as a previous one. */
  async rollover(): Promise<{ readonly active: IssuingCaView; readonly previous: IssuingCaView[] }> {
    const trusted = (await this.list()).filter((c) => c.state !== 'retired');
    if (trusted.length >= MAX_TRUSTED_ISSUING_CAS) {
      throw new PlatformError('BULWARK_ERR_CONFLICT', `${trusted.length} issuing CAs are trusted already (${trusted.map((c) => `${c.id}: ${c.liveCertificates} live certificates`).join(', ')}); retire a previous one first`);
    }
    const created = await this.authority.createIssuing(this.deps.clock.now());
    await this.#changed();
    const after = await this.list();
    // Two rollovers at once: the newer CA is the active one, the other a previous one with nothing issued.
    const active = after[0];
    if (active?.state !== 'active') throw new PlatformError('BULWARK_ERR_INTERNAL', 'no active issuing CA after the rollover');
    this.deps.log.info({ created: created.id, active: active.id, previous: trusted.map((c) => c.id) }, 'rolled the issuing CA over');
    return { active, previous: after.filter((c) => c.state === 'previous') };
  }

  /**
   * Stops trusting a previous issuing CA: new handshakes with its certificates fail, sessions
   * using them end, the root CRL lists it. Refused while certificates from it still work,
   * unless `force`.
   */
  async retire(id: string, force: boolean): Promise<IssuingCaView> {
    const ca = await this.get(id);
    if (ca.state === 'active') throw new PlatformError('BULWARK_ERR_CONFLICT', `${id} is the active issuing CA; roll over to a new one first`);
    if (ca.state === 'retired') throw new PlatformError('BULWARK_ERR_CONFLICT', `${id} is retired already`);
    if (ca.liveCertificates > 0 && !force) {
      throw new PlatformError('BULWARK_ERR_CONFLICT', `${ca.liveCertificates} device certificates from ${id} still work and would stop working: renew them first (a job with the rotate-certificate operation), or retire with force`);
    }
    await this.#retire(id);
    return this.get(id);
  }

  /** Retires every previous issuing CA with no certificate left that works; returns their ids. */
  async retireDrained(): Promise<string[]> {
    const drained = (await this.list()).filter((c) => c.state === 'previous' && c.liveCertificates === 0);
    const done: string[] = [];
    for (const ca of drained) {
      if (!(await this.repo.retireIssuingCa(ca.id, this.deps.clock.now()))) continue;
      await this.deps.audit('pki.issuing-ca.retire', 'system', ca.id, { reason: 'no certificate from it works any more' });
      done.push(ca.id);
    }
    if (done.length > 0) {
      this.deps.log.info({ retired: done }, 'retired issuing CAs whose certificates have all ended or been rotated');
      await this.#changed();
    }
    return done;
  }

  async #retire(id: string): Promise<void> {
    if (!(await this.repo.retireIssuingCa(id, this.deps.clock.now()))) throw new PlatformError('BULWARK_ERR_CONFLICT', `${id} is retired already`);
    await this.#changed();
  }

  /** This node first (CAs, then fresh CRLs for every trusted CA and the root), then every node reloads. */
  async #changed(): Promise<void> {
    await this.authority.reload();
    await this.crl.sign();
    await this.deps.bus.publish({ type: 'trust.changed' });
  }

  async #view(c: CaRecord, state: IssuingCaState): Promise<IssuingCaView> {
    const cert = new x509.X509Certificate(c.certPem);
    const now = this.deps.clock.now();
    const live = state === 'retired' ? 0 : await this.repo.countLiveCertificates(c.id, now, now - this.settings.rotationOverlapMs);
    return {
      id: c.id,
      name: c.name,
      fingerprint: c.fingerprint,
      state,
      liveCertificates: live,
      notBefore: cert.notBefore.getTime(),
      notAfter: cert.notAfter.getTime(),
      createdAt: c.createdAt,
      retiredAt: c.disabledAt,
      certificatePem: c.certPem,
    };
  }
}
