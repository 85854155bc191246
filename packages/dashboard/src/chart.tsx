import { useEffect, useRef } from 'react';
import uPlot, { type AlignedData, type Options } from 'uplot';
import 'uplot/dist/uPlot.min.css';

export interface Series {
  readonly label: string;
  readonly stroke: string;
}

function options(title: string, series: readonly Series[], width: number, height: number): Options {
  return {
    title,
    width,
    height,
    series: [{}, ...series.map((s) => ({ label: s.label, stroke: s.stroke, width: 1.5, points: { show: false } }))],
    axes: [{}, { size: 60 }],
    legend: { live: false },
    cursor: { drag: { x: false, y: false } },
  };
}

/**
 * A uPlot chart whose instance the caller drives (setData at stream speed, without React
 * renders in between). The ref holds the instance while the element is mounted.
 */
export function usePlot(title: string, series: readonly Series[], height = 180) {
  const host = useRef<HTMLDivElement>(null);
  const plot = useRef<uPlot | null>(null);
  const key = `${title}|${series.map((s) => s.label).join(',')}`;
  useEffect(() => {
    const el = host.current;
    if (!el) return;
    const empty: AlignedData = [[], ...series.map(() => [])];
    plot.current = new uPlot(options(title, series, Math.max(320, el.clientWidth || 600), height), empty, el);
    const resize = () => plot.current?.setSize({ width: Math.max(320, el.clientWidth), height });
    window.addEventListener('resize', resize);
    return () => {
      window.removeEventListener('resize', resize);
      plot.current?.destroy();
      plot.current = null;
    };
  }, [key, height]);
  return { host, plot };
}

/** A chart drawn from React state (slow-moving data: rates sampled every few seconds). */
export function TimeChart({ title, series, data, height = 180, testId }: { title: string; series: Series[]; data: AlignedData; height?: number; testId?: string }) {
  const { host, plot } = usePlot(title, series, height);
  useEffect(() => {
    plot.current?.setData(data);
  }, [data, plot]);
  const points = data[0]?.length ?? 0;
  return (
    <div className="chart" ref={host} data-testid={testId} data-points={points}>
      {points < 2 ? <p className="muted chart-note">Collecting samples from /metrics (every 3 s)…</p> : null}
    </div>
  );
}
