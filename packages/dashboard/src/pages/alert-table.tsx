import { useEffect, useState } from 'react';
import { type Session, api, can } from '../api';
import { runbookUrl, silenceFor, subject } from '../alert-text';
import { href } from '../router';
import type { Alert, AlertRule, Silence } from '../types';
import { ActionButton, ReasonAction, ago, fmtTime, useLoad } from '../ui';

const DEFAULT_SILENCE = '2h';

/** The rules (for their names) and the silences in force: what every list of alerts shows beside them. */
/**
 * The rules and silences an alert table shows, and `changed`, which reloads the alerts
 * (`reloadAlerts`) and the silences; both are reloaded every REFRESH_MS too.
 */
export function useAlertMeta(reloadAlerts: () => void, refreshMs: number) {
  const rules = useLoad(() => api('GET', '/api/v1/alerts/rules'), []);
  const silences = useLoad(() => api('GET', '/api/v1/alerts/silences'), []);
  const reloadSilences = silences.reload;
  useEffect(() => {
    const timer = setInterval(() => {
      reloadAlerts();
      reloadSilences();
    }, refreshMs);
    return () => clearInterval(timer);
  }, [reloadAlerts, reloadSilences, refreshMs]);
  const changed = () => {
    reloadAlerts();
    reloadSilences();
  };
  return { rules, silences, changed };
}

export const ruleName = (rules: readonly AlertRule[] | undefined, id: string): string => rules?.find((r) => r.id === id)?.name ?? id;

/** Silences the alert's rule on the alert's device, with a reason and a duration (recorded in the audit log). */
function SilenceForm({ alert, ruleLabel, onDone }: { alert: Alert; ruleLabel: string; onDone: () => void }) {
  const [duration, setDuration] = useState(DEFAULT_SILENCE);
  return (
    <ReasonAction
      label="Silence"
      required
      placeholder="why? (recorded)"
      maxLength={500}
      ready={duration.trim() !== ''}
      title={`No notifications for "${ruleLabel}" on ${alert.deviceId} until the silence ends; alerts are still stored and shown.`}
      testIds={{ open: 'alert-silence', confirm: 'silence-confirm', reason: 'silence-reason' }}
      run={async (reason) => {
        const ms = /^\d+$/.test(duration.trim()) ? Number(duration.trim()) : duration.trim();
        await api('POST', '/api/v1/alerts/silences', { body: { ruleId: alert.ruleId, deviceId: alert.deviceId, reason, duration: ms } });
        setDuration(DEFAULT_SILENCE);
        onDone();
      }}
    >
      <input aria-label="duration" data-testid="silence-duration" className="short" placeholder="2h" value={duration} onChange={(e) => setDuration(e.target.value)} />
    </ReasonAction>
  );
}

function StateCell({ alert: a, silence }: { alert: Alert; silence: Silence | undefined }) {
  return (
    <td>
      <span className={`pill ${a.state}`} data-testid="alert-state">
        {a.state}
      </span>
      {a.silenced ? (
        <span className="pill silenced" data-testid="alert-silenced" title="a silence matched when it fired, or it was flapping: not notified">
          {' '}
          silenced
        </span>
      ) : null}
      {a.state !== 'resolved' && silence ? (
        <div className="muted" data-testid="alert-silenced-until">
          silenced until {fmtTime(silence.expiresAt)}
        </div>
      ) : null}
      {a.acknowledgedAt ? (
        <div className="muted">
          acknowledged by {a.acknowledgedBy ?? '?'} {ago(a.acknowledgedAt)}
        </div>
      ) : null}
      {a.resolvedAt ? <div className="muted">resolved {fmtTime(a.resolvedAt)}</div> : null}
    </td>
  );
}

function Runbook({ runbook }: { runbook: string }) {
  const url = runbookUrl(runbook);
  return url ? (
    <a href={url} target="_blank" rel="noreferrer" data-testid="alert-runbook">
      runbook
    </a>
  ) : (
    <code title="set alerts.runbookBaseUrl to an address of your copy of docs/runbooks to make this a link" data-testid="alert-runbook">
      {runbook}
    </code>
  );
}

/**
 * Alerts with their severity, rule, device, summary, fired time, state and runbook; acknowledge,
 * resolve (each confirmed) and silence for a holder of alerts:write.
 */
export function AlertTable({
  alerts,
  rules,
  silences,
  session,
  onChange,
  testId,
  showDevice = true,
}: {
  alerts: readonly Alert[];
  rules: readonly AlertRule[] | undefined;
  silences: readonly Silence[];
  session: Session;
  onChange: () => void;
  testId: string;
  showDevice?: boolean;
}) {
  const writer = can(session, 'alerts:write');
  const act = (a: Alert, verb: 'acknowledge' | 'resolve') => async () => {
    await api('POST', `/api/v1/alerts/{id}/${verb}`, { params: { id: a.id } });
    onChange();
  };
  return (
    <table className="list" data-testid={testId}>
      <thead>
        <tr>
          <th>severity</th>
          <th>alert</th>
          {showDevice ? <th>device</th> : null}
          <th>summary</th>
          <th>fired</th>
          <th>state</th>
          <th>runbook</th>
          {writer ? <th /> : null}
        </tr>
      </thead>
      <tbody>
        {alerts.map((a) => {
          const silence = silenceFor(a, silences);
          const name = ruleName(rules, a.ruleId);
          return (
            <tr key={a.id} data-testid={`alert-${a.id}`} data-state={a.state}>
              <td>
                <span className={`pill ${a.severity}`}>{a.severity}</span>
              </td>
              <td>
                <strong>{name}</strong>
                <div className="muted">{a.type}</div>
              </td>
              {showDevice ? (
                <td>
                  <a href={href(...subject(a.deviceId).path)}>{subject(a.deviceId).label}</a>
                </td>
              ) : null}
              <td>{a.summary}</td>
              <td>
                {fmtTime(a.firedAt)}
                <div className="muted">{ago(a.firedAt)}</div>
              </td>
              <StateCell alert={a} silence={silence} />
              <td>
                <Runbook runbook={a.runbook} />
              </td>
              {writer ? (
                <td>
                  <span className="row-actions">
                    {a.state === 'firing' ? (
                      <ActionButton label="Acknowledge" testId="alert-ack" confirm={`Acknowledge "${name}" on ${a.deviceId}? It tells others you are on it; the alert still resolves by itself when its condition clears.`} run={act(a, 'acknowledge')} />
                    ) : null}
                    {a.state !== 'resolved' ? (
                      <ActionButton label="Resolve" testId="alert-resolve" confirm={`Resolve "${name}" on ${a.deviceId} by hand now? Do this when its condition cannot clear by itself (a retired device, for example).`} run={act(a, 'resolve')} />
                    ) : null}
                    {a.state !== 'resolved' && !silence ? <SilenceForm alert={a} ruleLabel={name} onDone={onChange} /> : null}
                  </span>
                </td>
              ) : null}
            </tr>
          );
        })}
      </tbody>
    </table>
  );
}
