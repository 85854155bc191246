import { type Clock, type IdGen, PlatformError, isPlatformError } from '@bulwark/core';
import type { TelemetryFeed } from '../ingest/index.js';
import type { DeliveryResult, WebhookDelivery } from './delivery.js';
import type { WebhookMetrics } from './metrics.js';
import { newSecret } from './signing.js';
import { type Resolver, type TargetPolicy, checkUrl, resolveTarget } from './target-guard.js';
import type { WebhookDeadLetter, WebhookFilter, WebhookRecord, WebhookRepository, WebhookState } from './webhooks.js';

/** A subscription as the API shows it: never its secret. */
export interface WebhookView {
  readonly id: string;
  readonly name: string;
  readonly url: string;
  readonly filter: WebhookFilter;
  readonly state: WebhookState;
  readonly pausedReason: string | null;
  readonly pausedAt: number | null;
  /** Feed entries after its cursor (any reading, before the filter); null when the feed cannot tell. */
  readonly lag: number | null;
  readonly pending: { readonly id: string; readonly readings: number; readonly attempts: number; readonly nextAttemptAt: number | null } | null;
  readonly lastError: string | null;
  readonly lastAttemptAt: number | null;
  readonly lastSuccessAt: number | null;
  readonly delivered: number;
  readonly createdBy: string;
  readonly createdAt: number;
  readonly updatedAt: number;
}

export interface NewWebhook {
  readonly name: string;
  readonly url: string;
  readonly filter?: Partial<WebhookFilter>;
  /** Where delivery starts: readings stored from now on (default), every reading the store still holds, or those received since a time (ms). */
  readonly from?: 'now' | 'earliest' | number;
}

export interface WebhookServiceDeps {
  readonly repo: WebhookRepository;
  readonly feed: TelemetryFeed;
  readonly feedName: string;
  readonly delivery: Pick<WebhookDelivery, 'deliver'>;
  readonly policy: TargetPolicy;
  readonly resolve?: Resolver;
  /** Seals a secret for the store (the vault), bound to its subscription. */
  readonly seal: (secret: string, webhookId: string) => string;
  readonly open: (sealed: string, webhookId: string) => Promise<string>;
  readonly clock: Clock;
  readonly ids: IdGen;
  readonly metrics: WebhookMetrics;
  /** Tells the delivery loops of this node to look again (a change takes effect at once, not at the next poll). */
  readonly changed?: () => void;
}

/** What people do with webhook subscriptions: the API and the CLI call this. */
export class WebhookService {
  constructor(private readonly deps: WebhookServiceDeps) {}

