import { DAY_MS } from '../cert-text';
import type { ExpiringCertificate } from '../types';

interface Bar {
  readonly key: string;
  readonly label: string;
  readonly title: string;
  readonly count: number;
  /** ended, soon (the first week), later: its colour. */
  readonly tone: 'ended' | 'soon' | 'later';
}

const BAR_W = 30;
const GAP = 10;
const TOP = 16;
const PLOT_H = 80;
const HEIGHT = TOP + PLOT_H + 18;

const day = (ms: number) => new Date(ms).toISOString().slice(0, 10);

/**
 * The certificates that have ended, then those ending in each week from `at` (the server's
 * now), the last week cut at the window's end. Weeks hold (start, end]: a certificate ending
 * exactly 7 days from now is in the first.
 */
export function weekBars(rows: readonly ExpiringCertificate[], windowDays: number, at: number): Bar[] {
  const ended = rows.filter((r) => r.expired).length;
  const bars: Bar[] = [{ key: 'ended', label: 'ended', title: `${ended} ended already`, count: ended, tone: 'ended' }];
  for (let from = 0; from < windowDays; from += 7) {
    const to = Math.min(from + 7, windowDays);
    const count = rows.filter((r) => !r.expired && r.msLeft > from * DAY_MS && r.msLeft <= to * DAY_MS).length;
    bars.push({ key: `d${from}`, label: day(at + from * DAY_MS).slice(5), title: `${count} ending from ${day(at + from * DAY_MS)} to ${day(at + to * DAY_MS)} (days ${from}–${to})`, count, tone: from === 0 ? 'soon' : 'later' });
  }
  return bars;
}

/**
 * A small bar chart of how many certificates end per week over the window: an SVG drawn at its
 * own size, bars as rects with classes for their colour (no inline style under the CSP).
 */
export function CertWeeks({ rows, windowDays, at }: { rows: readonly ExpiringCertificate[]; windowDays: number; at: number }) {
  const bars = weekBars(rows, windowDays, at);
  const max = Math.max(1, ...bars.map((b) => b.count));
  const width = bars.length * (BAR_W + GAP) + GAP;
  const words = bars.map((b) => `${b.label}: ${b.count}`).join(', ');
  return (
    <svg className="weeks" width={width} height={HEIGHT} viewBox={`0 0 ${width} ${HEIGHT}`} role="img" aria-label={`certificates ending per week: ${words}`} data-testid="cert-weeks">
      <line className="axis" x1={0} x2={width} y1={TOP + PLOT_H + 0.5} y2={TOP + PLOT_H + 0.5} />
      {bars.map((b, i) => {
        const x = GAP + i * (BAR_W + GAP);
        const h = b.count ? Math.max(2, Math.round((b.count / max) * PLOT_H)) : 0;
        return (
          <g key={b.key}>
            <title>{b.title}</title>
            <rect className={b.tone} x={x} y={TOP + PLOT_H - h} width={BAR_W} height={h} data-count={b.count} data-label={b.label} />
            <text className="count" x={x + BAR_W / 2} y={TOP + PLOT_H - h - 4}>
              {b.count}
            </text>
            <text x={x + BAR_W / 2} y={HEIGHT - 4}>
              {b.label}
            </text>
          </g>
        );
      })}
    </svg>
  );
}
