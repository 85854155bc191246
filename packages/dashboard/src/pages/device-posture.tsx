import type { Get } from '../api-paths';
import { fmtTime } from '../ui';

/** The posture part of GET /api/v1/devices/ID/health: when it was reported and what the platform found in it. */
export type PostureView = NonNullable<Get<'/api/v1/devices/{id}/health'>['posture']>;

/**
 * The posture as the device reported it (device contract: HealthReport.posture), which the API
 * document passes through without a schema: the parts this page reads, each possibly missing.
 */
interface ReportedPosture {
  readonly listening?: readonly { readonly proto: string; readonly port: number; readonly address: string }[];
  readonly listeningTotal?: number;
  readonly debugPorts?: readonly unknown[];
  readonly ssh?: { readonly enabled?: boolean; readonly passwordAuth?: boolean; readonly rootLogin?: string };
  readonly serialConsole?: { readonly enabled: boolean; readonly consoles?: readonly string[] };
  readonly boot?: { readonly slot: string; readonly verified: boolean; readonly reason?: string };
}

const yesNo = (v: boolean | undefined, yes: string, no: string) => (v === undefined ? 'not reported' : v ? yes : no);

/**
 * What the device last said about its exposure, and what the platform found in it: failing
 * findings (an open debug port, an image that does not verify) first. Parts the device could
 * not read are shown as not reported.
 */
export function DevicePosture({ posture }: { posture: PostureView | null }) {
  if (!posture)
    return (
      <p className="muted" data-testid="posture-none">
        No posture reported yet (agents add it to their health reports).
      </p>
    );
  const p = (posture.posture ?? {}) as ReportedPosture;
  const findings = [...posture.findings].sort((a, b) => (a.severity === b.severity ? 0 : a.severity === 'fail' ? -1 : 1));
  const rows: [string, string][] = [
    [
      'Listening sockets',
      p.listeningTotal === undefined
        ? 'not reported'
        : `${p.listeningTotal}${
            p.listening && p.listening.length > 0
              ? `: ${p.listening
                  .slice(0, 8)
                  .map((s) => `${s.proto}/${s.port}`)
                  .join(', ')}${p.listening.length > 8 ? ', …' : ''}`
              : ''
          }`,
    ],
    ['Debug ports open', p.debugPorts === undefined ? 'not reported' : String(p.debugPorts.length)],
    ['SSH', p.ssh ? `${yesNo(p.ssh.enabled, 'listening', 'not listening')}; password login ${yesNo(p.ssh.passwordAuth, 'on', 'off')}; root login ${p.ssh.rootLogin ?? 'not reported'}` : 'not reported'],
    ['Serial console', p.serialConsole ? (p.serialConsole.enabled ? `on (${(p.serialConsole.consoles ?? []).join(', ')})` : 'off') : 'not reported'],
    ['Boot image', p.boot ? `slot ${p.boot.slot}: ${p.boot.verified ? 'verified against its signed manifest' : `not verified (${p.boot.reason ?? 'no reason given'})`}` : 'not reported'],
  ];
  return (
    <div data-testid="posture">
      {findings.length === 0 ? (
        <p className="muted" data-testid="posture-ok">
          No findings.
        </p>
      ) : (
        <ul className="posture-findings" data-testid="posture-findings">
          {findings.map((f, i) => (
            <li key={i} className={f.severity} data-severity={f.severity}>
              <span className={`pill ${f.severity === 'fail' ? 'bad' : 'warning'}`}>{f.severity}</span> {f.detail}
            </li>
          ))}
        </ul>
      )}
      <table className="kv">
        <tbody>
          {rows.map(([k, v]) => (
            <tr key={k}>
              <th>{k}</th>
              <td>{v}</td>
            </tr>
          ))}
        </tbody>
      </table>
      <p className="muted">Reported {fmtTime(posture.reportedAt)}.</p>
    </div>
  );
}
