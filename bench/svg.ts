import { type Metric, type RunResult, METRICS, brokersIn, medianOf } from './report.js';

/**
 * Two standalone SVG charts. `chart`: one panel per headline metric, one bar per broker at the
 * median of the rounds, with a whisker from the lowest to the highest round. `targetChart`: each
 * target's checked figure as a share of its limit (the line at 1), green when met, red when missed.
 */

const COLORS: Record<string, string> = { bulwark: '#2f6fdb', mosquitto: '#3a9d5d', aedes: '#d9822b' };
const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
const label = (v: number) => (v >= 10_000 ? `${(v / 1000).toFixed(1)}k` : v >= 100 ? v.toFixed(0) : v.toFixed(2).replace(/\.?0+$/, ''));
const HEADLINE = new Set([
  'QoS1 msg/s (3.1.1)',
  'QoS1 msg/s (v5)',
  'CPU µs/msg (3.1.1)',
  'CPU µs/msg (v5)',
  'PUBACK p99 ms (3.1.1, paced)',
  'PUBACK p99 ms (v5, paced)',
  'live p99 ms (3.1.1, paced)',
  'live p99 ms (v5, paced)',
  'QoS0 msg/s taken in',
  'QoS0 RSS growth MiB',
  'KB/idle session',
  'CPU ms/handshake',
]);

