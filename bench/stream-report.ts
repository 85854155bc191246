import { MODE_TITLE, type ModeKey, type ModeRound } from './cluster.js';
import { median, round } from './proc.js';

/**
 * The telemetry stream's targets, from the cluster phase's rounds: the store writers' rate
 * against the run's ingest rate (≥ 1.5×, lag bounded) beside raw COPY on the same database,
 * and cluster mode's p99 publish→PUBACK against embedded mode's at the same offered rate (≤ 2×).
 */

export const WRITER_BOUND = 1.5;
export const P99_BOUND = 2;
/** A window held the offered rate when the generator sent and the server acknowledged at least this share of it, nothing skipped. */
const HELD = 0.97;

export const STREAM_NOTES = [
  'Store writers (cluster modes): before the nodes start, the bench puts a backlog of readings straight into the telemetry stream (the subjects, Nats-Msg-Id and JSON StreamSink writes; bench schema, the load devices); the nodes start on it and their writers store it. Writer rows/s = bulwark_stream_writer_rows_total{result="inserted"} summed over the nodes, between the first poll (every 100 ms) that saw rows inserted and the one that saw the whole backlog: every partition had readings waiting throughout; node start-up is left out.',
  "Ingest rate: PUBACKs per second of the paced window of the same mode and round (a PUBACK follows the stream's acknowledgement). Writer/ingest is per round, median shown. Lag: pending + delivered-unacknowledged readings of the 8 writer consumers (NATS consumer info, read by the bench every second through its own connection), max over warm-up and window; bounded = back to 0 after the load.",
  "Raw COPY rows/s: PostgresTelemetryCopy.rawCopyRate on the bench database, the backlog's rows (same number, same shape), COPY into the staging table alone, rolled back, one connection; the writer does COPY + INSERT … ON CONFLICT DO NOTHING + rollups + commit + stream ack per batch.",
  "Stream append p99: bulwark_stream_append_seconds of the cluster nodes over warm-up and window (a reading leaving the pipeline to the stream's acknowledgement; the upper bound of the histogram bucket holding the 99th percentile). Event-loop delay: prom-client's p99 and max of the node (the worst node), over the same time. Both tell where a PUBACK's tail comes from: the stream, or the node waiting for its own loop.",
  'p99 publish→PUBACK: the paced window of each mode; ratio = median over rounds of cluster p99 ÷ embedded p99 of the same round. "Offered held": the generator sent, and the server acknowledged, ≥ 97% of the offered rate in the window, no publish skipped for a full in-flight window.',
];

export interface StreamModeRow {
  readonly mode: ModeKey;
  readonly ingestPerSec: number | null;
  readonly writerRowsPerSec: number | null;
  readonly writerRounds: number[];
  readonly writerToIngest: number | null;
  readonly lagMax: number | null;
  /** Longest wait after the load for the lag to reach 0 (null: some round's lag did not reach 0 within 60 s). */
  readonly lagBackToZeroS: number | null;
  readonly rawCopyRowsPerSec: number | null;
  readonly writerOfRaw: number | null;
  readonly meanBatch: number | null;
  readonly meanBatchMs: number | null;
  readonly publishPerSec: number | null;
  readonly pubackP50: number | null;
  readonly pubackP99: number | null;
  readonly p99Rounds: number[];
  readonly p99ToEmbedded: number | null;
  /** Diagnostics of the p99: the stream append's p99 (cluster modes, bucket bound) and the event-loop delay, medians over rounds (ms). */
  readonly appendP99: number | null;
  readonly loopP99: number | null;
  readonly loopMax: number | null;
  readonly offeredHeld: boolean;
  readonly offered: string;
}

export type Verdict = 'MET' | 'NOT MET' | 'n/a';

export interface StreamSummary {
  readonly rate: number;
  readonly rows: StreamModeRow[];
  readonly writer: { readonly what: string; readonly result: Verdict; readonly mode: ModeKey | null; readonly detail: string };
  readonly p99: { readonly what: string; readonly result: Verdict; readonly offeredHeld: boolean; readonly detail: string };
}

