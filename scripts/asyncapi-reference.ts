/**
 * docs/reference/asyncapi.json: the device contract as an AsyncAPI 3.0 document, generated from
 * the protocol package's catalogue (DEVICE_TOPICS, DEVICE_MESSAGES, MESSAGE_EXAMPLES): one
 * channel per topic of a device's tree, one operation per channel from the platform's side
 * (it receives what devices publish and sends the rest), each message's JSON Schema and
 * example, QoS in the MQTT bindings, and the MQTT 5 reason codes the gateway answers with.
 */
import { DEVICE_MESSAGES, DEVICE_TOPICS, type DeviceTopic, MESSAGE_EXAMPLES } from '@bulwark/protocol';
import { RC } from '../packages/server/src/gateway/mqtt/reason-codes.js';

const PLACEHOLDER_HELP: Readonly<Record<string, string>> = {
  deviceId: "The device's id: the one its certificate names. A device publishes and subscribes inside its own tree only.",
  stream: 'A named telemetry stream of the device (one topic level).',
  name: "The command's name (one topic level).",
};

/** The channel address of a topic: `devices/{deviceId}/…`. */
export const addressOf = (t: DeviceTopic) => `devices/{deviceId}/${t.pattern}`;

/** A plain JSON copy of a TypeBox schema (its symbol keys dropped). */
const plain = (schema: unknown): unknown => JSON.parse(JSON.stringify(schema));

export function asyncApiDocument(version: string): Record<string, unknown> {
  const topics = Object.entries(DEVICE_TOPICS) as [string, DeviceTopic][];
  const channels: Record<string, unknown> = {};
  const operations: Record<string, unknown> = {};
  for (const [key, t] of topics) {
    const address = addressOf(t);
    const params = [...address.matchAll(/\{(\w+)\}/g)].map((m) => m[1] as string);
    channels[key] = {
      address,
      description: t.description,
      parameters: Object.fromEntries(params.map((p) => [p, { description: PLACEHOLDER_HELP[p] ?? `One topic level (${p}).` }])),
      messages: { [t.message]: { $ref: `#/components/messages/${t.message}` } },
      ...(t.maxBytes !== undefined ? { 'x-bulwark-max-payload-bytes': t.maxBytes } : {}),
    };
    operations[`${t.direction === 'device-to-cloud' ? 'receive' : 'send'}-${key}`] = {
      action: t.direction === 'device-to-cloud' ? 'receive' : 'send',
      channel: { $ref: `#/channels/${key}` },
      summary: t.direction === 'device-to-cloud' ? `A device publishes on ${address}; the platform receives it.` : `The platform publishes on ${address}; the device subscribes.`,
      messages: [{ $ref: `#/channels/${key}/messages/${t.message}` }],
      bindings: { mqtt: { qos: Math.max(...t.qos), retain: false, bindingVersion: '0.2.0' } },
      ...(t.qos.length > 1 ? { 'x-bulwark-qos-accepted': [...t.qos] } : {}),
    };
  }
  const used = [...new Set(topics.map(([, t]) => t.message))].sort();
  const messages = Object.fromEntries(
    used.map((name) => [
      name,
      {
        name,
        contentType: 'application/json',
        payload: plain(DEVICE_MESSAGES[name]),
        examples: [{ name: 'example', payload: MESSAGE_EXAMPLES[name] }],
      },
    ]),
  );
  return {
    asyncapi: '3.0.0',
    info: {
      title: 'Bulwark device contract',
      version,
      description:
        'The MQTT topics a Bulwark device speaks, generated from @bulwark/protocol (docs/reference/device-contract.md explains it in prose). ' +
        "Operations are written from the platform's side. Identity comes from the device certificate, never from a client id or a payload.",
      license: { name: 'Apache-2.0' },
    },
    servers: {
      gateway: {
        host: 'localhost:8883',
        protocol: 'mqtts',
        protocolVersion: '5.0',
        description: "The device gateway: MQTT 5 and 3.1.1 over TLS 1.2+ with a client certificate from the platform's CA or a registered manufacturer CA.",
        security: [{ $ref: '#/components/securitySchemes/deviceCertificate' }],
      },
    },
    defaultContentType: 'application/json',
    channels,
    operations,
    components: {
      messages,
      securitySchemes: { deviceCertificate: { type: 'X509', description: 'Mutual TLS: one ECDSA P-256 certificate per device; the device id is its SAN URI urn:bulwark:device:{id} (or CN).' } },
    },
    'x-bulwark-mqtt5-reason-codes': { ...RC },
  };
}
