import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { VersionStats } from './jobs-fleet.js';
import type { TraceRow } from './store-trace.js';
import { round } from './proc.js';
import { linePanels } from './svg.js';

/** The jobs bench's results: what each job did, the targets checked, as text, Markdown, JSON and a plot. */

export interface Entry {
  deviceId: string;
  state: string;
  ref: string | null;
  dispatchedAt: number | null;
  finishedAt: number | null;
  reason: string | null;
}
export interface JobPoll {
  t: number;
  state: string;
  queued: number;
  inProgress: number;
  succeeded: number;
  failed: number;
  timedOut: number;
  cancelled: number;
  finished: number;
  percent: number;
  getMs: number;
}
export interface JobRun {
  id: string;
  version: number;
  createdAt: number;
  postMs: number;
  settledAt: number;
  state: string;
  reason: string;
  counts: Record<string, number>;
  progress: { finished: number; total: number; percent: number };
  polls: JobPoll[];
  entries: Entry[];
  devices: VersionStats;
  cancel?: { sentAt: number; answeredAt: number; answerMs: number };
  cpu: { wallS: number; serverCores: number; devicesCores: number; otherCores: number };
  loop: { p50: number; p99: number; max: number };
}
export interface Report {
  startedAt: string;
  devices: number;
  rate: number;
  maxConcurrent: number;
  deviceTimeoutMs: number;
  store: string;
  command: string;
  machine: Record<string, string | number>;
  settingsChanged: string;
  sessions: { open: number; failed: number; retries: number; seconds: number; serverRssMb: number; deviceRssMb: number };
  full: JobRun;
  cancel: JobRun;
  /** --store-trace: the statements the server sent its store during job 1. */
  storeTrace?: { wallS: number; statementsPerSecond: number; rows: TraceRow[] };
}

const pct = (xs: readonly number[], p: number): number | null => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? null : (s[Math.min(s.length - 1, Math.max(0, Math.ceil(p * s.length) - 1))] as number);
};
const n = (v: number | null | undefined) => (v === null || v === undefined ? '-' : v.toLocaleString('en'));
/** Entries the engine actually sent to their device (claimed and cancelled before sending do not count). */
const sent = (e: Entry) => e.state !== 'queued' && e.state !== 'cancelled';

/** Dispatches a second between the 10th and 90th percentile of dispatch times (the steady pace, without the start and the tail). */
function steadyRate(times: readonly number[]): number | null {
  const s = [...times].sort((a, b) => a - b);
  if (s.length < 20) return null;
  const [a, b] = [s[Math.floor(s.length * 0.1)] as number, s[Math.floor(s.length * 0.9)] as number];
  return b > a ? round(((Math.floor(s.length * 0.9) - Math.floor(s.length * 0.1)) / (b - a)) * 1000) : null;
}

