import { type FormEvent, useState } from 'react';
import { api } from '../api';
import type { Query } from '../api-paths';
import { go, href } from '../router';
import { Empty, ErrorBox, ago, useLoad } from '../ui';

const PAGE = 50;
type DeviceState = NonNullable<Query<'GET', '/api/v1/devices'>['state']>;
const STATES: readonly ('' | DeviceState)[] = ['', 'manufactured', 'provisioned', 'active', 'suspended', 'decommissioned'];

/** The smallest id sorting before every id that starts with `prefix` (keyset paging is exclusive). */
function before(prefix: string): string {
  const last = prefix.charCodeAt(prefix.length - 1);
  return last > 0 ? `${prefix.slice(0, -1)}${String.fromCharCode(last - 1)}\uffff` : prefix.slice(0, -1);
}

/**
 * One page of devices at a time (keyset paging on the id), so the first screen costs one
 * request of 50 rows however large the fleet. The filters live in the URL.
 */
export function Devices({ params }: { params: URLSearchParams }) {
  const filters = {
    state: params.get('state') ?? '',
    model: params.get('model') ?? '',
    tag: params.get('tag') ?? '',
    firmware: params.get('firmware') ?? '',
    group: params.get('group') ?? '',
    online: params.get('online') ?? '',
    search: params.get('search') ?? '',
    sort: params.get('sort') ?? '',
  };
  const key = JSON.stringify(filters);
  // Page cursors belong to one set of filters: new filters start again at the first page.
  const [paging, setPaging] = useState<{ key: string; cursors: (string | undefined)[] }>({ key, cursors: [undefined] });
  const cursors = paging.key === key ? paging.cursors : [undefined];
  const setCursors = (f: (c: (string | undefined)[]) => (string | undefined)[]) => setPaging({ key, cursors: f(cursors) });
  const byHealth = filters.sort === 'health';
  // Sorted by health the cursor is `<score>:<id>` of the last row; by id, the id.
  const cursor = cursors[cursors.length - 1];
  const after = byHealth ? cursor?.slice(cursor.indexOf(':') + 1) : (cursor ?? (filters.search ? before(filters.search) : undefined));
  const afterHealth = byHealth && cursor ? Number(cursor.slice(0, cursor.indexOf(':'))) : undefined;
  const list = useLoad(
    async (signal) => {
      const query = {
        state: STATES.find((s): s is DeviceState => s !== '' && s === filters.state),
        model: filters.model || undefined,
        tag: filters.tag || undefined,
        firmware: filters.firmware || undefined,
        group: filters.group || undefined,
        online: filters.online === '' ? undefined : filters.online === 'true',
        sort: byHealth ? ('health' as const) : undefined,
        afterHealth,
        after,
        limit: PAGE + 1,
      };
      const rows = await api('GET', '/api/v1/devices', { query, signal });
      const matching = filters.search ? rows.filter((d) => d.id.startsWith(filters.search)) : rows;
      return { rows: matching.slice(0, PAGE), more: matching.length > PAGE };
    },
    [key, cursor],
  );
  // The groups to filter by (the first 200 by id; a longer list is typed into the URL).
  const groups = useLoad((signal) => api('GET', '/api/v1/groups', { query: { limit: 200 }, signal }), []);
  // The chosen group first, its option kept while the list loads (so the select keeps it chosen).
  const kinds = new Map((groups.data ?? []).map((g) => [g.id, g.kind]));
  const groupOptions = [...new Set([...(filters.group ? [filters.group] : []), ...kinds.keys()])].map((id) => [id, kinds.get(id)] as const);

  const setFilter = (e: FormEvent<HTMLFormElement>) => {
    e.preventDefault();
    const form = new FormData(e.currentTarget);
    const next = new URLSearchParams();
    for (const [k, v] of form) if (typeof v === 'string' && v.trim() !== '') next.set(k, v.trim());
    go(`/devices?${next.toString()}`);
  };
  const rows = list.data?.rows ?? [];
  const filtered = Object.values(filters).some((v) => v !== '');

  return (
    <section>
      <h2>Devices</h2>
      <form className="filters" onSubmit={setFilter} key={key}>
        <input name="search" placeholder="id starts with…" defaultValue={filters.search} aria-label="search by id" />
        <select name="state" defaultValue={filters.state} aria-label="state">
          {STATES.map((s) => (
            <option key={s} value={s}>
              {s || 'any state'}
            </option>
          ))}
        </select>
        <select name="online" defaultValue={filters.online} aria-label="connectivity">
          <option value="">online or not</option>
          <option value="true">online</option>
          <option value="false">offline</option>
        </select>
        <input name="model" placeholder="model" defaultValue={filters.model} aria-label="model" />
        <input name="tag" placeholder="tag" defaultValue={filters.tag} aria-label="tag" />
        <input name="firmware" placeholder="firmware" defaultValue={filters.firmware} aria-label="firmware" />
        <select name="group" defaultValue={filters.group} aria-label="group">
          <option value="">any group</option>
          {groupOptions.map(([id, kind]) => (
            <option key={id} value={id}>
              {kind ? `${id} (${kind})` : id}
            </option>
          ))}
        </select>
        <select name="sort" defaultValue={filters.sort} aria-label="order">
          <option value="">by id</option>
          <option value="health">worst health first</option>
        </select>
        <button type="submit">Filter</button>
        {filtered ? <a href={href('devices')}>clear</a> : null}
      </form>
      <ErrorBox error={list.error} />
      {list.data && rows.length === 0 ? (
        filtered ? (
          <Empty title="No device matches these filters." />
        ) : (
          <Empty title="No devices yet">
            <p>
              Register one with <code>npx bulwark devices create sensor-1</code>, then enroll it with <code>npx bulwark devices enroll sensor-1 --out ./sensor-1</code>.
            </p>
          </Empty>
        )
      ) : null}
      {rows.length > 0 ? (
        <table className="list" data-testid="devices-table">
          <thead>
            <tr>
              <th>id</th>
              <th>state</th>
              <th>online</th>
              <th>last seen</th>
              <th>model</th>
              <th>firmware</th>
              <th>tags</th>
              <th title="100 less a penalty per open alert: critical 40, warning 15, info 5">health</th>
            </tr>
          </thead>
          <tbody>
            {rows.map((d) => (
              <tr key={d.id}>
                <td>
                  <a href={href('devices', d.id)}>{d.id}</a>
                </td>
                <td>
                  <span className={`pill ${d.state}`}>{d.state}</span>
                </td>
                <td>{d.connectivity.online ? <span className="pill online">online</span> : <span className="pill offline">offline</span>}</td>
                <td>{ago(d.connectivity.lastSeenAt)}</td>
                <td>{d.model ?? '—'}</td>
                <td>{d.firmwareVersion ?? '—'}</td>
                <td>{d.tags.join(', ')}</td>
                <td>
                  <span className={`health ${d.healthScore >= 85 ? 'good' : d.healthScore >= 50 ? 'fair' : 'poor'}`} data-testid="health-score">
                    {d.healthScore}
                  </span>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      ) : null}
      <div className="pager">
        <button type="button" disabled={cursors.length < 2} onClick={() => setCursors((c) => c.slice(0, -1))}>
          ← previous
        </button>
        <span className="muted">page {cursors.length}</span>
        <button
          type="button"
          disabled={!list.data?.more}
          data-testid="next-page"
          onClick={() => {
            const last = rows[rows.length - 1];
            setCursors((c) => [...c, last && (byHealth ? `${last.healthScore}:${last.id}` : last.id)]);
          }}
        >
          next →
        </button>
      </div>
    </section>
  );
}
