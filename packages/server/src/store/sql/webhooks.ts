import type { PendingBatch, WebhookChanges, WebhookDeadLetter, WebhookFilter, WebhookRecord, WebhookRepository, WebhookState } from '../../webhooks/index.js';
import type { SqlClient, SqlValue } from '../sql-client.js';
import { num } from './json.js';

interface WebhookRow {
  id: string;
  name: string;
  url: string;
  filter: string;
  secret: string;
  state: string;
  paused_reason: string | null;
  paused_at: number | null;
  feed: string;
  cursor: string;
  batch_id: string | null;
  batch_body: string | null;
  batch_size: number | null;
  batch_next: string | null;
  batch_first_at: number | null;
  attempts: number;
  next_attempt_at: number | null;
  last_error: string | null;
  last_attempt_at: number | null;
  last_success_at: number | null;
  last_received_at: number | null;
  delivered: number;
  created_by: string;
  created_at: number;
  updated_at: number;
}
interface DeadLetterRow {
  id: string;
  webhook_id: string;
  body: string;
  readings: number;
  attempts: number;
  last_error: string | null;
  failed_at: number;
  replayed_at: number | null;
  replay_result: string | null;
}

/** The batch under way; its newest receive time is read from its body (not a column of its own). */
const toBatch = (r: WebhookRow): PendingBatch | null =>
  r.batch_id === null || r.batch_body === null
    ? null
    : {
        id: r.batch_id,
        body: r.batch_body,
        size: Number(r.batch_size ?? 0),
        next: r.batch_next ?? r.cursor,
        lastReceivedAt: lastReceivedAt(r.batch_body),
        createdAt: Number(r.batch_first_at ?? 0),
      };

function lastReceivedAt(body: string): number {
  const readings = (JSON.parse(body) as { readings?: { receivedAt?: number }[] }).readings ?? [];
  return readings.reduce((max, x) => Math.max(max, x.receivedAt ?? 0), 0);
}

const toWebhook = (r: WebhookRow): WebhookRecord => ({
  id: r.id,
  name: r.name,
  url: r.url,
  filter: JSON.parse(r.filter) as WebhookFilter,
  secret: r.secret,
  state: r.state as WebhookState,
  pausedReason: r.paused_reason,
  pausedAt: num(r.paused_at),
  feed: r.feed,
  cursor: r.cursor,
  batch: toBatch(r),
  attempts: Number(r.attempts),
  nextAttemptAt: num(r.next_attempt_at),
  lastError: r.last_error,
  lastAttemptAt: num(r.last_attempt_at),
  lastSuccessAt: num(r.last_success_at),
  lastReceivedAt: num(r.last_received_at),
  delivered: Number(r.delivered),
  createdBy: r.created_by,
  createdAt: Number(r.created_at),
  updatedAt: Number(r.updated_at),
});

const toLetter = (r: DeadLetterRow): WebhookDeadLetter => ({
  id: r.id,
  webhookId: r.webhook_id,
  body: r.body,
  readings: Number(r.readings),
  attempts: Number(r.attempts),
  lastError: r.last_error,
  failedAt: Number(r.failed_at),
  replayedAt: num(r.replayed_at),
  replayResult: r.replay_result,
});

/** Column for each field a person may change. */
const CHANGE_COLUMNS: Readonly<Record<keyof WebhookChanges, string>> = {
  name: 'name',
  url: 'url',
  filter: 'filter',
  secret: 'secret',
  state: 'state',
  pausedReason: 'paused_reason',
  pausedAt: 'paused_at',
  attempts: 'attempts',
  nextAttemptAt: 'next_attempt_at',
};

export class SqlWebhookRepository implements WebhookRepository {
  constructor(private readonly db: SqlClient) {}

  async insert(w: WebhookRecord): Promise<void> {
    await this.db.run(
      `INSERT INTO webhooks (id, name, url, filter, secret, state, paused_reason, paused_at, feed, cursor, attempts, delivered, last_received_at, created_by, created_at, updated_at)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 0, 0, $11, $12, $13, $14)`,
      [w.id, w.name, w.url, JSON.stringify(w.filter), w.secret, w.state, w.pausedReason, w.pausedAt, w.feed, w.cursor, w.lastReceivedAt, w.createdBy, w.createdAt, w.updatedAt],
    );
  }

  async get(id: string): Promise<WebhookRecord | undefined> {
    const r = await this.db.get<WebhookRow>('SELECT * FROM webhooks WHERE id = $1', [id]);
    return r && toWebhook(r);
  }

  async list(): Promise<WebhookRecord[]> {
    return (await this.db.all<WebhookRow>('SELECT * FROM webhooks ORDER BY created_at, id')).map(toWebhook);
  }

  async update(id: string, changes: WebhookChanges, at: number): Promise<boolean> {
    const sets: string[] = [];
    const params: SqlValue[] = [id, at];
    for (const [key, value] of Object.entries(changes) as [keyof WebhookChanges, unknown][]) {
      if (value === undefined) continue;
      params.push(key === 'filter' ? JSON.stringify(value) : (value as SqlValue));
      sets.push(`${CHANGE_COLUMNS[key]} = $${params.length}`);
    }
    return (await this.db.run(`UPDATE webhooks SET ${[...sets, 'updated_at = $2'].join(', ')} WHERE id = $1`, params)) > 0;
  }

