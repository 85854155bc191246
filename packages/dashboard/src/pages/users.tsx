import { useState } from 'react';
import { type Session, api, can } from '../api';
import { ActionButton, ErrorBox, fmtTime, useLoad } from '../ui';

interface Principal {
  id: string; kind: 'user' | 'service'; name: string; role: string | null; scopes: string[]; deviceGroups: string[] | null; createdAt: number; disabledAt: number | null;
}

/** Users and service accounts, with the device groups each is limited to; an admin sets or lifts the limit. */
export function Users({ session }: { session: Session }) {
  const users = useLoad(() => api<Principal[]>('GET', '/api/v1/users'), []);
  const write = can(session, 'users:write');
  return (
    <section>
      <h2>Users and service accounts</h2>
      <ErrorBox error={users.error} />
      {users.data ? (
        <table className="list" data-testid="users">
          <thead><tr><th>name</th><th>kind</th><th>role or scopes</th><th>device groups</th><th>created</th><th>state</th></tr></thead>
          <tbody>{users.data.map((u) => (
            <tr key={u.id} data-testid={`user-${u.id}`}>
              <td>{u.name} <span className="muted mono">{u.id}</span></td>
              <td>{u.kind}</td>
              <td>{u.role ?? u.scopes.join(', ')}</td>
              <td><DeviceGroups user={u} write={write} onChanged={users.reload} /></td>
              <td>{fmtTime(u.createdAt)}</td>
              <td>{u.disabledAt ? `disabled ${fmtTime(u.disabledAt)}` : 'active'}</td>
            </tr>
          ))}</tbody>
        </table>
      ) : null}
    </section>
  );
}

function DeviceGroups({ user, write, onChanged }: { user: Principal; write: boolean; onChanged: () => void }) {
  const [text, setText] = useState((user.deviceGroups ?? []).join(', '));
  const shown = user.deviceGroups === null ? <span className="muted" data-testid="groups">whole fleet</span> : <span data-testid="groups">{user.deviceGroups.join(', ')}</span>;
  if (!write) return shown;
  const set = (deviceGroups: string[] | null) => async () => {
    await api('PUT', `/api/v1/users/${encodeURIComponent(user.id)}/device-groups`, { deviceGroups });
    onChanged();
  };
  const groups = text.split(',').map((g) => g.trim()).filter(Boolean);
  return (
    <>
      {shown}{' '}
      <input value={text} onChange={(e) => setText(e.target.value)} placeholder="group ids, comma-separated" data-testid="groups-input" />{' '}
      <ActionButton label="Limit" testId="groups-set" confirm={`Limit ${user.name} to the devices of ${groups.join(', ') || '(no group)'}? Its tokens follow at once.`} run={set(groups)} />
      {user.deviceGroups !== null ? <ActionButton label="Whole fleet" testId="groups-clear" confirm={`Give ${user.name} the whole fleet again?`} run={set(null)} /> : null}
    </>
  );
}
