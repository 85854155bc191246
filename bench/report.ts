import { BROKERS, type BrokerName, type Protocol, protocolName } from './broker.js';
import type { PhaseResult } from './load.js';
import type { BrokerRound } from './measure.js';
import { median } from './proc.js';
import { type TargetRow, fmt } from './targets.js';

/** The results: medians over the rounds per broker, Bulwark's median ratios, the target checks; as text and Markdown. */

export interface RunResult {
  readonly startedAt: string;
  readonly machine: Record<string, string | number>;
  readonly settings: Record<string, number | string>;
  readonly pinning: string;
  readonly rounds: BrokerRound[];
  readonly targets: TargetRow[];
}

export interface Metric {
  readonly title: string;
  readonly better: 'higher' | 'lower';
  readonly value: (r: BrokerRound) => number | null | undefined;
}

const at = (list: readonly PhaseResult[], p: Protocol) => list.find((x) => x.protocol === p);
const v = (p: Protocol) => (p === 4 ? '3.1.1' : 'v5');

export const METRICS: readonly Metric[] = [
  ...([4, 5] as const).flatMap((p): Metric[] => [
    { title: `QoS1 msg/s (${v(p)})`, better: 'higher', value: (r) => at(r.qos1, p)?.msgPerSec },
    { title: `CPU µs/msg (${v(p)})`, better: 'lower', value: (r) => at(r.qos1, p)?.serverCpuUsPerMsg },
    { title: `PUBACK p50 ms (${v(p)}, paced)`, better: 'lower', value: (r) => at(r.paced, p)?.puback?.p50 },
    { title: `PUBACK p99 ms (${v(p)}, paced)`, better: 'lower', value: (r) => at(r.paced, p)?.puback?.p99 },
    { title: `live p50 ms (${v(p)}, paced)`, better: 'lower', value: (r) => at(r.paced, p)?.live?.p50 },
    { title: `live p99 ms (${v(p)}, paced)`, better: 'lower', value: (r) => at(r.paced, p)?.live?.p99 },
    { title: `paced msg/s acked (${v(p)})`, better: 'higher', value: (r) => at(r.paced, p)?.msgPerSec },
  ]),
  { title: 'server cores (QoS1 3.1.1)', better: 'lower', value: (r) => at(r.qos1, 4)?.serverCores },
  { title: 'load-gen cores (QoS1 3.1.1)', better: 'lower', value: (r) => at(r.qos1, 4)?.loadGenCores },
  { title: "other processes' cores (QoS1 3.1.1)", better: 'lower', value: (r) => at(r.qos1, 4)?.otherCores },
  { title: 'peak RSS MB (QoS1)', better: 'lower', value: (r) => at(r.qos1, 4)?.peakRssMb },
  { title: 'QoS0 msg/s taken in', better: 'higher', value: (r) => r.qos0.msgPerSec },
  { title: 'QoS0 CPU µs/msg', better: 'lower', value: (r) => r.qos0.serverCpuUsPerMsg },
  { title: 'QoS0 RSS growth MiB', better: 'lower', value: (r) => r.qos0.extra.rssGrowthMb },
  { title: 'KB/idle session', better: 'lower', value: (r) => r.idle.kbPerSession },
  { title: 'handshakes/s', better: 'higher', value: (r) => r.storm.perSec },
  { title: 'CPU ms/handshake', better: 'lower', value: (r) => r.storm.serverCpuMsPerHandshake },
];

export const brokersIn = (run: RunResult): BrokerName[] => BROKERS.filter((n) => run.rounds.some((r) => r.name === n));
const roundsOf = (run: RunResult, n: BrokerName) => run.rounds.filter((r) => r.name === n);

/** Median of a metric over a broker's rounds. */
export const medianOf = (run: RunResult, n: BrokerName, m: Metric): number | null => median(roundsOf(run, n).map(m.value));

function medianRatio(run: RunResult, peer: BrokerName, m: Metric): number | null {
  return median(
    roundsOf(run, 'bulwark').map((b) => {
      const p = run.rounds.find((r) => r.name === peer && r.round === b.round);
      const [x, y] = [m.value(b), p ? m.value(p) : null];
      return typeof x === 'number' && typeof y === 'number' && y > 0 ? x / y : null;
    }),
  );
}

