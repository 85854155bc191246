import { api } from '../api';
import { ErrorBox, fmtTime, useLoad } from '../ui';

const PILL = { pass: 'online', warn: 'warning', fail: 'bad' } as const;
/** Failing first, then warnings: what needs doing at the top. */
const RANK = { fail: 0, warn: 1, pass: 2 } as const;

/** The security checklist (what `bulwark audit` prints), evaluated when the page opens. */
export function Security() {
  const report = useLoad(() => api('GET', '/api/v1/security/checklist'), []);
  const r = report.data;
  const checks = r ? [...r.checks].sort((a, b) => RANK[a.status] - RANK[b.status]) : [];
  return (
    <section>
      <h2>Security checklist</h2>
      <p className="muted">
        Each check looks at this deployment now, says what it found and what to do, and names the ETSI EN 303 645 provision it serves. The same report: <code>bulwark audit</code>.
      </p>
      <ErrorBox error={report.error} />
      {r ? (
        <p data-testid="checklist-summary" className={r.summary.fail > 0 ? 'error' : 'ok'}>
          {r.summary.pass} pass, {r.summary.warn} warn, {r.summary.fail} fail (at {fmtTime(r.at)}){' '}
          <button type="button" onClick={report.reload}>
            Check again
          </button>
        </p>
      ) : null}
      {checks.length > 0 ? (
        <table className="list" data-testid="checklist">
          <thead>
            <tr>
              <th>result</th>
              <th>check</th>
              <th>ETSI EN 303 645</th>
              <th>evidence</th>
              <th>what to do</th>
            </tr>
          </thead>
          <tbody>
            {checks.map((c) => (
              <tr key={c.id} data-testid={`check-${c.id}`} data-status={c.status}>
                <td>
                  <span className={`pill ${PILL[c.status]}`}>{c.status}</span>
                </td>
                <td>
                  {c.title}
                  <div className="muted mono">{c.id}</div>
                </td>
                <td>{c.etsi.join(', ')}</td>
                <td>
                  <ul className="evidence">
                    {c.evidence.map((e, i) => (
                      <li key={i}>{e}</li>
                    ))}
                  </ul>
                </td>
                <td>{c.remediation}</td>
              </tr>
            ))}
          </tbody>
        </table>
      ) : null}
    </section>
  );
}
