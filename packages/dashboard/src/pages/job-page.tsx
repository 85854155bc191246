import { useEffect, useState } from 'react';
import { ApiError, type Session, api, can, q } from '../api';
import { DEVICE_STATE_LABELS, JOB_ACTIONS, JOB_REFRESH_MS, type JobAction, duration, groupHref, operationText, pacingText } from '../job-text';
import { go, href } from '../router';
import type { Job, JobDevice, JobDeviceState } from '../types';
import { ErrorBox, ReasonAction, Stat, fmtTime, useLoad } from '../ui';
import { JobBar } from './job-bar';

const PAGE = 50;
const COUNTED: readonly JobDeviceState[] = ['queued', 'in_progress', 'succeeded', 'failed', 'timed_out', 'cancelled'];
/** Which devices the table lists (`devices=` in the URL); failures first, since those need a look. */
const DEVICE_FILTERS = [
  ['failed,timed_out', 'failed or timed out'],
  ['in_progress', 'in progress'],
  ['queued', 'queued'],
  ['succeeded', 'succeeded'],
  ['cancelled', 'cancelled'],
  ['', 'all'],
] as const;

const CONSEQUENCE: Readonly<Record<JobAction, string>> = {
  pause: 'No device is dispatched until it resumes; dispatched ones still answer or time out.',
  resume: "Dispatching goes on at the job's pace.",
  cancel: 'For good: no device is dispatched after this, queued ones end as cancelled; dispatched ones still answer or time out.',
};

/** Pause, resume or cancel, after a confirmation with an optional reason (kept in the history and the audit log). */
function Control({ id, action, onDone }: { id: string; action: JobAction; onDone: () => void }) {
  const label = `${action[0]?.toUpperCase()}${action.slice(1)}`;
  return (
    <ReasonAction
      label={label}
      submitLabel={`${label} job`}
      consequence={CONSEQUENCE[action]}
      required={false}
      placeholder="why? (optional, recorded)"
      danger={action === 'cancel'}
      cancelLabel="Back"
      testIds={{ open: `job-${action}`, confirm: `job-${action}-confirm`, reason: 'job-reason' }}
      run={async (reason) => {
        await api('POST', `/api/v1/jobs/{id}/${action}`, { params: { id }, body: reason ? { reason } : {} });
        onDone();
      }}
    />
  );
}

