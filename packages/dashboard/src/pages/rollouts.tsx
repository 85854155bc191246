import { useEffect } from 'react';
import { type Session, api, can, q } from '../api';
import type { Get, Query } from '../api-paths';
import { go, href } from '../router';
import { Empty, ErrorBox, ReasonAction, fmtTime, useLoad } from '../ui';

type Rollout = Get<'/api/v1/rollouts/{id}'>;
type Progress = Rollout['totals'];
type RolloutState = NonNullable<Query<'GET', '/api/v1/rollouts'>['state']>;

const STATES: readonly ('' | RolloutState)[] = ['', 'running', 'paused', 'aborted', 'completed'];

function Bar({ p }: { p: Progress }) {
  const pct = (n: number) => `${p.total ? Math.round((n / p.total) * 100) : 0}%`;
  return (
    <span className="progress" title={`${p.committed} updated, ${p.failed} failed, ${p.inProgress} updating, ${p.pending} waiting`}>
      <progress max={Math.max(1, p.total)} value={p.committed} /> {p.committed}/{p.total} updated ({pct(p.committed)}){p.failed ? <span className="pill bad"> {p.failed} failed</span> : null}
      {p.inProgress ? ` · ${p.inProgress} updating` : ''}
    </span>
  );
}

const target = (r: Rollout) => (r.target.deviceIds ? `${r.target.deviceIds.length} listed devices` : r.target.tag ? `tag ${r.target.tag}` : r.target.model ? `model ${r.target.model}` : 'fleet');

export function Rollouts({ id, params, session }: { id: string | undefined; params: URLSearchParams; session: Session }) {
  return id ? <RolloutPage id={id} session={session} /> : <RolloutList state={params.get('state') ?? ''} />;
}

