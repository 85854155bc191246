import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { AnomalyKind, AnomalyVerdict, OnlineDetector } from './anomaly.js';
import type { LabelledSeries } from './generator.js';
import { scoreRun } from './scoring.js';

/** Raises the verdicts it is given, at the given reading numbers, whatever the readings. */
function scripted(verdicts: Record<number, AnomalyKind[]>): () => OnlineDetector {
  return () => {
    let i = -1;
    return {
      update(): AnomalyVerdict | undefined {
        i += 1;
        const kinds = verdicts[i];
        if (kinds === undefined) return undefined;
        const findings = kinds.map((kind) => ({ kind, score: 1, detail: '' }));
        return { ...(findings[0] as (typeof findings)[number]), findings };
      },
    };
  };
}

const series: LabelledSeries = {
  id: 's0',
  mean: 0,
  values: new Float64Array(700),
  labels: [
    { kind: 'spike', start: 200, end: 201, magnitude: 6 },
    { kind: 'shift', start: 300, end: 340, magnitude: 4 },
    { kind: 'drift', start: 420, end: 480, magnitude: 0.05 },
  ],
};

describe('scoreRun', () => {
  it('counts recall, kind recall and delay inside spans, and false alarms in anomaly-free windows', () => {
    const score = scoreRun(
      [series],
      scripted({
        10: ['spike'], // in the warm-up: ignored
        120: ['shift'], // stray, in the window [50, 150)
        200: ['spike'],
        302: ['spike'],
        305: ['drift', 'shift'],
        345: ['shift'], // the shift's aftermath (10 readings)
        480: ['drift'], // just after the drift's end: not a detection (no recall grace), but its aftermath
      }),
    );
    assert.deepEqual(score.classes.spike, { labels: 1, detected: 1, recall: 1, kindRecall: 1, medianDelay: 0, p90Delay: 0 });
    assert.deepEqual(score.classes.shift, { labels: 1, detected: 1, recall: 1, kindRecall: 1, medianDelay: 2, p90Delay: 2 });
    assert.equal(score.classes.drift.recall, 0);
    assert.ok(Number.isNaN(score.classes.drift.medianDelay));
    assert.ok(Number.isNaN(score.classes.stuck.recall));
    // Windows from 50: [50,150) counted and alarmed; [150,250) spike; [250,350) shift; [350,450) and
    // [450,550) the drift and its aftermath; [550,650) counted, quiet; [650,750) runs past the end.
    assert.deepEqual(score.falseAlarms, { windows: 2, alarmed: 1, rate: 0.5, byKind: { spike: 0, shift: 1, stuck: 0, drift: 0 } });
    // Readings 50..699 less the spike (1), the shift and its aftermath (50), the drift and its aftermath (70).
    assert.deepEqual(score.stray, { verdicts: 1, readings: 529, perThousand: 1000 / 529 });
    assert.deepEqual(score.verdicts, { spike: 3, shift: 2, stuck: 0, drift: 2 });
  });

  it('gives kind recall only for a finding of the label’s own kind', () => {
    const score = scoreRun([series], scripted({ 200: ['shift'], 301: ['spike'], 430: ['shift', 'spike'] }));
    assert.equal(score.classes.spike.recall, 1);
    assert.equal(score.classes.spike.kindRecall, 0);
    assert.equal(score.classes.shift.kindRecall, 0);
    assert.equal(score.classes.drift.recall, 1);
    assert.equal(score.classes.drift.kindRecall, 0);
    assert.equal(score.classes.drift.medianDelay, 10);
  });
});
