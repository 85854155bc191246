import { Fragment, useState } from 'react';
import { type Session, api, can, q } from '../api';
import { go, href } from '../router';
import { DEAD_LETTER_REASONS, type DeadLetter } from '../types';
import { ActionButton, Empty, ErrorBox, fmtTime, useLoad } from '../ui';

/** What is sealed at rest, in words. */
function sealedNote(l: DeadLetter): string {
  if (l.revealed) return 'shown in clear (this read is in the audit log)';
  if (l.protection === 'fields') return l.sealedFields.length > 0 ? `sensitive fields masked: ${l.sealedFields.join(', ')}` : '';
  return 'no usable schema: the payload is kept encrypted and shown masked';
}

function LetterDetail({ letter: l, mayDecrypt, reveal }: { letter: DeadLetter; mayDecrypt: boolean; reveal: () => Promise<void> }) {
  const note = sealedNote(l);
  const sealed = l.protection !== 'fields' || l.sealedFields.length > 0;
  return (
    <tr className="detail">
      <td colSpan={6}>
        <p>
          transport {l.transport}, topic <code>{l.topic ?? '—'}</code>, message id {l.msgId ?? '—'}
        </p>
        {note ? (
          <p className="muted" data-testid="sealed-note">
            {note}
          </p>
        ) : null}
        {l.decryptError ? (
          <p className="pill bad" data-testid="decrypt-error">
            cannot be decrypted: {l.decryptError}
          </p>
        ) : null}
        {mayDecrypt && sealed && !l.revealed ? <ActionButton label="Show in clear" testId="reveal" run={reveal} /> : null}
        {l.problems.length > 0 ? (
          <ul>
            {l.problems.map((p, i) => (
              <li key={i}>
                <code>{p.path ?? ''}</code> expected {p.expected}, got {p.got}
              </li>
            ))}
          </ul>
        ) : null}
        <pre className="json">{l.payload}</pre>
      </td>
    </tr>
  );
}

export function DeadLetters({ params, session }: { params: URLSearchParams; session: Session }) {
  const reason = params.get('reason') ?? '';
  const device = params.get('device') ?? '';
  const list = useLoad(() => api('GET', '/api/v1/dead-letters', { query: { reason: DEAD_LETTER_REASONS.find((r) => r === reason), device: device || undefined, limit: 200 } }), [reason, device]);
  const [open, setOpen] = useState<string | undefined>();
  const [result, setResult] = useState<Record<string, string>>({});
  // Letters read in clear (decrypt=true, audited), by id; dropped when the detail is closed.
  const [clear, setClear] = useState<Record<string, DeadLetter>>({});
  const mayReplay = can(session, 'telemetry:write');
  const mayDecrypt = can(session, 'telemetry:decrypt');
  const filter = (next: Record<string, string>) => go(`/dead-letters${q({ reason, device, ...next })}`);

  return (
    <section>
      <h2>Dead letters</h2>
      <p className="muted">Messages the pipeline refused, newest first, with the exact reason. Fix the cause (for example register the schema), then replay.</p>
      <div className="filters">
        <select aria-label="reason" value={reason} onChange={(e) => filter({ reason: e.target.value })} data-testid="reason-filter">
          <option value="">any reason</option>
          {DEAD_LETTER_REASONS.map((r) => (
            <option key={r} value={r}>
              {r}
            </option>
          ))}
        </select>
        <input
          aria-label="device"
          placeholder="device id"
          defaultValue={device}
          onKeyDown={(e) => {
            if (e.key === 'Enter') filter({ device: e.currentTarget.value });
          }}
        />
      </div>
      <ErrorBox error={list.error} />
      {list.data && list.data.length === 0 ? <Empty title={reason || device ? 'No dead letters match.' : 'No dead letters: every message was accepted.'} /> : null}
      {list.data && list.data.length > 0 ? (
        <table className="list" data-testid="dead-letters">
          <thead>
            <tr>
              <th>received</th>
              <th>device</th>
              <th>reason</th>
              <th>schema</th>
              <th>replayed</th>
              <th />
            </tr>
          </thead>
          <tbody>
            {list.data.map((l) => (
              <Fragment key={l.id}>
                <tr data-testid={`dl-${l.id}`}>
                  <td>{fmtTime(l.receivedAt)}</td>
                  <td>
                    <a href={href('devices', l.deviceId)}>{l.deviceId}</a>
                  </td>
                  <td>
                    <span className="pill bad">{l.reason}</span>
                  </td>
                  <td>{l.schemaId ?? '—'}</td>
                  <td data-testid="replay-result">{result[l.id] ?? (l.replayedAt ? `${l.replayResult ?? ''} ${fmtTime(l.replayedAt)}` : '')}</td>
                  <td className="actions">
                    <button
                      type="button"
                      onClick={() => {
                        setOpen(open === l.id ? undefined : l.id);
                        setClear({});
                      }}
                    >
                      {open === l.id ? 'close' : 'inspect'}
                    </button>
                    {mayReplay ? (
                      <ActionButton
                        label="Replay"
                        testId="replay"
                        run={async () => {
                          const r = await api('POST', '/api/v1/dead-letters/{id}/replay', { params: { id: l.id } });
                          setResult((old) => ({ ...old, [l.id]: r.reason ? `${r.status}: ${r.reason}` : r.status }));
                        }}
                      />
                    ) : null}
                  </td>
                </tr>
                {open === l.id ? (
                  <LetterDetail
                    letter={clear[l.id] ?? l}
                    mayDecrypt={mayDecrypt}
                    reveal={async () => {
                      const shown = await api('GET', '/api/v1/dead-letters/{id}', { params: { id: l.id }, query: { decrypt: true } });
                      setClear({ [l.id]: shown });
                    }}
                  />
                ) : null}
              </Fragment>
            ))}
          </tbody>
        </table>
      ) : null}
    </section>
  );
}
