import { useEffect, useState } from 'react';
import type { AlignedData } from 'uplot';
import { ApiError, type Session, api, can, metricsText, onSignOut } from '../api';
import { TimeChart } from '../chart';
import { href } from '../router';
import type { Device, FleetCounts, Twin, ValueCount } from '../types';
import { Empty, ErrorBox, Stat, ago, useLoad } from '../ui';
import { OverviewAlerts } from './overview-alerts';

const OFFLINE_TOO_LONG_MS = 60 * 60 * 1000;
const SAMPLE_MS = 3000;
/** Health is per device: the overview checks the first this many online devices for restart loops. */
const RESTART_CHECKS = 20;
const REFRESH_MS = 5000;
/** Restart loops are re-checked this often (one request per checked device). */
const RESTART_REFRESH_MS = 30_000;

interface Fleet {
  counts: FleetCounts;
  /** Active devices offline for over an hour (the first 20 by id). */
  offlineTooLong: readonly Device[];
  /** Online devices whose health is checked for restart loops (at most RESTART_CHECKS). */
  onlineIds: string[];
}

/** Three requests however large the fleet: the server keeps the counts as devices change. */
async function loadFleet(signal: AbortSignal): Promise<Fleet> {
  const [counts, offlineTooLong, online] = await Promise.all([
    api('GET', '/api/v1/devices/stats', { signal }),
    api('GET', '/api/v1/devices', { query: { state: 'active', seenBefore: Date.now() - OFFLINE_TOO_LONG_MS, limit: 20 }, signal }),
    api('GET', '/api/v1/devices', { query: { online: true, limit: RESTART_CHECKS }, signal }),
  ]);
  return { counts, offlineTooLong, onlineIds: online.map((d) => d.id) };
}

/** Sums every sample of a Prometheus counter family (all label sets). */
function counter(text: string, name: string): number {
  let sum = 0;
  for (const line of text.split('\n')) {
    if (line.startsWith(name) && (line[name.length] === '{' || line[name.length] === ' ')) sum += Number(line.slice(line.lastIndexOf(' ') + 1)) || 0;
  }
  return sum;
}

/**
 * Ingest and dead-letter rates, sampled from /metrics every few seconds for as long as the
 * tab is signed in (not only while this page is open), so coming back shows the recent past.
 */
const rates = {
  xs: [] as number[],
  ingest: [] as number[],
  dead: [] as number[],
  writerLag: undefined as number | undefined,
  error: undefined as unknown,
  last: undefined as { t: number; ingest: number; dead: number } | undefined,
  timer: undefined as ReturnType<typeof setInterval> | undefined,
};
const rateListeners = new Set<() => void>();

async function sampleRates(): Promise<void> {
  try {
    const text = await metricsText();
    const now = { t: Date.now() / 1000, ingest: counter(text, 'bulwark_ingest_messages_total'), dead: counter(text, 'bulwark_ingest_dead_letters_total') };
    // Cluster mode only: readings acknowledged into the telemetry stream and not yet in the store.
    rates.writerLag = text.includes('\nbulwark_stream_writer_lag_messages ') ? counter(text, 'bulwark_stream_writer_lag_messages') : undefined;
    const last = rates.last;
    if (last) {
      const dt = now.t - last.t;
      rates.xs.push(now.t);
      rates.ingest.push(Math.max(0, (now.ingest - last.ingest) / dt));
      rates.dead.push(Math.max(0, (now.dead - last.dead) / dt));
      if (rates.xs.length > 300) [rates.xs, rates.ingest, rates.dead].forEach((a) => a.shift());
    }
    rates.last = now;
    rates.error = undefined;
  } catch (err) {
    rates.error = err;
    if (err instanceof ApiError && err.status === 401) stopRates();
  }
  for (const fn of rateListeners) fn();
}

function stopRates(): void {
  if (rates.timer) clearInterval(rates.timer);
  Object.assign(rates, { xs: [], ingest: [], dead: [], last: undefined, timer: undefined });
}

