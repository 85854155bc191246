import { type Clock, type IdGen, PlatformError } from '@bulwark/core';
import { deviceIdProblem } from '@bulwark/protocol';
import type { EventBus } from '../bus/index.js';
import { fingerprintOf } from './authority.js';
import type { CaRecord, IdentityRepository, ProvisioningRule } from './identity.js';
import { x509 } from './x509.js';

export interface NewManufacturerCa {
  readonly name: string;
  readonly certificatePem: string;
  readonly crlPem: string;
  readonly provisioning: ProvisioningRule;
}

const bad = (message: string) => new PlatformError('BULWARK_ERR_BAD_REQUEST', message);

/**
 * Manufacturer CAs an operator registered: devices with certificates from them are
 * provisioned just in time on first connect when the CA's rule allows their id. The
 * gateway checks revocation on every CA it trusts, so each one comes with its CRL.
 */
export class ManufacturerCas {
  #enabled: CaRecord[] = [];
  readonly #patterns = new Map<string, RegExp>();

  constructor(
    private readonly repo: IdentityRepository,
    private readonly deps: { clock: Clock; ids: IdGen; bus: EventBus },
  ) {}

  async load(): Promise<void> {
    this.#enabled = (await this.repo.listCas()).filter((c) => c.kind === 'manufacturer' && c.disabledAt === null);
    this.#patterns.clear();
    for (const ca of this.#enabled) if (ca.provisioning?.idPattern) this.#patterns.set(ca.id, new RegExp(`^(?:${ca.provisioning.idPattern})$`));
  }

  /** Enabled manufacturer CAs, for the gateway's trust store. */
  get enabled(): readonly CaRecord[] {
    return this.#enabled;
  }

  async list(): Promise<CaRecord[]> {
    return (await this.repo.listCas()).filter((c) => c.kind === 'manufacturer');
  }

  byFingerprint(fingerprint: string): CaRecord | undefined {
    return this.#enabled.find((c) => c.fingerprint === fingerprint);
  }

  allows(ca: CaRecord, deviceId: string): boolean {
    if (deviceIdProblem(deviceId)) return false;
    if (ca.provisioning?.allowList?.includes(deviceId)) return true;
    return this.#patterns.get(ca.id)?.test(deviceId) ?? false;
  }

  async register(input: NewManufacturerCa): Promise<CaRecord> {
    const cert = parseCa(input.certificatePem);
    await checkCrl(cert, input.crlPem, this.deps.clock.now());
    checkRule(input.provisioning);
    const fingerprint = fingerprintOf(cert);
    if ((await this.repo.listCas()).some((c) => c.fingerprint === fingerprint)) throw new PlatformError('BULWARK_ERR_CONFLICT', 'this CA is already registered');
    const record: CaRecord = {
      id: this.deps.ids.next('mca'),
      kind: 'manufacturer',
      name: input.name,
      certPem: cert.toString('pem'),
      fingerprint,
      provisioning: input.provisioning,
      crlPem: input.crlPem,
      createdAt: this.deps.clock.now(),
      disabledAt: null,
    };
    await this.repo.insertCa(record);
    await this.#changed();
    return record;
  }

  async updateCrl(id: string, crlPem: string): Promise<CaRecord> {
    const ca = await this.#get(id);
    await checkCrl(new x509.X509Certificate(ca.certPem), crlPem, this.deps.clock.now());
    await this.repo.updateCaCrl(id, crlPem);
    await this.#changed();
    return this.#get(id);
  }

  async setDisabled(id: string, disabled: boolean): Promise<CaRecord> {
    await this.#get(id);
    await this.repo.setCaDisabled(id, disabled ? this.deps.clock.now() : null);
    await this.#changed();
    return this.#get(id);
  }

  async #get(id: string): Promise<CaRecord> {
    const ca = (await this.list()).find((c) => c.id === id);
    if (!ca) throw new PlatformError('BULWARK_ERR_NOT_FOUND', `no manufacturer CA ${id}`);
    return ca;
  }

  async #changed(): Promise<void> {
    await this.load();
    await this.deps.bus.publish({ type: 'trust.changed' });
  }
}

function parseCa(pem: string): x509.X509Certificate {
  let cert: x509.X509Certificate;
  try {
    cert = new x509.X509Certificate(pem);
  } catch {
    throw bad('certificate is not a PEM X.509 certificate');
  }
  if (!cert.getExtension(x509.BasicConstraintsExtension)?.ca) throw bad('certificate is not a CA certificate (basicConstraints CA:TRUE)');
  if (cert.subject !== cert.issuer) throw bad('register the manufacturer root CA (self-signed); intermediate chains are not supported yet');
  return cert;
}

async function checkCrl(ca: x509.X509Certificate, pem: string, nowMs: number): Promise<void> {
  let crl: x509.X509Crl;
  try {
    crl = new x509.X509Crl(pem);
  } catch {
    throw bad('crl is not a PEM X.509 CRL');
  }
  if (!(await crl.verify({ publicKey: ca.publicKey }))) throw bad('the CRL is not signed by this CA');
  if (crl.nextUpdate && crl.nextUpdate.getTime() <= nowMs) throw bad('the CRL has expired (nextUpdate is in the past)');
}

function checkRule(rule: ProvisioningRule): void {
  if (!rule.allowList?.length && !rule.idPattern) throw bad('provisioning needs an allowList or an idPattern');
  for (const id of rule.allowList ?? []) if (deviceIdProblem(id)) throw bad(`allowList: "${id}" cannot be a device id`);
  if (rule.idPattern !== undefined) {
    try {
      new RegExp(rule.idPattern);
    } catch {
      throw bad('idPattern is not a valid regular expression');
    }
  }
}
