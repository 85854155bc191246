import type { MqttClient } from 'mqtt';
import type { TestServer } from './harness.js';

/** Test-only helpers for the device messages beside telemetry. */

/** Resolves with the next message on `topic`, parsed as JSON. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- test convenience
export function nextMessage<T = any>(client: MqttClient, topic: string): Promise<T> {
  return new Promise((resolve) => {
    const on = (t: string, payload: Buffer) => {
      if (t !== topic) return;
      client.removeListener('message', on);
      resolve(JSON.parse(payload.toString()) as T);
    };
    client.on('message', on);
  });
}

/** Publishes a JSON (or raw) payload with QoS 1 and resolves on PUBACK, which the platform sends once it handled the message. */
export async function send(client: MqttClient, topic: string, message: unknown): Promise<void> {
  await client.publishAsync(topic, typeof message === 'string' ? message : JSON.stringify(message), { qos: 1 });
}

export const deviceMetric = async (s: TestServer, kind: string, result: string): Promise<number> => {
  const re = new RegExp(`bulwark_device_messages_total\\{kind="${kind}",result="${result}"\\} (\\d+)`);
  return Number(re.exec((await s.api('GET', '/metrics')).text)?.[1] ?? 0);
};
