import { useState } from 'react';
import { type Session, api, can } from '../api';
import type { Get, Row } from '../api-paths';
import { ActionButton, ErrorBox, fmtTime, useLoad } from '../ui';

/** A user or service account as GET /api/v1/users lists it. */
type Principal = Row<Get<'/api/v1/users'>>;

/** Group ids as typed: separated by commas or spaces (a group id has neither). */
const parseGroups = (text: string): string[] => [...new Set(text.split(/[\s,]+/).filter(Boolean))];

/**
 * Users and service accounts with their role or scopes and the device groups each is limited
 * to (whole fleet when none); a holder of users:write limits one to groups or lifts the limit.
 */
export function Users({ session }: { session: Session }) {
  const users = useLoad((signal) => api('GET', '/api/v1/users', { signal }), []);
  const write = can(session, 'users:write');
  return (
    <section>
      <h2>Users and service accounts</h2>
      <p className="muted">
        A principal limited to device groups sees only their devices: other device routes answer 404, lists and live streams leave them out, and routes that reach the whole fleet refuse. The limit applies to its tokens at once. Create principals and keys with{' '}
        <code>npx bulwark users</code>.
      </p>
      <ErrorBox error={users.error} />
      {users.data ? (
        <table className="list" data-testid="users">
          <thead>
            <tr>
              <th>name</th>
              <th>kind</th>
              <th>role or scopes</th>
              <th>device groups</th>
              <th>created</th>
              <th>state</th>
            </tr>
          </thead>
          <tbody>
            {users.data.map((u) => (
              <tr key={u.id} data-testid={`user-${u.id}`}>
                <td>
                  {u.name} <span className="muted mono">{u.id}</span>
                </td>
                <td>{u.kind === 'service' ? 'service account' : 'user'}</td>
                <td data-testid="access">
                  {u.role ? (
                    <>
                      role <strong>{u.role}</strong>
                    </>
                  ) : (
                    <span className="mono">{u.scopes.join(', ') || '—'}</span>
                  )}
                </td>
                <td>
                  <DeviceGroups user={u} write={write} self={u.id === session.principal.id} onChanged={users.reload} />
                </td>
                <td>{fmtTime(u.createdAt)}</td>
                <td>{u.disabledAt ? <span className="pill bad">disabled {fmtTime(u.disabledAt)}</span> : <span className="pill active">active</span>}</td>
              </tr>
            ))}
          </tbody>
        </table>
      ) : null}
    </section>
  );
}

/**
 * The groups a principal is limited to, and (users:write) the form that sets or lifts the limit.
 * Not on your own row: a limited principal is refused every route that reaches the whole fleet,
 * this one included, so only another principal could lift it again.
 */
function DeviceGroups({ user, write, self, onChanged }: { user: Principal; write: boolean; self: boolean; onChanged: () => void }) {
  const [text, setText] = useState((user.deviceGroups ?? []).join(', '));
  const shown =
    user.deviceGroups === null ? (
      <span className="muted" data-testid="groups">
        whole fleet
      </span>
    ) : (
      <span className="mono" data-testid="groups">
        {user.deviceGroups.join(', ')}
      </span>
    );
  if (!write) return shown;
  if (self)
    return (
      <>
        {shown} <span className="muted">(you: another admin sets your limit)</span>
      </>
    );
  // The API's body: a list of groups, or null for the whole fleet (an empty list is refused).
  const set = (deviceGroups: string[] | null) => async () => {
    await api('PUT', '/api/v1/users/{id}/device-groups', { params: { id: user.id }, body: { deviceGroups } });
    onChanged();
  };
  const groups = parseGroups(text);
  return (
    <div className="row-actions">
      {shown}
      <input value={text} onChange={(e) => setText(e.target.value)} placeholder="group ids, comma-separated" aria-label={`device groups of ${user.name}`} data-testid="groups-input" />
      <ActionButton label="Limit" testId="groups-set" disabled={groups.length === 0} confirm={`Limit ${user.name} (${user.id}) to the devices of ${groups.join(', ')}? Its tokens follow at once.`} run={set(groups)} />
      {user.deviceGroups !== null ? <ActionButton label="Whole fleet" testId="groups-clear" confirm={`Lift the limit: give ${user.name} (${user.id}) the whole fleet again? Its tokens follow at once.`} run={set(null)} /> : null}
    </div>
  );
}
