import type { Credentials } from './certs.js';

/** What the load generator needs from each broker under test. */

export type BrokerName = 'bulwark' | 'mosquitto' | 'aedes';
export const BROKERS: readonly BrokerName[] = ['bulwark', 'mosquitto', 'aedes'];

/** MQTT protocol level as mqtt.js names it: 4 is MQTT 3.1.1, 5 is MQTT 5. */
export type Protocol = 4 | 5;
export const protocolName = (p: Protocol): string => (p === 4 ? 'MQTT 3.1.1' : 'MQTT 5');

export interface Identity {
  readonly id: string;
  readonly creds: Credentials;
}

/** Counters read from Bulwark's /metrics. */
export interface Counts {
  /** bulwark_ingest_messages_total{transport="mqtt"} by outcome (stored, duplicate, dead_lettered, shed). */
  readonly outcomes: Record<string, number>;
  /** bulwark_mqtt_disconnects_total, all reasons. */
  readonly disconnects: number;
  /** bulwark_mqtt_publishes_held_total. */
  readonly held: number;
}

export interface Broker {
  readonly name: BrokerName;
  /** The process whose CPU and RSS are measured. */
  readonly pid: number;
  readonly port: number;
  /** Settings and facts worth printing with the results. */
  readonly notes: string[];
  /** Load device `i` (0-based). */
  device(i: number): Identity;
  /** Identities for `n` idle sessions. */
  sessionIdentities(n: number): Promise<Identity[]>;
  /** Subscribes to these devices' telemetry; calls `onMessage` with each message id as it arrives. Resolves once subscribed. */
  liveTap(deviceIds: readonly string[], protocol: Protocol, onMessage: (msgId: string) => void): Promise<() => Promise<void>>;
  /** Bulwark only: how long GET /healthz takes, in ms. */
  healthz?(): Promise<number>;
  /** Bulwark only: counters from /metrics. */
  counts?(): Promise<Counts>;
  /** Bulwark only: its HTTP API. */
  readonly url?: string;
  /** Bulwark only: messages in the ingest pipeline now. */
  pending?(): Promise<number>;
  stop(): Promise<void>;
}
