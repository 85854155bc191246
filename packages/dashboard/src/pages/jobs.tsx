import { useEffect, useState } from 'react';
import { type Session, api, can, q } from '../api';
import { JOB_REFRESH_MS, groupHref, operationLabel } from '../job-text';
import { go, href } from '../router';
import { JOB_STATES, type Job } from '../types';
import { Empty, ErrorBox, fmtTime, useLoad } from '../ui';
import { JobBar } from './job-bar';
import { NewJob } from './job-form';
import { JobPage } from './job-page';

const PAGE = 50;

export function Jobs({ id, params, session }: { id: string | undefined; params: URLSearchParams; session: Session }) {
  return id ? <JobPage id={id} params={params} session={session} /> : <JobList state={params.get('state') ?? ''} session={session} />;
}

/** Jobs newest first, one page at a time (keyset paging on the id), filtered by state in the URL. */
function JobList({ state, session }: { state: string; session: Session }) {
  // Page cursors belong to one filter: a new filter starts again at the first page.
  const [paging, setPaging] = useState<{ key: string; cursors: (string | undefined)[] }>({ key: state, cursors: [undefined] });
  const cursors = paging.key === state ? paging.cursors : [undefined];
  const before = cursors[cursors.length - 1];
  const list = useLoad(
    async (signal) => {
      const rows = (await api('GET', '/api/v1/jobs', { query: { state: state || undefined, before, limit: PAGE + 1 }, signal })) as readonly Job[];
      return { rows: rows.slice(0, PAGE), more: rows.length > PAGE };
    },
    [state, before],
  );
  const { reload } = list;
  const rows = list.data?.rows ?? [];
  const unsettled = rows.some((j) => j.settledAt === null);
  useEffect(() => {
    if (!unsettled) return undefined;
    const timer = setInterval(reload, JOB_REFRESH_MS);
    return () => clearInterval(timer);
  }, [reload, unsettled]);
  const [creating, setCreating] = useState(false);
  const write = can(session, 'jobs:write');

  return (
    <section>
      <h2>Jobs</h2>
      <div className="filters">
        <select aria-label="state" value={state} data-testid="job-state-filter" onChange={(e) => go(`/jobs${q({ state: e.target.value })}`)}>
          {['', ...JOB_STATES].map((s) => (
            <option key={s} value={s}>
              {s || 'any state'}
            </option>
          ))}
        </select>
        {write && !creating ? (
          <button type="button" data-testid="new-job" onClick={() => setCreating(true)}>
            New job
          </button>
        ) : null}
      </div>
      {creating ? <NewJob onCreated={(job) => go(href('jobs', job.id))} onClose={() => setCreating(false)} /> : null}
      <ErrorBox error={list.error} />
      {list.data && rows.length === 0 && !creating ? (
        <Empty title={state ? `No ${state} jobs.` : 'No jobs yet'}>
          <p>
            A job applies one operation (a twin patch, a command, certificate renewal, suspend, resume or decommission) to every device of a group, at a pace you choose. Make a group with <code>npx bulwark groups create</code>, then start a job with{' '}
            <strong>New job</strong> or <code>POST /api/v1/jobs</code>.
          </p>
        </Empty>
      ) : null}
      {rows.length > 0 ? (
        <table className="list" data-testid="jobs-table">
          <thead>
            <tr>
              <th>job</th>
              <th>operation</th>
              <th>group</th>
              <th>state</th>
              <th>progress</th>
              <th>created</th>
            </tr>
          </thead>
          <tbody>
            {rows.map((j) => (
              <tr key={j.id} data-testid={`job-${j.id}`}>
                <td>
                  <a href={href('jobs', j.id)}>{j.name}</a>
                  <div className="muted mono">{j.id}</div>
                </td>
                <td>{operationLabel(j.operation)}</td>
                <td>
                  <a href={groupHref(j.group)}>{j.group}</a>
                </td>
                <td>
                  <span className={`pill ${j.state}`} data-testid="job-state">
                    {j.state}
                  </span>
                  {j.reason ? <div className="muted">{j.reason}</div> : null}
                </td>
                <td>
                  <JobBar job={j} />
                </td>
                <td>
                  {fmtTime(j.createdAt)}
                  <div className="muted">{j.createdBy}</div>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      ) : null}
      <div className="pager">
        <button type="button" disabled={cursors.length < 2} onClick={() => setPaging({ key: state, cursors: cursors.slice(0, -1) })}>
          ← newer
        </button>
        <span className="muted">page {cursors.length}</span>
        <button type="button" disabled={!list.data?.more} onClick={() => setPaging({ key: state, cursors: [...cursors, rows[rows.length - 1]?.id] })}>
          older →
        </button>
      </div>
    </section>
  );
}
