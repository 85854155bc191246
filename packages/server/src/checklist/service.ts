import { existsSync, readFileSync } from 'node:fs';
import type { Clock } from '@bulwark/core';
import { parseCheckpointLines } from '../audit/index.js';
import { isLoopbackHost } from '../config/index.js';
import type { CheckResult, CheckStatus, ChecklistReport, ChecklistRepository } from './checklist.js';
import { devicePostureCheck } from './posture-check.js';

const DAY = 86_400_000;
/** Evidence lines listed per check (the count says how many there are). */
const SAMPLE = 10;
/** Takeovers from another address in a day that, with an address coming back, point to a cloned identity. */
const TAKEOVERS_FOR_A_CLONE = 3;
/** Scopes that administer the platform itself: a service account rarely needs one. */
export const BROAD_SCOPES: ReadonlySet<string> = new Set(['*', 'users:write', 'keys:write', 'secrets:rotate', 'pki:write', 'cluster:write']);
/** Field names that usually hold personal or locating data (a schema should mark them `x-sensitive`). */
const PERSONAL_FIELD = /^(lat|lon|lng|latitude|longitude|gps|location|position|address|email|phone|owner|person|user|name|ssid|mac|imei|imsi|iccid)(_.*)?$/i;

export interface ChecklistSettings {
  readonly certificateDays: number;
  readonly staleDays: number;
  readonly masterKeyMaxAgeDays: number;
}

export const DEFAULT_CHECKLIST_SETTINGS: ChecklistSettings = { certificateDays: 30, staleDays: 30, masterKeyMaxAgeDays: 365 };

/** A registered schema's newest version, as the checks read it. */
interface Schema {
  readonly name: string;
  readonly version: number;
  readonly document: Readonly<Record<string, unknown>>;
}

export interface ChecklistDeps {
  readonly repo: ChecklistRepository;
  readonly clock: Clock;
  /** The newest version of each registered schema. */
  readonly schemas: () => Promise<readonly Schema[]>;
  readonly verifyAudit: (checkpoints?: readonly unknown[]) => Promise<{ ok: boolean; message: string; checkpoints?: { ok: boolean; checked: number } }>;
  /** The CAs whose CRLs devices are checked against now (root and trusted issuing CAs). */
  readonly caIds: () => readonly string[];
  readonly config: {
    readonly http: { readonly host: string; readonly tls: boolean };
    readonly coap: { readonly enabled: boolean; readonly host: string; readonly trustedNetwork: boolean };
    readonly minSecurityVersion: number;
    readonly crlValidityMs: number;
    readonly rawRetentionDays: number;
    readonly retentionIntervalMs: number;
    readonly checkpointFile: string | undefined;
    readonly dataDir?: string;
    /** How long device certificates are issued for (the expiry warning is at most a third of it). */
    readonly deviceCertValidityDays: number;
  };
}

const result = (id: string, title: string, etsi: readonly string[], status: CheckStatus, evidence: readonly string[], remediation: string): CheckResult => ({ id, title, status, evidence, remediation: status === 'pass' ? '' : remediation, etsi });
const day = (ms: number) => new Date(ms).toISOString().slice(0, 10);
const more = (count: number, shown: number) => (count > shown ? [`… and ${count - shown} more`] : []);

/** Runs every check of `bulwark audit` against the live deployment. Read-only. */
export class ChecklistService {
  constructor(
    private readonly deps: ChecklistDeps,
    private readonly settings: ChecklistSettings = DEFAULT_CHECKLIST_SETTINGS,
  ) {}

  async run(): Promise<ChecklistReport> {
    const now = this.deps.clock.now();
    // Two checks read the schemas: listed once.
    const schemas = await this.deps.schemas();
    const checks = await Promise.all([
      this.#certificates(now),
      this.#securityFloor(),
      this.#rolloutFirmware(now),
      this.#retention(schemas),
      this.#sensitiveFields(schemas),
      this.#listeners(),
      this.#serviceAccounts(),
      this.#staleDevices(now),
      this.#clones(now),
      this.#masterKey(now),
      this.#auditChain(),
      this.#crl(now),
      devicePostureCheck(this.deps.repo, SAMPLE),
    ]);
    const summary = { pass: 0, warn: 0, fail: 0 };
    for (const c of checks) summary[c.status] += 1;
    return { at: now, checks, summary };
  }

