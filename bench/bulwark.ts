import { newAdminKey } from '../packages/server/src/testing/harness.js';
import { makeDeviceKeys } from '../packages/server/src/testing/devices.js';
import type { Broker, Identity } from './broker.js';
import { deviceId, sessionId } from './certs.js';
import { firstJsonLine, progress, startTsChild, stopChild } from './children.js';
import { pool } from './proc.js';

/**
 * Bulwark under test: the real server in a child process (bench/bulwark-server.ts), set up
 * through its HTTP API like an operator would: a schema, then devices enrolled with claim
 * tokens and CSRs (each its own P-256 key), idle-session devices through factory batches.
 */

export const BENCH_SCHEMA = {
  $id: 'bench@1', type: 'object', required: ['v'], additionalProperties: false,
  properties: { v: { type: 'number', 'x-unit': 'count', minimum: 0 } },
};

interface Api {
  (method: string, path: string, body?: unknown, auth?: boolean): Promise<{ status: number; body: any }>; // eslint-disable-line @typescript-eslint/no-explicit-any -- JSON answers
}

/** The only settings changed from Bulwark's defaults, and why. */
export function bulwarkOverrides(devices: number, sessions: number) {
  // Per principal: 2 admin calls per load device (+ a few) must fit in a minute; default 600.
  const perPrincipal = Math.max(600, devices * 2 + Math.ceil(sessions / 5000) + 50);
  const perAddress = Math.max(1200, devices * 3 + Math.ceil(sessions / 5000) + 100);
  const settings = {
    mqtt: { publishRatePerSecond: 100_000, publishBurst: 1_000_000 },
    rateLimit: { perAddressPerMinute: perAddress, perPrincipalPerMinute: perPrincipal },
  };
  const why = [
    'mqtt.publishRatePerSecond=100000 and mqtt.publishBurst=1000000 (defaults 50/s and 200 would disconnect a device publishing flat out)',
    perPrincipal > 600 || perAddress > 1200
      ? `rateLimit.perPrincipalPerMinute=${perPrincipal}, rateLimit.perAddressPerMinute=${perAddress} (enrollment of ${devices} devices through the API)`
      : 'HTTP rate limits left at their defaults (enrollment fits in them)',
    'everything else default (group commit 256 items / 5 ms, SQLite store in a temp dir); log.level=silent; listeners on 127.0.0.1, port 0',
  ];
  return { settings, why };
}