function useRates(): { data: AlignedData; error: unknown; writerLag: number | undefined } {
  const snapshot = (): { data: AlignedData; error: unknown; writerLag: number | undefined } => ({ data: [[...rates.xs], [...rates.ingest], [...rates.dead]], error: rates.error, writerLag: rates.writerLag });
  const [state, setState] = useState(snapshot);
  useEffect(() => {
    const on = () => setState(snapshot());
    rateListeners.add(on);
    if (!rates.timer) {
      void sampleRates();
      setTimeout(() => void sampleRates(), 1000);
      rates.timer = setInterval(() => void sampleRates(), SAMPLE_MS);
    }
    return () => {
      rateListeners.delete(on);
    };
  }, []);
  return state;
}

onSignOut(stopRates);

export function Overview({ session }: { session: Session }) {
  const fleet = useLoad(loadFleet, []);
  const skew = useLoad(() => api('GET', '/api/v1/telemetry/clock-skew'), []);
  const drift = useLoad(() => api('GET', '/api/v1/twin/drift'), []);
  const dlq = useLoad(() => api('GET', '/api/v1/dead-letters', { query: { limit: 200 } }), []);
  const rates = useRates();
  const onlineKey = fleet.data?.onlineIds.join(',') ?? '';
  const [slowTick, setSlowTick] = useState(0);
  const restarts = useLoad(async () => {
    const ids = onlineKey ? onlineKey.split(',') : [];
    const checked = await Promise.all(
      ids.map((id) =>
        api('GET', '/api/v1/devices/{id}/health', { params: { id } }).then(
          (h) => (h.restartLoop ? id : undefined),
          () => undefined,
        ),
      ),
    );
    return checked.filter((id): id is string => id !== undefined);
  }, [onlineKey, slowTick]);
  const reloads = [fleet.reload, skew.reload, drift.reload, dlq.reload];
  useEffect(() => {
    const timer = setInterval(() => reloads.forEach((r) => r()), REFRESH_MS);
    const slow = setInterval(() => setSlowTick((n) => n + 1), RESTART_REFRESH_MS);
    return () => {
      clearInterval(timer);
      clearInterval(slow);
    };
  }, reloads);

  const f = fleet.data;
  const c = f?.counts;
  const total = c?.total ?? 0;
  const counted = c ? c.byConnectivity.online + c.byConnectivity.offline : 0;
  const dlqByDevice = new Map<string, number>();
  for (const l of dlq.data ?? []) if (Date.now() - l.receivedAt < 3_600_000) dlqByDevice.set(l.deviceId, (dlqByDevice.get(l.deviceId) ?? 0) + 1);

  return (
    <section>
      <h2>Fleet</h2>
      <ErrorBox error={fleet.error} />
      {f && total === 0 ? (
        <Empty title="No devices yet">
          <p>
            Register and enroll one: <code>npx bulwark devices create sensor-1</code> then <code>npx bulwark devices enroll sensor-1 --out ./sensor-1</code>, and connect it over MQTT with its certificate (see the getting-started guide).
          </p>
        </Empty>
      ) : null}
      {f && c ? (
        <>
          <div className="stats" data-testid="fleet-stats">
            <Stat label="devices" value={total} testId="count-total" />
            <Stat label="online" value={c.byConnectivity.online} testId="count-online" tone="good" />
            <Stat label="offline" value={c.byConnectivity.offline} testId="count-offline" />
            {Object.entries(c.byState)
              .filter(([, n]) => n > 0)
              .map(([state, n]) => (
                <Stat key={state} label={state} value={n} testId={`count-${state}`} />
              ))}
          </div>
          <div className="stats" data-testid="fleet-health">
            <Stat label="health good (80+)" value={c.byHealth.good} testId="health-good" tone="good" />
            <Stat label="health fair (50-79)" value={c.byHealth.fair} testId="health-fair" tone={c.byHealth.fair > 0 ? 'warn' : undefined} />
            <Stat label="health poor (<50)" value={c.byHealth.poor} testId="health-poor" tone={c.byHealth.poor > 0 ? 'bad' : undefined} />
            <Stat label="devices with firing alerts" value={c.byAlertState.firing} testId="alerts-firing-devices" tone={c.byAlertState.firing > 0 ? 'bad' : undefined} />
            <Stat label="devices with acknowledged alerts" value={c.byAlertState.acknowledged} testId="alerts-acknowledged-devices" />
          </div>
          <div className="cols">
            <div>
              <h3>Firmware versions</h3>
              <CountTable rows={c.byFirmware} of={counted} param="firmware" testId="firmware-counts" />
              <h3>Models</h3>
              <CountTable rows={c.byModel} of={counted} param="model" testId="model-counts" />
            </div>
            <div>
              <h3>Devices with problems</h3>
              <ProblemList offline={f.offlineTooLong} skew={skew.data ?? []} drift={drift.data ?? []} dlq={dlqByDevice} restarts={restarts.data ?? []} />
              <ErrorBox error={skew.error ?? drift.error ?? dlq.error} />
            </div>
          </div>
        </>
      ) : fleet.loading ? (
        <p className="muted">Loading…</p>
      ) : null}
      {can(session, 'alerts:read') ? <OverviewAlerts /> : null}
      <div className="cols">
        {rates.writerLag !== undefined && (
          <p className="muted" data-testid="writer-lag">
            Store writer backlog: {rates.writerLag < 0 ? 'unknown (NATS does not answer)' : `${rates.writerLag} readings acknowledged, not yet stored`}
          </p>
        )}
        <TimeChart title="Ingest (messages/s)" series={[{ label: 'messages/s', stroke: '#2a7ae2' }]} data={[rates.data[0], rates.data[1] ?? []]} testId="ingest-chart" />
        <TimeChart title="Dead letters (/s)" series={[{ label: 'dead letters/s', stroke: '#d9480f' }]} data={[rates.data[0], rates.data[2] ?? []]} testId="dlq-chart" />
      </div>
      <ErrorBox error={rates.error} />
    </section>
  );
}