  async #certificates(now: number): Promise<CheckResult> {
    // Short-lived certificates (renewed often) would all look about to expire: warn within a third of their life at most.
    const days = Math.min(this.settings.certificateDays, Math.max(1, Math.floor(this.deps.config.deviceCertValidityDays / 3)));
    const { count, sample } = await this.deps.repo.expiringCertificates(now + days * DAY, SAMPLE);
    return result(
      'certificates-expiring',
      `Device certificates valid for more than ${days} days`,
      ['5.5'],
      count === 0 ? 'pass' : 'fail',
      count === 0
        ? [`no live device certificate expires before ${day(now + days * DAY)}`]
        : [`${count} live device certificates expire before ${day(now + days * DAY)}`, ...sample.map((c) => `${c.deviceId}: certificate ${c.serial} ${c.notAfter <= now ? 'expired' : 'expires'} ${day(c.notAfter)}`), ...more(count, sample.length)],
      'Renew them before they expire: agents renew on their own once connected (identity.renewAtFraction); for the others run a rotate-certificate job (bulwark jobs create) or re-enroll them (bulwark devices token, then enroll).',
    );
  }

  async #securityFloor(): Promise<CheckResult> {
    const floor = this.deps.config.minSecurityVersion;
    const title = "Devices at or above the fleet's minimum security version";
    if (floor <= 0) return result('security-floor', title, ['5.3'], 'pass', ['no minimum set (ota.minSecurityVersion 0): no device is below it'], '');
    const { count, sample } = await this.deps.repo.belowSecurityVersion(floor, SAMPLE);
    return result(
      'security-floor',
      title,
      ['5.3'],
      count === 0 ? 'pass' : 'fail',
      count === 0 ? [`every device reporting a security version is at ${floor} or above`] : [`${count} devices report a security version below ${floor}`, ...sample.map((d) => `${d.deviceId}: ${d.detail}`), ...more(count, sample.length)],
      'Roll out a release at or above the floor to them (bulwark rollout create), or retire devices that cannot take it.',
    );
  }

  async #rolloutFirmware(now: number): Promise<CheckResult> {
    const expired = await this.deps.repo.rolloutsWithExpiredFirmware(now);
    return result(
      'rollout-firmware',
      'Rollouts under way offer only signed, unexpired firmware',
      ['5.3', '5.7'],
      expired.length === 0 ? 'pass' : 'fail',
      expired.length === 0
        ? ['every running or paused rollout offers a release whose signed manifest is still valid (releases are refused unsigned at upload)']
        : expired.map((r) => `rollout ${r.name} (${r.rolloutId}) offers ${r.artifact}, whose signed manifest expired ${day(r.expiresAt)}: devices refuse it`),
      'Abort the rollout and start one with a freshly signed release (bulwark firmware upload, bulwark rollout create).',
    );
  }

  async #retention(schemas: readonly Schema[]): Promise<CheckResult> {
    const { rawRetentionDays, retentionIntervalMs } = this.deps.config;
    const title = "Every schema's readings are kept no longer than a decided period";
    if (retentionIntervalMs <= 0 && schemas.length > 0) {
      return result('schema-retention', title, ['5.8', '5.11'], 'fail', ['the retention job is off (telemetry.retentionIntervalMs 0): readings are never deleted'], 'Set telemetry.retentionIntervalMs (default one hour) so expired readings are deleted.');
    }
    const implicit = schemas.filter((s) => typeof s.document['x-retention-days'] !== 'number');
    return result(
      'schema-retention',
      title,
      ['5.8', '5.11'],
      implicit.length === 0 ? 'pass' : 'warn',
      implicit.length === 0
        ? [schemas.length === 0 ? 'no schema registered yet' : `${schemas.length} schemas, each with its own x-retention-days`]
        : implicit
            .slice(0, SAMPLE)
            .map((s) => `${s.name}@${s.version} sets no x-retention-days: its readings are kept the default ${rawRetentionDays} days, not a period decided for this data`)
            .concat(more(implicit.length, SAMPLE)),
      'Give each schema an x-retention-days that matches why its data is kept (register a new version of it).',
    );
  }

  async #sensitiveFields(schemas: readonly Schema[]): Promise<CheckResult> {
    const found: string[] = [];
    for (const s of schemas) {
      const properties = (s.document.properties ?? {}) as Record<string, Record<string, unknown>>;
      for (const [field, spec] of Object.entries(properties)) {
        if (PERSONAL_FIELD.test(field) && spec['x-sensitive'] === undefined) found.push(`${s.name}@${s.version}: field ${field} looks personal or locating and is not marked x-sensitive`);
      }
    }
    return result(
      'sensitive-fields',
      'Fields that look personal or locating are marked sensitive',
      ['5.8'],
      found.length === 0 ? 'pass' : 'warn',
      found.length === 0 ? ['no unmarked field with a personal or locating name (location, lat/lon, email, phone, owner, MAC, IMEI…)'] : [...found.slice(0, SAMPLE), ...more(found.length, SAMPLE)],
      'Mark such fields "x-sensitive" in a new schema version: they are then masked in dead letters, exports and the dashboard, and revealed only with telemetry:decrypt.',
    );
  }

  async #listeners(): Promise<CheckResult> {
    const { http, coap } = this.deps.config;
    const evidence: string[] = [];
    let status: CheckStatus = 'pass';
    if (http.tls) evidence.push(`HTTP API on ${http.host} over TLS`);
    else if (isLoopbackHost(http.host)) evidence.push(`HTTP API plain on loopback ${http.host} only`);
    else {
      status = 'fail';
      evidence.push(`HTTP API speaks plain HTTP on ${http.host} (http.allowInsecure): keys and tokens cross the network in clear text`);
    }
    evidence.push('MQTT and device HTTPS: mutual TLS only');
    if (coap.enabled && !isLoopbackHost(coap.host)) {
      if (status === 'pass') status = 'warn';
      evidence.push(`CoAP on ${coap.host} without DTLS${coap.trustedNetwork ? ' (coap.trustedNetwork)' : ''}: readings are readable on that network`);
    }
    return result(
      'plaintext-listeners',
      'No plaintext listener outside this machine',
      ['5.5', '5.6'],
      status,
      evidence,
      'Turn on http.tls (--http-tls) or keep http.host on loopback behind a TLS proxy; keep CoAP off or on loopback unless its network is trusted.',
    );
  }

  async #serviceAccounts(): Promise<CheckResult> {
    const broad = (await this.deps.repo.serviceAccounts()).filter((a) => a.scopes.some((s) => BROAD_SCOPES.has(s)));
    return result(
      'broad-service-accounts',
      'Service accounts hold no platform-administration scope',
      ['5.6'],
      broad.length === 0 ? 'pass' : 'fail',
      broad.length === 0 ? ['no enabled service account holds *, users:write, keys:write, secrets:rotate, pki:write or cluster:write'] : broad.map((a) => `service account ${a.name} (${a.id}) holds ${a.scopes.filter((s) => BROAD_SCOPES.has(s)).join(', ')}`),
      'Replace it with an account holding only the scopes its job needs (bulwark users create NAME --service --scopes …), move its keys over, and disable it; administration belongs to named admins.',
    );
  }

  async #staleDevices(now: number): Promise<CheckResult> {
    const days = this.settings.staleDays;
    const { count, sample } = await this.deps.repo.staleDevices(now - days * DAY, SAMPLE);
    return result(
      'stale-devices',
      `Every enrolled device was seen in the last ${days} days`,
      ['5.6'],
      count === 0 ? 'pass' : 'warn',
      count === 0 ? [`every live device was seen since ${day(now - days * DAY)}`] : [`${count} devices not seen since ${day(now - days * DAY)} or never`, ...sample.map((d) => `${d.deviceId}: ${d.detail}`), ...more(count, sample.length)],
      'Find out why, and decommission devices that are gone (bulwark devices decommission): a valid identity nobody uses is one an attacker can.',
    );
  }

  /**
   * One identity, two holders: a device whose session was taken over from another address, and
   * then back (an address seen again), several times in a day. A device that roams (a new
   * address each time) is not one: every takeover brings an address not seen before.
   */
  async #clones(now: number): Promise<CheckResult> {
    const suspects = (await this.deps.repo.takeovers(now - DAY, TAKEOVERS_FOR_A_CLONE)).filter((d) => d.addresses.length <= d.count);
    // A warning, not a failure: a device switching between two networks (Wi-Fi and cellular, a carrier's address pool) looks alike.
    return result(
      'cloned-identity',
      'No device identity is used from two places at once',
      ['5.4', '5.6'],
      suspects.length === 0 ? 'pass' : 'warn',
      suspects.length === 0
        ? [`no device's session was taken over back and forth between addresses ${TAKEOVERS_FOR_A_CLONE} times or more in the last 24 h`]
        : suspects.slice(0, SAMPLE).map((d) => `${d.deviceId}: ${d.count} takeovers in 24 h between ${d.addresses.join(', ')}`),
      "Its key has most likely been copied: revoke the device's certificate (bulwark devices revoke), find the second holder by its address, and re-enroll the device with a new key.",
    );
  }

  async #masterKey(now: number): Promise<CheckResult> {
    const maxDays = this.settings.masterKeyMaxAgeDays;
    const [rotated, since] = await Promise.all([this.deps.repo.lastAudited('secrets.rotate-master-key'), this.deps.repo.firstAudited()]);
    const from = rotated ?? since ?? now;
    const age = Math.floor((now - from) / DAY);
    return result(
      'master-key-rotation',
      `The master key was rotated in the last ${maxDays} days`,
      ['5.4'],
      age <= maxDays ? 'pass' : 'warn',
      [rotated === undefined ? `never rotated; in use since ${day(from)} (${age} days)` : `last rotated ${day(rotated)} (${age} days ago)`],
      'Rotate it: start with BULWARK_MASTER_KEY_NEXT set, run bulwark keys rotate-master, then make the new key the only one (operations guide, master key).',
    );
  }

  async #auditChain(): Promise<CheckResult> {
    const file = this.deps.config.checkpointFile;
    const read = file !== undefined && existsSync(file) ? parseCheckpointLines(readFileSync(file, 'utf8')) : [];
    const report = await this.deps.verifyAudit(read.length > 0 ? read : undefined);
    const evidence = [report.message];
    let status: CheckStatus = report.ok ? 'pass' : 'fail';
    const warn = (line: string) => {
      evidence.push(line);
      if (status === 'pass') status = 'warn';
    };
    if (file === undefined) warn('no checkpoints written (audit.checkpointIntervalMs 0): a chain rewritten whole would verify');
    // In a cluster, the node answering may not be the one writing: the file must be on storage every node reaches.
    else if (read.length === 0) warn(`no checkpoint to check against in ${file} on this node (missing or empty)`);
    else if (this.deps.config.dataDir !== undefined && file.startsWith(`${this.deps.config.dataDir}/`)) {
      evidence.push(`the checkpoint file is in the data directory, beside the database: whoever can rewrite one can rewrite the other; point audit.checkpointFile elsewhere`);
    }
    return result(
      'audit-chain',
      'The audit chain verifies, against its signed checkpoints',
      ['5.10'],
      status,
      evidence,
      "A broken chain means the log was edited: find the first bad entry (bulwark audit-log verify) and treat the database as compromised. Keep checkpoints on and the file off the database's machine.",
    );
  }

  async #crl(now: number): Promise<CheckResult> {
    const validity = this.deps.config.crlValidityMs;
    const resign = Math.min(DAY, validity / 4);
    const ages = await this.deps.repo.crlAges(this.deps.caIds());
    const expired = ages.filter((a) => a.updatedAt === null || now - a.updatedAt >= validity);
    const late = ages.filter((a) => a.updatedAt !== null && now - a.updatedAt >= 2 * resign && now - a.updatedAt < validity);
    const status: CheckStatus = expired.length > 0 ? 'fail' : late.length > 0 ? 'warn' : 'pass';
    return result(
      'crl-freshness',
      'Certificate revocation lists are fresh',
      ['5.5'],
      status,
      ages.map((a) =>
        a.updatedAt === null
          ? `${a.caId}: no CRL signed`
          : `${a.caId}: CRL signed ${new Date(a.updatedAt).toISOString()} (${Math.round((now - a.updatedAt) / 3_600_000)} h ago; valid ${Math.round(validity / 3_600_000)} h, re-signed every ${Math.round(resign / 3_600_000)} h)`,
      ),
      'The node holding the crl lease re-signs CRLs: check that one is running (bulwark cluster status) and its logs; devices and gateways refuse connections once a CRL expires.',
    );
  }
}