function summaryRows(run: RunResult): { header: string[]; rows: string[][] } {
  const names = brokersIn(run);
  const peers = names.filter((n) => n !== 'bulwark' && names.includes('bulwark'));
  const header = ['metric (median of rounds)', ...names, ...peers.map((p) => `bulwark/${p}`)];
  const rows = METRICS.filter((m) => names.some((n) => medianOf(run, n, m) !== null)).map((m) => [
    m.title,
    ...names.map((n) => fmt(medianOf(run, n, m))),
    ...peers.map((p) => {
      const r = medianRatio(run, p, m);
      return r === null ? '-' : `${fmt(r)}×`;
    }),
  ]);
  return { header, rows };
}

function aligned(header: string[], rows: string[][]): string {
  const all = [header, ...rows];
  const widths = header.map((_, i) => Math.max(...all.map((r) => (r[i] ?? '').length)));
  const line = (r: string[]) => r.map((c, i) => (i === 0 ? c.padEnd(widths[i] ?? 0) : c.padStart(widths[i] ?? 0))).join('  ');
  return [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n');
}

const md = (header: string[], rows: string[][], numeric = true) => [`| ${header.join(' | ')} |`, `|${header.map((_, i) => (i === 0 || !numeric ? '---' : '---:')).join('|')}|`, ...rows.map((r) => `| ${r.join(' | ')} |`)].join('\n');

const TARGET_HEADER = ['result', 'target', 'what', 'bulwark', 'mosquitto', 'aedes', 'checked', 'limit'];
const targetCells = (t: TargetRow) => [t.result, t.id, t.what, t.bulwark, t.mosquitto, t.aedes, t.value, t.limit];

export function textReport(run: RunResult): string {
  const s = summaryRows(run);
  const targets = run.targets.map((t) => `${t.result.padEnd(4)}  ${t.id.padEnd(14)} ${t.what}\n      bulwark: ${t.bulwark} | mosquitto: ${t.mosquitto} | aedes: ${t.aedes}\n      checked: ${t.value}  (limit ${t.limit})`);
  return `${aligned(s.header, s.rows)}\n\nTargets (issue 13), ${run.pinning}:\n${targets.join('\n')}`;
}

function roundTable(run: RunResult): string {
  const header = ['broker', 'round', 'TLS', ...([4, 5] as const).map((p) => `${protocolName(p)}: QoS1 msg/s, µs/msg, paced PUBACK p99, live p99, drain s`), 'QoS0 msg/s, stored/s, healthz max', 'KB/session', 'ms/handshake'];
  const ph = (r: BrokerRound, p: Protocol) => {
    const q = at(r.qos1, p);
    const pc = at(r.paced, p);
    return q ? `${fmt(q.msgPerSec)}, ${fmt(q.serverCpuUsPerMsg)}, ${fmt(pc?.puback?.p99)}, ${fmt(pc?.live?.p99)}, ${fmt((q.drainMs + (pc?.drainMs ?? 0)) / 1000, 1)}${q.drained && pc?.drained ? '' : ' (not drained)'}` : '-';
  };
  const rows = run.rounds.map((r) => [r.name, String(r.round), r.tls, ph(r, 4), ph(r, 5), `${fmt(r.qos0.msgPerSec)}, ${fmt(r.qos0.extra.storedPerSec)}, ${fmt(r.qos0.extra.healthzMaxMs)}`, fmt(r.idle.kbPerSession), fmt(r.storm.serverCpuMsPerHandshake)]);
  return md(header, rows, false);
}

export function markdownReport(run: RunResult): string {
  const s = summaryRows(run);
  const notes = [...new Set(run.rounds.flatMap((r) => r.notes.map((n) => `- **${r.name}**: ${n}`)))];
  const machine = Object.entries(run.machine)
    .map(([k, x]) => `${k}: ${x}`)
    .join(', ');
  const settings = Object.entries(run.settings)
    .map(([k, x]) => `${k}=${x}`)
    .join(', ');
  return [
    `# Bulwark benchmark, ${run.startedAt}`,
    '',
    `Machine: ${machine}`,
    '',
    `CPU pinning: ${run.pinning}`,
    '',
    `Settings: ${settings}`,
    '',
    'Medians over the rounds; ratios are medians of the per-round ratios. msg/s and CPU µs/msg from the QoS 1 saturation run; PUBACK and live latencies from the paced run.',
    '',
    md(s.header, s.rows),
    '',
    '## Targets (issue 13)',
    '',
    md(TARGET_HEADER, run.targets.map(targetCells), false),
    '',
    '## Every round',
    '',
    roundTable(run),
    '',
    '## Brokers',
    '',
    ...notes,
    '',
  ].join('\n');
}
