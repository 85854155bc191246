import { type Session, api, q } from '../api';
import { href } from '../router';
import { ErrorBox, useLoad } from '../ui';
import { AlertTable, useAlertMeta } from './alert-table';

const HISTORY = 10;
const OPEN_MAX = 100;
const REFRESH_MS = 5000;

/** One device's alerts: the open ones first, then its most recent resolved ones, with the same actions as the alerts page. */
export function DeviceAlerts({ deviceId, session }: { deviceId: string; session: Session }) {
  const list = useLoad(
    async (signal) => {
      const [open, past] = await Promise.all([api('GET', '/api/v1/alerts', { query: { deviceId, state: 'open', limit: OPEN_MAX }, signal }), api('GET', '/api/v1/alerts', { query: { deviceId, state: 'resolved', limit: HISTORY }, signal })]);
      return { open, past };
    },
    [deviceId],
  );
  const { rules, silences, changed } = useAlertMeta(list.reload, REFRESH_MS);
  const d = list.data;
  const rows = d ? [...d.open, ...d.past] : [];
  return (
    <>
      <ErrorBox error={list.error} />
      {d && rows.length === 0 ? (
        <p className="muted" data-testid="device-no-alerts">
          No alert has fired for this device.
        </p>
      ) : null}
      {d && d.open.length === 0 && rows.length > 0 ? <p className="muted">No open alert; the most recent resolved ones:</p> : null}
      {rows.length > 0 ? <AlertTable alerts={rows} rules={rules.data} silences={silences.data ?? []} session={session} onChange={changed} testId="device-alerts" showDevice={false} /> : null}
      {d ? (
        <p>
          <a href={`${href('alerts')}${q({ state: 'all', device: deviceId })}`}>every alert of {deviceId} →</a>
        </p>
      ) : null}
    </>
  );
}
