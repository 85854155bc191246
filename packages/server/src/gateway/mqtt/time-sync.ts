import type { Clock } from '@bulwark/core';

/**
 * NTP-style time sync over MQTT. The device publishes `{"t0": <its send time>}` on
 * `devices/{id}/time`; the platform answers on `devices/{id}/time/reply` with
 * `{"t0", "t1": <received>, "t2": <sent>}`. With t3 its own receive time, the device's
 * offset is ((t1 - t0) + (t2 - t3)) / 2 and the round trip (t3 - t0) - (t2 - t1).
 */
export function answerTimeRequest(reply: (topic: string, payload: Buffer) => void, clock: Clock, deviceId: string, payload: Buffer, receivedAt: number): void {
  let t0: unknown;
  try {
    t0 = (JSON.parse(payload.toString('utf8')) as { t0?: unknown }).t0;
  } catch {
    t0 = undefined;
  }
  const body = typeof t0 === 'number' && Number.isFinite(t0)
    ? { t0, t1: receivedAt, t2: clock.now() }
    : { error: { code: 'BULWARK_ERR_VALIDATION', message: 'send {"t0": <device time in ms>}' }, t1: receivedAt, t2: clock.now() };
  reply(`devices/${deviceId}/time/reply`, Buffer.from(JSON.stringify(body)));
}
