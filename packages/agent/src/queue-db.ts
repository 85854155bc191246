import Database from 'better-sqlite3';

/**
 * The SQLite file behind offline queues: one device's (`new SqliteQueue(file, …)`, the
 * single-agent case) or many devices' (`new QueueDatabase(file)` given to every agent of a
 * gateway or a simulator as `deps.queues`). Rows carry their owner (the device id; '' for a
 * file of its own) and counters are kept per owner. WAL with synchronous=FULL as decided in
 * 0008; writes are group-committed across every queue of the file: all `add`s and acks of
 * all owners in the same tick share one transaction and one fsync
 * (docs/decisions/0027-shared-agent-queue.md).
 */

/** 0: the single-agent file before owners (no `owner` column, counters keyed by name). */
export const QUEUE_SCHEMA_VERSION = 1;

/** What a queue does in a group commit (SqliteQueue's part; not for applications). */
export interface GroupMember {
  /** Before the transaction: take what is pending and remember the in-memory state. */
  begin(): void;
  /** Inside the group's transaction: write what `begin` took. */
  write(): void;
  /** The transaction is on disk: settle what waited for it (no callbacks yet). */
  committed(): void;
  /** After every member of the group settled: run the queue's callbacks (they may start another commit). */
  notify(): void;
  /** The transaction rolled back: restore the in-memory state, refuse what waited. */
  failed(err: Error): void;
  /** The database was closed under the queue. */
  detach(): void;
}

export interface RowRef {
  readonly id: number;
  readonly bytes: number;
}
export interface StoredRow {
  readonly rowId: number;
  readonly topic: string;
  readonly body: string;
  readonly boot: string;
  readonly mono: number;
  readonly enqueuedAt: number;
}

/** The statements every queue of the file shares (prepared once, the owner a parameter). Used by SqliteQueue. */
export interface QueueRows {
  insert(owner: string, topic: string, body: string, boot: string, mono: number, bytes: number, at: number): void;
  /** Deletes the owner's row; its size, or undefined when it was not there. */
  delete(owner: string, id: number): number | undefined;
  oldest(owner: string, limit: number): RowRef[];
  after(owner: string, afterId: number, limit: number): StoredRow[];
  aged(owner: string, cutoff: number): RowRef[];
  totals(owner: string): { n: number; b: number };
  counters(owner: string): { name: string; value: number }[];
  addCounter(owner: string, name: string, n: number): void;
}

function prepareRows(db: Database.Database): QueueRows {
  const s = {
    insert: db.prepare('INSERT INTO queue (owner, topic, body, boot, mono, bytes, enqueued_at) VALUES (?, ?, ?, ?, ?, ?, ?)'),
    del: db.prepare('DELETE FROM queue WHERE id = ? AND owner = ? RETURNING bytes').pluck(),
    oldest: db.prepare('SELECT id, bytes FROM queue WHERE owner = ? ORDER BY id LIMIT ?'),
    after: db.prepare('SELECT id AS rowId, topic, body, boot, mono, enqueued_at AS enqueuedAt FROM queue WHERE owner = ? AND id > ? ORDER BY id LIMIT ?'),
    aged: db.prepare('SELECT id, bytes FROM queue WHERE owner = ? AND enqueued_at < ? ORDER BY id LIMIT 1000'),
    totals: db.prepare('SELECT count(*) AS n, coalesce(sum(bytes), 0) AS b FROM queue WHERE owner = ?'),
    counters: db.prepare('SELECT name, value FROM counters WHERE owner = ?'),
    counter: db.prepare('INSERT INTO counters (owner, name, value) VALUES (?, ?, ?) ON CONFLICT(owner, name) DO UPDATE SET value = value + excluded.value'),
  };
  return {
    insert: (owner, topic, body, boot, mono, bytes, at) => void s.insert.run(owner, topic, body, boot, mono, bytes, at),
    delete: (owner, id) => s.del.get(id, owner) as number | undefined,
    oldest: (owner, limit) => s.oldest.all(owner, limit) as RowRef[],
    after: (owner, afterId, limit) => s.after.all(owner, afterId, limit) as StoredRow[],
    aged: (owner, cutoff) => s.aged.all(owner, cutoff) as RowRef[],
    totals: (owner) => s.totals.get(owner) as { n: number; b: number },
    counters: (owner) => s.counters.all(owner) as { name: string; value: number }[],
    addCounter: (owner, name, n) => void s.counter.run(owner, name, n),
  };
}

/**
 * Creates the tables, or brings a file of an older agent up to date in place, in one
 * transaction: the `owner` column is added (existing rows belong to '', the owner of a file
 * of its own) with an index on (owner, id), and counters are re-keyed by (owner, name).
 */
