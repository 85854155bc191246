import { useState } from 'react';
import { api, q } from '../api';
import type { Query, ResponseBody } from '../api-paths';
import { go } from '../router';
import { ActionButton, Empty, ErrorBox, fmtTime, useLoad } from '../ui';

type Report = ResponseBody<'POST', '/api/v1/audit/verify'>;
type Result = NonNullable<Query<'GET', '/api/v1/audit'>['result']>;
const RESULTS: readonly Result[] = ['ok', 'denied', 'error', 'revoked'];

export function Audit({ params }: { params: URLSearchParams }) {
  const actor = params.get('actor') ?? '';
  const action = params.get('action') ?? '';
  const result = params.get('result') ?? '';
  const [before, setBefore] = useState<number[]>([]);
  const cursor = before[before.length - 1];
  const list = useLoad(() => api('GET', '/api/v1/audit', { query: { actor: actor || undefined, action: action || undefined, result: RESULTS.find((r) => r === result), before: cursor, limit: 50 } }), [actor, action, result, cursor]);
  const [report, setReport] = useState<Report | undefined>();
  const filter = (next: Record<string, string>) => {
    setBefore([]);
    go(`/audit${q({ actor, action, result, ...next })}`);
  };
  const rows = list.data ?? [];
  return (
    <section>
      <h2>Audit log</h2>
      <div className="filters">
        <input
          aria-label="actor"
          placeholder="actor id"
          defaultValue={actor}
          onKeyDown={(e) => {
            if (e.key === 'Enter') filter({ actor: e.currentTarget.value });
          }}
        />
        <input
          aria-label="action"
          placeholder="action, e.g. device.revoke"
          defaultValue={action}
          onKeyDown={(e) => {
            if (e.key === 'Enter') filter({ action: e.currentTarget.value });
          }}
        />
        <select aria-label="result" value={result} onChange={(e) => filter({ result: e.target.value })}>
          <option value="">any result</option>
          <option value="ok">ok</option>
          <option value="denied">denied</option>
          <option value="error">error</option>
        </select>
        <ActionButton label="Verify chain" testId="verify" run={async () => setReport(await api('POST', '/api/v1/audit/verify'))} />
      </div>
      {report ? (
        <p className={report.ok ? 'ok' : 'error'} data-testid="verify-result">
          {report.message} ({report.entriesChecked} entries checked, head seq {report.headSeq})
        </p>
      ) : null}
      <ErrorBox error={list.error} />
      {list.data && rows.length === 0 ? <Empty title="No entries match." /> : null}
      {rows.length > 0 ? (
        <table className="list" data-testid="audit-table">
          <thead>
            <tr>
              <th>seq</th>
              <th>time</th>
              <th>actor</th>
              <th>action</th>
              <th>target</th>
              <th>result</th>
            </tr>
          </thead>
          <tbody>
            {rows.map((e) => (
              <tr key={e.seq}>
                <td>{e.seq}</td>
                <td>{fmtTime(e.ts)}</td>
                <td className="mono">{e.actor}</td>
                <td>{e.action}</td>
                <td>{e.target ?? ''}</td>
                <td>
                  <span className={`pill ${e.result === 'ok' ? 'online' : 'bad'}`}>{e.result}</span>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      ) : null}
      <div className="pager">
        <button type="button" disabled={before.length === 0} onClick={() => setBefore((b) => b.slice(0, -1))}>
          ← newer
        </button>
        <button type="button" disabled={rows.length < 50} onClick={() => setBefore((b) => [...b, rows[rows.length - 1]?.seq ?? 0])}>
          older →
        </button>
      </div>
    </section>
  );
}
