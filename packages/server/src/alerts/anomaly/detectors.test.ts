import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { AnomalyKind, AnomalyVerdict } from './anomaly.js';
import { SeriesDetector } from './detectors.js';
import { mulberry32 } from './rng.js';

/** Gaussian noise, σ = 1, around `mean`. */
function noise(seed: number, n: number, mean = 20): number[] {
  const rng = mulberry32(seed);
  return Array.from({ length: n }, () => mean + rng.gaussian());
}

function run(detector: SeriesDetector, values: readonly number[]): { at: number; verdict: AnomalyVerdict }[] {
  const out: { at: number; verdict: AnomalyVerdict }[] = [];
  values.forEach((x, at) => {
    const verdict = detector.update(x);
    if (verdict !== undefined) out.push({ at, verdict });
  });
  return out;
}

const has = (v: AnomalyVerdict, kind: AnomalyKind) => v.findings.some((f) => f.kind === kind);

describe('SeriesDetector', () => {
  it('raises nothing on 20 series of 1,000 readings of plain noise', () => {
    for (let seed = 1; seed <= 20; seed += 1) {
      const hits = run(new SeriesDetector(), noise(seed, 1000));
      assert.deepEqual(
        hits.map((h) => `${h.at} ${h.verdict.detail}`),
        [],
        `seed ${seed}`,
      );
    }
  });

  it('flags a 6σ reading as a spike, in either direction, and nothing else around it', () => {
    for (const sign of [1, -1]) {
      const values = noise(7, 400);
      values[300] = 20 + sign * 6;
      const hits = run(new SeriesDetector(), values);
      assert.equal(hits.length, 1, JSON.stringify(hits));
      const [hit] = hits;
      assert.equal(hit?.at, 300);
      assert.equal(hit?.verdict.kind, 'spike');
      assert.ok((hit?.verdict.score ?? 0) >= 1);
      assert.match(hit?.verdict.detail ?? '', sign > 0 ? /^\+[56]\.\dσ from level 20\.\d+ \(σ [01]\.\d+\)$/ : /^-[56]\.\dσ from level 20\./);
    }
  });

  it('flags a stuck sensor once the run reaches stuckRun, for as long as it lasts, and never a varying signal', () => {
    const values = noise(11, 400);
    for (let i = 200; i < 240; i += 1) values[i] = values[199] as number;
    const hits = run(new SeriesDetector({ stuckRun: 10 }), values);
    // The run counts the last good reading (199) too: the 10th equal reading is at 208.
    assert.deepEqual(
      hits.map((h) => h.at),
      Array.from({ length: 32 }, (_, i) => 208 + i),
    );
    assert.ok(hits.every((h) => h.verdict.kind === 'stuck'));
    assert.match(hits[0]?.verdict.detail ?? '', /^10 readings equal to /);

    // A noiseless ramp varies by a tiny step each reading: other tests may call it a drift, never stuck.
    const ramp = run(
      new SeriesDetector(),
      Array.from({ length: 2000 }, (_, i) => 1000 + i * 1e-6),
    );
    assert.ok(!ramp.some((h) => has(h.verdict, 'stuck')));
  });

  it('treats a constant series as stuck from the end of the warm-up, and not before', () => {
    const hits = run(
      new SeriesDetector({ warmup: 80 }),
      Array.from({ length: 100 }, () => 3.5),
    );
    assert.deepEqual(
      hits.map((h) => h.at),
      Array.from({ length: 20 }, (_, i) => 80 + i),
    );
  });

  it('respects the warm-up: nothing before `warmup` readings, whatever they hold', () => {
    const values = noise(5, 300);
    values[20] = 1e6;
    for (let i = 40; i < 70; i += 1) values[i] = 7;
    for (let i = 70; i < 120; i += 1) values[i] = (values[i] as number) + 10;
    const hits = run(new SeriesDetector({ warmup: 120 }), values);
    assert.ok(
      hits.every((h) => h.at >= 120),
      JSON.stringify(hits.map((h) => h.at)),
    );
    // The same readings with the default warm-up (50): the stuck run and the shift are seen.
    const early = run(new SeriesDetector(), values).filter((h) => h.at < 120);
    assert.ok(early.some((h) => h.verdict.kind === 'stuck') && early.some((h) => has(h.verdict, 'shift')), JSON.stringify(early));
  });

  it('finds a 4σ level shift within a few readings, re-baselines, and falls silent on the new level', () => {
    for (const sign of [1, -1]) {
      const values = noise(21, 600).map((x, i) => (i >= 300 ? x + sign * 4 : x));
      const hits = run(new SeriesDetector(), values);
      const shift = hits.find((h) => has(h.verdict, 'shift'));
      assert.ok(shift !== undefined && shift.at >= 300 && shift.at < 305, JSON.stringify(hits));
      assert.match(shift.verdict.findings.find((f) => f.kind === 'shift')?.detail ?? '', sign > 0 ? /^level \+[3-6]\.\dσ/ : /^level -[3-6]\.\dσ/);
      assert.deepEqual(
        hits.filter((h) => h.at < 300 || h.at >= 310).map((h) => h.at),
        [],
      );
    }
  });

  it('finds a drift of 0.05σ a reading as a drift within 60 readings', () => {
    for (const sign of [1, -1]) {
      const values = noise(31, 500).map((x, i) => (i >= 300 ? x + sign * 0.05 * (i - 299) : x));
      const hits = run(new SeriesDetector(), values);
      assert.deepEqual(
        hits.filter((h) => h.at < 300).map((h) => h.at),
        [],
      );
      const first = hits[0];
      assert.ok(first !== undefined && first.verdict.kind === 'drift' && first.at < 360, JSON.stringify(hits[0]));
      assert.match(first.verdict.detail, sign > 0 ? /^mean \+/ : /^mean -/);
    }
  });

  it('stops alarming once a drift has settled on a new level', () => {
    const values = noise(41, 1000).map((x, i) => x + 0.05 * Math.min(100, Math.max(0, i - 300)));
    const hits = run(new SeriesDetector(), values);
    assert.ok(hits.some((h) => h.at >= 300 && h.at < 400));
    assert.deepEqual(
      hits.filter((h) => h.at >= 480).map((h) => h.at),
      [],
    );
  });

  it('ignores NaN and ±Infinity: the verdicts and the state are those of the finite readings alone', () => {
    const values = noise(51, 600);
    values[400] = 30;
    const clean = new SeriesDetector();
    const dirty = new SeriesDetector();
    const cleanHits = run(clean, values);
    const dirtyHits: number[] = [];
    values.forEach((x, i) => {
      assert.equal(dirty.update(Number.NaN), undefined);
      if (i % 7 === 0) assert.equal(dirty.update(i % 2 ? Number.POSITIVE_INFINITY : Number.NEGATIVE_INFINITY), undefined);
      if (dirty.update(x) !== undefined) dirtyHits.push(i);
    });
    assert.deepEqual(
      dirtyHits,
      cleanHits.map((h) => h.at),
    );
    assert.deepEqual(dirty.toJSON(), clean.toJSON());
    assert.equal(dirty.samplesSeen, 600);
  });

  it('round-trips through JSON: a restored detector carries on exactly as the original', () => {
    const values = noise(61, 1200).map((x, i) => (i >= 700 && i < 760 ? x + 5 : x));
    values[900] = 0;
    const original = new SeriesDetector();
    run(original, values.slice(0, 500));
    const text = JSON.stringify(original);
    assert.ok(text.length < 2500, `state is ${text.length} bytes`);
    const restored = SeriesDetector.fromJSON(JSON.parse(text));
    assert.equal(restored.samplesSeen, 500);
    const rest = values.slice(500);
    const a = run(original, rest).map((h) => `${h.at} ${h.verdict.kind}`);
    const b = run(restored, rest).map((h) => `${h.at} ${h.verdict.kind}`);
    assert.ok(a.length >= 2);
    assert.deepEqual(b, a);
    assert.deepEqual(restored.toJSON(), original.toJSON());
  });

  it('restores anything that is not a valid state as a fresh detector, without throwing', () => {
    const good = new SeriesDetector();
    run(good, noise(71, 300));
    const state = JSON.parse(JSON.stringify(good)) as Record<string, unknown>;
    const bad: unknown[] = [
      undefined,
      null,
      42,
      'state',
      [],
      {},
      { ...state, v: 2 },
      { ...state, seen: -1 },
      { ...state, seen: 1.5 },
      { ...state, window: [1, 2, 'x'] },
      { ...state, window: Array.from({ length: 65 }, () => 1) },
      { ...state, window: [1, null] },
      { ...state, level: [1] },
      { ...state, level: [Number.NaN, 3] },
      { ...state, scale: { ...(state.scale as object), variance: -1 } },
      { ...state, scale: { ...(state.scale as object), pending: [1, 2, 3, 4, 5] } },
      { ...state, scale: null },
      { ...state, shift: [0, 0, 0] },
      { ...state, drift: [-1, 0, 0, 0] },
      { ...state, stuck: [null, 3] },
      { ...state, stuck: [5, 0] },
      { ...state, stuck: ['5', 1] },
    ];
    for (const data of bad) {
      const d = SeriesDetector.fromJSON(data);
      assert.equal(d.samplesSeen, 0, JSON.stringify(data)?.slice(0, 80));
      assert.deepEqual(d.toJSON(), new SeriesDetector().toJSON());
    }
    // A state from a detector with a larger window does not fit a smaller one.
    assert.equal(SeriesDetector.fromJSON(state, { windowSize: 32 }).samplesSeen, 0);
    assert.equal(SeriesDetector.fromJSON(state).samplesSeen, 300);
  });

  it('refuses options out of range', () => {
    assert.throws(() => new SeriesDetector({ windowSize: 4 }), RangeError);
    assert.throws(() => new SeriesDetector({ warmup: -1 }), RangeError);
    assert.throws(() => new SeriesDetector({ spikeSigma: Number.NaN }), RangeError);
    assert.throws(() => new SeriesDetector({ stuckRun: 2.5 }), RangeError);
    assert.throws(() => new SeriesDetector({ nope: 1 } as never), RangeError);
    assert.equal(new SeriesDetector({ spikeSigma: 5 }).options.spikeSigma, 5);
  });
});
