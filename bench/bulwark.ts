import { cpSync } from 'node:fs';
import { SETTINGS } from '../packages/server/src/index.js';
import { newAdminKey } from '../packages/server/src/testing/harness.js';
import { makeDeviceKeys } from '../packages/server/src/testing/devices.js';
import type { Broker, Identity } from './broker.js';
import { apiClient, must, readCounts, sse } from './bulwark-api.js';
import { deviceId, sessionId } from './certs.js';
import { firstJsonLine, progress, removeDir, startTsChild, stopChild } from './children.js';
import { pool } from './proc.js';

/**
 * Bulwark under test: the real server in a child process (bench/bulwark-server.ts). It is set
 * up once through its HTTP API like an operator would (a schema, devices enrolled with claim
 * tokens and CSRs, each its own P-256 key; idle-session devices through factory batches) in a
 * template data directory; every measured process starts on a fresh copy of it.
 */

export const BENCH_SCHEMA = {
  $id: 'bench@1',
  type: 'object',
  required: ['v'],
  additionalProperties: false,
  properties: { v: { type: 'number', 'x-unit': 'count', minimum: 0 } },
};

/** `load`: the message phases, with the per-device rate bound lifted; `default`: settings as `bulwark start` has them. */
export type BulwarkProfile = 'load' | 'default';

export interface BulwarkSetup {
  readonly template: string;
  readonly adminKey: string;
  readonly devices: readonly Identity[];
  readonly sessions: readonly Identity[];
  readonly overrides: ReturnType<typeof bulwarkOverrides>;
}

/** A setting's default from Bulwark's own schema. */
export function bulwarkDefault(key: string): number {
  const s = SETTINGS.find((x) => x.key === key);
  if (typeof s?.default !== 'number') throw new Error(`no numeric default for ${key}`);
  return s.default;
}

/** The settings changed from Bulwark's defaults in the `load` profile, and why. */
export function bulwarkOverrides(devices: number, sessions: number) {
  // Per principal: 2 admin calls per load device (+ a few) must fit in a minute; default 600.
  const perPrincipal = Math.max(600, devices * 2 + Math.ceil(sessions / 1000) + 50);
  const perAddress = Math.max(1200, devices * 3 + Math.ceil(sessions / 1000) + 100);
  const settings = {
    mqtt: { publishRatePerSecond: 100_000, publishBurst: 1_000_000 },
    rateLimit: { perAddressPerMinute: perAddress, perPrincipalPerMinute: perPrincipal },
  };
  const why = [
    `message phases: mqtt.publishRatePerSecond=100000 and mqtt.publishBurst=1000000 (the defaults, ${bulwarkDefault('mqtt.publishRatePerSecond')}/s and ${bulwarkDefault('mqtt.publishBurst')}, hold each device to ${bulwarkDefault('mqtt.publishRatePerSecond')}/s)`,
    perPrincipal > 600 || perAddress > 1200
      ? `message phases: rateLimit.perPrincipalPerMinute=${perPrincipal}, rateLimit.perAddressPerMinute=${perAddress} (enrollment of ${devices} devices through the API)`
      : 'message phases: HTTP rate limits at their defaults (enrollment fits in them)',
    'handshakes, one-device flood and idle sessions: every setting at its default, as `bulwark start` runs (no allocator preload, no extra Node flags)',
    'all processes: SQLite store in a fresh copy of the set-up data directory, log.level=silent, listeners on 127.0.0.1 port 0',
  ];
  return { settings, why };
}

export async function spawnBulwark(dataDir: string, adminKey: string, settings: Record<string, unknown>, nodeFlags: readonly string[], env: Record<string, string> = {}) {
  const listen = { port: 0, host: '127.0.0.1' };
  const mqtt = { ...((settings.mqtt as object | undefined) ?? {}), ...listen };
  const config = { ...settings, dataDir, http: listen, mqtt, deviceHttp: listen, log: { level: 'silent' } };
  const child = startTsChild('./bulwark-server.ts', nodeFlags, { BENCH_BULWARK_CONFIG: JSON.stringify(config), BULWARK_BOOTSTRAP_ADMIN_KEY: adminKey, ...env });
  const started = await firstJsonLine<{ url: string; mqttPort: number; controlPort: number; pid: number }>(child, 'bulwark-server');
  return { child, ...started };
}