function migrate(db: Database.Database, file: string): void {
  db.transaction(() => {
    const version = db.pragma('user_version', { simple: true }) as number;
    if (version === QUEUE_SCHEMA_VERSION) return;
    if (version > QUEUE_SCHEMA_VERSION) throw new Error(`${file}: queue schema ${version} was written by a newer agent (this one knows ${QUEUE_SCHEMA_VERSION})`);
    const columns = (table: string) => db.prepare('SELECT name FROM pragma_table_info(?)').pluck().all(table) as string[];
    const queue = columns('queue');
    if (queue.length === 0) {
      db.exec(`CREATE TABLE queue (id INTEGER PRIMARY KEY AUTOINCREMENT, topic TEXT NOT NULL, body TEXT NOT NULL, boot TEXT NOT NULL,
        mono INTEGER NOT NULL, bytes INTEGER NOT NULL, enqueued_at INTEGER NOT NULL, owner TEXT NOT NULL DEFAULT '')`);
    } else if (!queue.includes('owner')) db.exec(`ALTER TABLE queue ADD COLUMN owner TEXT NOT NULL DEFAULT ''`);
    db.exec('CREATE INDEX IF NOT EXISTS queue_owner ON queue (owner, id)');
    const counters = columns('counters');
    const create = (name: string) => `CREATE TABLE ${name} (owner TEXT NOT NULL, name TEXT NOT NULL, value INTEGER NOT NULL, PRIMARY KEY (owner, name)) WITHOUT ROWID`;
    if (counters.length === 0) db.exec(create('counters'));
    else if (!counters.includes('owner')) {
      db.exec(`${create('counters_by_owner')}; INSERT INTO counters_by_owner (owner, name, value) SELECT '', name, value FROM counters;
        DROP TABLE counters; ALTER TABLE counters_by_owner RENAME TO counters`);
    }
    db.pragma(`user_version = ${QUEUE_SCHEMA_VERSION}`);
  }).immediate();
}

export class QueueDatabase {
  readonly file: string;
  /** Row operations for the queues of this file (SqliteQueue's; not for applications). */
  readonly rows: QueueRows;
  readonly #db: Database.Database;
  readonly #members = new Map<string, GroupMember>();
  readonly #dirty = new Set<GroupMember>();
  #scheduled = false;
  #commits = 0;
  #closed = false;
  readonly #commitDelayMs: number;

  /**
   * `commitDelayMs`: how long a group gathers before its commit. 0 (the default) commits at the
   * end of the event-loop turn. A process hosting thousands of devices whose readings arrive
   * spread over time sets a few milliseconds: a commit (and its fsync, on the main thread) per
   * window instead of nearly one per reading, for that much latency added to each `send`.
   */
  constructor(file: string, o: { commitDelayMs?: number } = {}) {
    this.file = file;
    this.#commitDelayMs = o.commitDelayMs ?? 0;
    this.#db = new Database(file);
    try {
      this.#db.pragma('journal_mode = WAL');
      this.#db.pragma('synchronous = FULL');
      migrate(this.#db, file);
      this.rows = prepareRows(this.#db);
    } catch (err) {
      this.#db.close();
      throw err;
    }
  }

  /** Group commits so far: one transaction and one fsync each, however many queues took part. */
  get commits(): number {
    return this.#commits;
  }

  /** Queues open on this file now. */
  get open(): number {
    return this.#members.size;
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** A queue opens under its owner; one open queue per owner at a time. */
  join(owner: string, member: GroupMember): void {
    if (this.#closed) throw new Error(`the queue database ${this.file} is closed`);
    if (this.#members.has(owner)) throw new Error(`the queue of "${owner}" is already open in ${this.file}`);
    this.#members.set(owner, member);
  }

  leave(owner: string, member: GroupMember): void {
    if (this.#members.get(owner) === member) this.#members.delete(owner);
    this.#dirty.delete(member);
  }

  /** The member has something to write: it joins the group commit at the end of this tick. */
  schedule(member: GroupMember): void {
    if (this.#closed) return;
    this.#dirty.add(member);
    if (this.#scheduled) return;
    this.#scheduled = true;
    if (this.#commitDelayMs > 0) setTimeout(() => this.flush(), this.#commitDelayMs);
    else setImmediate(() => this.flush());
  }

  /** Commits what every queue of the file has pending now, in one transaction. */
  flush(): void {
    this.#scheduled = false;
    if (this.#closed || this.#dirty.size === 0) return;
    const members = [...this.#dirty];
    this.#dirty.clear();
    for (const m of members) m.begin();
    try {
      this.#db.transaction(() => {
        for (const m of members) m.write();
      })();
    } catch (err) {
      for (const m of members) m.failed(err as Error);
      return;
    }
    this.#commits += 1;
    for (const m of members) m.committed();
    // One queue's throwing callback must not keep the others' from running; the first error is thrown after.
    let thrown: unknown;
    for (const m of members) {
      try {
        m.notify();
      } catch (err) {
        thrown ??= err;
      }
    }
    if (thrown !== undefined) throw thrown;
  }

  /** Work of one queue outside the group commit (the age sweep), in a transaction of its own. */
  transaction<T>(fn: () => T): T {
    return this.#db.transaction(fn)();
  }

  /** Commits what is pending, closes every queue still open on the file, then the file. */
  close(): void {
    if (this.#closed) return;
    this.flush();
    this.#closed = true;
    for (const m of this.#members.values()) m.detach();
    this.#members.clear();
    this.#dirty.clear();
    this.#db.close();
  }
}
