import type { Clock } from '@bulwark/core';
import { TimeRequest, type TimeReply, deviceTopics, parseMessage } from '@bulwark/protocol';

/**
 * NTP-style time sync over MQTT. The device publishes a TimeRequest `{"t0": <its send time>}`
 * on `devices/{id}/time`; the platform answers on `devices/{id}/time/reply` with a TimeReply
 * `{"t0", "t1": <received>, "t2": <sent>}`. With t3 its own receive time, the device's
 * offset is ((t1 - t0) + (t2 - t3)) / 2 and the round trip (t3 - t0) - (t2 - t1).
 */
export function answerTimeRequest(reply: (topic: string, payload: Buffer) => void, clock: Clock, deviceId: string, payload: Buffer, receivedAt: number): void {
  const request = parseMessage(TimeRequest, payload);
  const body: TimeReply = request ? { t0: request.t0, t1: receivedAt, t2: clock.now() } : { error: { code: 'BULWARK_ERR_VALIDATION', message: 'send {"t0": <device time in ms>}' }, t1: receivedAt, t2: clock.now() };
  reply(deviceTopics(deviceId).timeReply, Buffer.from(JSON.stringify(body)));
}
