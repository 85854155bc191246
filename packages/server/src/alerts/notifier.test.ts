import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ManualClock, silentLogger } from '@bulwark/core';
import { sqliteStoreFor } from '../testing/sqlite-store.js';
import type { DeliveryRequest, DeliveryResult } from '../webhooks/index.js';
import type { Alert, AlertChannel, AlertRepository, Grouping, Outgoing } from './alerts.js';
import { AlertNotifier } from './notifier.js';

const T0 = 1_700_000_000_000;
const channel: AlertChannel = { id: 'chan_1', name: 'ops', kind: 'webhook', url: 'https://example.test/hook', secret: 'sealed', minSeverity: 'info', batch: false, createdBy: 'usr_1', createdAt: T0 };
const alert = (id: string, deviceId: string): Alert => ({
  id,
  ruleId: 'r1',
  deviceId,
  type: 'offline',
  severity: 'critical',
  state: 'firing',
  summary: 'offline',
  details: {},
  firedAt: T0,
  acknowledgedAt: null,
  acknowledgedBy: null,
  resolvedAt: null,
  silenced: false,
  incidentId: null,
});
const note = (id: string): Outgoing => ({ id, channelId: channel.id, event: 'fired', body: `{"id":"${id}"}` });
const grouping = (at: number): Grouping => ({ windowMs: 60_000, minAlerts: 1_000, sendAt: at, newIncidentId: `inc-${at}`, opened: () => [] });

function deferred() {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => {
    resolve = r;
  });
  return { promise, resolve };
}

