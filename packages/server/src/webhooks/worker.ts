import type { Clock, IdGen, Logger } from '@bulwark/core';
import type { FeedFilter, TelemetryFeed } from '../ingest/index.js';
import { type BackoffSettings, backoffMs } from './backoff.js';
import type { DeliveryRequest, DeliveryResult } from './delivery.js';
import type { WebhookMetrics } from './metrics.js';
import type { PendingBatch, WebhookRecord, WebhookRepository } from './webhooks.js';

export interface DispatchSettings extends BackoffSettings {
  /** Readings per batch at most. */
  readonly batchMaxReadings: number;
  /** Failed attempts after which a batch goes to the dead letters and the subscription pauses. */
  readonly maxAttempts: number;
  /** How often an idle loop looks for new readings (sooner when this node stores one) and for changed subscriptions. */
  readonly pollIntervalMs: number;
}

/** Waits `ms`, or less when `signal` aborts; injected so that tests do not sleep. */
export type Sleep = (ms: number, signal: AbortSignal) => Promise<void>;

export const realSleep: Sleep = (ms, signal) =>
  new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done);
  });

export interface WorkerDeps {
  readonly repo: WebhookRepository;
  readonly feed: TelemetryFeed;
  /** Name of `feed` (cursors of another feed are moved to this one). */
  readonly feedName: string;
  readonly delivery: { deliver(req: DeliveryRequest): Promise<DeliveryResult> };
  readonly openSecret: (w: WebhookRecord) => Promise<string>;
  /** Ids of the devices that carry any of the tags, now. */
  readonly devicesWithTags: (tags: readonly string[]) => Promise<string[]>;
  /** Ids of the devices in any of the groups, now (a group that is gone selects none). */
  readonly devicesInGroups: (groups: readonly string[]) => Promise<string[]>;
  readonly clock: Clock;
  readonly ids: IdGen;
  readonly random: () => number;
  readonly sleep: Sleep;
  readonly settings: DispatchSettings;
  readonly metrics: WebhookMetrics;
  readonly log: Logger;
  /** Told when a subscription paused itself (for the audit log). */
  readonly onAutoPause: (w: WebhookRecord, reason: string) => void;
}

/** No device id holds NUL: a filter that matches no device. */
const NO_DEVICE = '\u0000';

/**
 * The delivery loop of one subscription. Each turn reloads it from the store and does one
 * thing: start a batch from the feed after the cursor, or attempt the batch under way. The
 * cursor moves only when a batch was taken (2xx), so a batch that fails is sent again, as
 * it is and with the same ids, before anything after it: order per device holds.
 */
export class SubscriptionWorker {
  /** Set while the loop waits for new readings (not while it waits to retry). */
  #wake: AbortController | undefined;
  /** New readings were announced since the loop last read the feed. */
  #woken = false;

  constructor(
    readonly id: string,
    private readonly deps: WorkerDeps,
  ) {}

  /** New readings may be there: end an idle wait now. */
  wake(): void {
    this.#woken = true;
    this.#wake?.abort();
  }

  /** Runs until the subscription is paused or deleted, or `stop` aborts. */
  async run(stop: AbortSignal): Promise<void> {
    while (!stop.aborted) {
      let next: number | 'idle' | 'done';
      this.#woken = false;
      try {
        next = await this.turn();
      } catch (err) {
        this.deps.log.error({ err, webhook: this.id }, 'a webhook delivery loop failed; trying again');
        next = this.deps.settings.retryBaseMs;
      }
      if (next === 'done') return;
      if (next === 'idle') await this.#idle(stop);
      else if (next > 0) await this.deps.sleep(next, stop);
    }
  }

  /** One step; answers how long to wait before the next (0: at once), 'idle' (nothing to send) or 'done'. */
  async turn(): Promise<number | 'idle' | 'done'> {
    const { repo, feed, feedName, clock } = this.deps;
    const w = await repo.get(this.id);
    if (!w || w.state !== 'active') return 'done';
    if (w.feed !== feedName) {
      // Positions of another feed (a node moved to or from the stream): start again from the newest reading delivered.
      const from = w.batch?.lastReceivedAt ?? w.lastReceivedAt;
      await repo.switchFeed(w.id, w.feed, feedName, from === null || from === 0 ? await feed.head() : await feed.positionAt(from + 1));
      return 0;
    }
    if (!w.batch) return this.#startBatch(w);
    const wait = (w.nextAttemptAt ?? 0) - clock.now();
    if (wait > 0) return wait;
    return this.#attempt(w, w.batch);
  }