const fmt = (v: number | null | undefined, digits = 0) => (v === null || v === undefined ? '-' : round(v, digits).toLocaleString('en-US'));
const held = (r: ModeRound, rate: number) => r.paced.skipped === 0 && r.paced.sentPerSecInWindow >= HELD * rate && r.msgPerSec >= HELD * rate;

export function summarizeStream(rounds: readonly ModeRound[], rate: number): StreamSummary {
  const modes = (['embedded', 'cluster1', 'cluster2'] as const).filter((m) => rounds.some((r) => r.mode === m));
  const embeddedP99 = (n: number) => rounds.find((x) => x.mode === 'embedded' && x.round === n)?.paced.puback?.p99;
  const rows = modes.map((mode): StreamModeRow => {
    const rs = rounds.filter((r) => r.mode === mode);
    const st = rs.flatMap((r) => (r.stream ? [{ r, s: r.stream }] : []));
    const p99Rounds =
      mode === 'embedded'
        ? []
        : rs.flatMap((r) => {
            const e = embeddedP99(r.round);
            const c = r.paced.puback?.p99;
            return e && c !== undefined ? [round(c / e, 2)] : [];
          });
    const backs = st.map(({ s }) => s.lag.backToZeroS);
    return {
      mode,
      ingestPerSec: median(rs.map((r) => r.msgPerSec)),
      writerRowsPerSec: median(st.map(({ s }) => s.drain.rowsPerSec)),
      writerRounds: st.map(({ s }) => s.drain.rowsPerSec),
      writerToIngest: st.length ? median(st.map(({ r, s }) => round(s.drain.rowsPerSec / Math.max(1, r.msgPerSec), 2))) : null,
      lagMax: st.length ? Math.max(...st.map(({ s }) => s.lag.max)) : null,
      lagBackToZeroS: st.length === 0 || backs.some((b) => b === null) ? null : Math.max(...(backs as number[])),
      rawCopyRowsPerSec: median(st.map(({ s }) => s.rawCopyRowsPerSec)),
      writerOfRaw: st.length ? median(st.map(({ s }) => round(s.drain.rowsPerSec / Math.max(1, s.rawCopyRowsPerSec), 3))) : null,
      meanBatch: median(st.map(({ s }) => s.drain.meanBatch)),
      meanBatchMs: median(st.map(({ s }) => s.drain.meanBatchMs)),
      publishPerSec: median(st.map(({ s }) => s.drain.publishPerSec)),
      pubackP50: median(rs.map((r) => r.paced.puback?.p50)),
      pubackP99: median(rs.map((r) => r.paced.puback?.p99)),
      p99Rounds,
      p99ToEmbedded: mode === 'embedded' ? null : median(p99Rounds),
      appendP99: median(rs.map((r) => r.appendMs?.p99)),
      loopP99: median(rs.map((r) => r.loopDelayMs?.p99)),
      loopMax: median(rs.map((r) => r.loopDelayMs?.max)),
      offeredHeld: rs.every((r) => held(r, rate)),
      offered: rs.map((r) => `${fmt(r.paced.sentPerSecInWindow)} sent/${fmt(r.msgPerSec)} acked per s, ${r.paced.skipped} skipped, longest tick gap ${r.paced.tickGapMaxMs} ms`).join('; '),
    };
  });
  const one = rows.find((r) => r.mode === 'cluster1') ?? rows.find((r) => r.mode === 'cluster2');
  const allDrained = rounds.every((r) => !r.stream || r.stream.drain.complete);
  const writerOk = one?.writerToIngest !== undefined && one.writerToIngest !== null && one.writerToIngest >= WRITER_BOUND && one.lagBackToZeroS !== null && allDrained;
  const writer: StreamSummary['writer'] = {
    what: `The store writers sustain ≥ ${WRITER_BOUND}× the run's ingest rate with bounded lag`,
    mode: one?.mode ?? null,
    result: (one?.writerToIngest ?? null) === null || !one ? 'n/a' : writerOk ? 'MET' : 'NOT MET',
    detail:
      (one?.writerToIngest ?? null) === null || !one
        ? 'not measured'
        : `${MODE_TITLE[one.mode]}: writers ${fmt(one.writerRowsPerSec)} rows/s (rounds ${one.writerRounds.map((v) => fmt(v)).join(', ')}) against ${fmt(one.ingestPerSec)} msg/s ingested = ${one.writerToIngest}× (median of rounds); max lag in the paced load ${fmt(one.lagMax)} readings, ${one.lagBackToZeroS === null ? 'NOT back to 0 within 60 s after it' : `back to 0 within ${one.lagBackToZeroS} s after it`}${allDrained ? '' : '; a backlog was not fully stored'}; raw COPY ${fmt(one.rawCopyRowsPerSec)} rows/s on the same database, the writers reach ${fmt((one.writerOfRaw ?? 0) * 100)}% of it`,
  };
  const c1 = rows.find((r) => r.mode === 'cluster1');
  const e = rows.find((r) => r.mode === 'embedded');
  const allHeld = rows.every((r) => r.offeredHeld);
  const p99: StreamSummary['p99'] = {
    what: `Cluster-mode p99 publish→PUBACK ≤ ${P99_BOUND}× embedded mode at ${fmt(rate)} msg/s offered`,
    offeredHeld: allHeld,
    result: c1?.p99ToEmbedded === undefined || c1.p99ToEmbedded === null ? 'n/a' : c1.p99ToEmbedded <= P99_BOUND ? 'MET' : 'NOT MET',
    detail:
      (c1?.p99ToEmbedded ?? null) === null || !c1
        ? 'not measured'
        : `one cluster node ${fmt(c1.pubackP99, 1)} ms against embedded ${fmt(e?.pubackP99, 1)} ms = ${c1.p99ToEmbedded}× (rounds ${c1.p99Rounds.join(', ')})${(rows.find((r) => r.mode === 'cluster2')?.p99ToEmbedded ?? null) !== null ? `; 2 nodes + HAProxy ${rows.find((r) => r.mode === 'cluster2')?.p99ToEmbedded}×` : ''}; offered rate held in every window: ${
            allHeld
              ? 'yes'
              : `NO (${rows
                  .filter((r) => !r.offeredHeld)
                  .map((r) => `${MODE_TITLE[r.mode]}: ${r.offered}`)
                  .join(' | ')})`
          }`,
  };
  return { rate, rows, writer, p99 };
}

