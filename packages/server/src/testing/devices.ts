import { webcrypto } from 'node:crypto';
import mqtt, { type IClientOptions, type MqttClient, type Packet } from 'mqtt';
import { exportPkcs8, pkcs8Pem } from '../identity/index.js';
import { EC_P256, SIGN_P256, x509 } from '../identity/x509.js';
import type { TestServer } from './harness.js';

/** Test-only: device key pairs, CSRs, enrollment and MQTT connections, all in process. */

export interface DeviceKeys {
  readonly keyPem: string;
  readonly csrPem: string;
}

export async function makeDeviceKeys(name = 'device'): Promise<DeviceKeys> {
  const keys = await webcrypto.subtle.generateKey(EC_P256, true, ['sign', 'verify']);
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({ name: `CN=${name}`, keys, signingAlgorithm: SIGN_P256 });
  return { keyPem: pkcs8Pem(await exportPkcs8(keys.privateKey)), csrPem: csr.toString('pem') };
}

export interface EnrolledDevice extends DeviceKeys {
  readonly id: string;
  readonly certPem: string;
  readonly caPem: string;
  readonly serial: string;
}

/** Registers the device, takes a claim token as admin and enrolls with a fresh key. */
export async function enrollDevice(s: TestServer, adminToken: string, id: string, attrs: Record<string, unknown> = {}): Promise<EnrolledDevice> {
  const created = await s.api('POST', '/api/v1/devices', { token: adminToken, body: { id, ...attrs } });
  if (created.status !== 201) throw new Error(`create ${id}: ${created.text}`);
  const claim = await s.api('POST', `/api/v1/devices/${id}/claim-tokens`, { token: adminToken, body: {} });
  if (claim.status !== 201) throw new Error(`claim ${id}: ${claim.text}`);
  const keys = await makeDeviceKeys(id);
  const enrolled = await s.api('POST', '/api/v1/enroll', { body: { token: claim.body.token, csr: keys.csrPem } });
  if (enrolled.status !== 201) throw new Error(`enroll ${id}: ${enrolled.text}`);
  return { id, ...keys, certPem: enrolled.body.certificate, caPem: enrolled.body.caChain, serial: enrolled.body.serial };
}

export function tlsOptions(s: TestServer, d: { keyPem: string; certPem: string; caPem: string }, id: string, extra: IClientOptions = {}): IClientOptions {
  return {
    host: '127.0.0.1',
    port: s.server.mqttPort,
    protocol: 'mqtts',
    protocolVersion: 4,
    clientId: id,
    key: d.keyPem,
    cert: d.certPem,
    ca: d.caPem,
    rejectUnauthorized: true,
    reconnectPeriod: 0,
    connectTimeout: 5000,
    ...extra,
  };
}

/**
 * Connects and resolves on CONNACK; rejects on a refused CONNACK, a TLS alert or a closed
 * socket. (mqtt.connectAsync never settles when the server ends a TLS 1.3 handshake.)
 */
export function connect(options: IClientOptions): Promise<MqttClient> {
  return new Promise((resolve, reject) => {
    const client = mqtt.connect(options);
    const fail = (err: Error) => {
      client.removeAllListeners('connect');
      client.end(true);
      reject(err);
    };
    const closedEarly = () => {
      if (!client.connected) fail(new Error('connection closed before CONNACK'));
    };
    client.once('connect', () => {
      // A close after CONNACK is the caller's to see (its pending publishes fail), not a failed connect.
      client.removeListener('error', fail);
      client.removeListener('close', closedEarly);
      resolve(client);
    });
    client.once('error', fail);
    client.once('close', closedEarly);
  });
}

export function connectDevice(s: TestServer, d: EnrolledDevice, extra: IClientOptions = {}): Promise<MqttClient> {
  return connect(tlsOptions(s, d, d.id, extra));
}

/** Resolves when the client's connection closes. */
export function closed(client: MqttClient): Promise<void> {
  return new Promise((resolve) => {
    if (!client.connected) resolve();
    client.once('close', () => resolve());
  });
}

/** Subscribes and returns the granted QoS from the SUBACK as it came over the wire (128 = refused). */
export function subscribeGrant(client: MqttClient, filter: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const onPacket = (packet: Packet) => {
      if (packet.cmd !== 'suback') return;
      client.removeListener('packetreceive', onPacket);
      resolve(Number(packet.granted[0] ?? -1));
    };
    client.on('packetreceive', onPacket);
    client.subscribe(filter, { qos: 1 }, (err) => {
      if (err && !/Unspecified error|suback/i.test(err.message)) reject(err);
    });
  });
}
