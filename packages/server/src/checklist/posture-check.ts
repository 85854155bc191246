import type { CheckResult, CheckStatus, ChecklistRepository } from './checklist.js';

const TITLE = 'Devices report no open debug interface and a verified boot image';
const ETSI = ['5.6-1', '5.6-4', '5.7-1'] as const;
const REMEDIATION =
  "On each device named: turn off the debug or remote-shell service listening (telnet, adb, gdbserver, OpenOCD; SSH where the device's policy has it off) " +
  'in the image, not by hand, and ship that image; reinstall an image that does not verify against its signed manifest (bulwark rollout create) and find out who changed it; ' +
  "turn SSH password and root login off (PasswordAuthentication no, PermitRootLogin no) and the serial console off in production images. Device health (dashboard device page, GET /api/v1/devices/ID/health) shows each device's posture.";

/**
 * The posture live devices last reported: a debug interface open or a boot image that does not
 * verify fails; weaker findings (SSH password or root login, a serial console, an image without
 * a manifest to check) warn. Devices that report no posture are not judged.
 */
export async function devicePostureCheck(repo: ChecklistRepository, sample: number): Promise<CheckResult> {
  const { fail, warn, sample: devices } = await repo.postureFindings(sample);
  const status: CheckStatus = fail > 0 ? 'fail' : warn > 0 ? 'warn' : 'pass';
  const evidence =
    status === 'pass'
      ? ['no live device reports an open debug port, an unverified boot image, SSH password or root login, or a serial console']
      : [
          `${fail} devices with a failing posture, ${warn} with warnings only`,
          ...devices.map((d) => `${d.deviceId}: ${d.findings.map((f) => `${f.severity === 'fail' ? 'FAIL' : 'warn'} ${f.detail}`).join('; ')} (reported ${new Date(d.reportedAt).toISOString()})`),
          ...(fail + warn > devices.length ? [`… and ${fail + warn - devices.length} more`] : []),
        ];
  return { id: 'device-posture', title: TITLE, status, evidence, remediation: status === 'pass' ? '' : REMEDIATION, etsi: ETSI };
}
