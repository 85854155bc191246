import type { BrokerName } from './broker.js';
import type { PhaseResult } from './load.js';
import type { IdleResult, StormResult } from './sessions.js';

/** The results table, ratios and target checks, as text and Markdown. */

export interface BrokerResult {
  readonly name: BrokerName;
  readonly notes: readonly string[];
  readonly tls: string;
  readonly qos1: PhaseResult;
  readonly qos0: PhaseResult;
  readonly paced: PhaseResult;
  readonly idle: IdleResult;
  readonly storm: StormResult;
  /** RSS after set-up, before any load (MB). */
  readonly rssStartMb: number;
}

export interface RunResult {
  readonly startedAt: string;
  readonly machine: Record<string, string | number>;
  readonly settings: Record<string, number | string>;
  readonly brokers: BrokerResult[];
}

interface Column {
  readonly title: string;
  readonly better: 'higher' | 'lower';
  readonly value: (r: BrokerResult) => number | null;
}

const pair = (v: { p50: number; p99: number } | null): [number | null, number | null] => [v?.p50 ?? null, v?.p99 ?? null];

export const COLUMNS: readonly Column[] = [
  { title: 'QoS1 msg/s', better: 'higher', value: (r) => r.qos1.msgPerSec },
  { title: 'PUBACK p50 ms', better: 'lower', value: (r) => pair(r.paced.puback)[0] },
  { title: 'PUBACK p99 ms', better: 'lower', value: (r) => pair(r.paced.puback)[1] },
  { title: 'QoS0 msg/s', better: 'higher', value: (r) => r.qos0.msgPerSec },
  { title: 'live p50 ms', better: 'lower', value: (r) => pair(r.paced.live)[0] },
  { title: 'live p99 ms', better: 'lower', value: (r) => pair(r.paced.live)[1] },
  { title: 'CPU µs/msg', better: 'lower', value: (r) => r.qos1.serverCpuUsPerMsg },
  { title: 'RSS MB', better: 'lower', value: (r) => r.qos1.peakRssMb },
  { title: 'KB/idle session', better: 'lower', value: (r) => r.idle.kbPerSession },
  { title: 'handshakes/s', better: 'higher', value: (r) => r.storm.perSec },
  { title: 'CPU ms/handshake', better: 'lower', value: (r) => r.storm.serverCpuMsPerHandshake },
];

const fmt = (v: number | null): string => (v === null ? '-' : v >= 1000 ? String(Math.round(v)) : String(Math.round(v * 100) / 100));
const ratio = (a: number | null, b: number | null): string => (a === null || b === null || b === 0 ? '-' : `${(a / b).toFixed(2)}×`);

function rows(run: RunResult): string[][] {
  const out = run.brokers.map((r) => [r.name, ...COLUMNS.map((c) => fmt(c.value(r)))]);
  const get = (n: BrokerName) => run.brokers.find((b) => b.name === n);
  const bulwark = get('bulwark');
  for (const peer of ['aedes', 'mosquitto'] as const) {
    const p = get(peer);
    if (bulwark && p) out.push([`Bulwark / ${peer === 'aedes' ? 'Aedes' : 'Mosquitto'}`, ...COLUMNS.map((c) => ratio(c.value(bulwark), c.value(p)))]);
  }
  return out;
}

export function textTable(run: RunResult): string {
  const header = ['broker', ...COLUMNS.map((c) => c.title)];
  const all = [header, ...rows(run)];
  const widths = header.map((_, i) => Math.max(...all.map((r) => (r[i] ?? '').length)));
  const line = (r: string[]) => r.map((cell, i) => (i === 0 ? cell.padEnd(widths[i] ?? 0) : cell.padStart(widths[i] ?? 0))).join('  ');
  return [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...all.slice(1).map(line)].join('\n');
}

export function markdownTable(run: RunResult): string {
  const header = ['broker', ...COLUMNS.map((c) => c.title)];
  return [`| ${header.join(' | ')} |`, `|${header.map((_, i) => (i === 0 ? '---' : '---:')).join('|')}|`, ...rows(run).map((r) => `| ${r.join(' | ')} |`)].join('\n');
}

