import type { TelemetryRecord } from './ingest.js';

/**
 * The stored readings as one ordered, durable log that integrations (webhooks, replay) read
 * with a cursor they keep themselves. Embedded mode reads the store, where one writer commits
 * in order; cluster mode reads the JetStream telemetry stream, whose sequence is the order.
 * Within one device, entries come in the order the platform acknowledged them.
 */
export interface FeedFilter {
  /** Schema ids (`name@version`); empty or absent: every schema. */
  readonly schemaIds?: readonly string[];
  /** Device ids; empty or absent: every device. */
  readonly deviceIds?: readonly string[];
}

export interface FeedEntry {
  /** Opaque, ordered position of this entry; stable across reads (a redelivery has the same one). */
  readonly position: string;
  readonly record: TelemetryRecord;
}

export interface FeedPage {
  readonly entries: readonly FeedEntry[];
  /** The position to read after next time (past entries the filter skipped, too). */
  readonly next: string;
  /**
   * Entries between `after` and the oldest still kept were removed (retention, stream
   * limits) before this reader got them: how many, when the feed can tell; 0 otherwise.
   */
  readonly skipped: number;
}

export interface TelemetryFeed {
  /** Entries after `after`, oldest first, at most `limit`, matching `filter`. */
  read(after: string, filter: FeedFilter, limit: number): Promise<FeedPage>;
  /** The position of the newest entry now ("0" when empty): where a new reader starts to get only what comes next. */
  head(): Promise<string>;
  /** The position just before the first entry received at or after `sinceMs` (for replays from a time). */
  positionAt(sinceMs: number): Promise<string>;
}
