import { useState } from 'react';
import { type Session, api, q } from '../api';
import { go, href } from '../router';
import { Empty, ErrorBox, useLoad } from '../ui';
import { RuleList, SilenceList } from './alert-config';
import { AlertTable, useAlertMeta } from './alert-table';

const PAGE = 50;
const REFRESH_MS = 5000;
/** `open` is firing or acknowledged; `all` sends no state (the whole history). */
const TABS = [
  ['open', 'Open'],
  ['firing', 'Firing'],
  ['acknowledged', 'Acknowledged'],
  ['resolved', 'History'],
  ['all', 'All'],
] as const;
type Tab = (typeof TABS)[number][0];

const EMPTY: Record<Tab, string> = {
  open: 'No open alerts.',
  firing: 'No alert is firing.',
  acknowledged: 'No acknowledged alert is open.',
  resolved: 'No resolved alerts yet.',
  all: 'No alert has fired yet.',
};

/**
 * Alerts by state (tabs), device and rule, newest first, one page at a time (keyset paging on
 * the fired time); the silences in force and the rules below. The filters live in the URL.
 */
export function Alerts({ params, session }: { params: URLSearchParams; session: Session }) {
  const asked = params.get('state');
  const tab: Tab = TABS.some(([t]) => t === asked) ? (asked as Tab) : 'open';
  const device = params.get('device') ?? '';
  const rule = params.get('rule') ?? '';
  const key = JSON.stringify([tab, device, rule]);
  // Page cursors belong to one set of filters: new filters start again at the first page.
  const [paging, setPaging] = useState<{ key: string; cursors: (number | undefined)[] }>({ key, cursors: [undefined] });
  const cursors = paging.key === key ? paging.cursors : [undefined];
  const before = cursors[cursors.length - 1];
  const list = useLoad(
    async (signal) => {
      const rows = await api('GET', '/api/v1/alerts', { query: { state: tab === 'all' ? undefined : tab, deviceId: device || undefined, ruleId: rule || undefined, before, limit: PAGE + 1 }, signal });
      return { rows: rows.slice(0, PAGE), more: rows.length > PAGE };
    },
    [key, before],
  );
  const { rules, silences, changed } = useAlertMeta(list.reload, REFRESH_MS);
  const filter = (next: Record<string, string>) => go(`/alerts${q({ state: tab === 'open' ? undefined : tab, device, rule, ...next })}`);
  const rows = list.data?.rows ?? [];
  const filtered = device !== '' || rule !== '';

  return (
    <section>
      <h2>Alerts</h2>
      <nav className="tabs" data-testid="alert-tabs">
        {TABS.map(([t, label]) => (
          <a key={t} href={`${href('alerts')}${q({ state: t === 'open' ? undefined : t, device, rule })}`} className={t === tab ? 'active' : ''} data-testid={`tab-${t}`}>
            {label}
          </a>
        ))}
      </nav>
      <div className="filters" key={key}>
        <input
          aria-label="device"
          placeholder="device id"
          defaultValue={device}
          data-testid="alert-device-filter"
          onKeyDown={(e) => {
            if (e.key === 'Enter') filter({ device: e.currentTarget.value.trim() });
          }}
        />
        <select aria-label="rule" value={rule} data-testid="alert-rule-filter" onChange={(e) => filter({ rule: e.target.value })}>
          <option value="">any rule</option>
          {(rules.data ?? []).map((r) => (
            <option key={r.id} value={r.id}>
              {r.name}
            </option>
          ))}
        </select>
        {filtered ? <a href={`${href('alerts')}${q({ state: tab === 'open' ? undefined : tab })}`}>clear</a> : null}
      </div>
      <ErrorBox error={list.error} />
      {list.data && rows.length === 0 ? (
        <Empty title={filtered ? 'No alert matches these filters.' : EMPTY[tab]}>
          {!filtered && tab !== 'resolved' ? (
            <p>
              Alerts fire from rules: the built-in <code>offline</code> rule is on from the start; add others with <code>npx bulwark alerts rules create</code> (see the alerts guide).
            </p>
          ) : null}
        </Empty>
      ) : null}
      {rows.length > 0 ? <AlertTable alerts={rows} rules={rules.data} silences={silences.data ?? []} session={session} onChange={changed} testId="alerts-table" /> : null}
      <div className="pager">
        <button type="button" disabled={cursors.length < 2} onClick={() => setPaging({ key, cursors: cursors.slice(0, -1) })}>
          ← newer
        </button>
        <span className="muted">page {cursors.length}</span>
        <button type="button" disabled={!list.data?.more} data-testid="alerts-older" onClick={() => setPaging({ key, cursors: [...cursors, rows[rows.length - 1]?.firedAt] })}>
          older →
        </button>
      </div>
      <h3>Silences in force</h3>
      <ErrorBox error={silences.error} />
      {silences.data ? <SilenceList silences={silences.data} rules={rules.data} session={session} onChange={changed} /> : null}
      <h3>Rules</h3>
      <p className="muted">
        Create and change rules with <code>npx bulwark alerts rules</code> or <code>/api/v1/alerts/rules</code>.
      </p>
      <ErrorBox error={rules.error} />
      {rules.data ? <RuleList rules={rules.data} /> : null}
    </section>
  );
}