/** Second table: saturation latencies, load-generator CPU and other facts behind the headline numbers. */
export function detailTable(run: RunResult): string {
  const header = ['broker', 'TLS', 'QoS1 sat. PUBACK p50/p99 ms', 'QoS1 sat. live p50/p99 ms', 'paced msg/s', 'server cores (QoS1)', 'load-gen cores (QoS1)', 'QoS0 CPU µs/msg', 'QoS0 peak RSS MB', 'idle RSS before→after MB', 'storm load-gen cores'];
  const lat = (v: { p50: number; p99: number } | null) => (v ? `${fmt(v.p50)} / ${fmt(v.p99)}` : '-');
  const body = run.brokers.map((r) => [
    r.name, r.tls, lat(r.qos1.puback), lat(r.qos1.live), fmt(r.paced.msgPerSec), fmt(r.qos1.serverCores), fmt(r.qos1.loadGenCores),
    fmt(r.qos0.serverCpuUsPerMsg), fmt(r.qos0.peakRssMb), `${r.idle.rssBeforeMb}→${r.idle.rssAfterMb}`, fmt(r.storm.loadGenCores),
  ]);
  return [`| ${header.join(' | ')} |`, `|${header.map(() => '---').join('|')}|`, ...body.map((r) => `| ${r.join(' | ')} |`)].join('\n');
}

/** The targets, checked against this run. */
export function targets(run: RunResult): string[] {
  const get = (n: BrokerName) => run.brokers.find((b) => b.name === n);
  const b = get('bulwark');
  if (!b) return [];
  const out: string[] = [];
  const check = (ok: boolean, text: string) => out.push(`${ok ? 'MET ' : 'MISS'}  ${text}`);
  const a = get('aedes');
  const m = get('mosquitto');
  if (a) check(b.qos1.msgPerSec >= 0.9 * a.qos1.msgPerSec, `QoS1 throughput ≥ 0.9× Aedes: ${(b.qos1.msgPerSec / a.qos1.msgPerSec).toFixed(2)}×`);
  if (m) check(b.qos1.msgPerSec >= 0.8 * m.qos1.msgPerSec, `QoS1 throughput ≥ 0.8× Mosquitto: ${(b.qos1.msgPerSec / m.qos1.msgPerSec).toFixed(2)}×`);
  if (m) check(b.qos1.serverCpuUsPerMsg <= 2.5 * m.qos1.serverCpuUsPerMsg, `CPU per stored message ≤ 2.5× Mosquitto's per passed message: ${b.qos1.serverCpuUsPerMsg} vs ${m.qos1.serverCpuUsPerMsg} µs (${(b.qos1.serverCpuUsPerMsg / m.qos1.serverCpuUsPerMsg).toFixed(2)}×)`);
  const rate = `${run.settings.pacedRate} msg/s offered (${b.paced.msgPerSec} acknowledged)`;
  if (b.paced.puback) check(b.paced.puback.p99 <= 25, `p99 publish→PUBACK ≤ 25 ms at ${rate}: ${b.paced.puback.p99} ms`);
  if (b.paced.live) check(b.paced.live.p99 <= 50, `p99 publish→live subscriber ≤ 50 ms at ${rate}: ${b.paced.live.p99} ms`);
  const growth = b.qos0.peakRssMb - b.rssStartMb;
  check(growth < 256, `QoS0 flood memory growth < 256 MiB: ${growth.toFixed(0)} MB over the start RSS`);
  const hz = b.qos0.extra.healthzMaxMs;
  if (hz !== undefined) check(hz <= 100, `/healthz within 100 ms during the QoS0 flood: worst ${hz} ms`);
  check(b.idle.kbPerSession <= 44, `≤ 44 KB RSS per idle mTLS session (at ${b.idle.sessions} sessions; the target is at 19k): ${b.idle.kbPerSession} KB`);
  if (m) check(b.storm.serverCpuMsPerHandshake <= 1.4 * m.storm.serverCpuMsPerHandshake, `CPU per full mTLS handshake ≤ 1.4× Mosquitto's: ${b.storm.serverCpuMsPerHandshake} vs ${m.storm.serverCpuMsPerHandshake} ms (${(b.storm.serverCpuMsPerHandshake / m.storm.serverCpuMsPerHandshake).toFixed(2)}×)`);
  return out;
}

export function markdownReport(run: RunResult): string {
  const notes = run.brokers.flatMap((r) => r.notes.map((n) => `- **${r.name}**: ${n}`));
  const machine = Object.entries(run.machine).map(([k, v]) => `${k}: ${v}`).join(', ');
  const settings = Object.entries(run.settings).map(([k, v]) => `${k}=${v}`).join(', ');
  return [
    `# Bulwark benchmark, ${run.startedAt}`, '', `Machine: ${machine}`, '', `Settings: ${settings}`, '',
    'PUBACK and live latencies are from the paced run (fixed offered rate); msg/s and CPU µs/msg from the saturation run; RSS is the peak during the QoS 1 run.', '',
    markdownTable(run), '', '## Details', '', detailTable(run), '', '## Targets (issue 4)', '', ...targets(run).map((t) => `- ${t}`), '', '## Brokers', '', ...notes, '',
  ].join('\n');
}