export function chart(run: RunResult): string {
  const names = brokersIn(run);
  const metrics = METRICS.filter((m) => HEADLINE.has(m.title) && names.some((n) => medianOf(run, n, m) !== null));
  const [panelW, panelH, cols, top] = [250, 190, 4, 76];
  const width = cols * panelW + 20;
  const height = top + Math.ceil(metrics.length / cols) * panelH + 20;
  const rounds = Math.max(...run.rounds.map((r) => r.round));
  const parts = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="11">`,
    '<rect width="100%" height="100%" fill="#fff"/>',
    `<text x="10" y="22" font-size="16" font-weight="bold">${esc(`Bulwark vs Mosquitto vs Aedes — mTLS, ${run.settings.devices} devices, ${run.startedAt}`)}</text>`,
    `<text x="10" y="38" fill="#444">${esc(`bars: median of ${rounds} round(s); whiskers: lowest to highest round. ${run.pinning}`)}</text>`,
  ];
  names.forEach((n, i) => parts.push(`<rect x="${10 + i * 130}" y="50" width="12" height="12" fill="${COLORS[n]}"/><text x="${26 + i * 130}" y="60">${n}</text>`));
  metrics.forEach((m: Metric, k) => {
    const px = 10 + (k % cols) * panelW;
    const py = top + Math.floor(k / cols) * panelH;
    const spread = names.map((n) =>
      run.rounds
        .filter((r) => r.name === n)
        .map(m.value)
        .filter((x): x is number => typeof x === 'number'),
    );
    const max = Math.max(1e-9, ...spread.flat());
    const plotH = panelH - 60;
    const barW = Math.min(50, (panelW - 40) / Math.max(1, names.length) - 10);
    const base = py + 36 + plotH;
    const y = (v: number) => base - Math.max(1, (v / max) * (plotH - 14));
    parts.push(`<text x="${px + 4}" y="${py + 14}" font-weight="bold">${esc(m.title)}</text><text x="${px + 4}" y="${py + 27}" fill="#666">${m.better} is better</text>`);
    parts.push(`<line x1="${px + 4}" y1="${base}" x2="${px + panelW - 20}" y2="${base}" stroke="#999"/>`);
    names.forEach((n, i) => {
      const bx = px + 14 + i * (barW + 14);
      const med = medianOf(run, n, m);
      const vals = spread[i] ?? [];
      parts.push(`<text x="${bx + barW / 2}" y="${base + 13}" text-anchor="middle" fill="#444">${n.slice(0, 9)}</text>`);
      if (med === null) return void parts.push(`<text x="${bx}" y="${base - 4}" fill="#999">n/a</text>`);
      parts.push(`<rect x="${bx}" y="${y(med).toFixed(1)}" width="${barW}" height="${(base - y(med)).toFixed(1)}" fill="${COLORS[n]}"><title>${esc(`${n}: ${vals.join(', ')}`)}</title></rect>`);
      if (vals.length > 1) {
        const [lo, hi] = [y(Math.min(...vals)), y(Math.max(...vals))];
        parts.push(`<line x1="${bx + barW / 2}" y1="${lo.toFixed(1)}" x2="${bx + barW / 2}" y2="${hi.toFixed(1)}" stroke="#222"/><line x1="${bx + barW / 2 - 5}" y1="${hi.toFixed(1)}" x2="${bx + barW / 2 + 5}" y2="${hi.toFixed(1)}" stroke="#222"/>`);
      }
      parts.push(`<text x="${bx + barW / 2}" y="${(Math.min(y(med), y(Math.max(...vals))) - 3).toFixed(1)}" text-anchor="middle">${label(med)}</text>`);
    });
  });
  parts.push('</svg>');
  return `${parts.join('\n')}\n`;
}

export function targetChart(run: RunResult): string {
  const rows = run.targets;
  const [left, barMax, rowH, top] = [330, 520, 26, 56];
  const width = left + barMax + 170;
  const height = top + rows.length * rowH + 30;
  const scale = 3; // bars are cut at 3× the limit
  const x = (share: number) => left + (Math.min(scale, Math.max(0, share)) / scale) * barMax;
  const parts = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="11">`,
    '<rect width="100%" height="100%" fill="#fff"/>',
    `<text x="10" y="22" font-size="16" font-weight="bold">${esc(`Bulwark's targets (issue 13), ${run.startedAt}`)}</text>`,
    `<text x="10" y="40" fill="#444">checked figure ÷ limit; the line is the limit (≤ targets must stay left of it, ≥ targets right of it); bars cut at ${scale}×</text>`,
  ];
  parts.push(`<line x1="${x(1)}" y1="${top - 6}" x2="${x(1)}" y2="${top + rows.length * rowH}" stroke="#000" stroke-dasharray="4 3"/>`);
  rows.forEach((t, i) => {
    const y = top + i * rowH;
    const share = t.measured === null ? null : t.measured / t.bound;
    const color = t.result === 'MET' ? '#3a9d5d' : t.result === 'MISS' ? '#c9302c' : '#999';
    parts.push(`<text x="10" y="${y + 15}">${esc(`${t.id}: ${t.what.slice(0, 44)}${t.what.length > 44 ? '…' : ''}`)}</text>`);
    if (share !== null) parts.push(`<rect x="${left}" y="${y + 4}" width="${(x(Number.isFinite(share) ? share : scale) - left).toFixed(1)}" height="${rowH - 8}" fill="${color}"><title>${esc(`${t.value} (limit ${t.limit})`)}</title></rect>`);
    parts.push(
      `<text x="${left + barMax + 8}" y="${y + 15}" fill="${color}" font-weight="bold">${t.result}</text><text x="${left + barMax + 48}" y="${y + 15}">${esc(`${t.kind === 'max' ? '≤' : '≥'} limit; ${share === null ? '-' : Number.isFinite(share) ? `${share.toFixed(2)}×` : 'failed'}`)}</text>`,
    );
  });
  parts.push('</svg>');
  return `${parts.join('\n')}\n`;
}

/** One line chart of `linePanels`. */
export interface LinePanel {
  readonly title: string;
  readonly xLabel: string;
  readonly yLabel: string;
  /** `step`: each value holds until the next point (readings taken at those times), instead of a straight line between them. */
  readonly series: readonly { readonly name: string; readonly color: string; readonly points: readonly (readonly [number, number])[]; readonly dashed?: boolean; readonly step?: boolean }[];
  /** Vertical markers (e.g. the moment a job was cancelled). */
  readonly marks?: readonly { readonly x: number; readonly label: string; readonly color: string }[];
}

/** The smallest 1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6 or 8 × 10^k at or above `v`: an axis end whose quarters read well. */
const nice = (v: number) => {
  const p = 10 ** Math.floor(Math.log10(v));
  return ([1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10].find((m) => m * p >= v * 0.9999) ?? 10) * p;
};