/** The job's devices in one state (failed or timed out by default), 50 a page, keyset paging on the device id. */
function JobDevices({ id, filter, version }: { id: string; filter: string; version: string }) {
  const [paging, setPaging] = useState<{ key: string; cursors: (string | undefined)[] }>({ key: filter, cursors: [undefined] });
  const cursors = paging.key === filter ? paging.cursors : [undefined];
  const after = cursors[cursors.length - 1];
  // `version` changes with the job's counts: the page is read again when devices end.
  const devices = useLoad(
    async (signal) => {
      const rows = (await api('GET', '/api/v1/jobs/{id}/devices', { params: { id }, query: { state: filter || undefined, after, limit: PAGE + 1 }, signal })) as readonly JobDevice[];
      return { rows: rows.slice(0, PAGE), more: rows.length > PAGE };
    },
    [id, filter, after, version],
  );
  const rows = devices.data?.rows ?? [];
  const shown = DEVICE_FILTERS.find(([f]) => f === filter)?.[1] ?? filter;
  return (
    <>
      <div className="filters">
        <select aria-label="devices" value={filter} data-testid="job-device-filter" onChange={(e) => go(`${href('jobs', id)}${q({ devices: e.target.value || 'all' })}`)}>
          {DEVICE_FILTERS.map(([f, label]) => (
            <option key={f} value={f}>
              {label}
            </option>
          ))}
        </select>
      </div>
      <ErrorBox error={devices.error} />
      {devices.data && rows.length === 0 ? (
        <p className="muted" data-testid="job-devices-none">
          No device {filter ? shown : 'in this job'}
          {cursors.length > 1 ? ' on this page' : ''}.
        </p>
      ) : null}
      {rows.length > 0 ? (
        <table className="list" data-testid="job-devices">
          <thead>
            <tr>
              <th>device</th>
              <th>state</th>
              <th>attempts</th>
              <th>reason</th>
              <th>detail</th>
              <th>dispatched</th>
              <th>finished</th>
            </tr>
          </thead>
          <tbody>
            {rows.map((d) => (
              <tr key={d.deviceId}>
                <td>
                  <a href={href('devices', d.deviceId)}>{d.deviceId}</a>
                </td>
                <td>
                  <span className={`pill ${d.state}`}>{DEVICE_STATE_LABELS[d.state]}</span>
                </td>
                <td>{d.attempts}</td>
                <td className="mono">{d.reason ?? ''}</td>
                <td className="muted">{d.detail ?? ''}</td>
                <td>{fmtTime(d.dispatchedAt)}</td>
                <td>{fmtTime(d.finishedAt)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      ) : null}
      <div className="pager">
        <button type="button" disabled={cursors.length < 2} onClick={() => setPaging({ key: filter, cursors: cursors.slice(0, -1) })}>
          ← previous
        </button>
        <span className="muted">page {cursors.length}</span>
        <button type="button" disabled={!devices.data?.more} data-testid="job-devices-next" onClick={() => setPaging({ key: filter, cursors: [...cursors, rows[rows.length - 1]?.deviceId] })}>
          next →
        </button>
      </div>
    </>
  );
}

/** One job: what it does, to which group, at what pace; its counts, progress, failure reasons, devices and history. */
export function JobPage({ id, params, session }: { id: string; params: URLSearchParams; session: Session }) {
  const job = useLoad((signal) => api('GET', '/api/v1/jobs/{id}', { params: { id }, signal }) as Promise<Job>, [id]);
  const { reload } = job;
  const j = job.data;
  // Until the job is settled (ended and every dispatched device answered or timed out) its numbers move.
  const gone = job.error instanceof ApiError && job.error.status === 404;
  const settled = j !== undefined && j.settledAt !== null;
  useEffect(() => {
    if (settled || gone) return undefined;
    const timer = setInterval(reload, JOB_REFRESH_MS);
    return () => clearInterval(timer);
  }, [reload, settled, gone]);
  const asked = params.get('devices');
  const filter = asked === null ? 'failed,timed_out' : asked === 'all' ? '' : asked;
  const actions = j && can(session, 'jobs:write') ? JOB_ACTIONS[j.state] : [];
  const skipped = j
    ? Object.entries(j.skipped)
        .map(([why, n]) => `${n} ${why}`)
        .join(', ')
    : '';

  return (
    <section>
      <p>
        <a href={href('jobs')}>← jobs</a>
      </p>
      <ErrorBox error={job.error} />
      {j ? (
        <>
          <h2>
            Job {j.name}{' '}
            <span className={`pill ${j.state}`} data-testid="job-state">
              {j.state}
            </span>
          </h2>
          {j.reason ? <p data-testid="job-reason-shown">Reason: {j.reason}</p> : null}
          <table className="kv" data-testid="job-facts">
            <tbody>
              <tr>
                <th>operation</th>
                <td data-testid="job-operation">{operationText(j.operation)}</td>
              </tr>
              <tr>
                <th>group</th>
                <td>
                  <a href={groupHref(j.group)} data-testid="job-group">
                    {j.group}
                  </a>{' '}
                  — {j.deviceCount} device{j.deviceCount === 1 ? '' : 's'} when the job was made{skipped ? ` (left out: ${skipped})` : ''}
                </td>
              </tr>
              <tr>
                <th>pace</th>
                <td data-testid="job-pacing">{pacingText(j.pacing)}</td>
              </tr>
              <tr>
                <th>device timeout</th>
                <td>
                  {duration(j.deviceTimeoutMs)}; {j.maxRetries ? `dispatched again up to ${j.maxRetries} time${j.maxRetries === 1 ? '' : 's'} after a timeout` : 'no retry'}
                </td>
              </tr>
              <tr>
                <th>abort rule</th>
                <td>{j.abort ? `stop when ${j.abort.failedPercent}% of the finished devices failed or timed out, once ${j.abort.minFinished} finished` : 'none'}</td>
              </tr>
              <tr>
                <th>created</th>
                <td>
                  {fmtTime(j.createdAt)} by <span className="mono">{j.createdBy}</span>
                </td>
              </tr>
              <tr>
                <th>settled</th>
                <td>{j.settledAt !== null ? fmtTime(j.settledAt) : j.state === 'running' || j.state === 'paused' ? 'not yet' : `not yet: ${j.counts.in_progress} dispatched device${j.counts.in_progress === 1 ? '' : 's'} still to answer or time out`}</td>
              </tr>
            </tbody>
          </table>
          <p>
            <JobBar job={j} />
          </p>
          <div className="stats" data-testid="job-counts">
            {COUNTED.map((s) => (
              <Stat key={s} label={DEVICE_STATE_LABELS[s]} value={j.counts[s]} testId={`job-count-${s}`} tone={j.counts[s] > 0 ? (s === 'failed' || s === 'timed_out' ? 'bad' : s === 'succeeded' ? 'good' : undefined) : undefined} />
            ))}
          </div>
          {actions.length > 0 ? (
            <div className="actions" data-testid="job-actions">
              {actions.map((a) => (
                <Control key={`${j.state}-${a}`} id={id} action={a} onDone={reload} />
              ))}
            </div>
          ) : null}
          <h3>Why devices did not succeed</h3>
          {j.reasons.length === 0 ? (
            <p className="muted">No device failed, timed out or was cancelled.</p>
          ) : (
            <table className="list" data-testid="job-reasons">
              <thead>
                <tr>
                  <th>state</th>
                  <th>reason</th>
                  <th>devices</th>
                </tr>
              </thead>
              <tbody>
                {j.reasons.map((r) => (
                  <tr key={`${r.state}:${r.reason}`}>
                    <td>{DEVICE_STATE_LABELS[r.state]}</td>
                    <td className="mono">{r.reason}</td>
                    <td className="num">{r.count}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          )}
          <h3>Devices</h3>
          <JobDevices id={id} filter={filter} version={JSON.stringify(j.counts)} />
          <h3>History</h3>
          <table className="list" data-testid="job-history">
            <thead>
              <tr>
                <th>time</th>
                <th>state</th>
                <th>by</th>
                <th>reason</th>
              </tr>
            </thead>
            <tbody>
              {j.history.map((h, i) => (
                <tr key={i}>
                  <td>{fmtTime(h.at)}</td>
                  <td>{h.state}</td>
                  <td className="mono">{h.actor}</td>
                  <td>{h.reason}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </>
      ) : null}
    </section>
  );
}