export async function startBulwark(dataDir: string, devices: number, sessions: number, nodeFlags: readonly string[]): Promise<Broker> {
  const adminKey = newAdminKey();
  const { settings, why } = bulwarkOverrides(devices, sessions);
  const config = { ...settings, dataDir, http: { port: 0, host: '127.0.0.1' }, mqtt: { ...settings.mqtt, port: 0, host: '127.0.0.1' }, log: { level: 'silent' } };
  const child = startTsChild('./bulwark-server.ts', nodeFlags, { BENCH_BULWARK_CONFIG: JSON.stringify(config), BULWARK_BOOTSTRAP_ADMIN_KEY: adminKey });
  const { url, mqttPort, pid } = await firstJsonLine<{ url: string; mqttPort: number; pid: number }>(child, 'bulwark-server');

  let token = '';
  let tokenAt = 0;
  const api: Api = async (method, path, body, auth = true) => {
    if (auth && Date.now() - tokenAt > 5 * 60_000) {
      const res = await fetch(`${url}/api/v1/auth/token`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ key: adminKey }) });
      if (res.status !== 200) throw new Error(`token exchange: ${res.status} ${await res.text()}`);
      token = ((await res.json()) as { accessToken: string }).accessToken;
      tokenAt = Date.now();
    }
    const headers: Record<string, string> = auth ? { authorization: `Bearer ${token}` } : {};
    if (body !== undefined) headers['content-type'] = 'application/json';
    const res = await fetch(url + path, { method, headers, ...(body !== undefined ? { body: JSON.stringify(body) } : {}) });
    const text = await res.text();
    return { status: res.status, body: text.startsWith('{') || text.startsWith('[') ? JSON.parse(text) : text };
  };
  const must = async (what: string, status: number, p: ReturnType<Api>) => {
    const res = await p;
    if (res.status !== status) throw new Error(`${what}: HTTP ${res.status} ${JSON.stringify(res.body).slice(0, 300)}`);
    return res.body;
  };

  await must('register schema', 201, api('POST', '/api/v1/schemas', BENCH_SCHEMA));
  progress(`bulwark: enrolling ${devices} devices (claim token + CSR each)`);
  const enrolled = await pool(Array.from({ length: devices }, (_, i) => deviceId(i)), 8, async (id) => {
    await must(`create ${id}`, 201, api('POST', '/api/v1/devices', { id }));
    const claim = await must(`claim ${id}`, 201, api('POST', `/api/v1/devices/${id}/claim-tokens`, {}));
    const keys = await makeDeviceKeys(id);
    const issued = await must(`enroll ${id}`, 201, api('POST', '/api/v1/enroll', { token: claim.token, csr: keys.csrPem }, false));
    return { id, creds: { key: keys.keyPem, cert: issued.certificate as string, ca: issued.caChain as string } };
  });
  const ca = enrolled[0]?.creds.ca ?? '';
  const sessionDevices: Identity[] = [];

  return {
    name: 'bulwark', pid, port: mqttPort, notes: why,
    device: (i) => enrolled[i % enrolled.length] as Identity,
    async sessionIdentities(n) {
      // Factory onboarding: POST /api/v1/devices/batch with a CSR per device, 1000 a request (about 1 MB of CSRs, under http.bodyLimitBytes).
      for (let start = sessionDevices.length; start < n; start += 1000) {
        const ids = Array.from({ length: Math.min(1000, n - start) }, (_, k) => sessionId(start + k));
        progress(`bulwark: onboarding idle-session devices ${start}-${start + ids.length - 1} (batch with CSRs)`);
        const keys = await pool(ids, 32, (id) => makeDeviceKeys(id));
        const res = await must('batch onboarding', 201, api('POST', '/api/v1/devices/batch', { devices: ids.map((id, k) => ({ id, csr: keys[k]?.csrPem })) }));
        (res.devices as { id: string; certificate: string }[]).forEach((d, k) => sessionDevices.push({ id: d.id, creds: { key: keys[k]?.keyPem ?? '', cert: d.certificate, ca } }));
      }
      return sessionDevices.slice(0, n);
    },
    async liveTap(ids, onMessage) {
      await api('GET', '/healthz', undefined, true); // refreshes the token if needed
      const taps = await Promise.all(ids.map((id) => sse(`${url}/api/v1/devices/${id}/telemetry/live`, token, onMessage)));
      return async () => taps.forEach((abort) => abort());
    },
    async healthz() {
      const t0 = performance.now();
      await fetch(`${url}/healthz`).then((r) => r.text());
      return performance.now() - t0;
    },
    async counts() {
      const text = (await fetch(`${url}/metrics`).then((r) => r.text()));
      const out: Record<string, number> = {};
      for (const m of text.matchAll(/^bulwark_ingest_messages_total\{transport="mqtt",outcome="(\w+)"\} (\d+)/gm)) out[m[1] as string] = Number(m[2]);
      return out;
    },
    stop: () => stopChild(child, 30_000),
  };
}

/** Opens a Server-Sent Events stream; resolves once the server says `ready`. Returns an abort function. */
async function sse(url: string, token: string, onMessage: (msgId: string) => void): Promise<() => void> {
  const abort = new AbortController();
  const res = await fetch(url, { headers: { authorization: `Bearer ${token}`, accept: 'text/event-stream' }, signal: abort.signal });
  if (res.status !== 200 || !res.body) throw new Error(`live stream ${url}: HTTP ${res.status}`);
  const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = '';
  let ready: () => void = () => undefined;
  const isReady = new Promise<void>((resolve) => { ready = resolve; });
  void (async () => {
    for (;;) {
      const { value, done } = await reader.read().catch(() => ({ value: undefined, done: true as const }));
      if (done) return;
      buffer += value;
      let end: number;
      while ((end = buffer.indexOf('\n\n')) >= 0) {
        const event = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        const kind = /^event: (\w+)$/m.exec(event)?.[1];
        if (kind === 'ready') ready();
        const data = kind === 'reading' ? /^data: (.*)$/m.exec(event)?.[1] : undefined;
        if (data) onMessage((JSON.parse(data) as { msgId: string }).msgId);
      }
    }
  })();
  await isReady;
  return () => abort.abort();
}
