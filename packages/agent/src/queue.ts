import Database from 'better-sqlite3';

/**
 * The offline queue: every telemetry reading and event is written here before anything
 * else, and deleted only when the platform acknowledged it (PUBACK). One SQLite file in WAL
 * mode with synchronous=FULL: a committed row survives a killed process and a power cut
 * (docs/decisions/0008-agent-offline-queue.md). Writes are group-committed: every `add` in
 * the same tick shares one transaction and one fsync, and its promise resolves only after
 * that commit. Bounded by count, bytes and age; past a bound the oldest rows are dropped
 * and counted by reason.
 */

export interface QueueLimits {
  readonly maxItems: number;
  readonly maxBytes: number;
  readonly maxAgeMs: number;
}

export interface QueueItem {
  readonly topic: string;
  /** The message as JSON text. */
  readonly body: string;
  readonly boot: string;
  readonly mono: number;
}

export interface QueuedRow extends QueueItem {
  readonly rowId: number;
  readonly enqueuedAt: number;
}

export const COUNTER_NAMES = ['queued', 'sent', 'acked', 'dropped_count', 'dropped_bytes', 'dropped_age'] as const;
export type CounterName = (typeof COUNTER_NAMES)[number];
export type QueueCounters = Record<CounterName, number>;

/** Readings dropped for any reason (count, bytes, age): what the health report's queueDropped says. */
export const droppedOf = (c: QueueCounters): number => c.dropped_count + c.dropped_bytes + c.dropped_age;

interface Pending { item: QueueItem; resolve: () => void; reject: (err: Error) => void }

