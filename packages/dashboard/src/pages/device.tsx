import { useEffect } from 'react';
import { type Session, api, can } from '../api';
import { href } from '../router';
import type { Twin } from '../types';
import { ActionButton, ErrorBox, ago, fmtTime, useLoad } from '../ui';
import { CertWarning } from './cert-warning';
import { DeviceAlerts } from './device-alerts';
import { DeviceEndOfLife } from './device-end-of-life';
import { DevicePosture } from './device-posture';
import { LiveTelemetry } from './live';

export function Device({ id, session }: { id: string; session: Session }) {
  const device = useLoad(() => api('GET', '/api/v1/devices/{id}', { params: { id } }), [id]);
  const certs = useLoad(() => api('GET', '/api/v1/devices/{id}/certificates', { params: { id } }), [id]);
  const health = useLoad(() => api('GET', '/api/v1/devices/{id}/health', { params: { id } }), [id]);
  const events = useLoad(() => api('GET', '/api/v1/devices/{id}/events', { params: { id }, query: { limit: 10 } }), [id]);
  const twin = useLoad(() => api('GET', '/api/v1/devices/{id}/twin', { params: { id } }), [id]);
  const write = can(session, 'devices:write');
  const { reload } = device;
  useEffect(() => {
    const timer = setInterval(reload, 3000);
    return () => clearInterval(timer);
  }, [reload]);

  const d = device.data;
  const act = (verb: 'suspend' | 'resume' | 'revoke') => async () => {
    if (verb === 'revoke') await api('POST', '/api/v1/devices/{id}/revoke', { params: { id }, body: { reason: 'revoked from the dashboard' } });
    else await api('POST', `/api/v1/devices/{id}/${verb}`, { params: { id } });
    device.reload();
    certs.reload();
  };

  return (
    <section>
      <p>
        <a href={href('devices')}>← devices</a>
      </p>
      <h2>
        Device <span data-testid="device-id">{id}</span>
      </h2>
      <ErrorBox error={device.error} />
      {d ? (
        <>
          {certs.data ? <CertWarning certs={certs.data} /> : null}
          <div className="cols">
            <div>
              <h3>Identity</h3>
              <table className="kv">
                <tbody>
                  <tr>
                    <th>state</th>
                    <td>
                      <span className={`pill ${d.state}`} data-testid="device-state">
                        {d.state}
                      </span>
                    </td>
                  </tr>
                  <tr>
                    <th>model</th>
                    <td>
                      {d.model ?? '—'} {d.hardwareRevision ? `rev ${d.hardwareRevision}` : ''}
                    </td>
                  </tr>
                  <tr>
                    <th>serial</th>
                    <td>{d.serial ?? '—'}</td>
                  </tr>
                  <tr>
                    <th>firmware</th>
                    <td>
                      {d.firmwareVersion ?? '—'}
                      {d.securityVersion !== null ? ` (security version ${d.securityVersion})` : ''}
                    </td>
                  </tr>
                  <tr>
                    <th>owner / location</th>
                    <td>
                      {d.owner ?? '—'} / {d.location ?? '—'}
                    </td>
                  </tr>
                  <tr>
                    <th>tags</th>
                    <td>{d.tags.join(', ') || '—'}</td>
                  </tr>
                </tbody>
              </table>
              {write ? (
                <div className="actions" data-testid="lifecycle-actions">
                  {d.state === 'active' || d.state === 'provisioned' ? <ActionButton label="Suspend" confirm={`Suspend ${id}? Its session ends now and it cannot connect until resumed.`} run={act('suspend')} testId="suspend" /> : null}
                  {d.state === 'suspended' ? <ActionButton label="Resume" run={act('resume')} testId="resume" /> : null}
                  {d.state !== 'decommissioned' ? (
                    <ActionButton label="Revoke" danger confirm={`Revoke every certificate of ${id}? Its live sessions end now and it cannot connect again until it is given a new certificate.`} run={act('revoke')} testId="revoke" />
                  ) : null}
                </div>
              ) : null}
            </div>
            <div>
              <h3>Connectivity</h3>
              <table className="kv">
                <tbody>
                  <tr>
                    <th>online</th>
                    <td data-testid="device-online">
                      {d.connectivity.online ? <span className="pill online">online</span> : <span className="pill offline">offline</span>}
                      {d.connectivity.onlineSince ? ` since ${fmtTime(d.connectivity.onlineSince)}` : ''}
                    </td>
                  </tr>
                  <tr>
                    <th>last seen</th>
                    <td>
                      {fmtTime(d.connectivity.lastSeenAt)} ({ago(d.connectivity.lastSeenAt)})
                    </td>
                  </tr>
                  <tr>
                    <th>connections</th>
                    <td>{d.connectivity.connectCount}</td>
                  </tr>
                  <tr>
                    <th>last disconnect</th>
                    <td>
                      {fmtTime(d.connectivity.lastDisconnectAt)} {d.connectivity.lastDisconnectReason ? `(${d.connectivity.lastDisconnectReason})` : ''}
                    </td>
                  </tr>
                </tbody>
              </table>
              <h3>Recent events</h3>
              <ErrorBox error={events.error} />
              {events.data && events.data.length === 0 ? (
                <p className="muted">
                  No events yet. Devices report boots, crashes and state changes on <code>devices/{id}/events</code>.
                </p>
              ) : null}
              {events.data && events.data.length > 0 ? (
                <table className="list" data-testid="device-events">
                  <tbody>
                    {events.data.map((e) => (
                      <tr key={e.id}>
                        <td>{fmtTime(e.receivedAt)}</td>
                        <td>{e.type}</td>
                        <td className="mono">{e.data ? JSON.stringify(e.data).slice(0, 120) : ''}</td>
                      </tr>
                    ))}
                  </tbody>
                </table>
              ) : null}
              <h3>Posture</h3>
              {health.data ? <DevicePosture posture={health.data.posture ?? null} /> : null}
              <h3>Health</h3>
              <ErrorBox error={health.error} />
              {health.data ? (
                health.data.latest ? (
                  <>
                    {health.data.restartLoop ? (
                      <p className="error" data-testid="restart-loop">
                        This device is in a restart loop.
                      </p>
                    ) : null}
                    <pre className="json">{JSON.stringify(health.data.latest, null, 2)}</pre>
                  </>
                ) : (
                  <p className="muted">
                    No health report yet. Devices send them on <code>devices/{id}/health</code>.
                  </p>
                )
              ) : null}
            </div>
          </div>
          {write ? (
            <DeviceEndOfLife
              device={d}
              onDone={() => {
                device.reload();
                certs.reload();
              }}
            />
          ) : null}
          {can(session, 'alerts:read') ? (
            <>
              <h3>Alerts</h3>
              <DeviceAlerts deviceId={id} session={session} />
            </>
          ) : null}
          <h3>Certificates</h3>
          <ErrorBox error={certs.error} />
          {certs.data && certs.data.length === 0 ? (
            <p className="muted">
              No certificate yet: enroll the device with{' '}
              <code>
                npx bulwark devices enroll {id} --out ./{id}
              </code>
              .
            </p>
          ) : null}
          {certs.data && certs.data.length > 0 ? (
            <table className="list" data-testid="certificates">
              <thead>
                <tr>
                  <th>serial</th>
                  <th>valid until</th>
                  <th>first used</th>
                  <th>status</th>
                  {write ? <th /> : null}
                </tr>
              </thead>
              <tbody>
                {certs.data.map((c) => (
                  <tr key={c.serial}>
                    <td className="mono">{c.serial}</td>
                    <td>{fmtTime(c.notAfter)}</td>
                    <td>{fmtTime(c.firstUsedAt)}</td>
                    <td>{c.revokedAt ? <span className="pill revoked">revoked {fmtTime(c.revokedAt)}</span> : c.supersededAt ? 'superseded' : c.notAfter < Date.now() ? 'expired' : <span className="pill online">valid</span>}</td>
                    {write ? (
                      <td>
                        {c.revokedAt ? null : (
                          <ActionButton
                            label="Revoke"
                            danger
                            confirm={`Revoke certificate ${c.serial.slice(0, 12)}…?`}
                            run={async () => {
                              await api('POST', '/api/v1/certificates/{serial}/revoke', { params: { serial: c.serial }, body: {} });
                              certs.reload();
                              device.reload();
                            }}
                          />
                        )}
                      </td>
                    ) : null}
                  </tr>
                ))}
              </tbody>
            </table>
          ) : null}
          <h3>Configuration (twin)</h3>
          <ErrorBox error={twin.error} />
          {twin.data ? <TwinView twin={twin.data} /> : null}
          <h3>Live telemetry</h3>
          <LiveTelemetry deviceId={id} />
        </>
      ) : null}
    </section>
  );
}

