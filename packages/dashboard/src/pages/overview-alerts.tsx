import { useCallback } from 'react';
import { api, q } from '../api';
import { subject } from '../alert-text';
import { href } from '../router';
import { ErrorBox, Stat, ago, fmtTime, useLoad } from '../ui';
import { ruleName, useAlertMeta } from './alert-table';

/** Open alerts are counted from one read of this many; more shows as "1000+". */
const OPEN_SCAN = 1000;
const INCIDENTS = 20;
const DEVICES_SHOWN = 5;
const REFRESH_MS = 5000;

/** The fleet page's alerts: how many are open, and the fleet-wide incidents still open, linking to the alerts page. */
export function OverviewAlerts() {
  const open = useLoad((signal) => api('GET', '/api/v1/alerts', { query: { state: 'open', limit: OPEN_SCAN }, signal }), []);
  const incidents = useLoad((signal) => api('GET', '/api/v1/alerts/incidents', { query: { open: true, limit: INCIDENTS }, signal }), []);
  const reloadOpen = open.reload;
  const reloadIncidents = incidents.reload;
  const reload = useCallback(() => {
    reloadOpen();
    reloadIncidents();
  }, [reloadOpen, reloadIncidents]);
  const { rules } = useAlertMeta(reload, REFRESH_MS);

  const alerts = open.data;
  const count = (n: number) => (alerts && alerts.length >= OPEN_SCAN ? `${n}+` : String(n));
  const alertsHref = href('alerts');
  return (
    <div className="overview-alerts" data-testid="overview-alerts">
      <h3>
        Alerts{' '}
        <a href={alertsHref} className="muted">
          (alerts page →)
        </a>
      </h3>
      <ErrorBox error={open.error ?? incidents.error} />
      {alerts ? (
        <div className="stats">
          <Stat label="open alerts" value={<a href={alertsHref}>{count(alerts.length)}</a>} testId="count-open-alerts" tone={alerts.length > 0 ? 'bad' : 'good'} />
          <Stat label="firing" value={<a href={`${alertsHref}?state=firing`}>{count(alerts.filter((a) => a.state === 'firing').length)}</a>} testId="count-firing-alerts" />
          <Stat label="acknowledged" value={<a href={`${alertsHref}?state=acknowledged`}>{count(alerts.filter((a) => a.state === 'acknowledged').length)}</a>} testId="count-acknowledged-alerts" />
          <Stat label="open incidents" value={incidents.data?.length ?? '…'} testId="count-open-incidents" />
        </div>
      ) : null}
      {incidents.data && incidents.data.length > 0 ? (
        <table className="list" data-testid="open-incidents">
          <thead>
            <tr>
              <th>incident</th>
              <th>devices</th>
              <th>alerts</th>
              <th>opened</th>
            </tr>
          </thead>
          <tbody>
            {incidents.data.map((i) => {
              const devices = (alerts ?? []).filter((a) => a.incidentId === i.id).map((a) => a.deviceId);
              return (
                <tr key={i.id} data-testid={`incident-${i.id}`}>
                  <td>
                    <a href={`${alertsHref}${q({ rule: i.ruleId })}`}>{ruleName(rules.data, i.ruleId)}</a>
                  </td>
                  <td data-testid="incident-devices">
                    {devices.slice(0, DEVICES_SHOWN).map((d, n) => (
                      <span key={d}>
                        {n > 0 ? ', ' : ''}
                        <a href={href(...subject(d).path)}>{subject(d).label}</a>
                      </span>
                    ))}
                    {devices.length > DEVICES_SHOWN ? <span className="muted"> and {devices.length - DEVICES_SHOWN} more</span> : null}
                    {devices.length === 0 ? <span className="muted">—</span> : null}
                  </td>
                  <td className="num">{i.alerts}</td>
                  <td>
                    {fmtTime(i.openedAt)} <span className="muted">({ago(i.openedAt)})</span>
                  </td>
                </tr>
              );
            })}
          </tbody>
        </table>
      ) : null}
      {incidents.data && incidents.data.length === 0 ? (
        <p className="muted" data-testid="no-incidents">
          No open incident: no rule is firing on many devices at once.
        </p>
      ) : null}
    </div>
  );
}
