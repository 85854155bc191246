import type { Credentials } from './certs.js';

/** What the load generator needs from each broker under test. */

export type BrokerName = 'bulwark' | 'mosquitto' | 'aedes';
export const BROKERS: readonly BrokerName[] = ['bulwark', 'mosquitto', 'aedes'];

export interface Identity {
  readonly id: string;
  readonly creds: Credentials;
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
  /** Identities for `n` idle sessions (Bulwark enrolls that many devices first). */
  sessionIdentities(n: number): Promise<Identity[]>;
  /** Subscribes to these devices' telemetry; calls `onMessage` with each message id as it arrives. Resolves once subscribed. */
  liveTap(deviceIds: readonly string[], onMessage: (msgId: string) => void): Promise<() => Promise<void>>;
  /** Bulwark only: how long GET /healthz takes, in ms. */
  healthz?(): Promise<number>;
  /** Bulwark only: pipeline outcome counters from /metrics. */
  counts?(): Promise<Record<string, number>>;
  stop(): Promise<void>;
}
