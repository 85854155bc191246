import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ManualClock, silentLogger } from '@bulwark/core';
import type { TelemetryRecord } from '../ingest/index.js';
import { Deadlines } from './deadlines.js';
import { AlertEvaluator, type VerdictSink } from './evaluator.js';
import { testRule, verdictRecorder } from '../testing/alert-rules.js';

const reading = (deviceId: string, at: number, data: Record<string, unknown>, schemaId = 's@1'): TelemetryRecord => ({
  deviceId,
  msgId: `${deviceId}-${at}`,
  schemaId,
  seq: null,
  boot: null,
  deviceTs: at,
  receivedAt: at,
  ts: at,
  skewMs: 0,
  data,
});

function evaluator(clock: ManualClock, sink: VerdictSink, facts: Record<string, { tags: string[]; model: string | null; groups?: string[] }> = {}, online = false) {
  let lookups = 0;
  const e = new AlertEvaluator({
    clock,
    log: silentLogger,
    sink,
    anomaly: () => ({ update: () => undefined }),
    facts: async (id) => {
      lookups += 1;
      const f = facts[id];
      return { tags: f?.tags ?? [], model: f?.model ?? null, groups: f?.groups ?? [] };
    },
    online: async () => online,
  });
  return { e, lookups: () => lookups };
}

const settle = () => new Promise((r) => setImmediate(r));

