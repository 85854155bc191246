import { useState } from 'react';
import { api } from '../api';
import type { Device } from '../types';
import { ActionButton, fmtTime } from '../ui';
import { type DataPolicy, type Receipt, ReceiptView } from './receipt';

/** What an erasure request and a transfer may do with the data: the server refuses keep for both. */
type Erasing = Exclude<DataPolicy, 'keep'>;

const POLICY_TEXT: Readonly<Record<DataPolicy, string>> = {
  keep: 'everything held about it is kept',
  erase: 'everything held about it is erased',
  pseudonymise: 'its readings are kept under a pseudonym and everything else held about it is erased',
};

function PolicySelect<P extends DataPolicy>({ value, options, onChange, testId }: { value: P; options: readonly P[]; onChange: (p: P) => void; testId: string }) {
  return (
    <label>
      data{' '}
      <select value={value} onChange={(e) => onChange(e.target.value as P)} data-testid={testId}>
        {options.map((p) => (
          <option key={p} value={p}>
            {p}
          </option>
        ))}
      </select>
    </label>
  );
}

interface Done {
  receipt: Receipt;
  claimToken?: { token: string; expiresAt: number; owner: string };
}

/**
 * A device's end of life, for a holder of devices:write: decommission with a data policy, an
 * erasure request (the device stays in service), a transfer to a new owner (resale). Each asks
 * once more with the device, the policy and the consequence spelled out, then shows the
 * platform's signed receipt with a download, and a transfer's new claim token (shown once: the
 * platform keeps only its hash).
 */
export function DeviceEndOfLife({ device, onDone }: { device: Device; onDone: () => void }) {
  const [policy, setPolicy] = useState<DataPolicy>('keep');
  const [erasing, setErasing] = useState<Erasing>('erase');
  const [owner, setOwner] = useState('');
  const [handing, setHanding] = useState<Erasing>('erase');
  const [done, setDone] = useState<Done | undefined>();
  const id = device.id;
  const finish = (result: Done) => {
    setDone(result);
    onDone();
  };
  const newOwner = owner.trim();
  const retired = device.state === 'decommissioned';
  return (
    <div className="card end-of-life" data-testid="end-of-life">
      <h3>End of life</h3>
      {retired ? (
        <p className="muted">Decommissioned. An erasure request below still applies a data policy to what is held about it, and a transfer hands it to a new owner.</p>
      ) : (
        <div className="eol-row">
          <strong>Decommission</strong>
          <PolicySelect value={policy} options={['keep', 'erase', 'pseudonymise']} onChange={setPolicy} testId="eol-policy" />
          <span className="muted">{POLICY_TEXT[policy]}</span>
          <ActionButton
            label="Decommission"
            danger
            testId="decommission"
            confirm={`Decommission ${id} with data policy "${policy}": ${POLICY_TEXT[policy]}. Every certificate is revoked, its session ends, its jobs and commands are cancelled. This cannot be undone.`}
            run={async () => finish({ receipt: (await api('POST', '/api/v1/devices/{id}/decommission', { params: { id }, body: { data: policy } })).receipt })}
          />
        </div>
      )}
      <div className="eol-row">
        <strong>Erasure request</strong>
        <PolicySelect value={erasing} options={['erase', 'pseudonymise']} onChange={setErasing} testId="erase-policy" />
        <span className="muted">
          {POLICY_TEXT[erasing]}
          {retired ? '' : '; the device stays in service'}
        </span>
        <ActionButton
          label="Erase data"
          danger
          testId="erase"
          confirm={`Erasure request for ${id} with data policy "${erasing}": ${POLICY_TEXT[erasing]}.${retired ? '' : ' The device stays in service.'} This cannot be undone.`}
          run={async () => finish({ receipt: (await api('POST', '/api/v1/devices/{id}/erase', { params: { id }, body: { data: erasing } })).receipt })}
        />
      </div>
      <div className="eol-row">
        <strong>Transfer</strong>
        <label>
          to <input value={owner} onChange={(e) => setOwner(e.target.value)} placeholder="usr_…, svc_… or group:<id>" aria-label="new owner" data-testid="transfer-owner" />
        </label>
        <PolicySelect value={handing} options={['erase', 'pseudonymise']} onChange={setHanding} testId="transfer-policy" />
        <span className="muted">the previous owner&apos;s data: {POLICY_TEXT[handing].replace('held about it ', '')}</span>
        <ActionButton
          label="Transfer"
          danger
          testId="transfer"
          disabled={newOwner === ''}
          confirm={`Transfer ${id} to ${newOwner} with data policy "${handing}": ${POLICY_TEXT[handing]}. Every certificate is revoked, it leaves its static groups and starts again as manufactured with a new claim token. This cannot be undone.`}
          run={async () => {
            const r = await api('POST', '/api/v1/devices/{id}/transfer', { params: { id }, body: { owner: newOwner, data: handing } });
            finish({ receipt: r.receipt, claimToken: { ...r.claimToken, owner: newOwner } });
          }}
        />
      </div>
      {done?.claimToken ? (
        <p className="cert-warning" data-testid="claim-token">
          Claim token for {done.claimToken.owner}, shown this once (the platform keeps only its hash): <code>{done.claimToken.token}</code>, usable until {fmtTime(done.claimToken.expiresAt)}. The device enrols with it:{' '}
          <code>npx bulwark devices enroll {id} --token … --out DIR</code>.
        </p>
      ) : null}
      {done ? <ReceiptView receipt={done.receipt} /> : null}
    </div>
  );
}
