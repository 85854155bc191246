import { type DebugPort, type DevicePosture, KNOWN_DEBUG_PORTS } from '@bulwark/protocol';

/**
 * What a device's posture says is wrong, as findings. `fail`: a debug interface is open or the
 * running image does not verify against its signed manifest (ETSI EN 303 645 5.6-4, 5.7-1);
 * `warn`: weaker exposures (password or root login over SSH, a serial console, an image that
 * could not be checked: a factory image with no manifest kept, `no_manifest`). Any other reason fails,
 * `manifest_missing` too (an updated image whose manifest was deleted is treated as tampered).
 */

export type PostureFindingKind = 'debug-port' | 'boot-unverified' | 'boot-unchecked' | 'ssh-password' | 'ssh-root-login' | 'serial-console';
export type PostureSeverity = 'fail' | 'warn';

export interface PostureFinding {
  readonly kind: PostureFindingKind;
  readonly severity: PostureSeverity;
  /** One line, e.g. `adb listening on tcp 0.0.0.0:5555`. */
  readonly detail: string;
}

export const POSTURE_FINDING_KINDS: readonly PostureFindingKind[] = ['debug-port', 'boot-unverified', 'boot-unchecked', 'ssh-password', 'ssh-root-login', 'serial-console'];

/** The newest posture a device reported, and what the platform found in it. */
export interface PostureRecord {
  readonly deviceId: string;
  readonly reportedAt: number;
  readonly posture: DevicePosture;
  readonly findings: readonly PostureFinding[];
}

const hostPort = (address: string, port: number) => (address.includes(':') ? `[${address}]:${port}` : `${address}:${port}`);

/**
 * The parts of a posture, each read from one source on the device; the sockets are one part
 * (the list, its count and the debug ports come from one reading of /proc/net).
 */
const PARTS: readonly (readonly (keyof DevicePosture)[])[] = [['listening', 'listeningTotal', 'debugPorts'], ['ssh'], ['serialConsole'], ['boot']];

/**
 * The posture to judge: each part the new report leaves out (a source the device could not read
 * this time) is the last known value of that part, so a finding clears only when a report says
 * the part is clean. The result is no bigger than a report's posture: one value per part.
 */
export function mergePosture(last: DevicePosture | null, next: DevicePosture): DevicePosture {
  const out: Record<string, unknown> = {};
  for (const part of PARTS) {
    const from = part.some((k) => next[k] !== undefined) ? next : last;
    for (const k of part) if (from?.[k] !== undefined) out[k] = from[k];
  }
  return out;
}

/** Debug ports as the platform sees them: the device's own list, and any listed socket on a known debug port it did not classify as one. */
function debugPortsOf(p: DevicePosture): DebugPort[] {
  const out: DebugPort[] = [...(p.debugPorts ?? [])];
  const key = (s: { proto: string; port: number; address: string }) => `${s.proto} ${s.address} ${s.port}`;
  const seen = new Set(out.map(key));
  for (const s of p.listening ?? []) {
    const service = KNOWN_DEBUG_PORTS[s.port];
    if (service === undefined || seen.has(key(s))) continue;
    seen.add(key(s));
    out.push({ ...s, service });
  }
  return out;
}

export function evaluatePosture(p: DevicePosture): PostureFinding[] {
  const out: PostureFinding[] = [];
  for (const d of debugPortsOf(p)) out.push({ kind: 'debug-port', severity: 'fail', detail: `${d.service} listening on ${d.proto} ${hostPort(d.address, d.port)}` });
  if (p.boot && !p.boot.verified) {
    const why = `${p.boot.reason ?? 'unknown reason'}${p.boot.detail ? `: ${p.boot.detail}` : ''}`;
    out.push(
      p.boot.reason === 'no_manifest'
        ? { kind: 'boot-unchecked', severity: 'warn', detail: `the image in slot ${p.boot.slot} could not be checked (${why})` }
        : { kind: 'boot-unverified', severity: 'fail', detail: `the image in slot ${p.boot.slot} does not verify against its signed manifest (${why})` },
    );
  }
  if (p.ssh?.passwordAuth === true) out.push({ kind: 'ssh-password', severity: 'warn', detail: `SSH password login is on${p.ssh.enabled === false ? ' (the server is not listening now)' : ''}` });
  if (p.ssh?.rootLogin === 'yes') out.push({ kind: 'ssh-root-login', severity: 'warn', detail: 'SSH allows root to log in with a password (PermitRootLogin yes)' });
  if (p.serialConsole?.enabled) out.push({ kind: 'serial-console', severity: 'warn', detail: `serial console on ${(p.serialConsole.consoles ?? []).join(', ') || 'a serial line'}` });
  return out;
}

/** The worst severity among findings, or `ok`. */
export const worstOf = (findings: readonly PostureFinding[]): PostureSeverity | 'ok' => (findings.some((f) => f.severity === 'fail') ? 'fail' : findings.length > 0 ? 'warn' : 'ok');
