import type { Session } from '../client.js';
import type { Profile } from './scenario.js';

/** A reading as the platform stored it (the export's NDJSON line, the fields the report reads). */
export interface StoredReading {
  readonly deviceId: string;
  readonly msgId: string;
  readonly seq: number | null;
  readonly boot: string | null;
  readonly receivedAt: number;
}

/** What the simulator asks of the platform, over its HTTP API with an operator's credentials. */
export class PlatformApi {
  constructor(readonly session: Session) {}

  /** Registers the profile's schema (every field a number) unless the platform has it; refuses one that lacks a field. */
  async ensureSchema(p: Profile): Promise<'registered' | 'present'> {
    const at = p.schema.lastIndexOf('@');
    const [name, version] = [p.schema.slice(0, at), Number(p.schema.slice(at + 1))];
    const existing = await this.session.call<{ document: { properties: Record<string, unknown> } }>('GET', `/api/v1/schemas/${encodeURIComponent(name)}/versions/${version}`).catch(() => undefined);
    if (existing) {
      const missing = Object.keys(p.fields).filter((f) => !(f in existing.document.properties));
      if (missing.length > 0) throw new Error(`schema ${p.schema} on the platform lacks the profile's fields ${missing.join(', ')}: use another schema version`);
      return 'present';
    }
    // Units are the operator's to say; a simulated field has none it could honestly claim.
    const properties = Object.fromEntries(Object.keys(p.fields).map((f) => [f, { type: 'number', 'x-unit': '1' }]));
    await this.session.call('POST', '/api/v1/schemas', { body: { $id: p.schema, type: 'object', properties, required: Object.keys(p.fields) } });
    return 'registered';
  }

  /** Factory onboarding: one certificate per CSR, 500 devices a request. */
  async onboard(devices: readonly { id: string; model: string; hardwareRevision?: string; firmwareVersion?: string; tags: string[]; csr: string }[], batchId: string, progress: (done: number) => void): Promise<Map<string, string>> {
    const certs = new Map<string, string>();
    for (let i = 0; i < devices.length; i += 500) {
      const chunk = devices.slice(i, i + 500);
      const answer = await this.session.call<{ devices: { id: string; certificate?: string }[] }>('POST', '/api/v1/devices/batch', { body: { batchId, devices: chunk } });
      for (const d of answer.devices) if (d.certificate) certs.set(d.id, d.certificate);
      progress(Math.min(devices.length, i + chunk.length));
    }
    return certs;
  }

  /** The chain devices trust the platform's TLS with (and their certificates chain to). */
  async caPem(): Promise<string> {
    const res = await fetch(`${this.session.url}/api/v1/pki/ca.pem`);
    if (!res.ok) throw new Error(`GET /api/v1/pki/ca.pem answered ${res.status}`);
    return res.text();
  }

  async command(deviceId: string, name: string, params: Record<string, unknown>): Promise<string> {
    const c = await this.session.call<{ id: string }>('POST', `/api/v1/devices/${encodeURIComponent(deviceId)}/commands/${encodeURIComponent(name)}`, { body: { params } });
    return c.id;
  }

  async commandStatus(deviceId: string, id: string): Promise<string> {
    return (await this.session.call<{ status: string }>('GET', `/api/v1/devices/${encodeURIComponent(deviceId)}/commands/${encodeURIComponent(id)}`)).status;
  }

  async setTwin(deviceId: string, config: Record<string, unknown>): Promise<void> {
    await this.session.call('PUT', `/api/v1/devices/${encodeURIComponent(deviceId)}/twin/desired`, { body: { config } });
  }

  async startRollout(body: Record<string, unknown>): Promise<string> {
    return (await this.session.call<{ id: string }>('POST', '/api/v1/rollouts', { body })).id;
  }

  async rollout(id: string): Promise<{ id: string; state: string; reason: string | null; totals: Record<string, number> }> {
    return this.session.call('GET', `/api/v1/rollouts/${encodeURIComponent(id)}`);
  }

  /** Counter samples from /metrics (loopback, or metrics:read); empty when it cannot be read. */
  async metrics(): Promise<Map<string, number>> {
    const text = await fetch(`${this.session.url}/metrics`).then(
      (r) => (r.ok ? r.text() : ''),
      () => '',
    );
    const out = new Map<string, number>();
    for (const line of text.split('\n')) {
      const m = /^([a-z_]+(?:\{[^}]*\})?) ([0-9.e+-]+)$/.exec(line);
      if (m) out.set(m[1] as string, Number(m[2]));
    }
    return out;
  }

  /** Every stored reading of `schema` received within the range whose device id starts with `prefix`. */
  async *readings(schema: string, prefix: string, since: number, until: number): AsyncGenerator<StoredReading> {
    const res = await this.session.open('/api/v1/telemetry/export', { schema, since, until, format: 'ndjson' }, AbortSignal.timeout(600_000));
    const decoder = new TextDecoder();
    let rest = '';
    for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
      rest += decoder.decode(chunk, { stream: true });
      const lines = rest.split('\n');
      rest = lines.pop() ?? '';
      for (const line of lines) {
        if (line === '') continue;
        const r = JSON.parse(line) as StoredReading;
        if (r.deviceId.startsWith(prefix)) yield r;
      }
    }
  }
}