/** Devices per value (most first), each a link to the device list filtered by it; decommissioned devices are not counted. */
function CountTable({ rows, of, param, testId }: { rows: readonly ValueCount[]; of: number; param: string; testId: string }) {
  return (
    <table data-testid={testId}>
      <tbody>
        {rows.slice(0, 12).map(({ value, count }) => (
          <tr key={value ?? ''}>
            <td>{value === null ? <span className="muted">unknown</span> : <a href={`${href('devices')}?${param}=${encodeURIComponent(value)}`}>{value}</a>}</td>
            <td className="num">{count}</td>
            <td>
              <div className="bar" data-w={Math.round((count / Math.max(1, of)) * 100)}>
                <progress max={of} value={count} />
              </div>
            </td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

function ProblemList({ offline, skew, drift, dlq, restarts }: { offline: readonly Device[]; skew: readonly { deviceId: string; skewMs: number }[]; drift: readonly Twin[]; dlq: Map<string, number>; restarts: string[] }) {
  const rows: { id: string; what: string }[] = [
    ...offline.slice(0, 20).map((d) => ({ id: d.id, what: `offline since ${ago(d.connectivity.lastSeenAt)}` })),
    ...skew.slice(0, 20).map((s) => ({ id: s.deviceId, what: `clock off by ${(s.skewMs / 1000).toFixed(1)} s` })),
    ...drift.slice(0, 20).map((t) => ({ id: t.deviceId, what: `configuration drift (desired v${t.desired?.version ?? '?'}, reported v${t.reported?.version ?? '—'})` })),
    ...restarts.map((id) => ({ id, what: 'restart loop (health reports)' })),
    ...[...dlq]
      .sort((a, b) => b[1] - a[1])
      .slice(0, 20)
      .map(([id, n]) => ({ id, what: `${n} dead letters in the last hour` })),
  ];
  if (rows.length === 0)
    return (
      <p className="muted" data-testid="no-problems">
        None: no device is offline for over an hour, skewed, drifting, restarting in a loop or dead-lettering.
      </p>
    );
  return (
    <ul className="problems" data-testid="problems">
      {rows.map((r, i) => (
        <li key={`${r.id}-${i}`}>
          <a href={href('devices', r.id)}>{r.id}</a> — {r.what}
        </li>
      ))}
    </ul>
  );
}
