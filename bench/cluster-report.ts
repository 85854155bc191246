import { GROUPS, type Group, MODE_TITLE, type ModeKey, type ModeRound } from './cluster.js';
import { median, round } from './proc.js';
import { type StreamSummary, streamTable, streamTargetLines, summarizeStream } from './stream-report.js';

/** The cluster phase's results: medians per mode, Bulwark's cluster/embedded ratio against issue 14's 1.3, as text, Markdown and an SVG. */

export const CLUSTER_BOUND = 1.3;
export const CLUSTER_TARGET = "Bulwark's own CPU per stored message in cluster mode ≤ 1.3× embedded mode";

export interface ClusterSummaryRow {
  readonly mode: ModeKey;
  readonly rounds: number;
  readonly msgPerSec: number | null;
  readonly usPerMsg: Partial<Record<Group, number | null>>;
  /** Median of the per-round ratios of Bulwark's µs/msg to the embedded node's in the same round. */
  readonly ratio: number | null;
  readonly ratios: number[];
  readonly stored: string;
  readonly lostMax: number;
  readonly mbPer1000Sessions: number | null;
  readonly pubackP99: number | null;
  readonly otherCores: number | null;
}

export interface ClusterResult {
  readonly startedAt: string;
  readonly machine: Record<string, string | number>;
  readonly settings: Record<string, string | number>;
  readonly pinning: string;
  readonly notes: readonly string[];
  readonly rounds: ModeRound[];
  readonly summary: ClusterSummaryRow[];
  readonly target: { readonly what: string; readonly result: 'MET' | 'MISS' | 'n/a'; readonly ratio: number | null; readonly twoNodes: number | null };
  /** The telemetry stream's targets: store writers against ingest and raw COPY, p99 PUBACK cluster against embedded. */
  readonly stream: StreamSummary;
}

export function summarize(rounds: readonly ModeRound[], rate: number): { summary: ClusterSummaryRow[]; target: ClusterResult['target']; stream: StreamSummary } {
  const modes = (['embedded', 'cluster1', 'cluster2'] as const).filter((m) => rounds.some((r) => r.mode === m));
  const summary = modes.map((mode): ClusterSummaryRow => {
    const rs = rounds.filter((r) => r.mode === mode);
    const ratios = rs.flatMap((r) => {
      const e = rounds.find((x) => x.mode === 'embedded' && x.round === r.round)?.usPerMsg.bulwark;
      const c = r.usPerMsg.bulwark;
      return e && c !== undefined ? [round(c / e, 2)] : [];
    });
    return {
      mode,
      rounds: rs.length,
      msgPerSec: median(rs.map((r) => r.msgPerSec)),
      usPerMsg: Object.fromEntries(GROUPS.map((g) => [g, median(rs.map((r) => r.usPerMsg[g]))])),
      ratio: mode === 'embedded' ? null : round(median(ratios) ?? NaN, 2),
      ratios: mode === 'embedded' ? [] : ratios,
      stored: rs.map((r) => `${r.storedDb}/${r.paced.acked}`).join(', '),
      lostMax: Math.max(0, ...rs.map((r) => r.lost)),
      mbPer1000Sessions: median(rs.map((r) => r.mbPer1000Sessions)),
      pubackP99: median(rs.map((r) => r.paced.puback?.p99)),
      otherCores: median(rs.map((r) => r.otherCores)),
    };
  });
  const one = summary.find((s) => s.mode === 'cluster1')?.ratio ?? null;
  const two = summary.find((s) => s.mode === 'cluster2')?.ratio ?? null;
  const lost = summary.some((s) => s.lostMax > 0);
  const result = one === null ? 'n/a' : one <= CLUSTER_BOUND && !lost ? 'MET' : 'MISS';
  return { summary, target: { what: CLUSTER_TARGET, result, ratio: one, twoNodes: two }, stream: summarizeStream(rounds, rate) };
}

const f = (v: number | null | undefined, unit = '') => (v === null || v === undefined ? '-' : `${round(v, 1)}${unit}`);
const total = (s: ClusterSummaryRow) =>
  round(
    GROUPS.reduce((a, g) => a + (s.usPerMsg[g] ?? 0), 0),
    1,
  );

function rows(run: ClusterResult): string[][] {
  const head = [
    'mode',
    'msg/s',
    'Bulwark µs/msg',
    'ratio to embedded',
    'NATS µs/msg',
    'Redis µs/msg',
    'PG backends µs/msg',
    'PG background µs/msg',
    'HAProxy µs/msg',
    'all µs/msg',
    'stored (DB) / acked',
    'lost',
    'MB per 1k sessions',
    'PUBACK p99 ms',
    "others' cores",
  ];
  return [
    head,
    ...run.summary.map((s) => [
      MODE_TITLE[s.mode],
      f(s.msgPerSec),
      f(s.usPerMsg.bulwark),
      s.ratio === null ? '1' : `${s.ratio}× (${s.ratios.join(', ')})`,
      f(s.usPerMsg.nats),
      f(s.usPerMsg.redis),
      f(s.usPerMsg.pgBackends),
      f(s.usPerMsg.pgBackground),
      f(s.usPerMsg.haproxy),
      f(total(s)),
      s.stored,
      String(s.lostMax),
      f(s.mbPer1000Sessions),
      f(s.pubackP99),
      f(s.otherCores),
    ]),
  ];
}