function TwinView({ twin }: { twin: Twin }) {
  if (!twin.desired && !twin.reported)
    return (
      <p className="muted">
        No desired or reported configuration yet. Set one with <code>PUT /api/v1/devices/{twin.deviceId}/twin/desired</code>.
      </p>
    );
  const desired = twin.desired?.config ?? {};
  const reported = twin.reported?.config ?? {};
  const keys = [...new Set([...Object.keys(desired), ...Object.keys(reported)])].sort();
  return (
    <>
      <p>
        desired v{twin.desired?.version ?? '—'}, reported v{twin.reported?.version ?? '—'} ({twin.reported?.status ?? 'nothing reported'})
        {twin.drifted ? (
          <span className="pill drift" data-testid="drifted">
            {' '}
            drifted since {fmtTime(twin.driftSince ?? null)}
          </span>
        ) : null}
      </p>
      <table className="list twin">
        <thead>
          <tr>
            <th>key</th>
            <th>desired</th>
            <th>reported</th>
          </tr>
        </thead>
        <tbody>
          {keys.map((k) => {
            const same = JSON.stringify(desired[k]) === JSON.stringify(reported[k]);
            return (
              <tr key={k} className={same ? '' : 'differs'}>
                <td>{k}</td>
                <td className="mono">{JSON.stringify(desired[k]) ?? '—'}</td>
                <td className="mono">{JSON.stringify(reported[k]) ?? '—'}</td>
              </tr>
            );
          })}
        </tbody>
      </table>
    </>
  );
}