export function analyzeFull(r: JobRun, devices: number) {
  const out = r.entries.filter(sent);
  const dispatched = out.map((e) => e.dispatchedAt as number);
  const arrivals = r.devices.arrivals ?? {};
  const answered = out.filter((e) => e.finishedAt !== null);
  const toDevice = out.map((e) => (arrivals[e.deviceId] ?? NaN) - (e.dispatchedAt as number)).filter(Number.isFinite);
  const deviceToEnd = answered.map((e) => (e.finishedAt as number) - (arrivals[e.deviceId] ?? NaN)).filter(Number.isFinite);
  const answerMs = answered.map((e) => (e.finishedAt as number) - (e.dispatchedAt as number));
  const problems: string[] = [];
  if (r.state !== 'completed') problems.push(`state ${r.state}`);
  for (const k of ['failed', 'timed_out', 'cancelled', 'queued', 'in_progress']) if ((r.counts[k] ?? 0) !== 0) problems.push(`${r.counts[k]} ${k}`);
  if (r.counts.succeeded !== devices) problems.push(`${r.counts.succeeded} succeeded of ${devices}`);
  if (r.progress.finished !== devices || r.progress.percent !== 100) problems.push(`progress ${r.progress.finished}/${r.progress.total} (${r.progress.percent}%)`);
  if (r.entries.length !== devices || r.entries.some((e) => e.state !== 'succeeded')) problems.push(`device entries: ${r.entries.filter((e) => e.state === 'succeeded').length} of ${r.entries.length} succeeded`);
  if (r.devices.received !== devices || r.devices.acked !== devices || r.devices.duplicates !== 0) {
    problems.push(`devices: ${r.devices.received} got version ${r.version}, ${r.devices.acked} reports acknowledged, ${r.devices.duplicates} duplicates`);
  }
  const middle = r.polls.filter((p) => p.finished > 0 && p.finished < devices);
  const monotonic = r.polls.every((p, i) => i === 0 || p.finished >= (r.polls[i - 1] as JobPoll).finished);
  return {
    settleS: round((r.settledAt - r.createdAt) / 1000, 2),
    lastDispatchS: dispatched.length ? round((Math.max(...dispatched) - r.createdAt) / 1000, 2) : null,
    overallRate: dispatched.length ? round(dispatched.length / ((Math.max(...dispatched) - r.createdAt) / 1000)) : null,
    steadyRate: steadyRate(dispatched),
    deviceSteadyRate: steadyRate(Object.values(arrivals)),
    answer: { p50: pct(answerMs, 0.5), p95: pct(answerMs, 0.95), max: pct(answerMs, 1) },
    toDevice: { p50: pct(toDevice, 0.5), p95: pct(toDevice, 0.95), max: pct(toDevice, 1) },
    deviceToEnd: { p50: pct(deviceToEnd, 0.5), p95: pct(deviceToEnd, 0.95), max: pct(deviceToEnd, 1) },
    progressPolls: middle.length,
    distinctProgress: new Set(middle.map((p) => p.finished)).size,
    monotonic,
    problems,
    pollGetMs: {
      p50: pct(
        r.polls.map((p) => p.getMs),
        0.5,
      ),
      max: pct(
        r.polls.map((p) => p.getMs),
        1,
      ),
    },
  };
}

export function analyzeCancel(r: JobRun, devices: number) {
  const c = r.cancel;
  if (!c) throw new Error('the cancel phase has no cancel');
  const out = r.entries.filter(sent);
  const lastDispatch = out.length ? Math.max(...out.map((e) => e.dispatchedAt as number)) : null;
  const arrivals = Object.values(r.devices.arrivals ?? {});
  const lastArrival = arrivals.length ? Math.max(...arrivals) : null;
  const claimedNotSent = r.entries.filter((e) => e.state === 'cancelled' && e.dispatchedAt !== null).length;
  const problems: string[] = [];
  if (r.state !== 'cancelled') problems.push(`state ${r.state}`);
  if ((r.counts.succeeded ?? 0) + (r.counts.cancelled ?? 0) !== devices) problems.push(`succeeded + cancelled = ${(r.counts.succeeded ?? 0) + (r.counts.cancelled ?? 0)}, not ${devices}`);
  if (out.length !== (r.counts.succeeded ?? 0)) problems.push(`${out.length} sent but ${r.counts.succeeded} succeeded`);
  if (r.devices.received !== out.length) problems.push(`the devices got version ${r.version} ${r.devices.received} times; the job sent it ${out.length} times`);
  return {
    cancelAtS: round((c.answeredAt - r.createdAt) / 1000, 2),
    answerMs: c.answerMs,
    sent: out.length,
    claimedNotSent,
    cancelled: r.counts.cancelled ?? 0,
    lastDispatchAfterMs: lastDispatch === null ? null : lastDispatch - c.answeredAt,
    lastArrivalAfterMs: lastArrival === null ? null : lastArrival - c.answeredAt,
    arrivalsAfterCancel: arrivals.filter((a) => a > c.answeredAt).length,
    settleAfterCancelS: round((r.settledAt - c.answeredAt) / 1000, 2),
    problems,
  };
}

const CANCEL_LIMIT_MS = 1000;

