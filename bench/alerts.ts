import { type IncomingMessage, createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { type BulwarkSetup, spawnBulwark } from './bulwark.js';
import { apiClient } from './bulwark-api.js';
import type { Broker } from './broker.js';
import { progress, removeDir, stopChild, tempDir } from './children.js';
import { pacedQos1 } from './cluster-load.js';
import { cpSync } from 'node:fs';
import { Load } from './load.js';
import { Samples, delay, round } from './proc.js';

/**
 * The alerts phase (issue 16's targets): one embedded node at a paced QoS 1 rate, in windows
 * without alert rules and with `rules` rules that all match every load device (measureAlerts). One of them fires
 * on 1 % of readings (field `a` is 1 once in 100 readings of a device, then 0 again: fire, then
 * resolve; each device at its own phase, so about 1 % of every second's readings); the others are evaluated on every reading and never fire (thresholds on `v` out of
 * its range, rate limits above its change). Every fire and resolve is notified to a webhook
 * receiver on this machine. Measured: Bulwark's CPU per stored reading in both modes (the
 * target: ≤ 10 % more with the rules), and reading received → notification received for
 * every "fired" notification (the target: p99 ≤ 1 s).
 */

export interface AlertsPlan {
  readonly devices: number;
  readonly rate: number;
  readonly durationS: number;
  readonly warmupS: number;
  readonly repeats: number;
  /**
   * Pairs run first and not counted (numbered from 0 down): a fresh database and process cost
   * less a message than they will a minute later, which made the first pair's no-rules window
   * the cheapest of the run and its ratio the highest.
   */
  readonly settlePairs: number;
  readonly rules: number;
  /** One POST per notification, or what is due in one POST (a batching channel). */
  readonly channel: 'single' | 'batch';
  /** Node flags of the node (--cpu-prof with `npm run bench -- --profile`: one profile of both modes). */
  readonly profileFlags?: (mode: string, n: number) => readonly string[];
}

export interface AlertsRound {
  /** The pair of windows (one without rules, one with) it belongs to. */
  readonly pair: number;
  readonly mode: 'no rules' | 'rules';
  readonly msgPerSec: number;
  readonly usPerMsg: number;
  readonly pubackP99: number | null;
  /** Notifications the receiver took during the window and after it (fired, resolved). */
  readonly fired: number;
  readonly resolved: number;
  /** Notifications received more than once (the same Bulwark-Delivery-Id): should be 0. */
  readonly duplicates: number;
  /** POSTs that carried them. */
  readonly posts: number;
  /** Reading received by Bulwark → "fired" notification received, ms. */
  readonly notifyP50: number | null;
  readonly notifyP99: number | null;
  readonly notifyMax: number | null;
}

const SCHEMA = {
  $id: 'bench-alerts@1',
  type: 'object',
  required: ['v', 'a'],
  additionalProperties: false,
  properties: { v: { type: 'number', 'x-unit': 'count', minimum: 0 }, a: { type: 'integer', 'x-unit': 'count', minimum: 0, maximum: 1 } },
};

/** The rules: one that fires on `a`, the rest evaluated and quiet. */
export function benchRules(count: number): object[] {
  const rules: object[] = [{ name: 'bench: a raised', severity: 'warning', scope: { schemas: ['bench-alerts@1'] }, condition: { kind: 'threshold', field: 'a', op: '>=', value: 1 } }];
  for (let i = 1; i < count; i += 1) {
    rules.push(
      i % 2 === 0
        ? { name: `bench: quiet threshold ${i}`, scope: { schemas: ['bench-alerts@1'] }, condition: { kind: 'threshold', field: 'v', op: '<', value: -i, for: '1m' } }
        : { name: `bench: quiet rate ${i}`, scope: { schemas: ['bench-alerts@1'] }, condition: { kind: 'rate', field: 'v', maxPerMinute: 1e9 + i } },
    );
  }
  return rules;
}

/** A receiver on 127.0.0.1:0 timing each "fired" notification from the reading that fired it. */
async function startReceiver() {
  const latency = new Samples();
  const counts = { fired: 0, resolved: 0, duplicates: 0, posts: 0 };
  const seen = new Set<string>();
  let recording = false;
  const server = createServer((req: IncomingMessage, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      res.writeHead(200).end('ok');
      const now = Date.now();
      const parsed: unknown = JSON.parse(Buffer.concat(chunks).toString('utf8'));
      if (!recording) return;
      type Note = { event: string; delivery?: string; alert?: { details?: { since?: number } } };
      const body = parsed as Note & { notifications?: Note[] };
      // A batching channel's POST carries several, each with its id as `delivery`.
      const notes = body.event === 'batch' ? (body.notifications ?? []) : [{ ...body, delivery: String(req.headers['bulwark-delivery-id'] ?? '') }];
      for (const note of notes) {
        const delivery = String(note.delivery);
        if (seen.has(delivery)) {
          counts.duplicates += 1;
          continue;
        }
        seen.add(delivery);
        if (note.event === 'alert.fired') {
          counts.fired += 1;
          const since = note.alert?.details?.since;
          if (typeof since === 'number') latency.add(now - since);
        } else if (note.event === 'alert.resolved') counts.resolved += 1;
      }
      counts.posts += 1;
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/alerts`,
    latency,
    counts,
    record: (on: boolean) => {
      recording = on;
    },
    /** Starts the counts and latencies again (each window has its own; ids seen stay, so a late repeat still counts as one). */
    reset: () => {
      latency.clear();
      Object.assign(counts, { fired: 0, resolved: 0, duplicates: 0, posts: 0 });
    },
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

/** Turns every bench rule on or off (a PATCH each: the node's evaluator takes the change at once). */
async function setRules(api: ReturnType<typeof apiClient>, ids: readonly string[], enabled: boolean): Promise<void> {
  for (const id of ids) {
    const r = await api('PATCH', `/api/v1/alerts/rules/${id}`, { enabled });
    if (r.status >= 300) throw new Error(`rule ${id}: ${r.status} ${JSON.stringify(r.body)}`);
  }
}

/**
 * One node, one set of connections, the rules switched off and on between windows: `repeats`
 * pairs of windows (no rules, rules; every second pair the other way round, so a drift of the
 * machine over the run does not favour one mode). Each pair's ratio compares two windows a few
 * seconds apart in the same process: this machine's noise between processes and minutes
 * (±10 % per window) is what the ratio used to measure when each mode had a process of its own.
 */
export async function measureAlerts(setup: BulwarkSetup, plan: AlertsPlan): Promise<AlertsRound[]> {
  const dir = tempDir('bench-alerts-');
  cpSync(setup.template, dir, { recursive: true });
  const settings = {
    ...setup.overrides.settings,
    webhooks: { allowHttp: true, allowPrivateTargets: true },
    // Every notification at once (no group wait, no incidents, no flapping hold): the latency measured is the platform's own.
    alerts: { groupWaitMs: 0, groupMinAlerts: 1_000_000, flapMaxFires: 1_000_000, notifyPollIntervalMs: 1000 },
  };
  const { child, url, mqttPort, pid } = await spawnBulwark(dir, setup.adminKey, settings, plan.profileFlags?.('both', 1) ?? []);
  const receiver = await startReceiver();
  const rounds: AlertsRound[] = [];
  try {
    const api = apiClient(url, setup.adminKey);
    const must = async <T>(what: string, res: Promise<{ status: number; body: unknown }>): Promise<T> => {
      const r = await res;
      if (r.status >= 300) throw new Error(`${what}: ${r.status} ${JSON.stringify(r.body)}`);
      return r.body as T;
    };
    await must('schema', api('POST', '/api/v1/schemas', SCHEMA));
    await must('channel', api('POST', '/api/v1/alerts/channels', { name: 'bench', url: receiver.url, batch: plan.channel === 'batch' }));
    // The built-in rules (offline among them) stay on in both modes; devices stay connected.
    const ids: string[] = [];
    for (const r of benchRules(plan.rules)) ids.push((await must<{ id: string }>('rule', api('POST', '/api/v1/alerts/rules', { ...r, enabled: false }))).id);
    const broker: Broker = {
      name: 'bulwark',
      pid,
      port: mqttPort,
      notes: [],
      device: (i) => setup.devices[i % setup.devices.length] as NonNullable<(typeof setup.devices)[number]>,
      sessionIdentities: () => Promise.reject(new Error('not in the alerts phase')),
      liveTap: () => Promise.reject(new Error('not in the alerts phase')),
      stop: async () => undefined,
    };
    const load = await Load.connect(broker, { devices: plan.devices, durationS: plan.durationS, warmupS: plan.warmupS, window: 10, liveDevices: 0, pacedRate: plan.rate }, 5);
    load.schema = 'bench-alerts@1';
    // Each device crosses the limit at its own moment (its index shifts its phase): 1 % of the readings of every second, not all devices in one burst.
    load.data = (seq, device) => `{"v":${seq},"a":${(seq + device) % 100 === 0 ? 1 : 0}}`;
    for (let n = 1 - plan.settlePairs; n <= plan.repeats; n += 1) {
      progress(n < 1 ? `alerts phase settling pair ${n + plan.settlePairs}/${plan.settlePairs} (not counted)` : `alerts phase pair ${n}/${plan.repeats}`);
      // Settling pairs (n ≤ 0) keep the alternation: -1 % 2 is -1 in JavaScript.
      for (const withRules of Math.abs(n % 2) === 1 ? [false, true] : [true, false]) {
        const mode = withRules ? 'rules' : 'no rules';
        await setRules(api, ids, withRules);
        receiver.reset();
        const tag = `alerts phase pair ${n}, ${mode}`;
        const recordFrom = setTimeout(() => receiver.record(true), plan.warmupS * 1000);
        const r = await pacedQos1(load, plan.rate, plan.warmupS, plan.durationS, { bulwark: [pid] }, `${tag}: QoS 1 paced at ${plan.rate} msg/s`);
        clearTimeout(recordFrom);
        // Notifications of the window's last fires arrive after it.
        for (let t = 0; withRules && t < 50 && receiver.counts.fired > receiver.counts.resolved + 5; t += 1) await delay(100);
        if (withRules) await delay(1500);
        receiver.record(false);
        const cpu = r.window.cpuMs.bulwark ?? 0;
        const lat = receiver.latency.summary();
        const result: AlertsRound = {
          pair: n,
          mode,
          msgPerSec: round(r.ackedInWindow / (r.window.wallMs / 1000), 0),
          usPerMsg: round((cpu * 1000) / Math.max(1, r.ackedInWindow), 1),
          pubackP99: r.puback?.p99 ?? null,
          fired: receiver.counts.fired,
          resolved: receiver.counts.resolved,
          duplicates: receiver.counts.duplicates,
          posts: receiver.counts.posts,
          notifyP50: lat?.p50 ?? null,
          notifyP99: lat?.p99 ?? null,
          notifyMax: lat ? round(receiver.latency.max(), 1) : null,
        };
        progress(
          `${tag}: ${result.msgPerSec} msg/s, Bulwark ${result.usPerMsg} µs/msg, PUBACK p99 ${result.pubackP99} ms; ${result.fired} fired / ${result.resolved} resolved notified (${result.duplicates} twice) in ${result.posts} POSTs, reading → webhook p50 ${result.notifyP50} / p99 ${result.notifyP99} / max ${result.notifyMax} ms`,
        );
        rounds.push(result);
      }
    }
    await load.close();
    return rounds;
  } finally {
    await receiver.close();
    await stopChild(child, 30_000);
    removeDir(dir);
  }
}

const median = (xs: readonly number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  if (s.length === 0) return null;
  const mid = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? (s[mid] as number) : round(((s[mid - 1] as number) + (s[mid] as number)) / 2, 3);
};

/** The phase's table and its two targets, as markdown. */
export function alertsMarkdown(plan: AlertsPlan, rounds: readonly AlertsRound[], machine: string): string {
  const counted = rounds.filter((r) => r.pair >= 1);
  const ratios = [...new Set(counted.map((r) => r.pair))]
    .map((n) => {
      const base = counted.find((r) => r.pair === n && r.mode === 'no rules');
      const withRules = counted.find((r) => r.pair === n && r.mode === 'rules');
      return base && withRules ? round(withRules.usPerMsg / base.usPerMsg, 3) : NaN;
    })
    .filter((x) => Number.isFinite(x));
  const ratio = median(ratios);
  const p99s = counted.filter((r) => r.mode === 'rules' && r.notifyP99 !== null).map((r) => r.notifyP99 as number);
  const p99 = median(p99s);
  const worstP99 = p99s.length ? Math.max(...p99s) : null;
  const rows = rounds.map(
    (r) =>
      `| ${r.pair < 1 ? `${r.pair} (settling, not counted)` : r.pair} | ${r.mode} | ${r.msgPerSec} | ${r.usPerMsg} | ${r.pubackP99 ?? '-'} | ${r.fired} / ${r.resolved} / ${r.duplicates} (${r.posts}) | ${r.notifyP50 ?? '-'} / ${r.notifyP99 ?? '-'} / ${r.notifyMax ?? '-'} |`,
  );
  const met = (ok: boolean) => (ok ? '**MET**' : '**NOT MET**');
  return [
    `# Alert evaluation cost and notification latency, ${new Date().toISOString()}`,
    '',
    machine,
    '',
    `Settings: devices ${plan.devices}, ${plan.rate} msg/s QoS 1 paced (MQTT 5, mTLS), window ${plan.durationS} s after ${plan.warmupS} s warm-up, ${plan.repeats} pairs of windows on one node after ${plan.settlePairs} settling pair${plan.settlePairs === 1 ? '' : 's'} not counted (the rules turned off and on between windows; every second pair rules first); ${plan.rules} rules matching every device (1 firing on 1 % of readings, ${plan.rules - 1} evaluated and quiet), one webhook channel on this machine (${plan.channel === 'batch' ? 'batching: what is due in one POST' : 'one POST per notification'}).`,
    '',
    '| pair | mode | msg/s | Bulwark µs/msg | PUBACK p99 ms | notified fired / resolved / twice (POSTs) | reading → webhook p50 / p99 / max ms |',
    '|---:|---|---:|---:|---:|---:|---:|',
    ...rows,
    '',
    `${met(ratio !== null && ratio <= 1.1)}  rule evaluation ≤ 10 % extra CPU per stored message with ${plan.rules} rules: ${ratio ?? '-'}× (median of per-pair ratios ${ratios.join(', ')})`,
    '',
    `${met(p99 !== null && p99 <= 1000)}  p99 reading → webhook delivered ≤ 1 s at ${plan.rate} readings/s: ${p99 ?? '-'} ms (median over the windows with rules; worst ${worstP99 ?? '-'} ms)`,
    '',
    '- Bulwark µs/msg: utime+stime of the node (all threads) over the window ÷ PUBACKs in the window (each after the reading is stored); the notifications it sends are included.',
    '- reading → webhook: the receiver\'s clock at a "fired" notification minus the time Bulwark received the reading that fired it (`details.since`); same machine, same clock.',
  ].join('\n');
}