describe('AlertNotifier', () => {
  it('sends a notification once when its delivered mark is written while a later pass that read it as undelivered is under way', async (t) => {
    const clock = new ManualClock(T0);
    const store = await sqliteStoreFor(t, clock);
    const repo = store.alerts;
    await repo.insertRule({
      id: 'r1',
      name: 'r1',
      severity: 'critical',
      scope: { deviceIds: [], tags: [], models: [], groups: [], schemas: [] },
      condition: { kind: 'offline', forMs: 60_000 },
      enabled: true,
      builtIn: false,
      createdBy: 'usr_1',
      createdAt: T0,
      updatedAt: T0,
    });
    await repo.insertChannel(channel);
    // The first delivered mark is held until the test lets it go.
    const markGate = deferred();
    const markWritten = deferred();
    let marks = 0;
    const slowMarks: AlertRepository = Object.create(repo, {
      delivered: {
        value: async (ids: readonly string[], at: number) => {
          if (++marks === 1) await markGate.promise;
          await repo.delivered(ids, at);
          if (marks === 1) markWritten.resolve();
        },
      },
    });
    const sent: string[] = [];
    const secondPass = deferred();
    const notifier = new AlertNotifier(
      { pollIntervalMs: 60_000, retryBaseMs: 100, retryMaxMs: 1000, maxAgeMs: 3_600_000, lanesPerChannel: 1 },
      {
        repo: slowMarks,
        clock,
        log: silentLogger,
        counted: () => undefined,
        channels: () => [channel],
        openSecret: async () => 'secret',
        email: () => Promise.reject(new Error('no e-mail channel here')),
        deliver: async (req: DeliveryRequest): Promise<DeliveryResult> => {
          sent.push(req.deliveryId);
          // n0 goes out in the second pass, before n1 (which that pass read as undelivered): its mark lands meanwhile.
          if (req.deliveryId === 'n0') {
            markGate.resolve();
            await markWritten.promise;
            // The mark's promise chain settles (microtasks) before the lane goes on to n1.
            await new Promise((r) => setImmediate(r));
            secondPass.resolve();
          }
          return { ok: true, status: 200, durationMs: 1 };
        },
      },
    );
    await repo.fire(alert('a1', 'd1'), [note('n1')], T0, grouping(T0));
    notifier.start();
    t.after(() => notifier.stop());
    // n1 is sent in the first pass; its mark is held. n0 is queued (older, so read first) and the notifier told.
    while (!sent.includes('n1')) await new Promise((r) => setImmediate(r));
    await repo.fire(alert('a0', 'd0'), [note('n0')], T0 - 1, grouping(T0 - 1));
    notifier.notify();
    await secondPass.promise;
    // A third pass, after everything is marked, finds nothing.
    notifier.notify();
    while ((await repo.countUndelivered()) > 0) await new Promise((r) => setImmediate(r));
    await notifier.stop();
    assert.deepEqual(sent, ['n1', 'n0']);
  });

  it('a batching channel gets what is due in one signed POST, each notification with its id; a refused batch is retried whole, and an alert waiting for it holds back its later notifications', async (t) => {
    const clock = new ManualClock(T0 + 100);
    const store = await sqliteStoreFor(t, clock);
    const repo = store.alerts;
    await repo.insertRule({
      id: 'r1',
      name: 'r1',
      severity: 'critical',
      scope: { deviceIds: [], tags: [], models: [], groups: [], schemas: [] },
      condition: { kind: 'offline', forMs: 60_000 },
      enabled: true,
      builtIn: false,
      createdBy: 'usr_1',
      createdAt: T0,
      updatedAt: T0,
    });
    const bulk: AlertChannel = { ...channel, batch: true };
    await repo.insertChannel(bulk);
    const posts: DeliveryRequest[] = [];
    let answer: DeliveryResult = { ok: false, status: 503, durationMs: 1, error: 'HTTP 503' };
    let posted = deferred();
    const notifier = new AlertNotifier(
      { pollIntervalMs: 60_000, retryBaseMs: 1000, retryMaxMs: 1000, maxAgeMs: 3_600_000 },
      {
        repo,
        clock,
        log: silentLogger,
        counted: () => undefined,
        channels: () => [bulk],
        random: () => 1,
        openSecret: async () => 'secret',
        email: () => Promise.reject(new Error('no e-mail channel here')),
        deliver: async (req) => {
          posts.push(req);
          posted.resolve();
          return answer;
        },
      },
    );
    const ids = (req: DeliveryRequest | undefined) => (JSON.parse(req?.body ?? '{}') as { notifications: { delivery: string; id: string }[] }).notifications.map((n) => [n.delivery, n.id]);
    for (const i of [1, 2, 3]) await repo.fire(alert(`a${i}`, `d${i}`), [note(`n${i}`)], T0 + i, grouping(T0 + i));
    notifier.start();
    t.after(() => notifier.stop());
    await posted.promise;
    assert.equal(posts.length, 1);
    assert.deepEqual(
      ids(posts[0]),
      [
        ['n1', 'n1'],
        ['n2', 'n2'],
        ['n3', 'n3'],
      ],
      'oldest first, each body with its delivery id',
    );
    assert.equal(posts[0]?.deliveryId, 'batch-n1');
    assert.equal(posts[0]?.attempt, 1);

    // Refused: all three wait for the retry; a1's next notification waits behind them; a new alert goes alone.
    await repo.resolve('a1', T0 + 10, [{ id: 'n4', channelId: bulk.id, event: 'resolved', body: '{"id":"n4"}' }], () => []);
    await repo.fire(alert('a5', 'd5'), [note('n5')], T0 + 11, grouping(T0 + 11));
    answer = { ok: true, status: 200, durationMs: 1 };
    posted = deferred();
    notifier.notify();
    await posted.promise;
    assert.deepEqual(ids(posts[1]), [['n5', 'n5']]);

    clock.advance(1001);
    posted = deferred();
    notifier.notify();
    await posted.promise;
    assert.deepEqual(
      ids(posts[2]),
      [
        ['n1', 'n1'],
        ['n2', 'n2'],
        ['n3', 'n3'],
        ['n4', 'n4'],
      ],
      'retried whole, a1 in order',
    );
    assert.equal(posts[2]?.attempt, 2);
    while ((await repo.countUndelivered()) > 0) await new Promise((r) => setImmediate(r));
    await notifier.stop();
    assert.equal(posts.length, 3);
  });
});
