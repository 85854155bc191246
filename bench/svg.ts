import { COLUMNS, type RunResult } from './report.js';

/** A small-multiples bar chart (one panel per metric, one bar per broker) as a standalone SVG. */

const COLORS: Record<string, string> = { bulwark: '#2f6fdb', mosquitto: '#3a9d5d', aedes: '#d9822b' };
const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
const label = (v: number) => (v >= 10_000 ? `${(v / 1000).toFixed(1)}k` : v >= 100 ? v.toFixed(0) : v.toFixed(2).replace(/\.?0+$/, ''));

export function chart(run: RunResult): string {
  const panelW = 250;
  const panelH = 190;
  const cols = 4;
  const rows = Math.ceil(COLUMNS.length / cols);
  const top = 60;
  const width = cols * panelW + 20;
  const height = top + rows * panelH + 20;
  const parts: string[] = [];
  parts.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="11">`);
  parts.push(`<rect width="100%" height="100%" fill="#fff"/>`);
  parts.push(`<text x="10" y="22" font-size="16" font-weight="bold">${esc(`Bulwark vs Mosquitto vs Aedes — mTLS, ${run.settings.devices} devices, ${run.startedAt}`)}</text>`);
  run.brokers.forEach((b, i) => {
    const x = 10 + i * 130;
    parts.push(`<rect x="${x}" y="34" width="12" height="12" fill="${COLORS[b.name] ?? '#888'}"/><text x="${x + 16}" y="44">${esc(b.name)}</text>`);
  });
  COLUMNS.forEach((c, k) => {
    const px = 10 + (k % cols) * panelW;
    const py = top + Math.floor(k / cols) * panelH;
    const values = run.brokers.map((b) => c.value(b));
    const max = Math.max(1e-9, ...values.map((v) => v ?? 0));
    const plotH = panelH - 60;
    const barW = Math.min(50, (panelW - 40) / Math.max(1, run.brokers.length) - 10);
    parts.push(`<text x="${px + 4}" y="${py + 14}" font-weight="bold">${esc(c.title)}</text>`);
    parts.push(`<text x="${px + 4}" y="${py + 27}" fill="#666">${c.better} is better</text>`);
    const base = py + 36 + plotH;
    parts.push(`<line x1="${px + 4}" y1="${base}" x2="${px + panelW - 20}" y2="${base}" stroke="#999"/>`);
    values.forEach((v, i) => {
      const b = run.brokers[i];
      if (!b) return;
      const bx = px + 14 + i * (barW + 14);
      if (v === null) {
        parts.push(`<text x="${bx}" y="${base - 4}" fill="#999">n/a</text>`);
        return;
      }
      const h = Math.max(1, (v / max) * (plotH - 14));
      parts.push(`<rect x="${bx}" y="${(base - h).toFixed(1)}" width="${barW}" height="${h.toFixed(1)}" fill="${COLORS[b.name] ?? '#888'}"><title>${esc(`${b.name}: ${v}`)}</title></rect>`);
      parts.push(`<text x="${bx + barW / 2}" y="${(base - h - 3).toFixed(1)}" text-anchor="middle">${label(v)}</text>`);
      parts.push(`<text x="${bx + barW / 2}" y="${base + 13}" text-anchor="middle" fill="#444">${esc(b.name.slice(0, 9))}</text>`);
    });
  });
  parts.push('</svg>');
  return `${parts.join('\n')}\n`;
}
