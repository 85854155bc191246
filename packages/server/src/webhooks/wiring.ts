import { readFileSync } from 'node:fs';
import { type Clock, type IdGen, type Logger, PlatformError } from '@bulwark/core';
import type { Registry } from 'prom-client';
import type { TelemetryFeed } from '../ingest/index.js';
import { WebhookDelivery } from './delivery.js';
import { WebhookDispatcher } from './dispatcher.js';
import { webhookMetrics } from './metrics.js';
import { WebhookService } from './service.js';
import type { Resolver } from './target-guard.js';
import type { WebhookRepository } from './webhooks.js';
import { type Sleep, realSleep } from './worker.js';

export interface WebhooksConfig {
  readonly allowHttp: boolean;
  readonly allowPrivateTargets: boolean;
  readonly caFile?: string;
  readonly timeoutMs: number;
  readonly batchMaxReadings: number;
  readonly maxAttempts: number;
  readonly retryBaseMs: number;
  readonly retryMaxMs: number;
  readonly pollIntervalMs: number;
}

export interface WebhooksDeps {
  readonly repo: WebhookRepository;
  readonly feed: TelemetryFeed;
  /** Names the feed's positions: a cursor of another feed is moved to this one. */
  readonly feedName: string;
  /** Device ids with a tag (the registry), page by page. */
  readonly devicesWithTag: (tag: string, after: string | undefined, limit: number) => Promise<string[]>;
  /** Every device in any of the groups. */
  readonly devicesInGroups: (groups: readonly string[]) => Promise<string[]>;
  readonly seal: (plaintext: Buffer, context: string) => string;
  readonly open: (sealed: string, context: string) => Promise<Buffer>;
  readonly clock: Clock;
  readonly ids: IdGen;
  readonly log: Logger;
  readonly metrics: Registry;
  /** Writes a change the platform made on its own (a subscription that paused itself) to the audit log. */
  readonly audit: (action: string, target: string, details: Record<string, unknown>) => Promise<void>;
  readonly version: string;
  /** Rewrites every body before it is signed (pseudonyms; see DeliverySettings.rewriteBody). */
  readonly rewriteBody?: (body: string) => string;
  readonly resolve?: Resolver;
  readonly sleep?: Sleep;
  readonly random?: () => number;
}

export interface Webhooks {
  readonly service: WebhookService;
  readonly dispatcher: WebhookDispatcher;
  /** Signed, SSRF-checked POSTs, for other senders (alert notifications). */
  readonly delivery: WebhookDelivery;
}

/** The webhooks context, wired from its settings: the service the API calls and the dispatcher that runs as the `webhooks` singleton. */
export function buildWebhooks(config: WebhooksConfig, deps: WebhooksDeps): Webhooks {
  const metrics = webhookMetrics(deps.metrics);
  const policy = { allowHttp: config.allowHttp, allowPrivateTargets: config.allowPrivateTargets };
  const ca = config.caFile === undefined ? undefined : readCa(config.caFile);
  const delivery = new WebhookDelivery({ ...policy, timeoutMs: config.timeoutMs, userAgent: `Bulwark-Webhooks/${deps.version}`, ...(ca !== undefined ? { ca } : {}), ...(deps.rewriteBody ? { rewriteBody: deps.rewriteBody } : {}) }, deps.clock, deps.resolve);
  const context = (id: string) => `webhook:${id}`;
  const openSecret = async (sealed: string, id: string) => (await deps.open(sealed, context(id))).toString('utf8');
  const dispatcher = new WebhookDispatcher({
    repo: deps.repo,
    feed: deps.feed,
    feedName: deps.feedName,
    delivery,
    clock: deps.clock,
    ids: deps.ids,
    log: deps.log,
    metrics,
    openSecret: (w) => openSecret(w.secret, w.id),
    devicesWithTags: async (tags) => (await Promise.all(tags.map((tag) => allWithTag(deps.devicesWithTag, tag)))).flat(),
    devicesInGroups: deps.devicesInGroups,
    random: deps.random ?? Math.random,
    sleep: deps.sleep ?? realSleep,
    settings: config,
    onAutoPause: (w, reason) => void deps.audit('webhook.pause', w.id, { reason, automatic: true }).catch((err: unknown) => deps.log.error({ err }, 'could not audit a webhook pause')),
  });
  const service = new WebhookService({
    repo: deps.repo,
    feed: deps.feed,
    feedName: deps.feedName,
    delivery,
    policy,
    clock: deps.clock,
    ids: deps.ids,
    metrics,
    seal: (secret, id) => deps.seal(Buffer.from(secret, 'utf8'), context(id)),
    open: openSecret,
    changed: () => void dispatcher.refresh(),
    ...(deps.resolve ? { resolve: deps.resolve } : {}),
  });
  return { service, dispatcher, delivery };
}

async function allWithTag(page: WebhooksDeps['devicesWithTag'], tag: string): Promise<string[]> {
  const ids: string[] = [];
  for (let after: string | undefined; ;) {
    const batch = await page(tag, after, 1000);
    ids.push(...batch);
    if (batch.length < 1000) return ids;
    after = batch.at(-1);
  }
}

function readCa(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (err) {
    throw new PlatformError('BULWARK_ERR_CONFIG_INVALID', `webhooks.caFile: cannot read ${file}: ${(err as Error).message}`, { cause: err });
  }
}