function RolloutList({ state }: { state: string }) {
  const list = useLoad(() => api('GET', '/api/v1/rollouts', { query: { state: STATES.find((s): s is RolloutState => s !== '' && s === state), limit: 100 } }), [state]);
  const { reload } = list;
  useEffect(() => {
    const timer = setInterval(reload, 5000);
    return () => clearInterval(timer);
  }, [reload]);
  return (
    <section>
      <h2>Rollouts</h2>
      <div className="filters">
        <select aria-label="state" value={state} onChange={(e) => go(`/rollouts${q({ state: e.target.value })}`)}>
          {STATES.map((s) => (
            <option key={s} value={s}>
              {s || 'any state'}
            </option>
          ))}
        </select>
      </div>
      <ErrorBox error={list.error} />
      {list.data && list.data.length === 0 ? (
        <Empty title={state ? `No ${state} rollouts.` : 'No rollouts yet'}>
          <p>
            Upload signed firmware with <code>npx bulwark firmware upload</code>, then start a staged rollout with <code>npx bulwark rollout create</code> (see the firmware-updates guide).
          </p>
        </Empty>
      ) : null}
      {list.data && list.data.length > 0 ? (
        <table className="list" data-testid="rollouts-table">
          <thead>
            <tr>
              <th>rollout</th>
              <th>firmware</th>
              <th>target</th>
              <th>state</th>
              <th>wave</th>
              <th>progress</th>
              <th>started</th>
            </tr>
          </thead>
          <tbody>
            {list.data.map((r) => (
              <tr key={r.id}>
                <td>
                  <a href={href('rollouts', r.id)}>{r.name}</a>
                </td>
                <td>
                  {r.artifact.name} {r.artifact.version}
                </td>
                <td>{target(r)}</td>
                <td>
                  <span className={`pill ${r.state}`}>{r.state}</span>
                  {r.reason ? <span className="muted"> {r.reason}</span> : null}
                </td>
                <td>
                  {Math.min(r.currentWave + 1, r.waveCount)}/{r.waveCount}
                </td>
                <td>
                  <Bar p={r.totals} />
                </td>
                <td>{fmtTime(r.createdAt)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      ) : null}
    </section>
  );
}

/** Pause, resume or abort, with a reason (required: it goes into the rollout's history and the audit log). */
function Control({ id, action, onDone }: { id: string; action: 'pause' | 'resume' | 'abort'; onDone: () => void }) {
  return (
    <ReasonAction
      label={`${action[0]?.toUpperCase()}${action.slice(1)}`}
      required
      placeholder={`why ${action}? (recorded)`}
      danger={action === 'abort'}
      testIds={{ open: `rollout-${action}`, confirm: `rollout-${action}-confirm`, reason: 'rollout-reason' }}
      run={async (reason) => {
        await api('POST', `/api/v1/rollouts/{id}/${action}`, { params: { id }, body: { reason } });
        onDone();
      }}
    />
  );
}

function RolloutPage({ id, session }: { id: string; session: Session }) {
  const rollout = useLoad(() => api('GET', '/api/v1/rollouts/{id}', { params: { id } }), [id]);
  const devices = useLoad(() => api('GET', '/api/v1/rollouts/{id}/devices', { params: { id }, query: { limit: 200 } }), [id]);
  const { reload } = rollout;
  const reloadDevices = devices.reload;
  useEffect(() => {
    const timer = setInterval(() => {
      reload();
      reloadDevices();
    }, 3000);
    return () => clearInterval(timer);
  }, [reload, reloadDevices]);
  const r = rollout.data;
  const write = can(session, 'rollouts:write');
  const done = () => {
    reload();
    reloadDevices();
  };
  return (
    <section>
      <p>
        <a href={href('rollouts')}>← rollouts</a>
      </p>
      <ErrorBox error={rollout.error} />
      {r ? (
        <>
          <h2>
            Rollout {r.name}{' '}
            <span className={`pill ${r.state}`} data-testid="rollout-state">
              {r.state}
            </span>
          </h2>
          {r.reason ? <p data-testid="rollout-reason-shown">Reason: {r.reason}</p> : null}
          <p>
            {r.artifact.name} {r.artifact.version} to {target(r)}; wave {Math.min(r.currentWave + 1, r.waveCount)} of {r.waveCount}; started {fmtTime(r.createdAt)} by {r.createdBy}
            {r.window ? `; maintenance window ${r.window.startMinute}–${r.window.endMinute} min (UTC)` : ''}; up to {r.maxRetries} retries a device.
          </p>
          <p>
            <Bar p={r.totals} />
          </p>
          {write && (r.state === 'running' || r.state === 'paused') ? (
            <div className="actions" data-testid="rollout-actions">
              {r.state === 'running' ? <Control id={id} action="pause" onDone={done} /> : null}
              {r.state === 'paused' ? <Control id={id} action="resume" onDone={done} /> : null}
              <Control id={id} action="abort" onDone={done} />
            </div>
          ) : null}
          <div className="cols">
            <div>
              <h3>Waves</h3>
              <table className="list" data-testid="rollout-waves">
                <thead>
                  <tr>
                    <th>wave</th>
                    <th>size</th>
                    <th>progress</th>
                  </tr>
                </thead>
                <tbody>
                  {r.waves.map((w) => (
                    <tr key={w.wave} className={w.wave === r.currentWave && r.state !== 'completed' ? 'current' : ''}>
                      <td>{w.wave === 0 && r.strategy.canary?.length ? 'canary' : w.wave + 1}</td>
                      <td>{w.total}</td>
                      <td>
                        <Bar p={w} />
                      </td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </div>
            <div>
              <h3>Gates</h3>
              <table className="kv">
                <tbody>
                  {Object.entries(r.gates).map(([k, v]) => (
                    <tr key={k}>
                      <th>{k}</th>
                      <td>{String(v)}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </div>
          </div>
          <h3>History</h3>
          <table className="list" data-testid="rollout-history">
            <thead>
              <tr>
                <th>time</th>
                <th>wave</th>
                <th>state</th>
                <th>by</th>
                <th>reason</th>
              </tr>
            </thead>
            <tbody>
              {r.history.map((h, i) => (
                <tr key={i}>
                  <td>{fmtTime(h.at)}</td>
                  <td>{h.wave + 1}</td>
                  <td>{h.state}</td>
                  <td className="mono">{h.actor}</td>
                  <td>{h.reason}</td>
                </tr>
              ))}
            </tbody>
          </table>
          <h3>Devices</h3>
          <ErrorBox error={devices.error} />
          {devices.data ? (
            <table className="list" data-testid="rollout-devices">
              <thead>
                <tr>
                  <th>device</th>
                  <th>wave</th>
                  <th>state</th>
                  <th>from</th>
                  <th>attempts</th>
                  <th>reason</th>
                  <th>updated</th>
                </tr>
              </thead>
              <tbody>
                {devices.data.map((d) => (
                  <tr key={d.deviceId}>
                    <td>
                      <a href={href('devices', d.deviceId)}>{d.deviceId}</a>
                    </td>
                    <td>{d.wave + 1}</td>
                    <td>{d.state}</td>
                    <td>{d.fromVersion ?? '—'}</td>
                    <td>{d.attempts}</td>
                    <td>{d.reason ?? ''}</td>
                    <td>{fmtTime(d.updatedAt)}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          ) : null}
          {devices.data && devices.data.length === 200 ? <p className="muted">The first 200 devices are shown.</p> : null}
        </>
      ) : null}
    </section>
  );
}
