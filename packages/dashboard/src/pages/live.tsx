import { type RefObject, useEffect, useRef, useState } from 'react';
import type uPlot from 'uplot';
import { api, streamTicket } from '../api';
import { usePlot } from '../chart';
import type { LiveReading } from '../types';
import { ErrorBox } from '../ui';

const WINDOW = 300;
const LATENCY_WINDOW = 500;
const COLORS = ['#2a7ae2', '#2b8a3e', '#d9480f', '#862e9c', '#e67700', '#0b7285'];

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] ?? NaN;
}

async function unitsOf(schemaId: string): Promise<Record<string, string>> {
  const [name, version] = schemaId.split('@');
  const s = await api('GET', '/api/v1/schemas/{name}/versions/{version}', { params: { name: name ?? '', version: Number(version) } });
  const props = (s.document.properties ?? {}) as Record<string, { 'x-unit'?: string }>;
  return Object.fromEntries(Object.entries(props).flatMap(([k, v]) => (v['x-unit'] ? [[k, v['x-unit']]] : [])));
}

function FieldChart({ field, unit, register, color }: { field: string; unit: string | undefined; register: (field: string, plot: RefObject<uPlot | null> | null) => void; color: string }) {
  const { host, plot } = usePlot(unit ? `${field} (${unit})` : field, [{ label: field, stroke: color }], 160);
  useEffect(() => {
    register(field, plot);
    return () => register(field, null);
  }, [field, plot, register]);
  return <div className="chart" ref={host} data-testid={`live-chart-${field}`} />;
}

/**
 * The device's readings as they are stored, over Server-Sent Events opened with a stream
 * ticket. Each reading is drawn at once (uPlot setData); in the next animation frame, the
 * time since the envelope's device timestamp is the publish→screen latency of that point.
 */
