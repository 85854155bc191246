import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type TestContext, it } from 'node:test';
import { ManualClock, SequentialIds, silentLogger } from '@bulwark/core';
import { Registry } from 'prom-client';
import { type Store, openStore } from '../store/index.js';
import { reading } from '../store/contract/telemetry-feed.contract.js';
import { backoffMs } from './backoff.js';
import type { DeliveryRequest, DeliveryResult } from './delivery.js';
import { webhookMetrics } from './metrics.js';
import { type DispatchSettings, SubscriptionWorker } from './worker.js';
import type { WebhookRecord } from './webhooks.js';

const settings: DispatchSettings = { batchMaxReadings: 3, maxAttempts: 4, pollIntervalMs: 1000, retryBaseMs: 1000, retryMaxMs: 8000 };

/** A worker over a real SQLite store, a scripted receiver and a clock that moves only when the worker waits. */
async function rig(t: TestContext, answers: (req: DeliveryRequest) => DeliveryResult, extra: Partial<WebhookRecord> = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'bulwark-webhook-'));
  const clock = new ManualClock();
  const store: Store = await openStore({ engine: 'sqlite', location: join(dir, 'bulwark.db') }, clock);
  t.after(async () => {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });
  const sent: DeliveryRequest[] = [];
  const paused: string[] = [];
  const metrics = webhookMetrics(new Registry());
  const worker = new SubscriptionWorker('whk_1', {
    repo: store.webhooks,
    feed: store.telemetryFeed,
    feedName: 'store:sqlite',
    clock,
    ids: new SequentialIds(),
    random: () => 0.5,
    settings,
    metrics,
    log: silentLogger,
    delivery: { deliver: async (req) => (sent.push(req), answers(req)) },
    openSecret: async () => 'whsec_test',
    devicesWithTags: async (tags) => (tags.includes('north') ? ['b'] : []),
    devicesInGroups: async (groups) => (groups.includes('site-c') ? ['c'] : []),
    sleep: async (ms) => clock.advance(ms),
    onAutoPause: (_w, reason) => paused.push(reason),
  });
  await store.webhooks.insert({
    id: 'whk_1',
    name: 'w',
    url: 'https://receiver.example/hook',
    filter: { schemaIds: [], deviceIds: [], tags: [] },
    secret: 'sealed',
    state: 'active',
    pausedReason: null,
    pausedAt: null,
    feed: 'store:sqlite',
    cursor: '0',
    batch: null,
    attempts: 0,
    nextAttemptAt: null,
    lastError: null,
    lastAttemptAt: null,
    lastSuccessAt: null,
    lastReceivedAt: null,
    delivered: 0,
    createdBy: 'usr_1',
    createdAt: clock.now(),
    updatedAt: clock.now(),
    ...extra,
  });
  /** Turns until the worker has nothing to do or stops, following its waits on the clock. */
  const settle = async (maxTurns = 100) => {
    for (let i = 0; i < maxTurns; i += 1) {
      const next = await worker.turn();
      if (next === 'idle' || next === 'done') return next;
      clock.advance(next);
    }
    throw new Error('the worker did not settle');
  };
  return { store, clock, worker, sent, paused, metrics, settle };
}

const ok: DeliveryResult = { ok: true, status: 200, durationMs: 1 };
const down: DeliveryResult = { ok: false, status: 503, error: 'HTTP 503', durationMs: 1 };
const ids = (req: DeliveryRequest) => (JSON.parse(req.body) as { readings: { id: string }[] }).readings.map((r) => r.id);

it('backoff doubles from the base up to the cap, half of it random, and honours Retry-After up to the cap', () => {
  const s = { retryBaseMs: 1000, retryMaxMs: 8000 };
  assert.deepEqual(
    [1, 2, 3, 4, 5, 9].map((n) => backoffMs(n, s, () => 0)),
    [500, 1000, 2000, 4000, 4000, 4000],
  );
  assert.deepEqual(
    [1, 2, 3, 4, 5].map((n) => backoffMs(n, s, () => 1)),
    [1000, 2000, 4000, 8000, 8000],
  );
  assert.equal(
    backoffMs(1, s, () => 0, 6000),
    6000,
  );
  assert.equal(
    backoffMs(1, s, () => 0, 60_000),
    8000,
  );
});

it('delivers in batches in feed order and moves the cursor after each 2xx', async (t) => {
  const { store, sent, settle } = await rig(t, () => ok);
  await store.telemetry.insertBatch([reading('a', 1), reading('b', 2), reading('a', 3), reading('b', 4)]);
  assert.equal(await settle(), 'idle');
  assert.deepEqual(sent.map(ids), [['a/m1', 'b/m2', 'a/m3'], ['b/m4']]);
  const body = JSON.parse(sent[0]?.body ?? '{}') as { id: string; subscription: string; readings: { msgId: string; data: unknown }[] };
  assert.equal(body.id, sent[0]?.deliveryId);
  assert.equal(body.subscription, 'whk_1');
  assert.deepEqual(body.readings[0]?.data, { n: 1 });
  const w = await store.webhooks.get('whk_1');
  assert.equal(w?.delivered, 4);
  assert.equal(w?.batch, null);
  assert.equal(w?.lastReceivedAt, 1004);
});

