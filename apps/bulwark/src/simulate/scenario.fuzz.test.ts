import assert from 'node:assert/strict';
import { it } from 'node:test';
import fc from 'fast-check';
import { fuzzSettings } from '@bulwark/core/testing/fuzz';
import { ScenarioError, checkScenario } from './scenario.js';
import { parseScenarioText } from './scenario-input.js';

/** Scenario files under fuzzing: any text, JSON or YAML, is a scenario or a ScenarioError naming its problems. */
it('a scenario file of any content is a scenario or refused with its problems', () => {
  const field = fc.constantFrom('name', 'devices', 'duration', 'rate', 'profiles', 'impairment', 'firmware', 'connect', 'loss', 'latency', 'outages', 'count', 'every', 'x');
  const doc = fc.dictionary(field, fc.oneof(fc.jsonValue({ maxDepth: 3 }), fc.dictionary(field, fc.jsonValue({ maxDepth: 2 }), { maxKeys: 4 })), { maxKeys: 6 });
  const texts = fc.oneof(
    fc.tuple(fc.string({ maxLength: 200 }), fc.constantFrom('s.json', 's.yaml')),
    fc.tuple(
      doc.map((d) => JSON.stringify(d)),
      fc.constant('s.json'),
    ),
    fc.tuple(
      doc.map((d) =>
        Object.entries(d)
          .map(([k, v]) => `${k}: ${JSON.stringify(v)}`)
          .join('\n'),
      ),
      fc.constant('s.yaml'),
    ),
  );
  fc.assert(
    fc.property(texts, ([text, name]) => {
      try {
        checkScenario(parseScenarioText(text, name));
      } catch (err) {
        assert.ok(err instanceof ScenarioError && err.problems.length > 0, `unexpected ${String(err)}`);
      }
    }),
    fuzzSettings(),
  );
});
