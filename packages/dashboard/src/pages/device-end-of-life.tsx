import { useState } from 'react';
import { api } from '../api';
import type { Device } from '../types';
import { ActionButton, fmtTime } from '../ui';

type Policy = 'keep' | 'erase' | 'pseudonymise';

/** The signed receipt an end-of-life operation answers with (GET /api/v1/system/receipt-key checks it). */
interface Receipt {
  id: string; kind: string; deviceId: string; at: number; by: string; policy: Policy; revoked: string[];
  cancelled: { jobEntries: number; commands: number }; data: Record<string, number>; pseudonym: string | null;
  transfer: { from: string | null; to: string; claimTokenExpiresAt: number } | null; keyId: string; signature: string;
}

const POLICY_TEXT: Record<Policy, string> = {
  keep: 'keep its data',
  erase: 'erase everything held about it',
  pseudonymise: 'keep its readings under a pseudonym and erase the rest',
};

/**
 * A device's end of life: decommission with a data policy, an erasure request, a transfer to a
 * new owner (resale). Each asks once more with the consequence spelled out, and shows the
 * platform's signed receipt (what was revoked, cancelled, erased or kept) with a download.
 */
export function DeviceEndOfLife({ device, onDone }: { device: Device; onDone: () => void }) {
  const [policy, setPolicy] = useState<Policy>('erase');
  const [owner, setOwner] = useState('');
  const [receipt, setReceipt] = useState<Receipt | undefined>();
  const [claim, setClaim] = useState<{ token: string; expiresAt: number } | undefined>();
  const path = (verb: string) => `/api/v1/devices/${encodeURIComponent(device.id)}/${verb}`;
  const done = (r: Receipt, token?: { token: string; expiresAt: number }) => {
    setReceipt(r);
    setClaim(token);
    onDone();
  };
  const retired = device.state === 'decommissioned';
  return (
    <div className="end-of-life" data-testid="end-of-life">
      <h3>End of life</h3>
      <p>
        <label>Data policy{' '}
          <select value={policy} onChange={(e) => setPolicy(e.target.value as Policy)} data-testid="eol-policy">
            <option value="erase">erase</option><option value="pseudonymise">pseudonymise</option><option value="keep">keep</option>
          </select>
        </label>{' '}
        <span className="muted">{POLICY_TEXT[policy]}</span>
      </p>
      <div className="actions">
        {!retired ? (
          <ActionButton label="Decommission" danger testId="decommission" confirm={`Decommission ${device.id} for good and ${POLICY_TEXT[policy]}? Its certificates are revoked, its session ends, its jobs and commands are cancelled; this cannot be undone.`}
            run={async () => {
              const r = await api<{ receipt: Receipt }>('POST', path('decommission'), { data: policy });
              done(r.receipt);
            }} />
        ) : null}
        <ActionButton label="Erase data" danger testId="erase" confirm={`Erasure request: ${POLICY_TEXT[policy]} for ${device.id}? The device stays in service; this cannot be undone.`}
          run={async () => done((await api<{ receipt: Receipt }>('POST', path('erase'), { data: policy })).receipt)} />
      </div>
      <p>
        <label>New owner <input value={owner} onChange={(e) => setOwner(e.target.value)} placeholder="usr_…, svc_… or group:<id>" data-testid="transfer-owner" /></label>{' '}
        <ActionButton label="Transfer" danger testId="transfer" confirm={`Hand ${device.id} to ${owner || '(no owner given)'} and ${POLICY_TEXT[policy]} of the previous owner? Its certificates are revoked and it starts again with a new claim token.`}
          run={async () => {
            const r = await api<{ receipt: Receipt; claimToken: { token: string; expiresAt: number } }>('POST', path('transfer'), { owner, data: policy });
            done(r.receipt, r.claimToken);
          }} />
      </p>
      {claim ? (
        <p className="notice" data-testid="claim-token">
          Claim token for the new owner (shown once): <code>{claim.token}</code>, usable until {fmtTime(claim.expiresAt)}.
        </p>
      ) : null}
      {receipt ? <ReceiptView receipt={receipt} /> : null}
    </div>
  );
}

function ReceiptView({ receipt }: { receipt: Receipt }) {
  const counts = Object.entries(receipt.data).filter(([, n]) => n > 0);
  const url = URL.createObjectURL(new Blob([`${JSON.stringify(receipt, null, 2)}\n`], { type: 'application/json' }));
  return (
    <div className="receipt" data-testid="receipt">
      <p>
        <strong>Receipt {receipt.id}</strong>: {receipt.kind} of {receipt.deviceId} at {fmtTime(receipt.at)} by {receipt.by}, data {receipt.policy}
        {receipt.pseudonym ? ` (readings now under ${receipt.pseudonym})` : ''}; signed with key {receipt.keyId}.
      </p>
      <p>
        {receipt.revoked.length} certificate{receipt.revoked.length === 1 ? '' : 's'} revoked; {receipt.cancelled.jobEntries} job entries and {receipt.cancelled.commands} commands cancelled.
      </p>
      <table className="list" data-testid="receipt-counts">
        <thead><tr><th>data</th><th>{receipt.policy === 'keep' ? 'held' : receipt.policy === 'erase' ? 'erased' : 'pseudonymised or erased'}</th></tr></thead>
        <tbody>{counts.length === 0 ? <tr><td colSpan={2} className="muted">nothing held</td></tr> : counts.map(([k, n]) => <tr key={k}><td>{k}</td><td data-testid={`receipt-${k}`}>{n}</td></tr>)}</tbody>
      </table>
      <p><a href={url} download={`${receipt.id}.json`} data-testid="receipt-download">Download the signed receipt</a> (check it with <code>bulwark receipts verify FILE</code>).</p>
    </div>
  );
}
