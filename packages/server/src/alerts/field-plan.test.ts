import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { RuleCondition } from './alerts.js';
import { type Previous, seriesCheck } from './conditions.js';
import { FieldPlan, type Step } from './field-plan.js';
import { type Rng, mulberry32 } from './anomaly/rng.js';
import { testRule } from '../testing/alert-rules.js';

const noAnomaly = () => ({ update: () => undefined });

/** Rules of every kind the plan may skip, with limits around the readings' range (some fire, most rest). */
function randomConditions(rng: Rng, count: number): RuleCondition[] {
  const ops = ['>', '>=', '<', '<='] as const;
  const random = () => rng.next();
  return Array.from({ length: count }, (_, i): RuleCondition => {
    if (i % 3 === 2) return { kind: 'rate', field: 'v', maxPerMinute: Math.round(random() * 20_000) };
    return { kind: 'threshold', field: 'v', op: ops[Math.floor(random() * 4)] as (typeof ops)[number], value: Math.round(random() * 40 - 20), forMs: random() < 0.5 ? 0 : 2_000, hysteresis: random() < 0.5 ? 0 : 2 };
  });
}

const steps = (conditions: readonly RuleCondition[], skippable: boolean): Step[] => conditions.map((c, i) => ({ rule: testRule(`r${i}`, c, { schemas: ['s@1'] }), check: seriesCheck(c, noAnomaly) as NonNullable<ReturnType<typeof seriesCheck>>, skippable }));

describe('field plan', () => {
  it('says exactly what running every check on every reading says, over random rules and readings', () => {
    for (let seed = 1; seed <= 40; seed += 1) {
      const rng = mulberry32(seed);
      const random = () => rng.next();
      const conditions = randomConditions(rng, 30);
      const plan = new FieldPlan('v', steps(conditions, true), { previous: undefined });
      const everyReading = steps(conditions, false);
      const planned: string[] = [];
      const naive: string[] = [];
      let previous: Previous | undefined;
      let level = 0;
      let skipped = 0;
      for (let k = 0; k < 2_000; k += 1) {
        // Mostly quiet readings near a level that now and then jumps (crossing limits), with equal values on a limit now and then.
        if (random() < 0.01) level = Math.round(random() * 40 - 20);
        const value = random() < 0.05 ? Math.round(level) : level + (random() - 0.5) * 0.2;
        const at = k * 100;
        plan.run(value, at, 'd', (rule, _device, verdict) => planned.push(`${k} ${rule.id} ${JSON.stringify(verdict)}`));
        for (const step of everyReading) {
          const verdict = step.check.observe(value, at, previous);
          if (verdict) naive.push(`${k} ${step.rule.id} ${JSON.stringify(verdict)}`);
        }
        previous = { value, at };
        skipped += conditions.length - plan.running;
      }
      assert.deepEqual(planned, naive, `seed ${seed}`);
      assert.ok(naive.length > 0, `seed ${seed}: the readings made some rule fire or clear`);
      assert.ok(skipped > 0, `seed ${seed}: checks at rest were skipped`);
    }
  });

  it('runs no check while every one rests inside its bounds, and all of them on a reading that crosses one', () => {
    const conditions: RuleCondition[] = [
      { kind: 'threshold', field: 'v', op: '>', value: 10, forMs: 0, hysteresis: 0 },
      { kind: 'threshold', field: 'v', op: '<', value: -10, forMs: 0, hysteresis: 0 },
      { kind: 'rate', field: 'v', maxPerMinute: 6_000 },
    ];
    const plan = new FieldPlan('v', steps(conditions, true), { previous: undefined });
    const said: string[] = [];
    const run = (value: number, at: number) => plan.run(value, at, 'd', (rule, _device, verdict) => said.push(`${rule.id} ${'fire' in verdict ? 'fire' : 'clear'}`));
    run(0, 0);
    assert.equal(plan.running, 1, 'the thresholds said their first clear (an alert may be open from before) and rest; the rate needs two readings');
    run(0, 1_000);
    assert.equal(plan.running, 0, 'all at rest after their first clears');
    said.length = 0;
    for (let k = 2; k < 50; k += 1) run(1, k * 1_000);
    assert.deepEqual(said, []);
    assert.equal(plan.running, 0);
    run(11, 50_000);
    assert.deepEqual(said, ['r0 fire']);
    assert.equal(plan.running, 1, 'the firing threshold sees every reading until it clears');
    run(0, 51_000);
    assert.deepEqual(said, ['r0 fire', 'r0 clear']);
    assert.equal(plan.running, 0);
    run(30, 51_250);
    assert.deepEqual(said.slice(2), ['r0 fire', 'r2 fire'], 'a jump of 30 in a quarter of a second is 7,200 a minute');
  });

  it('keeps a check that other plans feed running on every reading', () => {
    const conditions: RuleCondition[] = [{ kind: 'threshold', field: 'v', op: '>', value: 10, forMs: 60_000, hysteresis: 0 }];
    const plan = new FieldPlan('v', steps(conditions, false), { previous: undefined });
    for (let k = 0; k < 5; k += 1) plan.run(0, k, 'd', () => undefined);
    assert.equal(plan.running, 1);
  });
});
