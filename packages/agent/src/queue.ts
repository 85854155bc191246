import { type GroupMember, QueueDatabase, type QueueRows } from './queue-db.js';

/**
 * The offline queue: every telemetry reading and event is written here before anything
 * else, and deleted only when the platform acknowledged it (PUBACK). A SQLite file in WAL
 * mode with synchronous=FULL: a committed row survives a killed process and a power cut
 * (docs/decisions/0008-agent-offline-queue.md). Writes are group-committed: every `add` in
 * the same tick shares one transaction and one fsync, and its promise resolves only after
 * that commit. Bounded by count, bytes and age; past a bound the oldest rows are dropped
 * and counted by reason.
 *
 * The file is the queue's own (`new SqliteQueue(file, limits)`), or a QueueDatabase that
 * holds the queues of many devices (`new SqliteQueue({ db, owner: deviceId }, limits)`):
 * then rows, bounds and counters are still this owner's alone, and the group commit takes
 * in every queue of the file (docs/decisions/0027-shared-agent-queue.md).
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

interface Pending {
  item: QueueItem;
  resolve: () => void;
  reject: (err: Error) => void;
}

/** What a group commit took from this queue, and the state to go back to if it rolls back. */
interface InFlight {
  readonly pending: Pending[];
  readonly acks: number[];
  readonly depth: number;
  readonly bytes: number;
  readonly counters: QueueCounters;
  readonly sentPersisted: number;
}

/** Where a queue lives: its own file, or one owner's part of a shared QueueDatabase. */
export type QueueLocation = string | { readonly db: QueueDatabase; readonly owner: string };

export class SqliteQueue {
  /** The device whose rows these are ('' in a file of its own). */
  readonly owner: string;
  readonly #db: QueueDatabase;
  readonly #ownsDb: boolean;
  readonly #rows: QueueRows;
  readonly #member: GroupMember;
  readonly #limits: QueueLimits;
  readonly #now: () => number;
  #counters: QueueCounters;
  #depth = 0;
  #bytes = 0;
  #pending: Pending[] = [];
  #acks: number[] = [];
  #inFlight: InFlight | undefined;
  #sentPersisted = 0;
  #closed = false;

