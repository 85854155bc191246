import { type Clock, GroupCommit, type Logger } from '@bulwark/core';
import type { DeliveryRequest, DeliveryResult } from '../webhooks/index.js';
import type { AlertChannel, AlertNotification, AlertRepository } from './alerts.js';

/** Notifications read from the outbox per look. */
const PAGE = 500;
/** The pause before the next pass when notifications were queued during the last one. */
const AGAIN_MS = 5;
/**
 * How long a delivered mark waits for others to share its write (a lane never waits for it):
 * each mark is a commit of its own. A node that dies meanwhile sends those notifications again.
 */
const MARK_WAIT_MS = 200;
/** Alerts whose notifications one channel gets at the same time, unless the settings say otherwise. */
const SENDING_PER_CHANNEL = 16;
/** Notifications in one POST to a batching channel. */
const BATCH_MAX = 100;

export interface NotifierSettings {
  readonly pollIntervalMs: number;
  readonly retryBaseMs: number;
  readonly retryMaxMs: number;
  /** A notification not delivered by then is given up (counted and logged). */
  readonly maxAgeMs: number;
  /** Alerts whose notifications one channel gets side by side (default 16). */
  readonly lanesPerChannel?: number;
  /**
   * The least time from the start of one pass to the start of the next (default 0): what is
   * written meanwhile gathers for one pass (and a batching channel's one POST).
   */
  readonly gatherMs?: number;
}

export interface NotifierDeps {
  readonly repo: AlertRepository;
  readonly deliver: (req: DeliveryRequest) => Promise<DeliveryResult>;
  /** Sends to an e-mail channel. */
  readonly email: (channel: AlertChannel, n: AlertNotification) => Promise<DeliveryResult>;
  readonly openSecret: (channel: AlertChannel) => Promise<string>;
  /** The channels (a cached list: it changes rarely, and is read on every pass). */
  readonly channels: () => Promise<readonly AlertChannel[]> | readonly AlertChannel[];
  readonly clock: Clock;
  readonly log: Logger;
  readonly counted: (outcome: 'delivered' | 'failed' | 'given_up') => void;
  readonly random?: () => number;
}

/**
 * Delivers the notification outbox, one node at a time (the `alert-notifier` singleton):
 * each notification to its channel, signed, retried with backoff until the receiver takes it
 * or it is too old; in order per alert. A notification is marked delivered once taken, so a node that takes over
 * sends only what was not (a receiver may see one again if a node died between the answer
 * and the mark: the notification id in X-Bulwark-Delivery tells it).
 */
export class AlertNotifier {
  #running = false;
  /** Delivered marks of the notifications sent side by side, written together. */
  readonly #marks: GroupCommit<string, undefined>;
  /**
   * Taken by their receiver: the pass during which their delivered mark was written
   * (undefined while it is being written). A pass skips them (a lane never waits for the
   * store) until one starts after the mark: a pass that read the outbox before the mark
   * still holds them as undelivered.
   */
  readonly #taken = new Map<string, number | undefined>();
  #pass = 0;
  /** Channel secrets opened once (by sealed text, so a changed secret is opened again). */
  readonly #secrets = new Map<string, { sealed: string; secret: string }>();
  #loop: Promise<void> | undefined;
  #wake: (() => void) | undefined;
  #halt: (() => void) | undefined;
  #again = false;