describe('alert evaluator', () => {
  it('threshold: fires once after the duration, clears only past the hysteresis', async () => {
    const clock = new ManualClock(1_000_000);
    const sink = verdictRecorder();
    const { e } = evaluator(clock, sink);
    e.setRules([testRule('hot', { kind: 'threshold', field: 't', op: '>', value: 80, forMs: 60_000, hysteresis: 5 })]);
    const t0 = clock.now();
    for (const [dt, v] of [
      [0, 85],
      [30_000, 86],
      [59_999, 90],
      [60_000, 91],
      [61_000, 92],
      [62_000, 78],
      [63_000, 74],
      [64_000, 70],
    ] as const) {
      e.observe(reading('d1', t0 + dt, { t: v }));
      await settle();
    }
    assert.deepEqual(sink.events, ['fire hot d1: t 91 > 80 for 1.0m', 'clear hot d1']);
    e.stop();
  });

  it('threshold: a reading back under the limit restarts the duration', async () => {
    const clock = new ManualClock(0);
    const sink = verdictRecorder();
    const { e } = evaluator(clock, sink);
    e.setRules([testRule('hot', { kind: 'threshold', field: 't', op: '>=', value: 10, forMs: 1000, hysteresis: 0 })]);
    for (const [at, v] of [
      [0, 10],
      [900, 5],
      [1500, 11],
      [2400, 12],
    ] as const)
      e.observe(reading('d1', at, { t: v }));
    await settle();
    assert.deepEqual(sink.events, []);
    e.stop();
  });

  it('rate: fires on a jump faster than the limit, clears on the next calm change', async () => {
    const clock = new ManualClock(0);
    const sink = verdictRecorder();
    const { e } = evaluator(clock, sink);
    e.setRules([testRule('jump', { kind: 'rate', field: 'p', maxPerMinute: 10 })]);
    for (const [at, v] of [
      [0, 100],
      [60_000, 105],
      [120_000, 130],
      [180_000, 131],
    ] as const)
      e.observe(reading('d1', at, { p: v }));
    await settle();
    assert.deepEqual(sink.events, ['fire jump d1: p changed 25/min (limit ±10/min)', 'clear jump d1']);
    e.stop();
  });

  it('rate: compares with the previous reading across facts reloads and rule changes, per schema', async () => {
    const clock = new ManualClock(0);
    const sink = verdictRecorder();
    const { e, lookups } = evaluator(clock, sink);
    const rules = [testRule('jump', { kind: 'rate', field: 'p', maxPerMinute: 10 }, { schemas: ['s@1'] }), testRule('gone', { kind: 'offline', forMs: 3_600_000 })];
    e.setRules(rules);
    e.observe(reading('d1', 0, { p: 0 }));
    await settle();
    // A device that sleeps between readings: its disconnect and the facts' age both read the device again.
    e.disconnected('d1', 1_000);
    await settle();
    clock.set(120_000);
    e.observe(reading('d1', 120_000, { p: 1_000 }));
    await settle();
    assert.equal(lookups(), 3);
    assert.deepEqual(sink.events, ['fire jump d1: p changed 500/min (limit ±10/min)']);
    // A change of the rules (here: the same rules again) makes the plans again; the previous reading stays.
    e.setRules([...rules]);
    e.observe(reading('d1', 130_000, { p: 1_000 }));
    e.setRules([...rules]);
    e.observe(reading('d1', 190_000, { p: 2_000 }));
    await settle();
    assert.deepEqual(sink.events.slice(1), ['clear jump d1', 'fire jump d1: p changed 1000/min (limit ±10/min)']);
    e.stop();
  });

  it("rate on every schema: each schema's readings are compared with that schema's previous one", async () => {
    const clock = new ManualClock(0);
    const sink = verdictRecorder();
    const { e } = evaluator(clock, sink);
    e.setRules([testRule('jump', { kind: 'rate', field: 'p', maxPerMinute: 10 })]);
    for (let k = 0; k < 6; k += 1) {
      e.observe(reading('d1', k * 60_000, { p: 0 }));
      e.observe(reading('d1', k * 60_000 + 1, { p: 1_000 }, 'other@1'));
    }
    e.observe(reading('d1', 6 * 60_000, { p: 100 }));
    await settle();
    assert.deepEqual(sink.events, ['fire jump d1: p changed 100/min (limit ±10/min)']);
    e.stop();
  });

  it('scope: by device id, tag and model together; other schemas and non-numbers are not evaluated', async () => {
    const clock = new ManualClock(0);
    const sink = verdictRecorder();
    const { e } = evaluator(clock, sink, { a: { tags: ['site-7'], model: 'B' }, b: { tags: ['site-7'], model: 'A' }, c: { tags: [], model: 'B' } });
    e.setRules([testRule('hot', { kind: 'threshold', field: 't', op: '>', value: 0, forMs: 0, hysteresis: 0 }, { tags: ['site-7'], models: ['B'], schemas: ['s@1'] })]);
    for (const id of ['a', 'b', 'c']) e.observe(reading(id, 1, { t: 5 }));
    e.observe(reading('a', 2, { t: 5 }, 'other@1'));
    e.observe(reading('a', 3, { t: 'hot' }));
    await settle();
    assert.deepEqual(sink.events, ['fire hot a: t 5 > 0']);
    e.stop();
  });

  it('scope by group: a device in any of the named groups; membership read again once a rule names a new group', async () => {
    const clock = new ManualClock(0);
    const sink = verdictRecorder();
    const membership: Record<string, { tags: string[]; model: null; groups: string[] }> = { a: { tags: [], model: null, groups: ['north'] }, b: { tags: [], model: null, groups: [] } };
    const { e, lookups } = evaluator(clock, sink, membership);
    const hot = (id: string, groups: string[]) => testRule(id, { kind: 'threshold', field: 't', op: '>', value: 0, forMs: 0, hysteresis: 0 }, { groups });
    e.setRules([hot('north-hot', ['north', 'gone'])]);
    for (const id of ['a', 'b']) e.observe(reading(id, 1, { t: 5 }));
    await settle();
    assert.deepEqual(sink.events, ['fire north-hot a: t 5 > 0']);
    assert.equal(lookups(), 2);
    // b joins south; a rule on south makes the facts be read again (within the facts' lifetime).
    membership.b = { tags: [], model: null, groups: ['south'] };
    e.setRules([hot('north-hot', ['north', 'gone']), hot('south-hot', ['south'])]);
    clock.advance(1000);
    e.observe(reading('b', 2, { t: 6 }));
    await settle();
    assert.deepEqual(sink.events, ['fire north-hot a: t 5 > 0', 'fire south-hot b: t 6 > 0']);
    assert.equal(lookups(), 3);
    e.stop();
  });

  it('absence and offline keep one deadline per device that did something, none for the silent rest of a million-device scope', async () => {
    const clock = new ManualClock(0);
    const sink = verdictRecorder();
    const { e, lookups } = evaluator(clock, sink);
    // Both rules match every device of the fleet, however large; only devices that act cost anything.
    e.setRules([testRule('quiet', { kind: 'absence', field: null, forMs: 10_000 }), testRule('gone', { kind: 'offline', forMs: 5_000 })]);
    assert.equal(e.deadlines, 0);
    e.observe(reading('d1', 0, { t: 1 }));
    e.observe(reading('d2', 0, { t: 1 }));
    e.disconnected('d3', 0);
    await settle();
    assert.equal(e.deadlines, 3);
    assert.equal(lookups(), 3);
    clock.set(5_000);
    await runDeadlines(e);
    assert.deepEqual(sink.events, ['fire gone d3: offline for 5s or more']);
    e.observe(reading('d1', 9_000, { t: 1 }));
    clock.set(10_000);
    await runDeadlines(e);
    assert.deepEqual(sink.events.slice(1), ['fire quiet d2: no reading for 10s']);
    e.connected('d3');
    await settle();
    assert.deepEqual(sink.events.slice(2), ['clear gone d3']);
    assert.equal(e.deadlines, 1, 'd1 waits for its next reading');
    e.stop();
  });
});

/** Runs the deadlines passed on the manual clock and waits for the checks they start. */
async function runDeadlines(e: AlertEvaluator): Promise<void> {
  e.tick();
  await settle();
  await settle();
}

describe('deadlines', () => {
  it('fires each key once at its latest time, in time order, on one timer', async () => {
    const clock = new ManualClock(0);
    const fired: string[] = [];
    const d = new Deadlines(clock, (k) => fired.push(k));
    d.set('a', 30);
    d.set('b', 10);
    d.set('c', 20);
    d.set('b', 40); // moved
    d.cancel('c');
    clock.set(35);
    d.run();
    assert.deepEqual(fired, ['a']);
    clock.set(40);
    d.run();
    assert.deepEqual(fired, ['a', 'b']);
    assert.equal(d.size, 0);
    d.stop();
  });
});