export function LiveTelemetry({ deviceId }: { deviceId: string }) {
  const [fields, setFields] = useState<string[]>([]);
  const [latest, setLatest] = useState<LiveReading | undefined>();
  const [units, setUnits] = useState<Record<string, string>>({});
  const [latency, setLatency] = useState({ p50: NaN, p99: NaN, n: 0, ingestP50: NaN, ingestP99: NaN });
  const [status, setStatus] = useState('connecting');
  const [error, setError] = useState<unknown>();
  const [dropped, setDropped] = useState(0);
  // The chart of each field, by ref: a chart is made anew when its title changes (units arrive).
  const plots = useRef(new Map<string, RefObject<uPlot | null>>());
  const buffers = useRef<{ xs: number[]; ys: Map<string, (number | null)[]> }>({ xs: [], ys: new Map() });
  const latencies = useRef<number[]>([]);
  /** Device timestamp to the server's receive time, for the same points: the part before the stream. */
  const ingestLatencies = useRef<number[]>([]);
  const count = useRef(0);
  const latestRef = useRef<LiveReading | undefined>(undefined);
  const [points, setPoints] = useState(0);

  const register = useRef((field: string, plot: RefObject<uPlot | null> | null) => {
    if (plot) plots.current.set(field, plot);
    else plots.current.delete(field);
  }).current;

  useEffect(() => {
    let source: EventSource | undefined;
    let closed = false;
    let retry: ReturnType<typeof setTimeout> | undefined;
    const knownSchemas = new Set<string>();
    let pendingTs: number[] = [];
    let pendingIngest: number[] = [];
    let frame = 0;
    let uiTimer: ReturnType<typeof setTimeout> | undefined;

    const measure = () => {
      frame = 0;
      const now = performance.timeOrigin + performance.now();
      const lat = latencies.current;
      for (const ts of pendingTs) lat.push(now - ts);
      ingestLatencies.current.push(...pendingIngest);
      pendingTs = [];
      pendingIngest = [];
      if (lat.length > LATENCY_WINDOW) lat.splice(0, lat.length - LATENCY_WINDOW);
      if (ingestLatencies.current.length > LATENCY_WINDOW) ingestLatencies.current.splice(0, ingestLatencies.current.length - LATENCY_WINDOW);
      // React state (numbers, latest values) is refreshed at most 4 times a second: at stream
      // speed, only the charts are redrawn.
      uiTimer ??= setTimeout(() => {
        uiTimer = undefined;
        const sorted = [...latencies.current].sort((a, b) => a - b);
        const ingest = [...ingestLatencies.current].sort((a, b) => a - b);
        setLatency({ p50: percentile(sorted, 50), p99: percentile(sorted, 99), n: sorted.length, ingestP50: percentile(ingest, 50), ingestP99: percentile(ingest, 99) });
        setPoints(count.current);
        setLatest(latestRef.current);
      }, 250);
    };

    const onReading = (r: LiveReading) => {
      const b = buffers.current;
      b.xs.push(r.ts / 1000);
      const numeric = Object.entries(r.data).filter(([, v]) => typeof v === 'number') as [string, number][];
      let newField = false;
      for (const [k] of numeric) {
        if (!b.ys.has(k)) {
          b.ys.set(k, new Array<number | null>(b.xs.length - 1).fill(null));
          newField = true;
        }
      }
      for (const [k, arr] of b.ys) arr.push(typeof r.data[k] === 'number' ? r.data[k] : null);
      if (b.xs.length > WINDOW) {
        b.xs.shift();
        for (const arr of b.ys.values()) arr.shift();
      }
      if (newField) setFields([...b.ys.keys()]);
      for (const [k, plot] of plots.current) {
        const p = plot.current;
        if (!p) continue;
        p.setData([b.xs, b.ys.get(k) ?? []]);
        p.root.dataset.points = String(b.xs.length);
      }
      count.current++;
      latestRef.current = r;
      if (!knownSchemas.has(r.schemaId)) {
        knownSchemas.add(r.schemaId);
        unitsOf(r.schemaId).then(
          (u) => setUnits((old) => ({ ...old, ...u })),
          () => undefined,
        );
      }
      // Only points that were drawn count: a field's chart appears one render after its first value.
      if (r.deviceTs !== null && numeric.every(([k]) => plots.current.get(k)?.current)) {
        pendingTs.push(r.deviceTs);
        pendingIngest.push(r.receivedAt - r.deviceTs);
      }
      if (frame === 0) frame = requestAnimationFrame(measure);
    };

    const open = async () => {
      try {
        const ticket = await streamTicket();
        if (closed) return;
        source = new EventSource(`/api/v1/devices/${encodeURIComponent(deviceId)}/telemetry/live?ticket=${encodeURIComponent(ticket)}`);
        source.addEventListener('ready', () => {
          setStatus('live');
          setError(undefined);
        });
        source.addEventListener('reading', (e) => onReading(JSON.parse((e as MessageEvent<string>).data) as LiveReading));
        source.addEventListener('dropped', (e) => setDropped((d) => d + ((JSON.parse((e as MessageEvent<string>).data) as { dropped: number }).dropped ?? 0)));
        source.onerror = () => {
          // A ticket is single use: EventSource's own retry would be refused, so open anew.
          source?.close();
          setStatus('reconnecting');
          if (!closed) retry = setTimeout(() => void open(), 2000);
        };
      } catch (err) {
        setError(err);
        setStatus('disconnected');
        if (!closed) retry = setTimeout(() => void open(), 5000);
      }
    };
    void open();
    return () => {
      closed = true;
      source?.close();
      if (retry) clearTimeout(retry);
      if (uiTimer) clearTimeout(uiTimer);
      if (frame) cancelAnimationFrame(frame);
    };
  }, [deviceId]);

  const fmt = (ms: number) => (Number.isNaN(ms) ? '—' : `${ms.toFixed(1)} ms`);
  return (
    <div className="live">
      <p>
        Stream:{' '}
        <span className={`pill ${status}`} data-testid="live-status">
          {status}
        </span>{' '}
        <span className="muted">
          {points} readings received{dropped ? `, ${dropped} dropped by the server (slow reader)` : ''}
        </span>
      </p>
      <p id="latency" data-testid="latency" data-p50={latency.p50} data-p99={latency.p99} data-count={latency.n} data-ingest-p50={latency.ingestP50} data-ingest-p99={latency.ingestP99}>
        Publish→screen latency (last {latency.n} points, from the device timestamp to the frame that drew it): p50 <strong>{fmt(latency.p50)}</strong>, p99 <strong>{fmt(latency.p99)}</strong>
        <span className="muted">
          {' '}
          (of which publish→received by the server: p50 {fmt(latency.ingestP50)}, p99 {fmt(latency.ingestP99)})
        </span>
      </p>
      <ErrorBox error={error} />
      {latest ? (
        <table className="latest" data-testid="latest-values">
          <thead>
            <tr>
              <th>field</th>
              <th>latest</th>
              <th>unit</th>
            </tr>
          </thead>
          <tbody>
            {Object.entries(latest.data).map(([k, v]) => (
              <tr key={k}>
                <td>{k}</td>
                <td className="num">{typeof v === 'number' ? v : JSON.stringify(v)}</td>
                <td>{units[k] ?? ''}</td>
              </tr>
            ))}
          </tbody>
        </table>
      ) : (
        <p className="muted" data-testid="live-empty">
          No readings yet. They appear here as the device publishes telemetry (an envelope with a registered schema) on <code>devices/{deviceId}/telemetry</code>.
        </p>
      )}
      <div className="charts">
        {fields.map((f, i) => (
          <FieldChart key={f} field={f} unit={units[f]} register={register} color={COLORS[i % COLORS.length] ?? '#333'} />
        ))}
      </div>
    </div>
  );
}
