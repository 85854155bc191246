import type { LogLevel } from '@bulwark/protocol';

/** A device log entry as it travels between nodes (numbered by the node that received it). */
export interface RelayedLogEntry {
  /** Per device, increasing; lets a reader continue where it stopped. */
  readonly seq: number;
  readonly receivedAt: number;
  readonly ts: number;
  readonly level: LogLevel;
  readonly msg: string;
  readonly data?: Readonly<Record<string, unknown>>;
}

/**
 * Platform events that cross contexts. In embedded mode they stay in the process; scale-out
 * carries them over NATS so every node hears them (a revocation must disconnect the device
 * on whichever node holds its session).
 */
export type PlatformEvent =
  | { readonly type: 'device.suspended'; readonly deviceId: string }
  | { readonly type: 'device.decommissioned'; readonly deviceId: string }
  | { readonly type: 'certificate.revoked'; readonly deviceId: string; readonly serial: string; readonly reason: string }
  | { readonly type: 'crl.updated'; readonly caId: string; readonly crlNumber: number }
  | { readonly type: 'trust.changed' }
  /** An operator asked `nodeId` to drain: leave the load balancer, then end its sessions spread over `spreadMs`. */
  | { readonly type: 'node.drain'; readonly nodeId: string; readonly spreadMs: number }
  /**
   * A remote-log window opened (`level` set) or closing (`level` null: batches still on their way
   * land until `until`): every node keeps the window, since the device may send from any of them.
   */
  | { readonly type: 'logs.window'; readonly deviceId: string; readonly until: number; readonly level: LogLevel | null }
  /** Log entries a node accepted from a device, numbered there, for the readers on every node. */
  | { readonly type: 'logs.entries'; readonly deviceId: string; readonly until: number; readonly level: LogLevel; readonly dropped: number; readonly entries: readonly RelayedLogEntry[] }
  /**
   * A command was recorded for a device and the node that recorded it could not deliver it (the
   * device offline as that node saw it, or its session moving between nodes): the node holding
   * the device's session sends what waits, so a command never waits for the device's next connect.
   */
  | { readonly type: 'commands.waiting'; readonly deviceId: string }
  /** The same for a new desired configuration: the node holding the device's session sends it. */
  | { readonly type: 'twin.waiting'; readonly deviceId: string }
  /** A device's data was erased or pseudonymised (end of life, erasure request): every node drops what it holds in memory about it (log rings). */
  | { readonly type: 'device.data-erased'; readonly deviceId: string }
  /** Alert rules, silences or channels changed on some node: every node reloads them. */
  | { readonly type: 'alerts.changed' }
  /** A principal was disabled (keyId null) or one of its API keys revoked: live streams opened with it close. */
  | { readonly type: 'credentials.revoked'; readonly principalId: string; readonly keyId: string | null; readonly reason: 'principal_disabled' | 'key_revoked' };

export type EventType = PlatformEvent['type'];
export type EventOf<T extends EventType> = Extract<PlatformEvent, { type: T }>;
export type Handler<T extends EventType> = (event: EventOf<T>) => void | Promise<void>;

export interface EventBus {
  publish(event: PlatformEvent): Promise<void>;
  /** Returns a function that unsubscribes. */
  subscribe<T extends EventType>(type: T, handler: Handler<T>): () => void;
  close(): Promise<void>;
}
