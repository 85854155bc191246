import { useEffect } from 'react';
import { type Session, api, can } from '../api';
import type { Get, Row } from '../api-paths';
import { ActionButton, Empty, ErrorBox, ago, useLoad } from '../ui';

type Webhook = Row<Get<'/api/v1/webhooks'>>;

const filterText = (f: Webhook['filter']) =>
  [f.schemaIds.length ? `schemas ${f.schemaIds.join(', ')}` : '', f.deviceIds.length ? `devices ${f.deviceIds.join(', ')}` : '', f.tags.length ? `tags ${f.tags.join(', ')}` : ''].filter(Boolean).join(' · ') || 'every reading';

/** Webhook subscriptions: state, lag, last error; pause and resume for those who hold webhooks:write. */
export function Webhooks({ session }: { session: Session }) {
  const list = useLoad(() => api('GET', '/api/v1/webhooks'), []);
  const { reload } = list;
  useEffect(() => {
    const timer = setInterval(reload, 5000);
    return () => clearInterval(timer);
  }, [reload]);
  const writer = can(session, 'webhooks:write');
  const act = (w: Webhook, verb: 'pause' | 'resume') => async () => {
    if (verb === 'pause') await api('POST', '/api/v1/webhooks/{id}/pause', { params: { id: w.id }, body: { reason: `paused from the dashboard by ${session.principal.name}` } });
    else await api('POST', '/api/v1/webhooks/{id}/resume', { params: { id: w.id }, body: {} });
    reload();
  };
  return (
    <section>
      <h2>Webhooks</h2>
      <ErrorBox error={list.error} />
      {list.data && list.data.length === 0 ? (
        <Empty title="No webhooks yet">
          <p>
            Subscribe a receiver with <code>npx bulwark webhooks create --name NAME --url https://…</code>; the integrations guide shows how a receiver checks the signature.
          </p>
        </Empty>
      ) : null}
      {list.data && list.data.length > 0 ? (
        <table className="list" data-testid="webhooks-table">
          <thead>
            <tr>
              <th>webhook</th>
              <th>filter</th>
              <th>state</th>
              <th>lag</th>
              <th>delivered</th>
              <th>last success</th>
              <th>last error</th>
              {writer ? <th /> : null}
            </tr>
          </thead>
          <tbody>
            {list.data.map((w) => (
              <tr key={w.id} data-testid={`webhook-${w.id}`}>
                <td>
                  <strong>{w.name}</strong>
                  <div className="muted">{w.url}</div>
                </td>
                <td>{filterText(w.filter)}</td>
                <td>
                  <span className={`pill ${w.state}`} data-testid="webhook-state">
                    {w.state}
                  </span>
                  {w.pausedReason ? <div className="muted">{w.pausedReason}</div> : null}
                </td>
                <td data-testid="webhook-lag">
                  {w.lag ?? '—'}
                  {w.pending && w.pending.attempts > 0 ? <div className="muted">retrying ({w.pending.attempts} failed)</div> : null}
                </td>
                <td>{w.delivered}</td>
                <td>{ago(w.lastSuccessAt)}</td>
                <td className="muted">{w.lastError ?? '—'}</td>
                {writer ? (
                  <td>
                    {w.state === 'active' ? <ActionButton label="Pause" testId="webhook-pause" confirm={`Stop delivering to ${w.url} until resumed?`} run={act(w, 'pause')} /> : <ActionButton label="Resume" testId="webhook-resume" run={act(w, 'resume')} />}
                  </td>
                ) : null}
              </tr>
            ))}
          </tbody>
        </table>
      ) : null}
    </section>
  );
}
