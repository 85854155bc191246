import { type BootPosture, type DevicePosture, DEVICE_MESSAGE_LIMITS, DevicePosture as PostureSchema, type HealthReport, messageProblem } from '@bulwark/protocol';

/**
 * A posture probe tells what the device exposes: listening sockets, debug interfaces, SSH and
 * serial console settings. Inject your own through the agent's deps (`posture`); the default
 * on Linux is LinuxPostureProbe. A part the probe cannot read is left out, never guessed.
 * Verified boot is not the probe's: the agent adds it from its firmware slots.
 */
export interface PostureProbe {
  probe(): Promise<Omit<DevicePosture, 'boot'>>;
}

export const POSTURE_TIMEOUT_MS = 5_000;

/** Runs the probe with a time limit and checks what it returns against the contract: a probe that throws, hangs or returns junk costs the posture, never the report. */
export async function runProbe(probe: PostureProbe, log: (msg: string, data: Record<string, unknown>) => void, timeoutMs = POSTURE_TIMEOUT_MS): Promise<Omit<DevicePosture, 'boot'> | undefined> {
  let timer: NodeJS.Timeout | undefined;
  try {
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no answer in ${timeoutMs} ms`)), timeoutMs);
    });
    const posture = await Promise.race([probe.probe(), timeout]);
    const problem = messageProblem(PostureSchema, posture);
    if (problem) {
      log('the posture probe returned a posture outside the device contract; posture left out', { path: problem.path, problem: problem.message });
      return undefined;
    }
    return posture;
  } catch (err) {
    log('the posture probe failed; posture left out', { err: String(err) });
    return undefined;
  } finally {
    clearTimeout(timer);
  }
}

/**
 * The report with its posture, within the health report's size bound: listed sockets are cut
 * first (listeningTotal still says how many there are), then the debug ports; the report
 * goes without posture rather than over the bound.
 */
export function withPosture(report: HealthReport, probed: Omit<DevicePosture, 'boot'> | undefined, boot: BootPosture | undefined): HealthReport {
  let posture: DevicePosture = { ...probed, ...(boot ? { boot } : {}) };
  if (Object.keys(posture).length === 0) return report;
  const max = DEVICE_MESSAGE_LIMITS.healthMaxBytes;
  const size = (p: DevicePosture) => Buffer.byteLength(JSON.stringify({ ...report, posture: p }));
  while (size(posture) > max && (posture.listening?.length ?? 0) > 0) posture = { ...posture, listening: (posture.listening ?? []).slice(0, -1) };
  while (size(posture) > max && (posture.debugPorts?.length ?? 0) > 0) posture = { ...posture, debugPorts: (posture.debugPorts ?? []).slice(0, -1) };
  return size(posture) > max ? report : { ...report, posture };
}
