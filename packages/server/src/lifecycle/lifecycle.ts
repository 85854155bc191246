/** What happens to the data held about a device at the end of its life (or on request). */
export type DataPolicy = 'keep' | 'erase' | 'pseudonymise';
export const DATA_POLICIES: readonly DataPolicy[] = ['keep', 'erase', 'pseudonymise'];

/** Rows of each kind of data about one device: erased, moved under a pseudonym, or (keep) held. */
/** What the store holds of a device (the rest of DataCounts is held elsewhere). */
export type StoredCounts = Omit<DataCounts, 'logs' | 'streamMessages'>;

export interface DataCounts {
  readonly telemetry: number;
  readonly rollups: number;
  /** The webhooks' feed of stored readings (ids and times). */
  readonly feed: number;
  readonly deadLetters: number;
  readonly health: number;
  readonly events: number;
  readonly twin: number;
  readonly commands: number;
  readonly alerts: number;
  readonly alertNotifications: number;
  /** Webhook dead letters (batches of several devices' readings): this device's readings in them. */
  readonly webhookDeadLetterReadings: number;
  /** Unused claim tokens. */
  readonly claimTokens: number;
  /** Cluster mode: the device's readings and dead letters purged from the telemetry streams (0 in embedded mode, and with data=keep). */
  readonly streamMessages: number;
  /** Log lines held in memory by this node for live log streams. */
  readonly logs: number;
}

/**
 * The store side of the data policy, over every table that holds data about a device. `erase`
 * deletes; `pseudonymise` moves readings (telemetry, rollups, their feed, webhook dead
 * letters) under the pseudonym and deletes the rest, which describes the device rather than
 * what it measured. Each runs in one transaction.
 */
export interface DeviceDataRepository {
  count(deviceId: string): Promise<StoredCounts>;
  erase(deviceId: string): Promise<StoredCounts>;
  pseudonymise(deviceId: string, pseudonym: string): Promise<StoredCounts>;
}

export type ReceiptKind = 'decommission' | 'erasure' | 'transfer';

/** What was done, signed by the platform (Ed25519) so that anyone holding its receipt key can check it later. */
export interface Receipt {
  readonly id: string;
  readonly kind: ReceiptKind;
  readonly deviceId: string;
  readonly at: number;
  readonly by: string;
  readonly policy: DataPolicy;
  /** Serials of the certificates revoked by this operation. */
  readonly revoked: string[];
  /** Job entries and commands that were waiting for the device and were cancelled. */
  readonly cancelled: { readonly jobEntries: number; readonly commands: number };
  /** Rows erased or pseudonymised (for keep: held, as counted). */
  readonly data: DataCounts;
  /** pseudonymise: the id the readings are kept under. */
  readonly pseudonym: string | null;
  /** transfer: the owners before and after, and when the new claim token expires. */
  readonly transfer: { readonly from: string | null; readonly to: string; readonly claimTokenExpiresAt: number } | null;
  /** The signing key's id (SHA-256 of its public key, hex, first 16 characters). */
  readonly keyId: string;
}

export interface SignedReceipt extends Receipt {
  /** Ed25519 over the receipt's canonical JSON (keys sorted, without `signature`), base64url. */
  readonly signature: string;
}