/** Line charts side by side in one standalone SVG, each with its own axes and legend (benches that plot a quantity over time). */
export function linePanels(title: string, subtitle: string, panels: readonly LinePanel[], panelW = 560, panelH = 320): string {
  const [l, r, t, b, top] = [62, 16, 58, 40, 44];
  const width = panels.length * panelW + 10;
  const height = top + panelH + 10;
  const parts = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="11">`,
    '<rect width="100%" height="100%" fill="#fff"/>',
    `<text x="10" y="20" font-size="15" font-weight="bold">${esc(title)}</text>`,
    `<text x="10" y="36" fill="#444">${esc(subtitle)}</text>`,
  ];
  panels.forEach((p, k) => {
    const ox = 5 + k * panelW;
    const all = p.series.flatMap((s) => s.points);
    const maxX = nice(Math.max(1e-9, ...all.map(([x]) => x), ...(p.marks ?? []).map((m) => m.x)));
    const maxY = nice(Math.max(1e-9, ...all.map(([, y]) => y)) * 1.02);
    const X = (x: number) => ox + l + (x / maxX) * (panelW - l - r);
    const Y = (y: number) => top + panelH - b - (y / maxY) * (panelH - t - b);
    parts.push(
      `<text x="${ox + l}" y="${top + 14}" font-weight="bold">${esc(p.title)}</text>`,
      `<line x1="${X(0)}" y1="${Y(0)}" x2="${X(maxX)}" y2="${Y(0)}" stroke="#444"/><line x1="${X(0)}" y1="${Y(0)}" x2="${X(0)}" y2="${top + t - 8}" stroke="#444"/>`,
      `<text x="${(X(0) + X(maxX)) / 2}" y="${top + panelH - 8}" text-anchor="middle">${esc(p.xLabel)}</text>`,
      `<text x="${ox + 12}" y="${top + (panelH - b + t) / 2}" transform="rotate(-90 ${ox + 12} ${top + (panelH - b + t) / 2})" text-anchor="middle">${esc(p.yLabel)}</text>`,
    );
    for (const f of [0, 0.25, 0.5, 0.75, 1]) {
      parts.push(`<text x="${X(0) - 5}" y="${Y(f * maxY) + 4}" text-anchor="end">${label(f * maxY)}</text>`, `<text x="${X(f * maxX)}" y="${Y(0) + 14}" text-anchor="middle">${label(f * maxX)}</text>`);
      if (f > 0) parts.push(`<line x1="${X(0)}" y1="${Y(f * maxY)}" x2="${X(maxX)}" y2="${Y(f * maxY)}" stroke="#eee"/>`);
    }
    (p.marks ?? []).forEach((m, i) => {
      parts.push(`<line x1="${X(m.x)}" y1="${Y(0)}" x2="${X(m.x)}" y2="${top + t - 8}" stroke="${m.color}" stroke-dasharray="4 3"/><text x="${X(m.x) - 3}" y="${top + t + 8 + i * 13}" text-anchor="end" fill="${m.color}">${esc(m.label)}</text>`);
    });
    p.series.forEach((s, i) => {
      if (s.points.length > 0) {
        const pts = s.step
          ? s.points.flatMap(([x, y], j) =>
              j === 0
                ? [[x, y]]
                : [
                    [x, (s.points[j - 1] as readonly [number, number])[1]],
                    [x, y],
                  ],
            )
          : s.points;
        parts.push(`<polyline fill="none" stroke="${s.color}" stroke-width="1.5"${s.dashed ? ' stroke-dasharray="5 4"' : ''} points="${pts.map(([x, y]) => `${X(x).toFixed(1)},${Y(y).toFixed(1)}`).join(' ')}"/>`);
      }
      parts.push(
        `<line x1="${ox + l + 6}" y1="${top + 26 + i * 13}" x2="${ox + l + 24}" y2="${top + 26 + i * 13}" stroke="${s.color}" stroke-width="2"${s.dashed ? ' stroke-dasharray="5 4"' : ''}/><text x="${ox + l + 28}" y="${top + 30 + i * 13}">${esc(s.name)}</text>`,
      );
    });
  });
  parts.push('</svg>');
  return `${parts.join('\n')}\n`;
}
