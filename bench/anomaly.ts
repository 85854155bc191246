import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { ANOMALY_KINDS, type AnomalyKind, DEFAULT_DETECTOR_OPTIONS, DEFAULT_LAYOUT, DEFAULT_SCORING, type RunScore, SeriesDetector, generateSeries, scoreRun } from '../packages/server/src/alerts/anomaly/index.js';
import { progress } from './children.js';

/**
 * npx tsx bench/anomaly.ts [--seeds 9001-9010] [--series 1000]
 * The per-series anomaly detector against labelled synthetic series (generator and scoring
 * rules in packages/server/src/alerts/anomaly/generator.ts and scoring.ts): per seed and class,
 * recall, recall with a finding of the right kind, the share of anomaly-free 100-reading windows
 * in which that test raised something, and the delay from an anomaly's start to its first
 * verdict; then the mean and worst over seeds against the targets (recall ≥ 0.9 per class,
 * false alarms ≤ 1 % of windows). Seeds 1-5 were used for tuning; 9001-9010 are held out.
 * Writes bench/results/anomaly-latest.{md,json} and compares with the previous latest.
 */
const { values: opt } = parseArgs({ options: { seeds: { type: 'string', default: '9001-9010' }, series: { type: 'string', default: '1000' } } });

function parseSeeds(text: string): number[] {
  const seeds = text.split(',').flatMap((part) => {
    const m = /^(\d+)(?:-(\d+))?$/.exec(part.trim());
    if (m === null) throw new Error(`--seeds: '${part}' is not a seed or a range like 9001-9010`);
    const from = Number(m[1]);
    const to = m[2] === undefined ? from : Number(m[2]);
    if (to < from || to - from > 10_000) throw new Error(`--seeds: bad range ${part}`);
    return Array.from({ length: to - from + 1 }, (_, i) => from + i);
  });
  return [...new Set(seeds)];
}

const seeds = parseSeeds(opt.seeds);
const seriesCount = Number(opt.series);
if (!Number.isInteger(seriesCount) || seriesCount < 1 || seriesCount > 100_000) throw new Error('--series must be an integer from 1 to 100000');

interface SeedRun {
  readonly seed: number;
  readonly score: RunScore;
  /** Wall time of the detector runs and their scoring (generation excluded), per reading. */
  readonly nsPerReading: number;
}

const runs: SeedRun[] = [];
for (const [n, seed] of seeds.entries()) {
  progress(`anomaly: seed ${seed} (${n + 1}/${seeds.length}), ${seriesCount} series`);
  const series = generateSeries(seed, seriesCount);
  const started = process.hrtime.bigint();
  const score = scoreRun(series, () => new SeriesDetector());
  const nsPerReading = Number(process.hrtime.bigint() - started) / score.readings;
  runs.push({ seed, score, nsPerReading });
}

// The persisted state of a detector that has run a whole series (its size is fixed after 64 readings).
const probe = new SeriesDetector();
for (const x of generateSeries(1, 1)[0]?.values ?? []) probe.update(x);
const stateBytes = JSON.stringify(probe).length;

const pct = (x: number) => `${(100 * x).toFixed(2)} %`;
const fix = (x: number, d = 3) => (Number.isNaN(x) ? '-' : x.toFixed(d));
const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2;
};

function seedTable(r: SeedRun): string[] {
  const s = r.score;
  const fa = s.falseAlarms;
  const rows = [
    `seed ${r.seed}: ${s.series} series, ${s.readings.toLocaleString('en')} readings, ${fa.windows} anomaly-free windows, ${r.nsPerReading.toFixed(0)} ns/reading`,
    '',
    '| class | labels | recall | as its kind | false alarms (windows) | median delay | p90 delay |',
    '|---|---:|---:|---:|---:|---:|---:|',
  ];
  for (const k of ANOMALY_KINDS) {
    const c = s.classes[k];
    rows.push(`| ${k} | ${c.labels} | ${fix(c.recall)} | ${fix(c.kindRecall)} | ${pct(fa.byKind[k] / fa.windows)} | ${c.medianDelay} | ${c.p90Delay} |`);
  }
  rows.push(`| **any** | | | | **${pct(fa.rate)}** (${fa.alarmed}/${fa.windows}) | | |`, '');
  return rows;
}