export function targets(rep: Report) {
  const f = analyzeFull(rep.full, rep.devices);
  const k = analyzeCancel(rep.cancel, rep.devices);
  const ideal = rep.devices / rep.rate;
  const settleLimit = round(ideal + 2, 1);
  const rate = f.steadyRate ?? 0;
  const after = Math.max(k.lastDispatchAfterMs ?? -Infinity, k.lastArrivalAfterMs ?? -Infinity);
  const row = (ok: boolean, target: string, measured: string, limit: string) => [ok ? 'MET' : 'NOT MET', target, measured, limit];
  return {
    f,
    k,
    rows: [
      row(f.settleS <= settleLimit, `job over ${n(rep.devices)} devices at ${rep.rate}/s settles in about ${round(ideal, 1)} s`, `${f.settleS} s (last dispatch at ${f.lastDispatchS} s)`, `≤ ${settleLimit} s (N ÷ rate + 2 s)`),
      row(rate >= 0.9 * rep.rate && rate <= 1.05 * rep.rate, `paced at ${rep.rate}/s`, `${n(f.steadyRate)}/s steady (10th-90th percentile of dispatches), ${n(f.overallRate)}/s overall`, `${0.9 * rep.rate}-${1.05 * rep.rate}/s`),
      row(
        f.progressPolls >= 3 && f.monotonic,
        'progress while it runs',
        `${f.progressPolls} polls between 0 and ${n(rep.devices)} finished, ${f.distinctProgress} distinct values, ${f.monotonic ? 'never going back' : 'WENT BACK'}`,
        '≥ 3 polls in between, monotonic',
      ),
      row(f.problems.length === 0, 'correct summary', f.problems.length === 0 ? `completed: "${rep.full.reason}"; every device got the version once and its report was acknowledged` : f.problems.join('; '), `${n(rep.devices)} succeeded, nothing else`),
      row(
        after <= CANCEL_LIMIT_MS && k.problems.length === 0,
        'a cancel stops new dispatches within 1 s',
        `last dispatch ${k.lastDispatchAfterMs} ms, last arrival at a device ${k.lastArrivalAfterMs} ms after the cancel answered${k.problems.length ? `; ${k.problems.join('; ')}` : ''}`,
        `≤ ${CANCEL_LIMIT_MS} ms`,
      ),
    ],
  };
}

function tables(rep: Report) {
  const { f, k, rows } = targets(rep);
  const ms = (x: { p50: number | null; p95: number | null; max: number | null }) => `${n(x.p50)} / ${n(x.p95)} / ${n(x.max)}`;
  const md = (head: string[], body: string[][]) => [`| ${head.join(' | ')} |`, `|${head.map(() => '---').join('|')}|`, ...body.map((r) => `| ${r.join(' | ')} |`)];
  const s = rep.sessions;
  const job = md(
    [
      'job',
      'devices',
      'settled s',
      'steady dispatch /s',
      'devices got it /s',
      'dispatch → answer p50 / p95 / max ms',
      'dispatch → at device p50 / p95 ms',
      'at device → entry ended p50 / p95 ms',
      'summary',
      'server cores',
      'devices cores',
      'others cores',
      'event-loop delay p99 / max ms',
    ],
    [
      [
        rep.full.id,
        n(rep.devices),
        String(f.settleS),
        n(f.steadyRate),
        n(f.deviceSteadyRate),
        ms(f.answer),
        `${n(f.toDevice.p50)} / ${n(f.toDevice.p95)}`,
        `${n(f.deviceToEnd.p50)} / ${n(f.deviceToEnd.p95)}`,
        rep.full.reason,
        String(rep.full.cpu.serverCores),
        String(rep.full.cpu.devicesCores),
        String(rep.full.cpu.otherCores),
        `${rep.full.loop.p99} / ${rep.full.loop.max}`,
      ],
    ],
  );
  const cancel = md(
    [
      'job',
      'cancel answered at s',
      'cancel answered in ms',
      'sent before the cancel',
      'claimed, then cancelled unsent',
      'cancelled in all',
      'last dispatch after the cancel ms',
      'last arrival at a device after the cancel ms',
      'settled s after the cancel',
      'summary',
    ],
    [[rep.cancel.id, String(k.cancelAtS), n(k.answerMs), n(k.sent), n(k.claimedNotSent), n(k.cancelled), n(k.lastDispatchAfterMs), n(k.lastArrivalAfterMs), String(k.settleAfterCancelS), rep.cancel.reason]],
  );
  const setup = `${n(s.open)} mTLS sessions (${s.failed} failed, ${s.retries} retried) opened in ${s.seconds.toFixed(1)} s; server RSS +${s.serverRssMb} MB for them, device process ${s.deviceRssMb} MB`;
  const st = rep.storeTrace;
  const store = st
    ? [
        `Store statements during job 1 (--store-trace): ${n(st.statementsPerSecond)} a second over ${st.wallS} s; time = round trip seen by the caller.`,
        '',
        ...md(
          ['statement', 'count', 'per device', 'mean ms', 'p95 ms', 'total s'],
          st.rows.slice(0, 25).map((r) => [`\`${r.statement}\``, n(r.count), String(r.perDevice), String(r.meanMs), String(r.p95Ms), String(r.totalS)]),
        ),
      ]
    : [];
  return { job, cancel, setup, store, targets: md(['result', 'target', 'measured', 'limit'], rows) };
}