  constructor(where: QueueLocation, limits: QueueLimits, now: () => number = Date.now) {
    this.#limits = limits;
    this.#now = now;
    this.#ownsDb = typeof where === 'string';
    this.#db = typeof where === 'string' ? new QueueDatabase(where) : where.db;
    this.owner = typeof where === 'string' ? '' : where.owner;
    this.#rows = this.#db.rows;
    // Bound methods, not arrow functions: see Agent#platformNow on what each arrow costs here.
    this.#member = {
      begin: this.#begin.bind(this),
      write: this.#write.bind(this),
      committed: this.#committed.bind(this),
      notify: this.#notify.bind(this),
      failed: this.#failed.bind(this),
      detach: this.#detach.bind(this),
    };
    try {
      this.#db.join(this.owner, this.#member);
    } catch (err) {
      if (this.#ownsDb) this.#db.close();
      throw err;
    }
    const totals = this.#rows.totals(this.owner);
    this.#depth = totals.n;
    this.#bytes = totals.b;
    this.#counters = Object.fromEntries(COUNTER_NAMES.map((n) => [n, 0])) as QueueCounters;
    for (const row of this.#rows.counters(this.owner)) {
      if (row.name in this.#counters) this.#counters[row.name as CounterName] = row.value;
    }
    this.#sentPersisted = this.#counters.sent;
  }

  /** Resolves once the item is durable (its group commit is on disk). */
  add(item: QueueItem): Promise<void> {
    if (this.#closed) return Promise.reject(new Error('the queue is closed'));
    // Checked here, not in the commit: a malformed item must not fail the other queues' rows of the group.
    if (typeof item.topic !== 'string' || typeof item.body !== 'string' || typeof item.boot !== 'string' || !Number.isFinite(item.mono)) {
      return Promise.reject(new TypeError('a queue item needs a string topic, body and boot and a finite mono'));
    }
    return new Promise((resolve, reject) => {
      this.#pending.push({ item, resolve, reject });
      this.#db.schedule(this.#member);
    });
  }

  /** Marks rows as acknowledged by the platform; deleted in the next group commit. */
  ack(rowIds: readonly number[]): void {
    if (this.#closed) return;
    this.#acks.push(...rowIds);
    this.#db.schedule(this.#member);
  }

  /** Counts a row handed to the transport (kept in memory until the next commit). */
  markSent(n: number): void {
    this.#counters.sent += n;
  }

  /** Up to `limit` rows after `afterRowId`, oldest first. */
  after(afterRowId: number, limit: number): QueuedRow[] {
    if (this.#closed) return [];
    return this.#rows.after(this.owner, afterRowId, limit);
  }

  /** Drops rows older than the age bound; returns how many. */
  purgeAged(): number {
    if (this.#closed) return 0;
    const cutoff = this.#now() - this.#limits.maxAgeMs;
    // Most sweeps find nothing: only a sweep that drops opens a write transaction.
    if (this.#rows.aged(this.owner, cutoff).length === 0) return 0;
    return this.#db.transaction(() => {
      let dropped = 0;
      for (;;) {
        const rows = this.#rows.aged(this.owner, cutoff);
        if (rows.length === 0) break;
        for (const r of rows) this.#delete(r.id);
        dropped += rows.length;
      }
      if (dropped > 0) this.#bump('dropped_age', dropped);
      return dropped;
    });
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

  /** Commits whatever is pending now, this queue's and every other queue's of the same file (also called on close). */
  flush(): void {
    if (!this.#closed) this.#db.flush();
  }

  /** Called after each group commit this queue took part in (the agent watches for an empty queue here). */
  afterCommit: (() => void) | undefined;

  /** Commits what is pending and closes this queue; a shared QueueDatabase stays open for the others. */
  close(): void {
    if (this.#closed) return;
    if (this.#ownsDb) return this.#db.close();
    this.#db.flush();
    this.#db.leave(this.owner, this.#member);
    this.#detach();
  }

  #notify(): void {
    this.afterCommit?.();
  }

  #begin(): void {
    this.#inFlight = {
      pending: this.#pending,
      acks: this.#acks,
      depth: this.#depth,
      bytes: this.#bytes,
      counters: { ...this.#counters },
      sentPersisted: this.#sentPersisted,
    };
    this.#pending = [];
    this.#acks = [];
  }

  #write(): void {
    const { pending, acks } = this.#inFlight ?? { pending: [], acks: [] };
    let acked = 0;
    for (const id of acks) if (this.#delete(id)) acked += 1;
    if (acked > 0) this.#bump('acked', acked);
    const at = this.#now();
    for (const { item } of pending) {
      const bytes = Buffer.byteLength(item.body) + item.topic.length;
      this.#rows.insert(this.owner, item.topic, item.body, item.boot, item.mono, bytes, at);
      this.#depth += 1;
      this.#bytes += bytes;
    }
    if (pending.length > 0) this.#bump('queued', pending.length);
    this.#enforceBounds();
    const unsaved = this.#counters.sent - this.#sentPersisted;
    if (unsaved > 0) this.#rows.addCounter(this.owner, 'sent', unsaved);
    this.#sentPersisted = this.#counters.sent;
  }

  #committed(): void {
    const done = this.#inFlight;
    this.#inFlight = undefined;
    for (const p of done?.pending ?? []) p.resolve();
  }

  /** The transaction rolled back: nothing of it is on disk. Acks are kept for the next commit (a lost one only means a duplicate). */
  #failed(err: Error): void {
    const f = this.#inFlight;
    this.#inFlight = undefined;
    if (!f) return;
    this.#depth = f.depth;
    this.#bytes = f.bytes;
    this.#counters = { ...f.counters, sent: this.#counters.sent };
    this.#sentPersisted = f.sentPersisted;
    this.#acks = [...f.acks, ...this.#acks];
    for (const p of f.pending) p.reject(err);
  }

  #detach(): void {
    this.#closed = true;
    const left = this.#pending;
    this.#pending = [];
    for (const p of left) p.reject(new Error('the queue is closed'));
  }

  #delete(id: number): boolean {
    const bytes = this.#rows.delete(this.owner, id);
    if (bytes === undefined) return false;
    this.#depth -= 1;
    this.#bytes -= bytes;
    return true;
  }

  /** Oldest first, until the queue is inside its count and byte bounds. */
  #enforceBounds(): void {
    const { maxItems, maxBytes } = this.#limits;
    while (this.#depth > maxItems || this.#bytes > maxBytes) {
      const byCount = this.#depth > maxItems;
      const want = byCount ? Math.min(this.#depth - maxItems, 1000) : 100;
      const rows = this.#rows.oldest(this.owner, want);
      if (rows.length === 0) break;
      let n = 0;
      for (const r of rows) {
        if (!byCount && this.#bytes <= maxBytes) break;
        this.#delete(r.id);
        n += 1;
      }
      this.#bump(byCount ? 'dropped_count' : 'dropped_bytes', n);
    }
  }

  /** Counts and persists (inside the caller's transaction). */
  #bump(name: CounterName, n: number): void {
    this.#counters[name] += n;
    this.#rows.addCounter(this.owner, name, n);
  }
}
