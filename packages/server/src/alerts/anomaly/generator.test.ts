import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DEFAULT_LAYOUT, DRIFT_READINGS, generateOne, generateSeries } from './generator.js';

describe('generateSeries', () => {
  it('is deterministic: the same seed gives the same series bit for bit, another seed others', () => {
    const a = generateSeries(42, 50);
    const b = generateSeries(42, 50);
    assert.deepEqual(a, b);
    assert.deepEqual(generateOne(42, 17), a[17]);
    const c = generateSeries(43, 50);
    assert.notDeepEqual(c[0]?.values, a[0]?.values);
  });

  it('lays anomalies out as documented: after the warm-up, apart, inside the series, of the stated sizes', () => {
    const series = generateSeries(7, 400);
    let clean = 0;
    const kinds = new Set<string>();
    for (const s of series) {
      assert.equal(s.values.length, DEFAULT_LAYOUT.length);
      if (s.labels.length === 0) clean += 1;
      assert.ok(s.labels.length <= DEFAULT_LAYOUT.maxAnomalies);
      let previousEnd = DEFAULT_LAYOUT.firstStart - DEFAULT_LAYOUT.gapMin;
      for (const l of s.labels) {
        kinds.add(l.kind);
        assert.ok(l.start - previousEnd >= DEFAULT_LAYOUT.gapMin && l.start >= DEFAULT_LAYOUT.firstStart, `${s.id} ${l.start}`);
        assert.ok(l.end + DEFAULT_LAYOUT.tail <= s.values.length);
        previousEnd = l.end;
        const v = (i: number) => (s.values[i] as number) - s.mean;
        if (l.kind === 'spike') {
          assert.equal(l.end - l.start, 1);
          assert.ok(Math.abs(v(l.start)) >= 5 && Math.abs(l.magnitude) >= 5);
        } else if (l.kind === 'shift') {
          assert.ok(l.end - l.start >= 30 && Math.abs(l.magnitude) >= 3);
        } else if (l.kind === 'stuck') {
          assert.ok(l.end - l.start >= 20);
          for (let i = l.start; i < l.end; i += 1) assert.equal(s.values[i], s.values[l.start - 1]);
        } else {
          assert.equal(l.end - l.start, DRIFT_READINGS);
          assert.equal(Math.abs(l.magnitude), 0.05);
        }
      }
    }
    assert.deepEqual([...kinds].sort(), ['drift', 'shift', 'spike', 'stuck']);
    assert.ok(clean > 0.15 * series.length && clean < 0.25 * series.length, `clean ${clean}`);
  });

  it('draws the noise with σ = 1 around each series’ own level', () => {
    const clean = generateSeries(9, 200).filter((s) => s.labels.length === 0);
    const residuals = clean.flatMap((s) => [...s.values].map((x) => x - s.mean));
    const mean = residuals.reduce((a, b) => a + b, 0) / residuals.length;
    const sd = Math.sqrt(residuals.reduce((a, b) => a + (b - mean) ** 2, 0) / residuals.length);
    assert.ok(Math.abs(mean) < 0.02 && Math.abs(sd - 1) < 0.02, `mean ${mean} sd ${sd}`);
    assert.ok(new Set(clean.map((s) => Math.round(s.mean))).size > 10);
  });
});
