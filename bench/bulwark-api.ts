import type { Counts } from './broker.js';

/** Bulwark's HTTP API as the bench uses it: an admin token, JSON calls, /metrics counters, live streams (SSE). */

export interface Api {
  (method: string, path: string, body?: unknown, auth?: boolean): Promise<{ status: number; body: any }>; // eslint-disable-line @typescript-eslint/no-explicit-any -- JSON answers
  /** The current admin access token (refreshed by any authenticated call). */
  token(): string;
}

export function apiClient(url: string, adminKey: string): Api {
  let token = '';
  let tokenAt = 0;
  const api = async (method: string, path: string, body?: unknown, auth = true) => {
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
  return Object.assign(api, { token: () => token });
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- JSON answers
export async function must(what: string, status: number, p: ReturnType<Api>): Promise<any> {
  const res = await p;
  if (res.status !== status) throw new Error(`${what}: HTTP ${res.status} ${JSON.stringify(res.body).slice(0, 300)}`);
  return res.body;
}

/** MQTT ingest outcomes, disconnects and held publishes from /metrics. */
export async function readCounts(url: string): Promise<Counts> {
  const text = await fetch(`${url}/metrics`).then((r) => r.text());
  const outcomes: Record<string, number> = {};
  for (const m of text.matchAll(/^bulwark_ingest_messages_total\{transport="mqtt",outcome="(\w+)"\} (\d+)/gm)) outcomes[m[1] as string] = Number(m[2]);
  let disconnects = 0;
  for (const m of text.matchAll(/^bulwark_mqtt_disconnects_total\{[^}]*\} (\d+)/gm)) disconnects += Number(m[1]);
  const held = Number(/^bulwark_mqtt_publishes_held_total (\d+)/m.exec(text)?.[1] ?? 0);
  return { outcomes, disconnects, held };
}

/** A node's /metrics as text. Scraping resets prom-client's event-loop delay histogram. */
export const scrapeMetrics = (url: string): Promise<string> => fetch(`${url}/metrics`).then((r) => r.text());

/** The node's event-loop delay (ms) since the previous scrape: how long ready work waited for the loop. */
export function loopDelayOf(metrics: string): { p99: number; max: number } {
  const read = (name: string) => Number(new RegExp(`^bulwark_nodejs_eventloop_lag_${name}_seconds (\\S+)`, 'm').exec(metrics)?.[1] ?? NaN) * 1000;
  return { p99: read('p99'), max: read('max') };
}

/** A histogram of a scrape: cumulative counts by upper bound (seconds), +Inf last. */
export function histogramOf(metrics: string, name: string): Map<number, number> {
  const out = new Map<number, number>();
  for (const m of metrics.matchAll(new RegExp(`^${name}_bucket\\{le="([^"]+)"\\} (\\S+)`, 'gm'))) out.set(m[1] === '+Inf' ? Infinity : Number(m[1]), Number(m[2]));
  return out;
}

/** The `q` quantile (0–1) of the observations between two readings of a histogram summed over nodes, as the upper bound of its bucket, in ms (null: none observed). */
export function histogramQuantileMs(before: readonly Map<number, number>[], after: readonly Map<number, number>[], q: number): number | null {
  const delta = new Map<number, number>();
  after.forEach((a, i) => {
    for (const [le, n] of a) delta.set(le, (delta.get(le) ?? 0) + n - (before[i]?.get(le) ?? 0));
  });
  const bounds = [...delta.keys()].sort((x, y) => x - y);
  const total = delta.get(Infinity) ?? 0;
  if (total <= 0) return null;
  const bound = bounds.find((le) => (delta.get(le) ?? 0) >= q * total) ?? Infinity;
  return bound * 1000;
}

/** Opens a Server-Sent Events stream; resolves once the server says `ready`. Returns an abort function. */
export async function sse(url: string, token: string, onMessage: (msgId: string) => void): Promise<() => void> {
  const abort = new AbortController();
  const res = await fetch(url, { headers: { authorization: `Bearer ${token}`, accept: 'text/event-stream' }, signal: abort.signal });
  if (res.status !== 200 || !res.body) throw new Error(`live stream ${url}: HTTP ${res.status}`);
  const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = '';
  let ready: () => void = () => undefined;
  const isReady = new Promise<void>((resolve) => {
    ready = resolve;
  });
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
