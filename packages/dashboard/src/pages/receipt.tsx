import { useEffect, useState } from 'react';
import type { RequestBody, ResponseBody } from '../api-paths';
import { fmtTime } from '../ui';

export type DataPolicy = NonNullable<RequestBody<'POST', '/api/v1/devices/{id}/decommission'>['data']>;

/**
 * The signed receipt an end-of-life operation answers with (`ReceiptSchema` in the server's
 * lifecycle routes); GET /api/v1/system/receipt-key gives the public key that checks it.
 */
export type Receipt = ResponseBody<'POST', '/api/v1/devices/{id}/decommission'>['receipt'];

/** What each count in `data` is, in words. */
const DATA_LABELS: Readonly<Record<string, string>> = {
  telemetry: 'readings',
  rollups: 'rollups (1 min, 1 h)',
  feed: 'webhook feed entries',
  deadLetters: 'dead letters',
  health: 'health reports',
  events: 'events',
  twin: 'twin versions',
  commands: 'commands',
  alerts: 'alerts',
  alertNotifications: 'alert notifications',
  webhookDeadLetterReadings: 'readings in webhook dead letters',
  claimTokens: 'unused claim tokens',
  streamMessages: 'messages in the telemetry streams',
  logs: 'log lines held for live readers',
};
/** What pseudonymise keeps under the pseudonym (the readings); it erases the rest, which describes the device. */
const READINGS = new Set(['telemetry', 'rollups', 'feed', 'webhookDeadLetterReadings']);
const KINDS: Readonly<Record<Receipt['kind'], string>> = { decommission: 'Decommission', erasure: 'Erasure', transfer: 'Transfer' };

const fate = (policy: string, kind: string): string => (policy === 'keep' ? 'kept' : policy === 'pseudonymise' && READINGS.has(kind) ? 'kept under the pseudonym' : 'erased');
const plural = (n: number, one: string, many = `${one}s`) => `${n} ${n === 1 ? one : many}`;

/**
 * A receipt's summary (what was revoked and cancelled, each kind of data erased or kept with its
 * count, when, by whom, the signing key) and a download of the receipt as the platform signed it.
 */
export function ReceiptView({ receipt }: { receipt: Receipt }) {
  const [url, setUrl] = useState<string>();
  useEffect(() => {
    const made = URL.createObjectURL(new Blob([`${JSON.stringify(receipt, null, 2)}\n`], { type: 'application/json' }));
    setUrl(made);
    return () => URL.revokeObjectURL(made);
  }, [receipt]);
  const counts = Object.entries(receipt.data).filter(([, n]) => n > 0);
  return (
    <div className="receipt" data-testid="receipt">
      <p>
        <strong>
          {KINDS[receipt.kind]} of {receipt.deviceId}
        </strong>{' '}
        at <span data-testid="receipt-at">{fmtTime(receipt.at)}</span> by <span className="mono">{receipt.by}</span>, data policy <strong>{receipt.policy}</strong>
        {receipt.pseudonym ? (
          <>
            {' '}
            (readings now under <span className="mono">{receipt.pseudonym}</span>)
          </>
        ) : null}
        .
      </p>
      <ul>
        <li data-testid="receipt-revoked">
          {plural(receipt.revoked.length, 'certificate')} revoked{receipt.revoked.length > 0 ? <span className="muted mono"> ({receipt.revoked.map((s) => `${s.slice(0, 12)}…`).join(', ')})</span> : null}
        </li>
        <li data-testid="receipt-cancelled">
          {plural(receipt.cancelled.jobEntries, 'job entry', 'job entries')} and {plural(receipt.cancelled.commands, 'command')} cancelled
        </li>
        {receipt.transfer ? (
          <li>
            owner {receipt.transfer.from ?? '(none)'} → <span className="mono">{receipt.transfer.to}</span>; the new claim token is usable until {fmtTime(receipt.transfer.claimTokenExpiresAt)}
          </li>
        ) : null}
      </ul>
      <table className="list" data-testid="receipt-counts">
        <thead>
          <tr>
            <th>data</th>
            <th className="num">records</th>
            <th>what happened</th>
          </tr>
        </thead>
        <tbody>
          {counts.length === 0 ? (
            <tr>
              <td colSpan={3} className="muted">
                nothing was held about it
              </td>
            </tr>
          ) : (
            counts.map(([kind, n]) => (
              <tr key={kind}>
                <td>{DATA_LABELS[kind] ?? kind}</td>
                <td className="num" data-testid={`receipt-${kind}`}>
                  {n}
                </td>
                <td>{fate(receipt.policy, kind)}</td>
              </tr>
            ))
          )}
        </tbody>
      </table>
      <p>
        Receipt <span className="mono">{receipt.id}</span>, signed with key{' '}
        <span className="mono" data-testid="receipt-key">
          {receipt.keyId}
        </span>
        .{' '}
        {url ? (
          <a href={url} download={`${receipt.id}.json`} data-testid="receipt-download">
            Download receipt
          </a>
        ) : null}{' '}
        <span className="muted">
          (check it any time with <code>npx bulwark receipts verify {receipt.id}.json</code>)
        </span>
      </p>
    </div>
  );
}
