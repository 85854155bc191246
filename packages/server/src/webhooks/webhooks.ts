/**
 * Webhook subscriptions: stored readings that match a filter, delivered in signed batches
 * over HTTPS, at least once and in order per device (docs/decisions/0018).
 */

/** Which readings a subscription gets. Empty lists do not narrow; tags and devices together name devices (either matches). */
export interface WebhookFilter {
  readonly schemaIds: readonly string[];
  readonly deviceIds: readonly string[];
  /** Devices carrying any of these tags (resolved through the registry while delivering). */
  readonly tags: readonly string[];
  /** Devices in any of these device groups (resolved the same way); absent in webhooks made before groups. */
  readonly groups?: readonly string[];
}

export type WebhookState = 'active' | 'paused';

/** The batch under way: delivered as it is, again and again, until it is taken or dead-lettered. */
export interface PendingBatch {
  readonly id: string;
  /** The exact JSON sent (the signature is made anew on every attempt). */
  readonly body: string;
  readonly size: number;
  /** The feed position after this batch: the cursor once it is delivered. */
  readonly next: string;
  /** Latest receive time among its readings (where a reader of another feed starts again). */
  readonly lastReceivedAt: number;
  readonly createdAt: number;
}

/** A subscription as stored. `secret` is sealed by the vault. */
export interface WebhookRecord {
  readonly id: string;
  readonly name: string;
  readonly url: string;
  readonly filter: WebhookFilter;
  readonly secret: string;
  readonly state: WebhookState;
  readonly pausedReason: string | null;
  readonly pausedAt: number | null;
  /** Name of the feed `cursor` is a position of (positions of one feed mean nothing in another). */
  readonly feed: string;
  readonly cursor: string;
  readonly batch: PendingBatch | null;
  /** Failed attempts of the batch under way. */
  readonly attempts: number;
  readonly nextAttemptAt: number | null;
  readonly lastError: string | null;
  readonly lastAttemptAt: number | null;
  readonly lastSuccessAt: number | null;
  /** Receive time of the newest reading delivered. */
  readonly lastReceivedAt: number | null;
  /** Readings delivered so far. */
  readonly delivered: number;
  readonly createdBy: string;
  readonly createdAt: number;
  readonly updatedAt: number;
}

/** A batch that failed every attempt, kept (with its id and body) to be listed and replayed. */
export interface WebhookDeadLetter {
  readonly id: string;
  readonly webhookId: string;
  readonly body: string;
  readonly readings: number;
  readonly attempts: number;
  readonly lastError: string | null;
  readonly failedAt: number;
  readonly replayedAt: number | null;
  readonly replayResult: string | null;
}

/** Changes people make; each bumps updatedAt, which tells a running delivery loop to reload. */
export interface WebhookChanges {
  readonly name?: string;
  readonly url?: string;
  readonly filter?: WebhookFilter;
  readonly secret?: string;
  readonly state?: WebhookState;
  readonly pausedReason?: string | null;
  readonly pausedAt?: number | null;
  /** Resuming clears the failure count, so the batch under way gets a full set of attempts. */
  readonly attempts?: number;
  readonly nextAttemptAt?: number | null;
}

/**
 * Where subscriptions live. The delivery loop's writes are conditional (on the cursor or on
 * the batch id it holds), so a loop that lost its lease to another node changes nothing.
 */
export interface WebhookRepository {
  insert(w: WebhookRecord): Promise<void>;
  get(id: string): Promise<WebhookRecord | undefined>;
  list(): Promise<WebhookRecord[]>;
  /** False when no such subscription. */
  update(id: string, changes: WebhookChanges, at: number): Promise<boolean>;
  /** Deletes the subscription and its dead letters. */
  delete(id: string): Promise<boolean>;
  /** Moves the cursor (nothing to deliver up to `to`), only from `from` and with no batch under way. */
  advance(id: string, from: string, to: string): Promise<boolean>;
  /** Moves to another feed: the cursor becomes `cursor` of `feed`, and a batch under way is kept. */
  switchFeed(id: string, fromFeed: string, feed: string, cursor: string): Promise<boolean>;
  /** Records a new batch, only from cursor `from` and with none under way. */
  startBatch(id: string, from: string, batch: PendingBatch): Promise<boolean>;
  recordAttempt(id: string, batchId: string, outcome: { attempts: number; nextAttemptAt: number | null; error: string | null; at: number }): Promise<boolean>;
  /** The batch was taken: the cursor moves past it and the failure count starts again. */
  completeBatch(id: string, batchId: string, at: number): Promise<boolean>;
  /** The batch failed every attempt: to the dead letters, the cursor past it, the subscription paused; one transaction. */
  deadLetterBatch(id: string, batchId: string, letter: WebhookDeadLetter, pausedReason: string, at: number): Promise<boolean>;
  listDeadLetters(webhookId: string, limit: number): Promise<WebhookDeadLetter[]>;
  getDeadLetter(webhookId: string, id: string): Promise<WebhookDeadLetter | undefined>;
  markReplayed(id: string, at: number, result: string): Promise<void>;
}