export class SqliteQueue {
  readonly #db: Database.Database;
  readonly #limits: QueueLimits;
  readonly #now: () => number;
  readonly #counters: QueueCounters;
  #depth = 0;
  #bytes = 0;
  #pending: Pending[] = [];
  #acks: number[] = [];
  #flushScheduled = false;
  #closed = false;
  readonly #stmt: {
    insert: Database.Statement; del: Database.Statement; oldest: Database.Statement; after: Database.Statement;
    aged: Database.Statement; counter: Database.Statement;
  };

  constructor(file: string, limits: QueueLimits, now: () => number = Date.now) {
    this.#limits = limits;
    this.#now = now;
    this.#db = new Database(file);
    this.#db.pragma('journal_mode = WAL');
    this.#db.pragma('synchronous = FULL');
    this.#db.exec(`
      CREATE TABLE IF NOT EXISTS queue (id INTEGER PRIMARY KEY AUTOINCREMENT, topic TEXT NOT NULL, body TEXT NOT NULL,
        boot TEXT NOT NULL, mono INTEGER NOT NULL, bytes INTEGER NOT NULL, enqueued_at INTEGER NOT NULL);
      CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);`);
    this.#stmt = {
      insert: this.#db.prepare('INSERT INTO queue (topic, body, boot, mono, bytes, enqueued_at) VALUES (?, ?, ?, ?, ?, ?)'),
      del: this.#db.prepare('DELETE FROM queue WHERE id = ? RETURNING bytes'),
      oldest: this.#db.prepare('SELECT id, bytes FROM queue ORDER BY id LIMIT ?'),
      after: this.#db.prepare('SELECT id AS rowId, topic, body, boot, mono, enqueued_at AS enqueuedAt FROM queue WHERE id > ? ORDER BY id LIMIT ?'),
      aged: this.#db.prepare('SELECT id, bytes FROM queue WHERE enqueued_at < ? ORDER BY id LIMIT 1000'),
      counter: this.#db.prepare('INSERT INTO counters (name, value) VALUES (?, ?) ON CONFLICT(name) DO UPDATE SET value = value + excluded.value'),
    };
    const totals = this.#db.prepare('SELECT count(*) AS n, coalesce(sum(bytes), 0) AS b FROM queue').get() as { n: number; b: number };
    this.#depth = totals.n;
    this.#bytes = totals.b;
    this.#counters = Object.fromEntries(COUNTER_NAMES.map((n) => [n, 0])) as QueueCounters;
    for (const row of this.#db.prepare('SELECT name, value FROM counters').all() as { name: CounterName; value: number }[]) {
      if (row.name in this.#counters) this.#counters[row.name] = row.value;
    }
  }

  /** Resolves once the item is durable (its group commit is on disk). */
  add(item: QueueItem): Promise<void> {
    if (this.#closed) return Promise.reject(new Error('the queue is closed'));
    return new Promise((resolve, reject) => {
      this.#pending.push({ item, resolve, reject });
      this.#schedule();
    });
  }

  /** Marks rows as acknowledged by the platform; deleted in the next group commit. */
  ack(rowIds: readonly number[]): void {
    this.#acks.push(...rowIds);
    this.#schedule();
  }

  /** Counts a row handed to the transport (kept in memory until the next commit). */
  markSent(n: number): void {
    this.#bump('sent', n, false);
  }

  /** Up to `limit` rows after `afterRowId`, oldest first. */
  after(afterRowId: number, limit: number): QueuedRow[] {
    return this.#stmt.after.all(afterRowId, limit) as QueuedRow[];
  }

  /** Drops rows older than the age bound; returns how many. */
  purgeAged(): number {
    const cutoff = this.#now() - this.#limits.maxAgeMs;
    let dropped = 0;
    this.#db.transaction(() => {
      for (;;) {
        const rows = this.#stmt.aged.all(cutoff) as { id: number; bytes: number }[];
        if (rows.length === 0) break;
        for (const r of rows) this.#delete(r.id);
        dropped += rows.length;
      }
      if (dropped > 0) this.#bump('dropped_age', dropped, true);
    })();
    return dropped;
  }

  get depth(): number {
    return this.#depth;
  }

  get bytes(): number {
    return this.#bytes;
  }

  counters(): QueueCounters {
    return { ...this.#counters };
  }

  /** Commits whatever is pending now (also called on close). */
  flush(): void {
    this.#flushScheduled = false;
    if (this.#closed) return;
    const pending = this.#pending;
    const acks = this.#acks;
    this.#pending = [];
    this.#acks = [];
    if (pending.length === 0 && acks.length === 0) return;
    try {
      this.#db.transaction(() => {
        let acked = 0;
        for (const id of acks) if (this.#delete(id)) acked += 1;
        if (acked > 0) this.#bump('acked', acked, true);
        const at = this.#now();
        for (const { item } of pending) {
          const bytes = Buffer.byteLength(item.body) + item.topic.length;
          this.#stmt.insert.run(item.topic, item.body, item.boot, item.mono, bytes, at);
          this.#depth += 1;
          this.#bytes += bytes;
        }
        if (pending.length > 0) this.#bump('queued', pending.length, true);
        this.#enforceBounds();
        this.#persistSent();
      })();
    } catch (err) {
      for (const p of pending) p.reject(err as Error);
      return;
    }
    for (const p of pending) p.resolve();
    this.afterCommit?.();
  }

  /** Called after each group commit (the agent watches for an empty queue here). */
  afterCommit: (() => void) | undefined;

  close(): void {
    if (this.#closed) return;
    this.flush();
    this.#closed = true;
    this.#db.close();
  }

  #sentPersisted = 0;

  #persistSent(): void {
    const delta = this.#counters.sent - this.#sentPersisted;
    if (delta > 0) this.#stmt.counter.run('sent', delta);
    this.#sentPersisted = this.#counters.sent;
  }

  #schedule(): void {
    if (this.#flushScheduled) return;
    this.#flushScheduled = true;
    setImmediate(() => this.flush());
  }

  #delete(id: number): boolean {
    const row = this.#stmt.del.get(id) as { bytes: number } | undefined;
    if (!row) return false;
    this.#depth -= 1;
    this.#bytes -= row.bytes;
    return true;
  }

  /** Oldest first, until the queue is inside its count and byte bounds. */
  #enforceBounds(): void {
    const { maxItems, maxBytes } = this.#limits;
    while (this.#depth > maxItems || this.#bytes > maxBytes) {
      const byCount = this.#depth > maxItems;
      const want = byCount ? Math.min(this.#depth - maxItems, 1000) : 100;
      const rows = this.#stmt.oldest.all(want) as { id: number; bytes: number }[];
      if (rows.length === 0) break;
      let n = 0;
      for (const r of rows) {
        if (!byCount && this.#bytes <= maxBytes) break;
        this.#delete(r.id);
        n += 1;
      }
      this.#bump(byCount ? 'dropped_count' : 'dropped_bytes', n, true);
    }
  }

  #bump(name: CounterName, n: number, persist: boolean): void {
    this.#counters[name] += n;
    if (persist) this.#stmt.counter.run(name, n);
    if (name === 'sent' && persist) this.#sentPersisted += n;
  }
}