  delete(id: string): Promise<boolean> {
    return this.db.transaction(async (tx) => {
      await tx.run('DELETE FROM webhook_dead_letters WHERE webhook_id = $1', [id]);
      return (await tx.run('DELETE FROM webhooks WHERE id = $1', [id])) > 0;
    });
  }

  async advance(id: string, from: string, to: string): Promise<boolean> {
    return (await this.db.run('UPDATE webhooks SET cursor = $3 WHERE id = $1 AND cursor = $2 AND batch_id IS NULL', [id, from, to])) > 0;
  }

  async switchFeed(id: string, fromFeed: string, feed: string, cursor: string): Promise<boolean> {
    return (await this.db.run('UPDATE webhooks SET feed = $3, cursor = $4, batch_next = CASE WHEN batch_id IS NULL THEN NULL ELSE $4 END WHERE id = $1 AND feed = $2', [id, fromFeed, feed, cursor])) > 0;
  }

  async startBatch(id: string, from: string, b: PendingBatch): Promise<boolean> {
    return (
      (await this.db.run(
        `UPDATE webhooks SET batch_id = $3, batch_body = $4, batch_size = $5, batch_next = $6, batch_first_at = $7, attempts = 0, next_attempt_at = NULL
       WHERE id = $1 AND cursor = $2 AND batch_id IS NULL`,
        [id, from, b.id, b.body, b.size, b.next, b.createdAt],
      )) > 0
    );
  }

  async recordAttempt(id: string, batchId: string, o: { attempts: number; nextAttemptAt: number | null; error: string | null; at: number }): Promise<boolean> {
    return (await this.db.run('UPDATE webhooks SET attempts = $3, next_attempt_at = $4, last_error = $5, last_attempt_at = $6 WHERE id = $1 AND batch_id = $2', [id, batchId, o.attempts, o.nextAttemptAt, o.error, o.at])) > 0;
  }

  async completeBatch(id: string, batchId: string, at: number): Promise<boolean> {
    const row = await this.db.get<WebhookRow>('SELECT * FROM webhooks WHERE id = $1 AND batch_id = $2', [id, batchId]);
    if (!row) return false;
    const received = lastReceivedAt(row.batch_body ?? '{}');
    return (
      (await this.db.run(
        `UPDATE webhooks SET cursor = batch_next, delivered = delivered + batch_size, last_received_at = $3, last_success_at = $4, last_attempt_at = $4,
         last_error = NULL, attempts = 0, next_attempt_at = NULL, batch_id = NULL, batch_body = NULL, batch_size = NULL, batch_next = NULL, batch_first_at = NULL
       WHERE id = $1 AND batch_id = $2`,
        [id, batchId, received || null, at],
      )) > 0
    );
  }

  deadLetterBatch(id: string, batchId: string, d: WebhookDeadLetter, pausedReason: string, at: number): Promise<boolean> {
    return this.db.transaction(async (tx) => {
      const moved = await tx.run(
        `UPDATE webhooks SET cursor = batch_next, state = 'paused', paused_reason = $3, paused_at = $4, updated_at = $4, last_attempt_at = $4, last_error = $5,
           attempts = 0, next_attempt_at = NULL, batch_id = NULL, batch_body = NULL, batch_size = NULL, batch_next = NULL, batch_first_at = NULL
         WHERE id = $1 AND batch_id = $2`,
        [id, batchId, pausedReason, at, d.lastError],
      );
      if (moved === 0) return false;
      await tx.run(
        `INSERT INTO webhook_dead_letters (id, webhook_id, body, readings, attempts, last_error, failed_at, replayed_at, replay_result)
         VALUES ($1, $2, $3, $4, $5, $6, $7, NULL, NULL)`,
        [d.id, d.webhookId, d.body, d.readings, d.attempts, d.lastError, d.failedAt],
      );
      return true;
    });
  }

  async listDeadLetters(webhookId: string, limit: number): Promise<WebhookDeadLetter[]> {
    return (await this.db.all<DeadLetterRow>(`SELECT * FROM webhook_dead_letters WHERE webhook_id = $1 ORDER BY failed_at DESC, id LIMIT ${Math.trunc(limit)}`, [webhookId])).map(toLetter);
  }

  async getDeadLetter(webhookId: string, id: string): Promise<WebhookDeadLetter | undefined> {
    const r = await this.db.get<DeadLetterRow>('SELECT * FROM webhook_dead_letters WHERE webhook_id = $1 AND id = $2', [webhookId, id]);
    return r && toLetter(r);
  }

  async markReplayed(id: string, at: number, result: string): Promise<void> {
    await this.db.run('UPDATE webhook_dead_letters SET replayed_at = $2, replay_result = $3 WHERE id = $1', [id, at, result]);
  }
}
