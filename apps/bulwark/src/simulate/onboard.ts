import { X509Certificate } from 'node:crypto';
import type { Identity } from '@bulwark/agent';
import { makeKeyAndCsr } from '../device-keys.js';
import { deviceId } from './fleet.js';
import type { PlatformApi } from './platform.js';
import type { Scenario } from './scenario.js';

/**
 * Factory onboarding of the run's devices: a key and CSR made here per device, certificates
 * from the platform's batch endpoint (500 a request), each device tagged `simulated` and
 * `run-<runId>`. Returns each device's identity by id, in device order.
 */
export async function onboardFleet(api: PlatformApi, s: Scenario, runId: string, say: (line: string) => void): Promise<Map<string, Identity>> {
  const keys = new Map<string, { keyPem: string; csrPem: string }>();
  for (let i = 0; i < s.devices; i += 1) {
    const id = deviceId(s, runId, i);
    keys.set(id, await makeKeyAndCsr(id));
    if ((i + 1) % 1000 === 0) say(`keys: ${i + 1}/${s.devices}`);
  }
  const caPem = await api.caPem();
  const hw = s.firmware ? { model: s.firmware.model, hardwareRevision: s.firmware.hardwareRevision, firmwareVersion: s.firmware.version } : { model: 'simulated' };
  const certs = await api.onboard(
    [...keys].map(([id, k]) => ({ id, ...hw, tags: ['simulated', `run-${runId}`], csr: k.csrPem })),
    `sim-${runId}`,
    (n) => say(`onboarded: ${n}/${s.devices}`),
  );
  const identities = new Map<string, Identity>();
  for (const [id, k] of keys) {
    const certPem = certs.get(id);
    if (!certPem) throw new Error(`the platform issued no certificate for ${id}`);
    const c = new X509Certificate(certPem);
    identities.set(id, { keyPem: k.keyPem, certPem, caPem, serial: c.serialNumber.toLowerCase(), notBefore: Date.parse(c.validFrom), notAfter: Date.parse(c.validTo) });
  }
  return identities;
}