it('retries a failing batch as it is, with backoff, before anything after it', async (t) => {
  let failures = 2;
  const { store, clock, sent, settle } = await rig(t, () => (failures-- > 0 ? down : ok));
  await store.telemetry.insertBatch([reading('a', 1), reading('a', 2), reading('a', 3), reading('a', 4)]);
  const started = clock.now();
  await settle();
  assert.deepEqual(
    sent.map((r) => [r.deliveryId, r.attempt, ids(r).join()]),
    [
      ['whd_1', 1, 'a/m1,a/m2,a/m3'],
      ['whd_1', 2, 'a/m1,a/m2,a/m3'],
      ['whd_1', 3, 'a/m1,a/m2,a/m3'],
      ['whd_2', 1, 'a/m4'],
    ],
  );
  assert.equal(clock.now() - started, 750 + 1500, 'waited 0.75 s, then 1.5 s (base 1 s doubling, half random at 0.5)');
  assert.equal(new Set(sent.slice(0, 3).map((r) => r.body)).size, 1, 'the same body every time');
});

it('after maxAttempts the batch goes to the dead letters and the subscription pauses; resuming goes on after it', async (t) => {
  let up = false;
  const { store, sent, paused, metrics, settle } = await rig(t, () => (up ? ok : down));
  await store.telemetry.insertBatch([reading('a', 1), reading('a', 2), reading('a', 3), reading('a', 4)]);
  assert.equal(await settle(), 'done');
  assert.equal(sent.length, settings.maxAttempts);
  const w = await store.webhooks.get('whk_1');
  assert.equal(w?.state, 'paused');
  assert.match(w?.pausedReason ?? '', /whd_1 failed 4 attempts \(last: HTTP 503\)/);
  assert.equal(paused.length, 1);
  const letters = await store.webhooks.listDeadLetters('whk_1', 10);
  assert.deepEqual(
    letters.map((l) => [l.id, l.readings, l.attempts, l.lastError]),
    [['whd_1', 3, 4, 'HTTP 503']],
  );
  assert.equal(letters[0]?.body, sent[0]?.body);
  assert.equal((await metrics.deliveries.get()).values.find((v) => v.labels.result === 'dead_lettered')?.value, 1);
  // Resumed (as the service does), the loop continues with what came after the dead letter.
  await store.webhooks.update('whk_1', { state: 'active', pausedReason: null, pausedAt: null, attempts: 0, nextAttemptAt: null }, 0);
  sent.length = 0;
  up = true;
  assert.equal(await settle(), 'idle');
  assert.deepEqual(sent.map(ids), [['a/m4']]);
});

it('a paused subscription sends nothing', async (t) => {
  const { store, sent, settle } = await rig(t, () => ok, { state: 'paused', pausedReason: 'by hand', pausedAt: 1 });
  await store.telemetry.insertBatch([reading('a', 1)]);
  assert.equal(await settle(), 'done');
  assert.equal(sent.length, 0);
});

it('filters by schema, and by tag through the registry', async (t) => {
  const { store, sent, settle } = await rig(t, () => ok, { filter: { schemaIds: ['env@2'], deviceIds: [], tags: ['north'] } });
  await store.telemetry.insertBatch([reading('a', 1, 'env@2'), reading('b', 2, 'env@1'), reading('b', 3, 'env@2'), reading('c', 4, 'env@2')]);
  await settle();
  assert.deepEqual(sent.map(ids), [['b/m3']]);
  assert.equal((await store.webhooks.get('whk_1'))?.cursor, await store.telemetryFeed.head(), 'the cursor passed what the filter skipped');
});

it('filters by device group through the registry, beside tags (a device in either is delivered)', async (t) => {
  const { store, sent, settle } = await rig(t, () => ok, { filter: { schemaIds: [], deviceIds: [], tags: ['north'], groups: ['site-c'] } });
  await store.telemetry.insertBatch([reading('a', 1), reading('b', 2), reading('c', 3)]);
  await settle();
  assert.deepEqual(sent.map(ids), [['b/m2', 'c/m3']]);
});

it('a cursor of another feed starts again after the newest reading delivered', async (t) => {
  const { store, sent, settle } = await rig(t, () => ok, { feed: 'stream:telemetry', cursor: '99871', lastReceivedAt: 1002 });
  await store.telemetry.insertBatch([reading('a', 1), reading('a', 2), reading('a', 3)]);
  await settle();
  assert.deepEqual(sent.map(ids), [['a/m3']]);
  assert.equal((await store.webhooks.get('whk_1'))?.feed, 'store:sqlite');
});
