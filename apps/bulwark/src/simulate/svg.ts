/** A series of a line chart. */
export interface Series {
  readonly name: string;
  readonly points: readonly { readonly x: number; readonly y: number }[];
}

const COLOURS = ['#1c7ed6', '#e8590c', '#2f9e44', '#862e9c', '#c92a2a'];
const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

/**
 * One panel per series, stacked, sharing the x axis (each series keeps its own y scale: devices
 * online and reconnects per second differ by orders of magnitude). Plain SVG, no script.
 */
export function lineChart(title: string, xLabel: string, series: readonly Series[]): string {
  const w = 760;
  const panelH = 140;
  const left = 70;
  const right = 20;
  const top = 40;
  const gap = 36;
  const h = top + series.length * (panelH + gap) + 20;
  const xs = series.flatMap((s) => s.points.map((p) => p.x));
  const xMin = Math.min(0, ...xs);
  const xMax = Math.max(1, ...xs);
  const sx = (x: number) => left + ((x - xMin) / (xMax - xMin)) * (w - left - right);
  const out = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${w}" height="${h}" viewBox="0 0 ${w} ${h}" font-family="sans-serif" font-size="12">`,
    `<rect width="${w}" height="${h}" fill="#fff"/>`,
    `<text x="${w / 2}" y="22" text-anchor="middle" font-size="15">${esc(title)}</text>`,
  ];
  series.forEach((s, i) => {
    const y0 = top + i * (panelH + gap);
    const yMax = Math.max(1, ...s.points.map((p) => p.y));
    const sy = (y: number) => y0 + panelH - (y / yMax) * panelH;
    const colour = COLOURS[i % COLOURS.length] as string;
    out.push(`<text x="${left}" y="${y0 - 6}" fill="${colour}">${esc(s.name)} (max ${Math.round(yMax * 100) / 100})</text>`);
    out.push(`<line x1="${left}" y1="${y0 + panelH}" x2="${w - right}" y2="${y0 + panelH}" stroke="#999"/><line x1="${left}" y1="${y0}" x2="${left}" y2="${y0 + panelH}" stroke="#999"/>`);
    out.push(`<text x="${left - 6}" y="${y0 + 4}" text-anchor="end">${Math.round(yMax * 100) / 100}</text><text x="${left - 6}" y="${y0 + panelH + 4}" text-anchor="end">0</text>`);
    if (s.points.length > 0) out.push(`<polyline fill="none" stroke="${colour}" stroke-width="1.5" points="${s.points.map((p) => `${sx(p.x).toFixed(1)},${sy(p.y).toFixed(1)}`).join(' ')}"/>`);
  });
  const yAxis = h - 12;
  out.push(`<text x="${left}" y="${yAxis}">${xMin}</text><text x="${w - right}" y="${yAxis}" text-anchor="end">${xMax}</text><text x="${w / 2}" y="${yAxis}" text-anchor="middle">${esc(xLabel)}</text>`);
  out.push('</svg>');
  return `${out.join('\n')}\n`;
}