const perClass = (k: AnomalyKind) => {
  const cs = runs.map((r) => r.score.classes[k]);
  const fas = runs.map((r) => r.score.falseAlarms.byKind[k] / r.score.falseAlarms.windows);
  return {
    recallMean: mean(cs.map((c) => c.recall)),
    recallMin: Math.min(...cs.map((c) => c.recall)),
    kindRecallMean: mean(cs.map((c) => c.kindRecall)),
    kindRecallMin: Math.min(...cs.map((c) => c.kindRecall)),
    falseAlarmMean: mean(fas),
    falseAlarmMax: Math.max(...fas),
    medianDelay: median(cs.map((c) => c.medianDelay)),
    p90Delay: median(cs.map((c) => c.p90Delay)),
  };
};
const summary = {
  classes: Object.fromEntries(ANOMALY_KINDS.map((k) => [k, perClass(k)])) as Record<AnomalyKind, ReturnType<typeof perClass>>,
  falseAlarmMean: mean(runs.map((r) => r.score.falseAlarms.rate)),
  falseAlarmMax: Math.max(...runs.map((r) => r.score.falseAlarms.rate)),
  strayPerThousandMean: mean(runs.map((r) => r.score.stray.perThousand)),
  nsPerReadingMedian: median(runs.map((r) => r.nsPerReading)),
  stateJsonBytes: stateBytes,
};
const targetsMet = ANOMALY_KINDS.every((k) => summary.classes[k].recallMin >= 0.9) && summary.falseAlarmMax <= 0.01;

let commit = 'unknown';
try {
  commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { encoding: 'utf8' }).trim();
} catch {
  /* not a checkout */
}

const resultsDir = new URL('./results/', import.meta.url);
const latestJson = new URL('anomaly-latest.json', resultsDir);
const previous = existsSync(latestJson) ? (JSON.parse(readFileSync(latestJson, 'utf8')) as { summary?: typeof summary; date?: string; seeds?: number[] }) : undefined;

const md: string[] = [
  `# Anomaly detection, ${new Date().toISOString().replace(/\.\d+Z$/, 'Z')}`,
  '',
  `Commit ${commit} (plus the working tree). Seeds ${opt.seeds}, ${seriesCount} series each of ${DEFAULT_LAYOUT.length} readings ` +
    `(layout: generator.ts); detector defaults (anomaly.ts); scoring: windows of ${DEFAULT_SCORING.windowReadings} readings from reading ` +
    `${DEFAULT_SCORING.warmup}, aftermath ${DEFAULT_SCORING.aftermath.shift} readings after a shift or a drift, no recall grace.`,
  '',
  '## Over all seeds',
  '',
  '| class | recall mean | recall min | as its kind mean / min | false alarms mean / max | median delay | p90 delay |',
  '|---|---:|---:|---:|---:|---:|---:|',
  ...ANOMALY_KINDS.map((k) => {
    const c = summary.classes[k];
    return `| ${k} | ${fix(c.recallMean)} | ${fix(c.recallMin)} | ${fix(c.kindRecallMean)} / ${fix(c.kindRecallMin)} | ${pct(c.falseAlarmMean)} / ${pct(c.falseAlarmMax)} | ${c.medianDelay} | ${c.p90Delay} |`;
  }),
  `| **any** | | | | **${pct(summary.falseAlarmMean)} / ${pct(summary.falseAlarmMax)}** | | |`,
  '',
  `Targets (recall ≥ 0.9 for each class on every seed, false alarms ≤ 1 % of anomaly-free windows on every seed): **${targetsMet ? 'met' : 'NOT met'}**.`,
  `Stray verdicts (outside every anomaly and its aftermath): ${summary.strayPerThousandMean.toFixed(3)} per 1,000 readings. ` +
    `Cost: ${summary.nsPerReadingMedian.toFixed(0)} ns a reading (detector and scoring, median over seeds); persisted state ${stateBytes} bytes of JSON.`,
  '',
  'Delays are in readings from the anomaly\'s first reading to the first verdict inside it (0 = at that reading); "as its kind" counts an ' +
    'anomaly only when a finding of its own kind falls inside it; the false alarms of a class are the windows in which that test raised something.',
  '',
];
if (previous?.summary !== undefined) {
  md.push(`## Against the previous latest (${previous.date ?? '?'}, seeds ${previous.seeds?.join(',') ?? '?'})`, '', '| class | recall mean | false alarms mean |', '|---|---:|---:|');
  for (const k of ANOMALY_KINDS) {
    const p = previous.summary.classes[k];
    const c = summary.classes[k];
    md.push(`| ${k} | ${fix(p.recallMean)} → ${fix(c.recallMean)} | ${pct(p.falseAlarmMean)} → ${pct(c.falseAlarmMean)} |`);
  }
  md.push(`| any | | ${pct(previous.summary.falseAlarmMean)} → ${pct(summary.falseAlarmMean)} |`, '');
}
md.push('## Per seed', '', ...runs.flatMap(seedTable));

console.log(md.join('\n'));
mkdirSync(resultsDir, { recursive: true });
writeFileSync(new URL('anomaly-latest.md', resultsDir), `${md.join('\n')}\n`);
writeFileSync(
  latestJson,
  `${JSON.stringify(
    {
      date: new Date().toISOString(),
      commit,
      seeds,
      series: seriesCount,
      layout: DEFAULT_LAYOUT,
      scoring: DEFAULT_SCORING,
      detector: DEFAULT_DETECTOR_OPTIONS,
      summary,
      targetsMet,
      perSeed: runs,
    },
    null,
    2,
  )}\n`,
);
progress('anomaly: wrote bench/results/anomaly-latest.{md,json}');