export function streamTable(s: StreamSummary): string[][] {
  const head = [
    'mode',
    'ingest msg/s (paced)',
    'PUBACK p50 / p99 ms',
    'p99 ÷ embedded',
    'stream append p99 ms',
    'event-loop delay p99 / max ms',
    'writer rows/s (backlog drain)',
    'writer ÷ ingest',
    'max lag (paced)',
    'lag 0 after load',
    'raw COPY rows/s',
    'writer ÷ raw COPY',
    'mean batch (readings, ms)',
    'offered held',
  ];
  return [
    head,
    ...s.rows.map((r) => [
      MODE_TITLE[r.mode],
      fmt(r.ingestPerSec),
      `${fmt(r.pubackP50, 1)} / ${fmt(r.pubackP99, 1)}`,
      r.mode === 'embedded' ? '1' : `${r.p99ToEmbedded ?? '-'}× (${r.p99Rounds.join(', ')})`,
      r.appendP99 === null ? '-' : `≤ ${fmt(r.appendP99, 1)}`,
      `${fmt(r.loopP99, 1)} / ${fmt(r.loopMax, 1)}`,
      r.writerRowsPerSec === null ? '-' : `${fmt(r.writerRowsPerSec)} (${r.writerRounds.map((v) => fmt(v)).join(', ')})`,
      r.writerToIngest === null ? '-' : `${r.writerToIngest}×`,
      fmt(r.lagMax),
      r.mode === 'embedded' ? '-' : r.lagBackToZeroS === null ? '> 60 s' : `${r.lagBackToZeroS} s`,
      fmt(r.rawCopyRowsPerSec),
      r.writerOfRaw === null ? '-' : `${fmt(r.writerOfRaw * 100)}%`,
      r.meanBatch === null ? '-' : `${fmt(r.meanBatch)}, ${fmt(r.meanBatchMs, 1)}`,
      r.offeredHeld ? 'yes' : 'NO',
    ]),
  ];
}

