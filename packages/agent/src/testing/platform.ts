import type { TestContext } from 'node:test';
import { type TestServer, startTestServer } from '@bulwark/server/testing';
import { agentDir } from './agents.js';
import type { AgentConfigInput } from '../config.js';

/** Test-only: the real platform on port 0 with a registered schema, and agent configs for it. */

export const SCHEMA = {
  $id: 'env-sensor@2',
  type: 'object',
  required: ['n'],
  additionalProperties: false,
  properties: { n: { type: 'integer', 'x-unit': '1' }, temp_c: { type: 'number', 'x-unit': 'degC', minimum: -40, maximum: 125 } },
};

export interface Platform {
  readonly s: TestServer;
  readonly admin: string;
  readonly mqttPort: number;
  /** Registers a device (with inventory fields such as model and firmwareVersion) and returns a one-time claim token for it. */
  claim(id: string, fields?: Record<string, unknown>): Promise<string>;
  /** Stored readings of a device (up to 10,000). */
  readings(id: string): Promise<{ msgId: string; seq: number | null; boot: string | null; ts: number; deviceTs: number | null; receivedAt: number; data: Record<string, unknown> }[]>;
  metric(re: RegExp): Promise<number>;
}

export async function startPlatform(t: TestContext, config: Record<string, unknown> = {}): Promise<Platform> {
  const s = await startTestServer(t, {
    config: {
      mqtt: { publishRatePerSecond: 100_000, publishBurst: 100_000 },
      rateLimit: { perAddressPerMinute: 100_000, perPrincipalPerMinute: 100_000 },
      ...config,
    },
  });
  const admin = await s.tokenFor(s.adminKey);
  const reg = await s.api('POST', '/api/v1/schemas', { token: admin, body: SCHEMA });
  if (reg.status !== 201) throw new Error(reg.text);
  return {
    s,
    admin,
    mqttPort: s.server.mqttPort,
    async claim(id, fields = {}) {
      const created = await s.api('POST', '/api/v1/devices', { token: admin, body: { id, ...fields } });
      if (created.status !== 201 && !(created.status === 409 && Object.keys(fields).length === 0)) throw new Error(`create ${id}: ${created.text}`);
      const claim = await s.api('POST', `/api/v1/devices/${id}/claim-tokens`, { token: admin, body: {} });
      if (claim.status !== 201) throw new Error(`claim ${id}: ${claim.text}`);
      return claim.body.token as string;
    },
    async readings(id) {
      const res = await s.api('GET', `/api/v1/devices/${id}/telemetry?limit=10000`, { token: admin });
      if (res.status !== 200) throw new Error(res.text);
      return res.body;
    },
    async metric(re) {
      return Number(re.exec((await s.api('GET', '/metrics')).text)?.[1] ?? 0);
    },
  };
}

/** A config for one agent of `p`, enrolling on first start; `port` may point at a proxy. */
export async function agentConfig(t: TestContext, p: Platform, id: string, extra: Partial<Record<keyof AgentConfigInput, unknown>> = {}, port = p.mqttPort): Promise<AgentConfigInput> {
  const dataDir = agentDir(t, id);
  const base = {
    deviceId: id,
    dataDir,
    mqtt: { url: `mqtts://127.0.0.1:${port}`, keepaliveS: 5, connectTimeoutMs: 3000 },
    identity: { claimToken: await p.claim(id), enrollUrl: p.s.url },
    reconnect: { baseMs: 100, capMs: 2000, stableAfterMs: 1000, refusedDelayMs: 60_000 },
    queue: { ackTimeoutMs: 3000 },
    logs: { level: 'error' },
  };
  const out: Record<string, unknown> = { ...base };
  for (const [k, v] of Object.entries(extra)) out[k] = v && typeof v === 'object' && out[k] && typeof out[k] === 'object' ? { ...out[k], ...v } : v;
  return out as unknown as AgentConfigInput;
}

export { until } from './until.js';
export { agentDir, startAgent } from './agents.js';
