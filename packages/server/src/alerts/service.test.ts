import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ManualClock, SequentialIds, silentLogger } from '@bulwark/core';
import { sqliteStoreFor } from '../testing/sqlite-store.js';
import type { AlertRepository } from './alerts.js';
import { AlertService } from './service.js';

describe('AlertService on the SQLite store', () => {
  it('fails a transition of a group alone: the others of its group are stored with their audit entries', async (t) => {
    const clock = new ManualClock();
    const store = await sqliteStoreFor(t, clock);
    const groups: number[] = [];
    const repo = Object.assign(Object.create(store.alerts) as AlertRepository, {
      apply: (items: Parameters<AlertRepository['apply']>[0]) => {
        groups.push(items.length);
        return store.alerts.apply(items);
      },
    });
    let audited = 0;
    const service = new AlertService({
      repo,
      clock,
      ids: new SequentialIds(),
      log: silentLogger,
      fields: () => Promise.resolve(undefined),
      audit: () => Promise.resolve(),
      audited: (n) => {
        audited += n;
      },
      seal: (secret) => secret,
      queued: () => undefined,
      changed: () => undefined,
      counted: () => undefined,
      runbookBaseUrl: 'https://runbooks.example',
      grouping: { waitMs: 0, minAlerts: 100, windowMs: 60_000 },
      flapping: { maxFires: 100, windowMs: 60_000 },
      batchMs: 50,
    });
    await service.refresh();
    const rule = await service.createRule({ name: 'hot', severity: 'warning', condition: { kind: 'threshold', field: 'a', op: '>', value: 1, for: '0s' } }, 'usr_1');

    // One group of three; the second's details cannot be stored (JSON has no BigInt).
    const results = await Promise.allSettled([service.fire(rule, 'd1', 'a above 1', { value: 2 }), service.fire(rule, 'd2', 'a above 1', { value: 10n }), service.fire(rule, 'd3', 'a above 1', { value: 3 })]);
    assert.deepEqual(groups, [3]);
    assert.deepEqual(
      results.map((r) => r.status),
      ['fulfilled', 'rejected', 'fulfilled'],
    );
    assert.ok((results[1] as PromiseRejectedResult).reason instanceof TypeError, "the caller gets its own transition's error");
    assert.deepEqual((await service.list({ state: 'open', limit: 10 })).map((a) => a.deviceId).sort(), ['d1', 'd3']);
    const entries = await store.audit.scan(0, 10);
    assert.deepEqual(
      entries.map((e) => [e.seq, e.action, e.details?.deviceId]),
      [
        [1, 'alert.fire', 'd1'],
        [2, 'alert.fire', 'd3'],
      ],
    );
    assert.equal(audited, 2);

    // Nothing of the failed one was kept: it fires later as any other.
    await service.fire(rule, 'd2', 'a above 1', { value: 10 });
    assert.equal((await service.list({ state: 'open', deviceId: 'd2', limit: 10 })).length, 1);
  });
});
