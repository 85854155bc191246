import { type Metric, type RunResult, METRICS, brokersIn, medianOf } from './report.js';

/**
 * Two standalone SVG charts. `chart`: one panel per headline metric, one bar per broker at the
 * median of the rounds, with a whisker from the lowest to the highest round. `targetChart`: each
 * target's checked figure as a share of its limit (the line at 1), green when met, red when missed.
 */

const COLORS: Record<string, string> = { bulwark: '#2f6fdb', mosquitto: '#3a9d5d', aedes: '#d9822b' };
const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
const label = (v: number) => (v >= 10_000 ? `${(v / 1000).toFixed(1)}k` : v >= 100 ? v.toFixed(0) : v.toFixed(2).replace(/\.?0+$/, ''));
const HEADLINE = new Set(['QoS1 msg/s (3.1.1)', 'QoS1 msg/s (v5)', 'CPU µs/msg (3.1.1)', 'CPU µs/msg (v5)', 'PUBACK p99 ms (3.1.1, paced)', 'PUBACK p99 ms (v5, paced)',
  'live p99 ms (3.1.1, paced)', 'live p99 ms (v5, paced)', 'QoS0 msg/s taken in', 'QoS0 RSS growth MiB', 'KB/idle session', 'CPU ms/handshake']);

export function chart(run: RunResult): string {
  const names = brokersIn(run);
  const metrics = METRICS.filter((m) => HEADLINE.has(m.title) && names.some((n) => medianOf(run, n, m) !== null));
  const [panelW, panelH, cols, top] = [250, 190, 4, 76];
  const width = cols * panelW + 20;
  const height = top + Math.ceil(metrics.length / cols) * panelH + 20;
  const rounds = Math.max(...run.rounds.map((r) => r.round));
  const parts = [`<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="11">`, '<rect width="100%" height="100%" fill="#fff"/>',
    `<text x="10" y="22" font-size="16" font-weight="bold">${esc(`Bulwark vs Mosquitto vs Aedes — mTLS, ${run.settings.devices} devices, ${run.startedAt}`)}</text>`,
    `<text x="10" y="38" fill="#444">${esc(`bars: median of ${rounds} round(s); whiskers: lowest to highest round. ${run.pinning}`)}</text>`];
  names.forEach((n, i) => parts.push(`<rect x="${10 + i * 130}" y="50" width="12" height="12" fill="${COLORS[n]}"/><text x="${26 + i * 130}" y="60">${n}</text>`));
  metrics.forEach((m: Metric, k) => {
    const px = 10 + (k % cols) * panelW;
    const py = top + Math.floor(k / cols) * panelH;
    const spread = names.map((n) => run.rounds.filter((r) => r.name === n).map(m.value).filter((x): x is number => typeof x === 'number'));
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
  const parts = [`<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="11">`, '<rect width="100%" height="100%" fill="#fff"/>',
    `<text x="10" y="22" font-size="16" font-weight="bold">${esc(`Bulwark's targets (issue 13), ${run.startedAt}`)}</text>`,
    `<text x="10" y="40" fill="#444">checked figure ÷ limit; the line is the limit (≤ targets must stay left of it, ≥ targets right of it); bars cut at ${scale}×</text>`];
  parts.push(`<line x1="${x(1)}" y1="${top - 6}" x2="${x(1)}" y2="${top + rows.length * rowH}" stroke="#000" stroke-dasharray="4 3"/>`);
  rows.forEach((t, i) => {
    const y = top + i * rowH;
    const share = t.measured === null ? null : t.measured / t.bound;
    const color = t.result === 'MET' ? '#3a9d5d' : t.result === 'MISS' ? '#c9302c' : '#999';
    parts.push(`<text x="10" y="${y + 15}">${esc(`${t.id}: ${t.what.slice(0, 44)}${t.what.length > 44 ? '…' : ''}`)}</text>`);
    if (share !== null) parts.push(`<rect x="${left}" y="${y + 4}" width="${(x(Number.isFinite(share) ? share : scale) - left).toFixed(1)}" height="${rowH - 8}" fill="${color}"><title>${esc(`${t.value} (limit ${t.limit})`)}</title></rect>`);
    parts.push(`<text x="${left + barMax + 8}" y="${y + 15}" fill="${color}" font-weight="bold">${t.result}</text><text x="${left + barMax + 48}" y="${y + 15}">${esc(`${t.kind === 'max' ? '≤' : '≥'} limit; ${share === null ? '-' : Number.isFinite(share) ? `${share.toFixed(2)}×` : 'failed'}`)}</text>`);
  });
  parts.push('</svg>');
  return `${parts.join('\n')}\n`;
}