export const streamTargetLines = (s: StreamSummary): string[] => [`${s.writer.result}  ${s.writer.what}: ${s.writer.detail}`, `${s.p99.result}  ${s.p99.what}: ${s.p99.detail}`];

/** Two panels: rows/s (ingest, its 1.5×, the writers, raw COPY) and p99 PUBACK per mode against 2× embedded. */
export function streamChart(run: { startedAt: string; stream: StreamSummary }): string {
  const s = run.stream;
  const [left, barMax, rowH] = [230, 520, 26];
  const bars1: { label: string; v: number; color: string }[] = [];
  for (const r of s.rows.filter((x) => x.mode !== 'embedded')) {
    bars1.push({ label: `ingest, ${MODE_TITLE[r.mode]}`, v: r.ingestPerSec ?? 0, color: '#999' });
    bars1.push({ label: `store writers, ${MODE_TITLE[r.mode]}`, v: r.writerRowsPerSec ?? 0, color: '#2f6fdb' });
  }
  const raw = s.rows.find((x) => x.rawCopyRowsPerSec !== null)?.rawCopyRowsPerSec ?? 0;
  bars1.push({ label: 'raw COPY (same DB, same rows)', v: raw, color: '#d9822b' });
  const bars2 = s.rows.map((r) => ({ label: MODE_TITLE[r.mode], v: r.pubackP99 ?? 0, color: r.mode === 'embedded' ? '#3a9d5d' : '#2f6fdb' }));
  const top1 = 60;
  const top2 = top1 + bars1.length * rowH + 60;
  const height = top2 + bars2.length * rowH + 40;
  const width = left + barMax + 160;
  const out = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="11">`,
    '<rect width="100%" height="100%" fill="#fff"/>',
    `<text x="10" y="22" font-size="16" font-weight="bold">Telemetry stream targets — ${run.startedAt}</text>`,
    `<text x="10" y="${top1 - 12}" fill="#444">${s.writer.result}: store writers ≥ ${WRITER_BOUND}× ingest (rows/s; dashed: ${WRITER_BOUND}× the ingest rate)</text>`,
  ];
  const panel = (bars: typeof bars1, top: number, unit: string, line: number, lineLabel: string) => {
    const max = Math.max(1, line, ...bars.map((b) => b.v));
    bars.forEach((b, i) => {
      const y = top + i * rowH;
      const w = (b.v / max) * barMax;
      out.push(`<text x="10" y="${y + 16}">${b.label}</text><rect x="${left}" y="${y + 4}" width="${w.toFixed(1)}" height="${rowH - 8}" fill="${b.color}"/><text x="${(left + w + 6).toFixed(1)}" y="${y + 16}">${fmt(b.v, unit === 'ms' ? 1 : 0)} ${unit}</text>`);
    });
    const x = left + (line / max) * barMax;
    if (line > 0)
      out.push(`<line x1="${x.toFixed(1)}" y1="${top}" x2="${x.toFixed(1)}" y2="${top + bars.length * rowH}" stroke="#000" stroke-dasharray="4 3"/><text x="${x.toFixed(1)}" y="${top + bars.length * rowH + 12}" text-anchor="middle">${lineLabel}</text>`);
  };
  const ingest = s.rows.find((r) => r.mode === s.writer.mode)?.ingestPerSec ?? 0;
  panel(bars1, top1, 'rows/s', ingest * WRITER_BOUND, `${WRITER_BOUND}× ingest`);
  out.push(`<text x="10" y="${top2 - 12}" fill="#444">${s.p99.result}: p99 publish→PUBACK at ${fmt(s.rate)} msg/s offered, cluster ≤ ${P99_BOUND}× embedded (dashed)${s.p99.offeredHeld ? '' : ' — offered rate NOT held in every window'}</text>`);
  panel(bars2, top2, 'ms', (s.rows.find((r) => r.mode === 'embedded')?.pubackP99 ?? 0) * P99_BOUND, `${P99_BOUND}× embedded`);
  out.push('</svg>');
  return `${out.join('\n')}\n`;
}