  async #startBatch(w: WebhookRecord): Promise<number | 'idle'> {
    const { feed, repo, metrics, settings } = this.deps;
    const filter = await this.#feedFilter(w);
    const page = await feed.read(w.cursor, filter, settings.batchMaxReadings);
    if (page.skipped > 0) {
      metrics.skipped.inc(page.skipped);
      this.deps.log.warn({ webhook: w.id, skipped: page.skipped }, 'readings were deleted before this webhook delivered them');
    }
    await this.#lag(w.id, page.next);
    if (page.entries.length === 0) {
      if (page.next !== w.cursor) await repo.advance(w.id, w.cursor, page.next);
      return 'idle';
    }
    const id = this.deps.ids.next('whd');
    const readings = page.entries.map((e) => ({ id: `${e.record.deviceId}/${e.record.msgId}`, ...e.record }));
    const batch: PendingBatch = {
      id,
      body: JSON.stringify({ id, subscription: w.id, readings }),
      size: readings.length,
      next: page.next,
      lastReceivedAt: readings.reduce((m, r) => Math.max(m, r.receivedAt), 0),
      createdAt: this.deps.clock.now(),
    };
    await repo.startBatch(w.id, w.cursor, batch);
    return 0;
  }

  async #attempt(w: WebhookRecord, batch: PendingBatch): Promise<number> {
    const { repo, metrics, settings, clock } = this.deps;
    const attempts = w.attempts + 1;
    const result = await this.deps.delivery.deliver({ url: w.url, secret: await this.deps.openSecret(w), webhookId: w.id, deliveryId: batch.id, attempt: attempts, body: batch.body });
    const now = clock.now();
    if (result.ok) {
      if (await repo.completeBatch(w.id, batch.id, now)) {
        metrics.deliveries.inc({ result: 'delivered' });
        metrics.readings.inc(batch.size);
      }
      return 0;
    }
    metrics.deliveries.inc({ result: result.refused ? 'refused' : 'failed' });
    if (result.refused) metrics.targetsRefused.inc({ reason: result.refused, at: 'delivery' });
    if (attempts >= settings.maxAttempts) {
      const reason = `batch ${batch.id} failed ${attempts} attempts (last: ${result.error}); it is in this webhook's dead letters`;
      const letter = { id: batch.id, webhookId: w.id, body: batch.body, readings: batch.size, attempts, lastError: result.error, failedAt: now, replayedAt: null, replayResult: null };
      if (await repo.deadLetterBatch(w.id, batch.id, letter, reason, now)) {
        metrics.deliveries.inc({ result: 'dead_lettered' });
        this.deps.log.warn({ webhook: w.id, batch: batch.id, attempts, error: result.error }, 'webhook paused: a batch failed every attempt');
        this.deps.onAutoPause(w, reason);
      }
      return 0;
    }
    const delay = backoffMs(attempts, settings, this.deps.random, result.retryAfterMs);
    await repo.recordAttempt(w.id, batch.id, { attempts, nextAttemptAt: now + delay, error: result.error, at: now });
    return delay;
  }

  async #feedFilter(w: WebhookRecord): Promise<FeedFilter> {
    const { schemaIds, deviceIds, tags } = w.filter;
    const groups = w.filter.groups ?? [];
    if (tags.length === 0 && groups.length === 0) return { schemaIds, deviceIds };
    const devices = [...new Set([...deviceIds, ...(tags.length > 0 ? await this.deps.devicesWithTags(tags) : []), ...(groups.length > 0 ? await this.deps.devicesInGroups(groups) : [])])];
    return { schemaIds, deviceIds: devices.length > 0 ? devices : [NO_DEVICE] };
  }

  /** Entries after the cursor, when positions are numbers (the store's feed, a stream's sequence). */
  async #lag(id: string, cursor: string): Promise<void> {
    const head = Number(await this.deps.feed.head());
    const at = Number(cursor);
    if (Number.isSafeInteger(head) && Number.isSafeInteger(at)) this.deps.metrics.lag.set({ webhook: id }, Math.max(0, head - at));
  }

  async #idle(stop: AbortSignal): Promise<void> {
    if (this.#woken) return;
    const wake = (this.#wake = new AbortController());
    await this.deps.sleep(this.deps.settings.pollIntervalMs, AbortSignal.any([stop, wake.signal]));
    this.#wake = undefined;
  }
}