  async create(input: NewWebhook, actor: string): Promise<{ webhook: WebhookView; secret: string }> {
    await this.#checkTarget(input.url);
    const { feed, clock } = this.deps;
    const id = this.deps.ids.next('whk');
    const secret = newSecret();
    const cursor = input.from === 'earliest' ? '0' : typeof input.from === 'number' ? await feed.positionAt(input.from) : await feed.head();
    const now = clock.now();
    const record: WebhookRecord = {
      id,
      name: input.name,
      url: input.url,
      filter: normalize(input.filter),
      secret: this.deps.seal(secret, id),
      state: 'active',
      pausedReason: null,
      pausedAt: null,
      feed: this.deps.feedName,
      cursor,
      batch: null,
      attempts: 0,
      nextAttemptAt: null,
      lastError: null,
      lastAttemptAt: null,
      lastSuccessAt: null,
      lastReceivedAt: typeof input.from === 'number' ? input.from - 1 : null,
      delivered: 0,
      createdBy: actor,
      createdAt: now,
      updatedAt: now,
    };
    await this.deps.repo.insert(record);
    this.deps.changed?.();
    return { webhook: await this.#view(record), secret };
  }

  async list(): Promise<WebhookView[]> {
    const head = await this.deps.feed.head();
    return (await this.deps.repo.list()).map((w) => view(w, head, this.deps.feedName));
  }

  async get(id: string): Promise<WebhookView> {
    return this.#view(await this.#record(id));
  }

  async update(id: string, changes: { name?: string; url?: string; filter?: Partial<WebhookFilter> }): Promise<WebhookView> {
    await this.#record(id);
    if (changes.url !== undefined) await this.#checkTarget(changes.url);
    await this.deps.repo.update(
      id,
      {
        ...(changes.name !== undefined ? { name: changes.name } : {}),
        ...(changes.url !== undefined ? { url: changes.url } : {}),
        ...(changes.filter !== undefined ? { filter: normalize(changes.filter) } : {}),
      },
      this.deps.clock.now(),
    );
    return this.#changed(id);
  }

  async pause(id: string, reason: string): Promise<WebhookView> {
    await this.#record(id);
    const now = this.deps.clock.now();
    await this.deps.repo.update(id, { state: 'paused', pausedReason: reason, pausedAt: now }, now);
    return this.#changed(id);
  }

  /** Continues where it stopped: the batch under way (if any) first, with a full set of attempts. */
  async resume(id: string): Promise<WebhookView> {
    const w = await this.#record(id);
    if (w.state === 'active') return this.#view(w);
    await this.deps.repo.update(id, { state: 'active', pausedReason: null, pausedAt: null, attempts: 0, nextAttemptAt: null }, this.deps.clock.now());
    return this.#changed(id);
  }

  async delete(id: string): Promise<void> {
    if (!(await this.deps.repo.delete(id))) throw notFound(id);
    this.deps.changed?.();
  }

  /** A new secret, shown once; the old one stops signing at once. */
  async rotateSecret(id: string): Promise<{ webhook: WebhookView; secret: string }> {
    await this.#record(id);
    const secret = newSecret();
    await this.deps.repo.update(id, { secret: this.deps.seal(secret, id) }, this.deps.clock.now());
    return { webhook: await this.#changed(id), secret };
  }

  /** Sends one signed batch without readings (`"test": true`) now; the cursor does not move. */
  async testDelivery(id: string): Promise<DeliveryResult & { deliveryId: string }> {
    const w = await this.#record(id);
    const deliveryId = this.deps.ids.next('whd');
    const body = JSON.stringify({ id: deliveryId, subscription: id, test: true, readings: [] });
    const result = await this.deps.delivery.deliver({ url: w.url, secret: await this.deps.open(w.secret, id), webhookId: id, deliveryId, attempt: 1, body });
    this.#count(result);
    return { ...result, deliveryId };
  }

  async deadLetters(id: string, limit: number): Promise<WebhookDeadLetter[]> {
    await this.#record(id);
    return this.deps.repo.listDeadLetters(id, limit);
  }

  /** Sends a dead-lettered batch again, once, as it was (same batch id, same reading ids). */
  async replay(id: string, letterId: string): Promise<DeliveryResult & { deliveryId: string }> {
    const w = await this.#record(id);
    const letter = await this.deps.repo.getDeadLetter(id, letterId);
    if (!letter) throw new PlatformError('BULWARK_ERR_NOT_FOUND', `webhook ${id} has no dead letter ${letterId}`);
    const result = await this.deps.delivery.deliver({ url: w.url, secret: await this.deps.open(w.secret, id), webhookId: id, deliveryId: letter.id, attempt: letter.attempts + 1, body: letter.body });
    this.#count(result);
    await this.deps.repo.markReplayed(letter.id, this.deps.clock.now(), result.ok ? `delivered (HTTP ${result.status})` : `failed: ${result.error}`);
    return { ...result, deliveryId: letter.id };
  }

  async #checkTarget(url: string): Promise<void> {
    try {
      const parsed = checkUrl(url, this.deps.policy);
      await resolveTarget(parsed.hostname, this.deps.policy, this.deps.resolve);
    } catch (err) {
      if (isPlatformError(err)) this.deps.metrics.targetsRefused.inc({ reason: String(err.details?.reason ?? 'malformed'), at: 'create' });
      throw err;
    }
  }

  #count(result: DeliveryResult): void {
    this.deps.metrics.deliveries.inc({ result: result.ok ? 'delivered' : result.refused ? 'refused' : 'failed' });
    if (!result.ok && result.refused) this.deps.metrics.targetsRefused.inc({ reason: result.refused, at: 'delivery' });
  }

  async #changed(id: string): Promise<WebhookView> {
    this.deps.changed?.();
    return this.get(id);
  }

  async #record(id: string): Promise<WebhookRecord> {
    const w = await this.deps.repo.get(id);
    if (!w) throw notFound(id);
    return w;
  }

  async #view(w: WebhookRecord): Promise<WebhookView> {
    return view(w, await this.deps.feed.head(), this.deps.feedName);
  }
}

const notFound = (id: string) => new PlatformError('BULWARK_ERR_NOT_FOUND', `no webhook ${id}`);

function normalize(f: Partial<WebhookFilter> = {}): WebhookFilter {
  const clean = (list: readonly string[] | undefined) => [...new Set(list ?? [])].sort();
  return { schemaIds: clean(f.schemaIds), deviceIds: clean(f.deviceIds), tags: clean(f.tags), groups: clean(f.groups) };
}

function view(w: WebhookRecord, head: string, feedName: string): WebhookView {
  const behind = Number(head) - Number(w.cursor);
  return {
    id: w.id,
    name: w.name,
    url: w.url,
    filter: w.filter,
    state: w.state,
    pausedReason: w.pausedReason,
    pausedAt: w.pausedAt,
    lag: w.feed === feedName && Number.isSafeInteger(behind) ? Math.max(0, behind) : null,
    pending: w.batch ? { id: w.batch.id, readings: w.batch.size, attempts: w.attempts, nextAttemptAt: w.nextAttemptAt } : null,
    lastError: w.lastError,
    lastAttemptAt: w.lastAttemptAt,
    lastSuccessAt: w.lastSuccessAt,
    delivered: w.delivered,
    createdBy: w.createdBy,
    createdAt: w.createdAt,
    updatedAt: w.updatedAt,
  };
}
