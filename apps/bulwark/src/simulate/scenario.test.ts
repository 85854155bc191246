import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { ScenarioError, checkScenario } from './scenario.js';
import { parseScenarioText, scenarioFromFlags } from './scenario-input.js';
import { FieldSeries, chooseShare, rng } from './values.js';

const EXAMPLES = fileURLToPath(new URL('../../../../examples/scenarios/', import.meta.url));

const problemsOf = (input: unknown): string[] => {
  try {
    checkScenario(input);
    return [];
  } catch (err) {
    assert.ok(err instanceof ScenarioError, String(err));
    return err.problems.map((p) => `${p.path}: ${p.reason}`);
  }
};

describe('simulation scenarios', () => {
  it('every shipped scenario is valid', () => {
    const files = readdirSync(EXAMPLES).filter((f) => /\.(ya?ml|json)$/.test(f));
    assert.ok(files.length >= 4, files.join(', '));
    for (const f of files) {
      const s = checkScenario(parseScenarioText(readFileSync(join(EXAMPLES, f), 'utf8'), f));
      assert.equal(s.name, f.replace(/\.\w+$/, ''), f);
    }
  });

  it('resolves durations, shares and defaults', () => {
    const s = checkScenario({ name: 'x', devices: 3, duration: '2m', clockSkew: { share: '10%', max: '30s' }, phases: [{ at: 0 }, { name: 'bad', at: '1m', impair: { latency: '300ms', partition: 0.25 } }] });
    assert.deepEqual([s.durationMs, s.clockSkew.share, s.clockSkew.maxMs, s.phases[1]?.impair.latencyMs, s.phases[1]?.impair.partition], [120_000, 0.1, 30_000, 300, 0.25]);
    assert.equal(s.profiles[0]?.schema, 'sim-env@1');
    assert.equal(s.idPrefix, 'sim-x-');
    assert.equal(scenarioFromFlags({ devices: 7, rateSeconds: 2 }, { name: 'y' }).profiles[0]?.intervalMs, 2000);
  });

  it('lists every problem at once, each with its path: unknown keys at any level, bad values, impossible rates, phases out of order', () => {
    const problems = problemsOf({
      name: 'Bad Name',
      devices: 0,
      duraton: '1m',
      duration: 'soon',
      profiles: [{ interval: '100ms', fields: { 'bad-field': {}, t: { mean: 'x', spike: { probability: 2 } } }, extra: 1 }],
      misbehaving: { share: '150%', kinds: ['rude'] },
      phases: [{ at: '5s', impair: { latency: '1h', lossy: true } }, { at: '1s' }],
      actions: [{ at: '1s', reboot: {} }],
      targets: { delivered: 101, speed: 1 },
    });
    for (const expected of [
      'name: must match',
      'devices: must be a whole number from 1 to 100000',
      'duraton: unknown key',
      'duration: must be a duration',
      'profiles[0].extra: unknown key',
      'profiles[0].fields.bad-field: a field name',
      'profiles[0].fields.t.mean: must be a number',
      'profiles[0].fields.t.spike.probability: must be a share',
      'misbehaving.share: must be a share',
      'misbehaving.kinds[0]: must be one of bad_payload, unknown_schema',
      'phases[0].impair.latency: must be from 0 ms to 60000 ms',
      'phases[0].impair.lossy: unknown key',
      'phases[1].at: phases must start in order',
      'phases[0].at: the first phase starts at 0s',
      'actions[0]: an action is a command',
      'targets.delivered: must be a number from 0 to 100',
      'targets.speed: unknown key',
    ])
      assert.ok(
        problems.some((p) => p.startsWith(expected)),
        `${expected}\nin:\n${problems.join('\n')}`,
      );
    assert.ok(problemsOf({ devices: 100_000, profiles: [{ interval: '100ms' }] }).some((p) => /1000000 readings\/s/.test(p)));
    assert.throws(() => parseScenarioText('devices: [1', 'x.yaml'), /not YAML/);
  });

  it('value generators: noise around the mean, drift, spikes and stuck runs, the same for the same seed', () => {
    const spec = { mean: 10, sigma: 1, drift: 0.01, spike: { probability: 0.01, size: 8 }, stuck: { probability: 0.005, length: 20 } };
    const a = new FieldSeries(spec, rng(42));
    const b = new FieldSeries(spec, rng(42));
    const xs = Array.from({ length: 5000 }, () => a.next());
    assert.deepEqual(
      xs.slice(0, 50),
      Array.from({ length: 50 }, () => b.next()),
    );
    const early = xs.slice(0, 500).reduce((s, x) => s + x, 0) / 500;
    const late = xs.slice(4500).reduce((s, x) => s + x, 0) / 500;
    assert.ok(late - early > 35 && late - early < 55, `drift of 0.01 a reading over 4500 readings: ${late - early}`);
    assert.ok(a.made.spikes > 10 && a.made.stuckRuns > 5, JSON.stringify(a.made));
    let longest = 1;
    for (let i = 1, run = 1; i < xs.length; i += 1) longest = Math.max(longest, (run = xs[i] === xs[i - 1] ? run + 1 : 1));
    assert.ok(longest >= 20, `a stuck run of 20 equal readings (longest ${longest})`);
    assert.equal(chooseShare(1000, 0.05, 1, 2).size, 50);
    assert.deepEqual(chooseShare(100, 0.1, 1, 2), chooseShare(100, 0.1, 1, 2));
  });
});