/** Enrolls the load devices and onboards the idle-session devices in `template`, then stops. */
export async function setUpBulwark(template: string, devices: number, sessions: number): Promise<BulwarkSetup> {
  const adminKey = newAdminKey();
  const overrides = bulwarkOverrides(devices, sessions);
  const { child, url } = await spawnBulwark(template, adminKey, overrides.settings, []);
  const api = apiClient(url, adminKey);
  await must('register schema', 201, api('POST', '/api/v1/schemas', BENCH_SCHEMA));
  progress(`bulwark: enrolling ${devices} devices (claim token + CSR each)`);
  const enrolled = await pool(
    Array.from({ length: devices }, (_, i) => deviceId(i)),
    8,
    async (id) => {
      await must(`create ${id}`, 201, api('POST', '/api/v1/devices', { id }));
      const claim = await must(`claim ${id}`, 201, api('POST', `/api/v1/devices/${id}/claim-tokens`, {}));
      const keys = await makeDeviceKeys(id);
      const issued = await must(`enroll ${id}`, 201, api('POST', '/api/v1/enroll', { token: claim.token, csr: keys.csrPem }, false));
      return { id, creds: { key: keys.keyPem, cert: issued.certificate as string, ca: issued.caChain as string } };
    },
  );
  const ca = enrolled[0]?.creds.ca ?? '';
  const sessionDevices: Identity[] = [];
  // Factory onboarding: POST /api/v1/devices/batch with a CSR per device, 1000 a request (about 1 MB of CSRs, under http.bodyLimitBytes).
  for (let start = 0; start < sessions; start += 1000) {
    const ids = Array.from({ length: Math.min(1000, sessions - start) }, (_, k) => sessionId(start + k));
    progress(`bulwark: onboarding idle-session devices ${start}-${start + ids.length - 1} of ${sessions} (batch with CSRs)`);
    const keys = await pool(ids, 32, (id) => makeDeviceKeys(id));
    const res = await must('batch onboarding', 201, api('POST', '/api/v1/devices/batch', { devices: ids.map((id, k) => ({ id, csr: keys[k]?.csrPem })) }));
    (res.devices as { id: string; certificate: string }[]).forEach((d, k) => sessionDevices.push({ id: d.id, creds: { key: keys[k]?.keyPem ?? '', cert: d.certificate, ca } }));
  }
  await stopChild(child, 30_000);
  return { template, adminKey, devices: enrolled, sessions: sessionDevices, overrides };
}

export async function startBulwark(setup: BulwarkSetup, dataDir: string, profile: BulwarkProfile, nodeFlags: readonly string[]): Promise<Broker> {
  cpSync(setup.template, dataDir, { recursive: true });
  const settings = profile === 'load' ? setup.overrides.settings : {};
  const { child, url, mqttPort, controlPort, pid } = await spawnBulwark(dataDir, setup.adminKey, settings, nodeFlags);
  const api = apiClient(url, setup.adminKey);
  return {
    name: 'bulwark',
    pid,
    port: mqttPort,
    url,
    notes: setup.overrides.why,
    device: (i) => setup.devices[i % setup.devices.length] as Identity,
    sessionIdentities: async (n) => {
      if (n > setup.sessions.length) throw new Error(`only ${setup.sessions.length} idle-session devices were onboarded`);
      return setup.sessions.slice(0, n);
    },
    async liveTap(ids, _protocol, onMessage) {
      await api('GET', '/healthz', undefined, true); // refreshes the token if needed
      const taps = await Promise.all(ids.map((id) => sse(`${url}/api/v1/devices/${id}/telemetry/live`, api.token(), onMessage)));
      return async () => taps.forEach((abort) => abort());
    },
    async healthz() {
      const t0 = performance.now();
      const res = await fetch(`${url}/healthz`);
      await res.text();
      if (res.status !== 200) throw new Error(`/healthz answered ${res.status}`);
      return performance.now() - t0;
    },
    counts: () => readCounts(url),
    pending: async () => ((await fetch(`http://127.0.0.1:${controlPort}/`).then((r) => r.json())) as { pending: number }).pending,
    async stop() {
      await stopChild(child, 30_000);
      removeDir(dataDir);
    },
  };
}
