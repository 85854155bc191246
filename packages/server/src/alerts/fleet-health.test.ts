import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ManualClock, silentLogger } from '@bulwark/core';
import type { TelemetryRecord } from '../ingest/index.js';
import type { AlertRule } from './alerts.js';
import { FleetHealth } from './fleet-health.js';
import { testRule, verdictRecorder } from '../testing/alert-rules.js';

const settle = () => new Promise((r) => setImmediate(r));
const reading = (deviceId: string, skewMs: number | null): TelemetryRecord => ({
  deviceId,
  msgId: 'm',
  schemaId: 's@1',
  seq: null,
  boot: null,
  deviceTs: 0,
  receivedAt: 0,
  ts: 0,
  skewMs,
  data: {},
});

function fleet(rules: AlertRule[], minSecurityVersion = 0) {
  const clock = new ManualClock(1_000_000);
  const sink = verdictRecorder();
  const f = new FleetHealth({ clock, log: silentLogger, sink, facts: async () => ({ tags: ['site-7'], model: 'gw', groups: ['north'] }), minSecurityVersion: () => minSecurityVersion });
  f.setRules(rules);
  return { clock, sink, f };
}

describe('fleet-health rules', () => {
  it('flapping: more connections than allowed within the window fire once; a quiet window clears', async () => {
    const { clock, sink, f } = fleet([testRule('flap', { kind: 'flapping', connects: 3, withinMs: 60_000 })]);
    for (let i = 0; i < 6; i += 1) {
      f.connected('d1', clock.now());
      clock.advance(5_000);
    }
    await settle();
    assert.deepEqual(sink.events, ['fire flap d1: 4 connections within 1m']);
    clock.advance(60_000);
    f.tick();
    await settle();
    assert.deepEqual(sink.events.slice(1), ['clear flap d1']);
    f.stop();
  });

  it('dead letters: more than the rate within a minute fire; a minute at or under it clears', async () => {
    const { clock, sink, f } = fleet([testRule('dl', { kind: 'dead_letters', perMinute: 2 })]);
    for (let i = 0; i < 3; i += 1) f.deadLettered('d1', clock.now());
    f.deadLettered('d2', clock.now());
    await settle();
    assert.deepEqual(sink.events, ['fire dl d1: 3 messages dead-lettered within a minute']);
    clock.advance(60_000);
    f.tick();
    await settle();
    assert.deepEqual(sink.events.slice(1), ['clear dl d1']);
    f.stop();
  });

  it('clock skew: a reading off by more than the limit fires once, a reading within it clears', async () => {
    const { sink, f } = fleet([testRule('skew', { kind: 'clock_skew', maxMs: 60_000 })]);
    for (const skew of [1_000, 120_000, 180_000, null, -5_000]) f.reading(reading('d1', skew));
    await settle();
    assert.deepEqual(sink.events, ['fire skew d1: device clock behind by 2.0m (limit 1m)', 'clear skew d1']);
    f.stop();
  });

  it('health reports: restart loop, firmware below the minimum security version, an agent dropping readings', async () => {
    const { sink, f } = fleet([testRule('loop', { kind: 'restart_loop' }), testRule('sv', { kind: 'firmware_security' }), testRule('drop', { kind: 'queue_dropping' })], 5);
    f.reported('d1', { restartLoop: true, recentRestarts: 6, restartReason: 'watchdog', firmware: { version: '1.0.0', securityVersion: 3 }, queueDropped: 10 });
    await settle();
    assert.deepEqual(sink.events.sort(), ['fire loop d1: restart loop: 6 recent restarts (last: watchdog)', "fire sv d1: firmware 1.0.0 has security version 3, below the fleet's minimum 5"]);
    f.reported('d1', { restartLoop: false, firmware: { version: '1.1.0', securityVersion: 5 }, queueDropped: 25 });
    await settle();
    assert.deepEqual(sink.events.slice(2).sort(), ['clear loop d1', 'clear sv d1', 'fire drop d1: the agent dropped 15 readings from its offline queue since its last report (25 in all)']);
    f.reported('d1', { queueDropped: 25 });
    await settle();
    assert.deepEqual(sink.events.slice(5), ['clear drop d1']);
    f.stop();
  });

  it('no minimum security version set: old firmware fires nothing; scope by tag and by group holds', async () => {
    const rules = [
      testRule('sv', { kind: 'firmware_security' }),
      testRule('loop', { kind: 'restart_loop' }, { tags: ['elsewhere'] }),
      testRule('loop-south', { kind: 'restart_loop' }, { groups: ['south'] }),
      testRule('loop-north', { kind: 'restart_loop' }, { groups: ['north'] }),
    ];
    const { sink, f } = fleet(rules, 0);
    f.reported('d1', { restartLoop: true, firmware: { securityVersion: 0 } });
    await settle();
    assert.deepEqual(sink.events, ['fire loop-north d1: restart loop: ? recent restarts (last: ?)']);
    f.stop();
  });

  it('a rollout that paused or aborted itself fires for the rollout; completing clears', async () => {
    const { sink, f } = fleet([testRule('ro', { kind: 'rollout_stopped' })]);
    f.rollout('ro_1', 'paused', 'failure gate: 3 of 10 failed');
    f.rollout('ro_1', 'completed', null);
    await settle();
    assert.deepEqual(sink.events, ['fire ro rollout:ro_1: rollout ro_1 paused: failure gate: 3 of 10 failed', 'clear ro rollout:ro_1']);
    f.stop();
  });
});

describe('fleet-health rules: link quality', () => {
  it('more readings lost or repeated within the window than allowed fire once; a window without any clears', async () => {
    const { clock, sink, f } = fleet([testRule('link', { kind: 'link_quality', lost: 10, duplicates: 3, withinMs: 60_000 })]);
    f.linkTrouble('d1', 'lost', 6, clock.now());
    f.linkTrouble('d2', 'duplicate', 1, clock.now());
    clock.advance(10_000);
    f.linkTrouble('d1', 'lost', 5, clock.now());
    f.linkTrouble('d1', 'duplicate', 1, clock.now());
    for (let i = 0; i < 3; i += 1) f.linkTrouble('d2', 'duplicate', 1, clock.now());
    await settle();
    assert.deepEqual(sink.events, ['fire link d1: 11 readings lost and 0 sent again within 1m', 'fire link d2: 0 readings lost and 4 sent again within 1m']);
    // Older trouble leaves the window: a later gap alone stays under the limit and fires nothing new.
    clock.advance(61_000);
    f.linkTrouble('d2', 'lost', 2, clock.now());
    f.tick();
    await settle();
    assert.deepEqual(sink.events.slice(2), ['clear link d1']);
    clock.advance(60_000);
    f.tick();
    await settle();
    assert.deepEqual(sink.events.slice(3), ['clear link d2']);
    f.stop();
  });
});
