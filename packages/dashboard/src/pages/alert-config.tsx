import { type Session, api, can } from '../api';
import { conditionText, scopeText } from '../alert-text';
import { href } from '../router';
import type { AlertRule, Silence } from '../types';
import { ActionButton, ago, fmtTime } from '../ui';
import { ruleName } from './alert-table';

/** Silences in force, with an End button for a holder of alerts:write. */
export function SilenceList({ silences, rules, session, onChange }: { silences: readonly Silence[]; rules: readonly AlertRule[] | undefined; session: Session; onChange: () => void }) {
  const writer = can(session, 'alerts:write');
  if (silences.length === 0)
    return (
      <p className="muted" data-testid="no-silences">
        No silence is in force: every alert is notified.
      </p>
    );
  return (
    <table className="list" data-testid="silences">
      <thead>
        <tr>
          <th>rule</th>
          <th>device</th>
          <th>reason</th>
          <th>by</th>
          <th>until</th>
          {writer ? <th /> : null}
        </tr>
      </thead>
      <tbody>
        {silences.map((s) => (
          <tr key={s.id} data-testid={`silence-${s.id}`}>
            <td>{s.ruleId ? ruleName(rules, s.ruleId) : <span className="muted">every rule</span>}</td>
            <td>{s.deviceId ? <a href={href('devices', s.deviceId)}>{s.deviceId}</a> : <span className="muted">every device</span>}</td>
            <td>{s.reason}</td>
            <td className="mono">
              {s.createdBy}
              <div className="muted">{ago(s.createdAt)}</div>
            </td>
            <td>{fmtTime(s.expiresAt)}</td>
            {writer ? (
              <td>
                <ActionButton
                  label="End"
                  testId="silence-end"
                  confirm="End this silence now? The next alerts it covers are notified again."
                  run={async () => {
                    await api('DELETE', '/api/v1/alerts/silences/{id}', { params: { id: s.id } });
                    onChange();
                  }}
                />
              </td>
            ) : null}
          </tr>
        ))}
      </tbody>
    </table>
  );
}

/** Every rule, read-only: they are created and changed with `bulwark alerts rules` or the API. */
export function RuleList({ rules }: { rules: readonly AlertRule[] }) {
  return (
    <table className="list" data-testid="alert-rules">
      <thead>
        <tr>
          <th>rule</th>
          <th>condition</th>
          <th>scope</th>
          <th>severity</th>
          <th>enabled</th>
        </tr>
      </thead>
      <tbody>
        {rules.map((r) => (
          <tr key={r.id} data-testid={`rule-${r.id}`}>
            <td>
              <strong>{r.name}</strong>
              {r.builtIn ? <span className="muted"> (built in)</span> : null}
              <div className="muted mono">{r.id}</div>
            </td>
            <td className="mono" data-testid="rule-condition">
              {conditionText(r.condition)}
            </td>
            <td>{scopeText(r.scope)}</td>
            <td>
              <span className={`pill ${r.severity}`}>{r.severity}</span>
            </td>
            <td>{r.enabled ? 'yes' : <span className="pill offline">disabled</span>}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}
