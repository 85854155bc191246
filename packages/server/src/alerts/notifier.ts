import type { Clock, Logger } from '@bulwark/core';
import type { DeliveryRequest, DeliveryResult } from '../webhooks/index.js';
import type { AlertChannel, AlertNotification, AlertRepository } from './alerts.js';

export interface NotifierSettings {
  readonly pollIntervalMs: number;
  readonly retryBaseMs: number;
  readonly retryMaxMs: number;
  /** A notification not delivered by then is given up (counted and logged). */
  readonly maxAgeMs: number;
}

export interface NotifierDeps {
  readonly repo: AlertRepository;
  readonly deliver: (req: DeliveryRequest) => Promise<DeliveryResult>;
  readonly openSecret: (channel: AlertChannel) => Promise<string>;
  readonly clock: Clock;
  readonly log: Logger;
  readonly counted: (outcome: 'delivered' | 'failed' | 'given_up') => void;
  readonly random?: () => number;
}

/**
 * Delivers the notification outbox, one node at a time (the `alert-notifier` singleton):
 * each notification to its channel, signed, retried with backoff until the receiver takes it
 * or it is too old. A notification is marked delivered once taken, so a node that takes over
 * sends only what was not (a receiver may see one again if a node died between the answer
 * and the mark: the notification id in X-Bulwark-Delivery tells it).
 */
export class AlertNotifier {
  #running = false;
  #loop: Promise<void> | undefined;
  #wake: (() => void) | undefined;
  #timer: NodeJS.Timeout | undefined;

  constructor(private readonly settings: NotifierSettings, private readonly deps: NotifierDeps) {}

  start(): void {
    if (this.#running) return;
    this.#running = true;
    this.#loop = this.#run();
  }

  async stop(): Promise<void> {
    this.#running = false;
    this.notify();
    await this.#loop;
  }

  /** Something was queued: look now instead of at the next poll. */
  notify(): void {
    const wake = this.#wake;
    this.#wake = undefined;
    wake?.();
  }

  async #run(): Promise<void> {
    while (this.#running) {
      let next = this.settings.pollIntervalMs;
      try {
        next = await this.#sendDue();
      } catch (err) {
        this.deps.log.warn({ err: (err as Error).message }, 'alert notifier: could not read the outbox; trying again');
      }
      if (!this.#running) break;
      await new Promise<void>((resolve) => {
        this.#wake = resolve;
        this.#timer = setTimeout(resolve, next);
      });
      clearTimeout(this.#timer);
      this.#wake = undefined;
    }
  }

  /**
   * Sends what is due; returns how long to wait before looking again. Each channel gets its
   * notifications in the order they were written: a channel whose oldest is waiting for a
   * retry sends nothing newer meanwhile (a "resolved" never overtakes its "fired").
   */
  async #sendDue(): Promise<number> {
    const now = this.deps.clock.now();
    const pending = await this.deps.repo.undelivered(500);
    if (pending.length === 0) return this.settings.pollIntervalMs;
    const channels = new Map((await this.deps.repo.listChannels()).map((c) => [c.id, c]));
    const byChannel = new Map<string, AlertNotification[]>();
    for (const n of pending) byChannel.set(n.channelId, [...(byChannel.get(n.channelId) ?? []), n]);
    let wait = this.settings.pollIntervalMs;
    await Promise.all([...byChannel].map(async ([channelId, list]) => {
      const channel = channels.get(channelId);
      for (const n of list) {
        if (!this.#running) return;
        if (!channel || now - n.createdAt > this.settings.maxAgeMs) {
          await this.deps.repo.delivered(n.id, now);
          this.deps.counted('given_up');
          this.deps.log.error({ notification: n.id, alert: n.alertId, channel: channelId, reason: channel ? 'too old' : 'channel deleted' }, 'alert notifier: gave up a notification');
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
    }));
    return pending.length === 500 ? 0 : Math.max(0, wait);
  }

  /** Delivers one notification; returns when to try it again when the receiver did not take it. */
  async #send(channel: AlertChannel, n: AlertNotification): Promise<number | undefined> {
    const result = await this.deps.deliver({ url: channel.url, secret: await this.deps.openSecret(channel), webhookId: channel.id, deliveryId: n.id, attempt: n.attempts + 1, body: n.body });
    const at = this.deps.clock.now();
    if (result.ok) {
      await this.deps.repo.delivered(n.id, at);
      this.deps.counted('delivered');
      return undefined;
    }
    const attempts = n.attempts + 1;
    const backoff = Math.min(this.settings.retryMaxMs, this.settings.retryBaseMs * 2 ** Math.min(attempts - 1, 20));
    const wait = Math.max(result.retryAfterMs ?? 0, backoff * (0.5 + (this.deps.random ?? Math.random)() / 2));
    const retryAt = at + Math.round(wait);
    await this.deps.repo.retryLater(n.id, attempts, retryAt, result.error);
    this.deps.counted('failed');
    if (attempts === 1) this.deps.log.warn({ channel: channel.id, url: channel.url, error: result.error }, 'alert notifier: a receiver refused a notification; retrying');
    return retryAt;
  }
}