  constructor(
    private readonly settings: NotifierSettings,
    private readonly deps: NotifierDeps,
  ) {
    this.#marks = new GroupCommit(
      async (ids) => {
        await deps.repo.delivered(ids, deps.clock.now());
        return ids.map(() => undefined);
      },
      { maxItems: 500, maxDelayMs: MARK_WAIT_MS },
    );
  }

  start(): void {
    if (this.#running) return;
    this.#running = true;
    this.#loop = this.#run();
  }

  async stop(): Promise<void> {
    this.#running = false;
    this.#halt?.();
    await this.#loop;
    await this.#marks.drain().catch(() => undefined);
  }

  /** Something was queued: look now instead of at the next poll. */
  notify(): void {
    const wake = this.#wake;
    this.#wake = undefined;
    // Told while a pass is under way: look again as soon as it ends.
    if (!wake) this.#again = true;
    wake?.();
  }

  async #run(): Promise<void> {
    while (this.#running) {
      let next = this.settings.pollIntervalMs;
      this.#again = false;
      const started = performance.now();
      try {
        next = await this.#sendDue();
      } catch (err) {
        this.deps.log.warn({ err: (err as Error).message }, 'alert notifier: could not read the outbox; trying again');
      }
      if (!this.#running) break;
      // More was queued meanwhile: look again after a moment (what comes in that moment goes in the same pass).
      if (this.#again) next = Math.min(next, AGAIN_MS);
      await this.#sleep(next, true);
      // Told at once: still let what follows gather until gatherMs after this pass began.
      const gather = (this.settings.gatherMs ?? 0) - (performance.now() - started);
      if (gather > 0 && this.#running) await this.#sleep(gather, false);
    }
  }

  /** Waits ms; notify() ends the wait early when byNotify, stop() always. */
  #sleep(ms: number, byNotify: boolean): Promise<void> {
    return new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.#wake = undefined;
        this.#halt = undefined;
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.#halt = done;
      if (byNotify) this.#wake = done;
    });
  }

  /**
   * Sends what is due; returns how long to wait before looking again. The notifications of
   * one alert (or incident) go in the order they were written, one after the other: one that
   * waits for a retry holds back the later ones of its alert (a "resolved" never overtakes its
   * "fired"). Different alerts go side by side, up to SENDING_PER_CHANNEL at a time.
   */
  async #sendDue(): Promise<number> {
    const pass = ++this.#pass;
    for (const [id, markedIn] of this.#taken) if (markedIn !== undefined && markedIn < pass) this.#taken.delete(id);
    const now = this.deps.clock.now();
    // What was sent and waits for its mark is left out (its body is not read again); the checks below stay for safety.
    const pending = await this.deps.repo.undelivered(PAGE, [...this.#taken.keys()]);
    if (pending.length === 0) return this.settings.pollIntervalMs;
    let channels = new Map((await this.deps.channels()).map((c) => [c.id, c]));
    // A channel this node has not heard of yet (made on another node a moment ago) is read from the store before anything is given up.
    if (pending.some((n) => !channels.has(n.channelId))) channels = new Map((await this.deps.repo.listChannels()).map((c) => [c.id, c]));
    const queues = new Map<string, AlertNotification[]>();
    for (const n of pending) {
      const k = `${n.channelId}\u0000${n.alertId}`;
      const q = queues.get(k);
      if (q) q.push(n);
      else queues.set(k, [n]);
    }
    let wait = this.settings.pollIntervalMs;
    const runQueue = async (queue: readonly AlertNotification[]) => {
      for (const n of queue) {
        if (!this.#running) return;
        if (this.#taken.has(n.id)) continue;
        const channel = channels.get(n.channelId);
        if (!channel || now - n.createdAt > this.settings.maxAgeMs) {
          await this.#giveUp(n, channel ? 'too old' : 'channel deleted');
          continue;
        }
        if (n.nextAttemptAt > now) {
          wait = Math.min(wait, n.nextAttemptAt - now);
          return;
        }
        const retryAt = await this.#send(channel, n);
        if (retryAt !== undefined) {
          wait = Math.min(wait, retryAt - now);
          return;
        }
      }
    };
    // A batching channel: what is due, oldest first, up to BATCH_MAX a POST; an alert whose
    // notification waits for a retry holds back its later ones.
    const runBatches = async (channel: AlertChannel) => {
      const held = new Set<string>();
      let batch: AlertNotification[] = [];
      for (const n of pending) {
        if (n.channelId !== channel.id || held.has(n.alertId) || this.#taken.has(n.id)) continue;
        if (now - n.createdAt > this.settings.maxAgeMs) {
          await this.#giveUp(n, 'too old');
          continue;
        }
        if (n.nextAttemptAt > now) {
          held.add(n.alertId);
          wait = Math.min(wait, n.nextAttemptAt - now);
          continue;
        }
        batch.push(n);
        if (batch.length < BATCH_MAX) continue;
        const retryAt = await this.#sendBatch(channel, batch);
        batch = [];
        if (retryAt !== undefined) {
          wait = Math.min(wait, retryAt - now);
          return;
        }
      }
      if (batch.length === 0 || !this.#running) return;
      const retryAt = await this.#sendBatch(channel, batch);
      if (retryAt !== undefined) wait = Math.min(wait, retryAt - now);
    };
    // Per channel, at most SENDING_PER_CHANNEL alerts' queues at a time.
    const byChannel = new Map<string, AlertNotification[][]>();
    for (const q of queues.values()) {
      const id = (q[0] as AlertNotification).channelId;
      byChannel.set(id, [...(byChannel.get(id) ?? []), q]);
    }
    await Promise.all(
      [...byChannel.entries()].map(async ([channelId, list]) => {
        const channel = channels.get(channelId);
        if (channel?.batch && channel.kind === 'webhook') return runBatches(channel);
        let next = 0;
        await Promise.all(
          Array.from({ length: Math.min(this.settings.lanesPerChannel ?? SENDING_PER_CHANNEL, list.length) }, async () => {
            while (next < list.length) await runQueue(list[next++] as AlertNotification[]);
          }),
        );
      }),
    );
    return pending.length === PAGE ? 0 : Math.max(0, wait);
  }

  async #secret(channel: AlertChannel): Promise<string> {
    const known = this.#secrets.get(channel.id);
    if (known?.sealed === channel.secret) return known.secret;
    const secret = await this.deps.openSecret(channel);
    this.#secrets.set(channel.id, { sealed: channel.secret, secret });
    return secret;
  }

  async #giveUp(n: AlertNotification, reason: string): Promise<void> {
    await this.#marks.add(n.id);
    this.deps.counted('given_up');
    this.deps.log.error({ notification: n.id, alert: n.alertId, channel: n.channelId, reason }, 'alert notifier: gave up a notification');
  }

  /** Delivers one notification; returns when to try it again when the receiver did not take it. */
  async #send(channel: AlertChannel, n: AlertNotification): Promise<number | undefined> {
    const result = channel.kind === 'email' ? await this.deps.email(channel, n) : await this.deps.deliver({ url: channel.url, secret: await this.#secret(channel), webhookId: channel.id, deliveryId: n.id, attempt: n.attempts + 1, body: n.body });
    return this.#settle(channel, [n], result);
  }

  /**
   * Delivers notifications in one POST, `{"event":"batch","notifications":[…]}`, each with its
   * id as `delivery` (what a receiver de-duplicates on); the X-Bulwark-Delivery header names
   * the batch by its first notification.
   */
  async #sendBatch(channel: AlertChannel, batch: readonly AlertNotification[]): Promise<number | undefined> {
    const first = batch[0] as AlertNotification;
    const body = `{"event":"batch","notifications":[${batch.map((n) => `{"delivery":${JSON.stringify(n.id)},${n.body.slice(1)}`).join(',')}]}`;
    const attempt = Math.max(...batch.map((n) => n.attempts)) + 1;
    const result = await this.deps.deliver({ url: channel.url, secret: await this.#secret(channel), webhookId: channel.id, deliveryId: `batch-${first.id}`, attempt, body });
    return this.#settle(channel, batch, result);
  }

  /** Marks what the receiver took, or schedules the next try; returns when to try again (undefined: taken). */
  async #settle(channel: AlertChannel, sent: readonly AlertNotification[], result: DeliveryResult): Promise<number | undefined> {
    const at = this.deps.clock.now();
    if (result.ok) {
      for (const n of sent) {
        this.#taken.set(n.id, undefined);
        // If the mark fails (the store away), the notification is sent again later: at least once.
        void this.#marks.add(n.id).then(
          () => this.#taken.set(n.id, this.#pass),
          () => this.#taken.delete(n.id),
        );
        this.deps.counted('delivered');
      }
      return undefined;
    }
    const attempts = Math.max(...sent.map((n) => n.attempts)) + 1;
    const backoff = Math.min(this.settings.retryMaxMs, this.settings.retryBaseMs * 2 ** Math.min(attempts - 1, 20));
    const wait = Math.max(result.retryAfterMs ?? 0, backoff * (0.5 + (this.deps.random ?? Math.random)() / 2));
    const retryAt = at + Math.round(wait);
    await Promise.all(sent.map((n) => this.deps.repo.retryLater(n.id, n.attempts + 1, retryAt, result.error)));
    for (const _ of sent) this.deps.counted('failed');
    if (attempts === 1) this.deps.log.warn({ channel: channel.id, url: channel.url, error: result.error, notifications: sent.length }, 'alert notifier: a receiver refused a notification; retrying');
    return retryAt;
  }
}