export function chart(rep: Report): string {
  const dispatched = (p: JobPoll) => rep.devices - p.queued - p.cancelled;
  const series = (r: JobRun, withIdeal: boolean) => [
    { name: 'finished (succeeded)', color: '#3a9d5d', step: true, points: r.polls.map((p) => [p.t, p.succeeded] as const) },
    { name: 'dispatched', color: '#2f6fdb', step: true, points: r.polls.map((p) => [p.t, dispatched(p)] as const) },
    { name: 'in progress', color: '#d9822b', step: true, points: r.polls.map((p) => [p.t, p.inProgress] as const) },
    ...(withIdeal
      ? [
          {
            name: `${rep.rate}/s exactly`,
            color: '#888',
            dashed: true,
            points: [
              [0, 0],
              [rep.devices / rep.rate, rep.devices],
            ] as const,
          },
        ]
      : [{ name: 'cancelled', color: '#c9302c', step: true, points: r.polls.map((p) => [p.t, p.cancelled] as const) }]),
  ];
  const c = rep.cancel.cancel;
  const cancelAt = c ? (c.answeredAt - rep.cancel.createdAt) / 1000 : 0;
  const sentAt = c ? (c.sentAt - rep.cancel.createdAt) / 1000 : 0;
  return linePanels(
    `Jobs over a group: twin patch to ${n(rep.devices)} devices at ${rep.rate}/s (${rep.store}), ${rep.startedAt}`,
    `polled every 250 ms through GET /api/v1/jobs/:id; devices are mTLS MQTT sessions answering each desired configuration; ${rep.machine.code}`,
    [
      { title: `job 1: settled in ${round((rep.full.settledAt - rep.full.createdAt) / 1000, 1)} s`, xLabel: 'seconds since the job was created', yLabel: 'devices', series: series(rep.full, true) },
      {
        title: `job 2: cancelled at ${round(cancelAt, 1)} s`,
        xLabel: 'seconds since the job was created',
        yLabel: 'devices',
        series: series(rep.cancel, false),
        marks: [
          { x: sentAt, label: 'cancel sent', color: '#c9302c' },
          { x: cancelAt, label: 'answered', color: '#c9302c' },
        ],
      },
    ],
  );
}

export function writeReport(rep: Report, dir: string): void {
  const t = tables(rep);
  const { f, k, rows } = targets(rep);
  console.log(['', t.setup, '', ...t.job, '', ...(t.store.length ? [...t.store, ''] : []), ...t.cancel, '', ...t.targets, ''].join('\n'));
  const md = [
    `# Jobs over device groups: ${n(rep.devices)} devices at ${rep.rate}/s, ${rep.startedAt}`,
    '',
    `Command: \`${rep.command}\`; store ${rep.store}; ${rep.machine.cores} cores, Node ${rep.machine.node}, code ${rep.machine.code}.`,
    `Pacing ${rep.rate}/s, maxConcurrent ${rep.maxConcurrent}, deviceTimeoutMs ${rep.deviceTimeoutMs}. Settings changed: ${rep.settingsChanged}.`,
    '',
    t.setup,
    '',
    '## Job 1: a twin patch over every device',
    '',
    ...t.job,
    '',
    ...(t.store.length ? [...t.store, ''] : []),
    '## Job 2: the same, cancelled',
    '',
    ...t.cancel,
    '',
    '## Targets',
    '',
    ...t.targets,
    '',
    '![progress over time](jobs-latest.svg)',
    '',
  ].join('\n');
  const strip = (r: JobRun) => ({ ...r, entries: undefined, devices: { ...r.devices, arrivals: undefined } });
  writeFileSync(join(dir, 'jobs-latest.json'), `${JSON.stringify({ ...rep, full: strip(rep.full), cancel: strip(rep.cancel), analysis: { full: f, cancel: k }, targets: rows }, null, 1)}\n`);
  writeFileSync(join(dir, 'jobs-latest.md'), md);
  writeFileSync(join(dir, 'jobs-latest.svg'), chart(rep));
}