function targetLine(run: ClusterResult): string {
  const t = run.target;
  return `${t.result}  ${t.what}: ${t.ratio === null ? 'not measured' : `${t.ratio}× (one cluster node against one embedded node, median of per-round ratios)`}${t.twoNodes === null ? '' : `; 2 nodes behind HAProxy: ${t.twoNodes}× (both nodes' CPU per message)`}`;
}

function textTable(table: string[][]): string[] {
  const widths = (table[0] ?? []).map((_, i) => Math.max(...table.map((r) => (r[i] ?? '').length)));
  return table.map((r) => r.map((c, i) => (i === 0 ? c.padEnd(widths[i] ?? 0) : c.padStart(widths[i] ?? 0))).join('  '));
}

const mdTable = (table: string[][]) => table.map((r, i) => `| ${r.join(' | ')} |${i === 0 ? `\n|${r.map((_, k) => (k === 0 ? '---' : '---:')).join('|')}|` : ''}`);

export function clusterText(run: ClusterResult): string {
  return [
    `Cluster phase (issue 14): MQTT 5 QoS 1 paced at ${run.settings.rate} msg/s from ${run.settings.devices} devices, ${run.settings.durationS} s windows, medians of ${run.settings.repeats} round(s)`,
    ...textTable(rows(run)),
    '',
    targetLine(run),
    '',
    `Telemetry stream: store writers draining a backlog of ${run.settings.streamBacklog} readings, lag in the paced load, raw COPY; p99 PUBACK per mode`,
    ...textTable(streamTable(run.stream)),
    '',
    ...streamTargetLines(run.stream),
  ].join('\n');
}

export function clusterMarkdown(run: ClusterResult): string {
  const md = mdTable(rows(run));
  return [
    `# Bulwark cluster mode against embedded mode, ${run.startedAt}`,
    '',
    `Machine: ${Object.entries(run.machine)
      .map(([k, v]) => `${k} ${v}`)
      .join(', ')}. ${run.pinning}.`,
    '',
    `Settings: ${Object.entries(run.settings)
      .map(([k, v]) => `${k} ${v}`)
      .join(', ')}.`,
    '',
    ...md,
    '',
    `**${targetLine(run)}**`,
    '',
    `## Telemetry stream: store writers (backlog of ${run.settings.streamBacklog} readings) and p99 publish→PUBACK at ${run.settings.rate} msg/s offered`,
    '',
    ...mdTable(streamTable(run.stream)),
    '',
    ...streamTargetLines(run.stream).map((l) => `**${l}**\n`),
    ...run.notes.map((n) => `- ${n}`),
    '',
  ].join('\n');
}

const COLORS: Record<Group, string> = { bulwark: '#2f6fdb', nats: '#3a9d5d', redis: '#c9302c', pgBackends: '#d9822b', pgBackground: '#f0c080', haproxy: '#8e6bbf' };
const NAMES: Record<Group, string> = { bulwark: 'Bulwark', nats: 'NATS', redis: 'Redis', pgBackends: 'PostgreSQL backends (bench DB)', pgBackground: 'PostgreSQL background (whole server)', haproxy: 'HAProxy' };

/** One stacked bar per mode: CPU µs per stored message, by process group (medians). */
export function clusterChart(run: ClusterResult): string {
  const [left, barMax, rowH, top] = [190, 560, 40, 90];
  const width = left + barMax + 120;
  const height = top + run.summary.length * rowH + 40;
  const max = Math.max(1, ...run.summary.map(total));
  const parts = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="11">`,
    '<rect width="100%" height="100%" fill="#fff"/>',
    `<text x="10" y="22" font-size="16" font-weight="bold">CPU µs per stored message, embedded vs cluster — ${run.startedAt}</text>`,
    `<text x="10" y="40" fill="#444">MQTT 5 QoS 1 at ${run.settings.rate} msg/s, ${run.settings.devices} devices; medians of ${run.settings.repeats} round(s). ${run.target.result}: Bulwark cluster/embedded ${run.target.ratio ?? '-'}× (limit ${CLUSTER_BOUND}×)</text>`,
  ];
  GROUPS.forEach((g, i) => parts.push(`<rect x="${10 + i * 150}" y="54" width="12" height="12" fill="${COLORS[g]}"/><text x="${26 + i * 150}" y="64">${NAMES[g].replace(/ \(.*/, '')}</text>`));
  const limitX = left + (((run.summary.find((s) => s.mode === 'embedded')?.usPerMsg.bulwark ?? 0) * CLUSTER_BOUND) / max) * barMax;
  run.summary.forEach((s, i) => {
    const y = top + i * rowH;
    let x = left;
    parts.push(`<text x="10" y="${y + 20}">${MODE_TITLE[s.mode]}</text>`);
    for (const g of GROUPS) {
      const v = s.usPerMsg[g] ?? 0;
      if (v <= 0) continue;
      const w = (v / max) * barMax;
      parts.push(`<rect x="${x.toFixed(1)}" y="${y + 6}" width="${w.toFixed(1)}" height="${rowH - 14}" fill="${COLORS[g]}"><title>${NAMES[g]}: ${v} µs/msg</title></rect>`);
      x += w;
    }
    parts.push(`<text x="${x + 6}" y="${y + 20}">${total(s)} µs (Bulwark ${s.usPerMsg.bulwark ?? '-'})</text>`);
  });
  if (limitX > left)
    parts.push(
      `<line x1="${limitX.toFixed(1)}" y1="${top - 4}" x2="${limitX.toFixed(1)}" y2="${top + run.summary.length * rowH}" stroke="#000" stroke-dasharray="4 3"/><text x="${limitX.toFixed(1)}" y="${top + run.summary.length * rowH + 14}" text-anchor="middle">1.3× embedded Bulwark</text>`,
    );
  parts.push('</svg>');
  return `${parts.join('\n')}\n`;
}
