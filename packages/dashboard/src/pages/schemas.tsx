import { api } from '../api';
import { Empty, ErrorBox, fmtTime, useLoad } from '../ui';

interface Prop {
  type?: string;
  'x-unit'?: string;
  minimum?: number;
  maximum?: number;
  'x-sensitive'?: string;
}

export function Schemas() {
  const list = useLoad(() => api('GET', '/api/v1/schemas'), []);
  return (
    <section>
      <h2>Telemetry schemas</h2>
      <ErrorBox error={list.error} />
      {list.data && list.data.length === 0 ? (
        <Empty title="No schemas yet">
          <p>
            Devices' telemetry is validated against a registered schema. Register one with <code>POST /api/v1/schemas</code>: a JSON Schema whose <code>$id</code> is <code>name@version</code>, with <code>x-unit</code> on every numeric field.
          </p>
        </Empty>
      ) : null}
      {(list.data ?? []).map((s) => {
        const props = (s.document.properties ?? {}) as Record<string, Prop>;
        const required = new Set((s.document.required ?? []) as string[]);
        return (
          <div className="card" key={`${s.name}@${s.version}`} data-testid={`schema-${s.name}@${s.version}`}>
            <h3>
              {s.name}@{s.version}{' '}
              <span className="muted">
                registered {fmtTime(s.createdAt)} by {s.createdBy}
              </span>
            </h3>
            <table className="list">
              <thead>
                <tr>
                  <th>field</th>
                  <th>type</th>
                  <th>unit</th>
                  <th>range</th>
                  <th>required</th>
                  <th>sensitive</th>
                </tr>
              </thead>
              <tbody>
                {Object.entries(props).map(([k, p]) => (
                  <tr key={k}>
                    <td>{k}</td>
                    <td>{p.type ?? '—'}</td>
                    <td>{p['x-unit'] ?? ''}</td>
                    <td>{p.minimum !== undefined || p.maximum !== undefined ? `${p.minimum ?? '−∞'} … ${p.maximum ?? '∞'}` : ''}</td>
                    <td>{required.has(k) ? 'yes' : ''}</td>
                    <td>{p['x-sensitive'] ?? ''}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        );
      })}
    </section>
  );
}
