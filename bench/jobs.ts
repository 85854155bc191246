import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import { cpus, totalmem } from 'node:os';
import { join } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import type { TestContext } from 'node:test';
import { parseArgs } from 'node:util';
import pg from 'pg';
import type { SqlClient } from '../packages/server/src/store/sql-client.js';
import { startTestServer } from '../packages/server/src/testing/harness.js';
import { type Api, apiClient, must } from './bulwark-api.js';
import { installCleanup, progress } from './children.js';
import { JOBS_ID_PREFIX, type SimulatedFleet, onboard, startFleet } from './jobs-fleet.js';
import { type Entry, type JobPoll, type JobRun, type Report, writeReport } from './jobs-report.js';
import { StoreTrace } from './store-trace.js';
import { cpuMs, delay, machineBusyMs, round, rssKb } from './proc.js';

/**
 * npm run bench:jobs -- [--devices 10000] [--rate 500] [--max-concurrent 1000] [--timeout-ms 30000]
 *   [--cancel-after-s 3] [--connect-concurrency 64] [--poll-ms 250] [--store sqlite|postgres://…] [--profile] [--store-trace]
 *
 * Jobs over device groups, end to end: a real Bulwark server in this process (embedded SQLite
 * in a temporary directory, or a fresh schema on the PostgreSQL that --store names; gateway on
 * 127.0.0.1 port 0), --devices devices onboarded through the API with their own keys and
 * certificates, each a real mTLS MQTT session from a child process (bench/jobs-devices.ts)
 * that answers every desired configuration with an applied report. A dynamic group over them;
 * then, through the HTTP API:
 *  1. a twin-patch job at --rate devices a second, watched every --poll-ms until it settles:
 *     time, dispatch rate, dispatch → answer latency, the summary checked against the devices;
 *  2. a second twin-patch job at the same pace, cancelled --cancel-after-s after it starts (or
 *     half-way, when the job is shorter than twice that):
 *     how long after the cancel answered the last device was still dispatched.
 * Prints the tables and the targets; writes bench/results/jobs-latest.{json,md,svg}.
 * --profile: a V8 CPU profile of this process (the server's main thread) over job 1, in
 * bench/results/profile/jobs/ (summarize it with bench/profile-top.ts). --store-trace: the
 * statements the server sent its store during job 1, by kind, counted and timed (store-trace.ts).
 */

const { values: o } = parseArgs({
  options: {
    devices: { type: 'string', default: '10000' },
    rate: { type: 'string', default: '500' },
    'max-concurrent': { type: 'string', default: '1000' },
    'timeout-ms': { type: 'string', default: '30000' },
    'cancel-after-s': { type: 'string', default: '3' },
    'connect-concurrency': { type: 'string', default: '64' },
    'poll-ms': { type: 'string', default: '250' },
    store: { type: 'string', default: 'sqlite' },
    profile: { type: 'boolean', default: false },
    'store-trace': { type: 'boolean', default: false },
    out: { type: 'string', default: new URL('./results/', import.meta.url).pathname },
  },
});
const N = Number(o.devices);
const RATE = Number(o.rate);
const POLL_MS = Number(o['poll-ms']);
const STORE = o.store ?? 'sqlite';
if (STORE !== 'sqlite' && !STORE.startsWith('postgres://')) throw new Error('--store takes sqlite or a postgres:// URL');
installCleanup();
const startedAt = new Date().toISOString().replace(/\.\d+Z$/, 'Z');
const git = (args: string[]) => execFileSync('git', args, { encoding: 'utf8' }).trim();
const dirty = git(['status', '--porcelain', '--', 'packages', ':!packages/*/node_modules']).split('\n').filter(Boolean).length;
const code = `${git(['rev-parse', '--short', 'HEAD'])}${dirty ? ` + ${dirty} uncommitted files in packages/` : ''}`;

// --- the server, in this process ---------------------------------------------------------------
const cleanups: (() => unknown)[] = [];
const t = { after: (fn: () => unknown) => cleanups.push(fn) } as unknown as TestContext;
let pgSchema: string | undefined;
if (STORE !== 'sqlite') {
  pgSchema = `bench_jobs_${Date.now()}`;
  const admin = new pg.Client({ connectionString: STORE });
  await admin.connect();
  await admin.query(`CREATE SCHEMA ${pgSchema}`);
  // Registered first, so run last: after the server has stopped.
  cleanups.push(async () => {
    await admin.query(`DROP SCHEMA ${pgSchema} CASCADE`);
    await admin.end();
  });
}
// The bench polls a job 4 times a second and pages through its devices: above the default 600 requests a minute per principal.
const settingsChanged = { rateLimit: { perPrincipalPerMinute: 100_000, perAddressPerMinute: 100_000 } };
const s = await startTestServer(t, { config: { ...settingsChanged, ...(pgSchema ? { store: STORE } : {}) }, ...(pgSchema ? { pgSchema } : {}) });
const api = apiClient(s.url, s.adminKey);
const trace = o['store-trace'] ? new StoreTrace((s.server.store.jobs as unknown as { db: SqlClient }).db) : undefined;
progress(`jobs: server up (${STORE === 'sqlite' ? 'SQLite' : `PostgreSQL schema ${pgSchema}`}), gateway on port ${s.server.mqttPort}`);

let fleet: SimulatedFleet | undefined;
try {
  // --- devices: onboarded, connected, online ------------------------------------------------------
  const file = await onboard(api, N);
  const rssBefore = rssKb(process.pid);
  fleet = await startFleet(s.server.mqttPort, file, Number(o['connect-concurrency']), N);
  const c = fleet.connected;
  progress(`jobs: ${c.open.toLocaleString('en')} sessions open in ${c.seconds.toFixed(1)} s (${c.failed} failed, ${c.retries} retried)${c.errors.length ? `; first errors: ${c.errors.slice(0, 3).join('; ')}` : ''}`);
  if (c.open < N) throw new Error(`only ${c.open} of ${N} devices connected`);
  for (const t0 = Date.now(); ;) {
    const online = (await must('fleet counts', 200, api('GET', '/api/v1/devices/stats'))).byConnectivity.online as number;
    if (online >= N) break;
    if (Date.now() - t0 > 60_000) throw new Error(`the platform sees ${online} of ${N} devices online after 60 s`);
    await delay(500);
  }
  const sessions = { ...c, serverRssMb: round((rssKb(process.pid) - rssBefore) / 1024), fds: N, deviceRssMb: (await fleet.stats([], false)).rssMb };
  progress(`jobs: all ${N.toLocaleString('en')} devices online for the platform; server RSS +${sessions.serverRssMb} MB for the sessions`);
  await must('group', 201, api('POST', '/api/v1/groups', { id: 'jobs-bench', kind: 'dynamic', description: 'bench/jobs.ts', query: { idPrefix: JOBS_ID_PREFIX } }));

  trace?.start();
  const full = await runJob(api, fleet, 1, o.profile);
  trace?.stop();
  // A job shorter than twice --cancel-after-s is cancelled half-way instead (e.g. --devices 500: 1 s at 500/s).
  const cancelAfterS = Math.min(Number(o['cancel-after-s']), round(N / RATE / 2, 2));
  const cancel = await runJob(api, fleet, 2, false, cancelAfterS);
  const report: Report = {
    startedAt,
    devices: N,
    rate: RATE,
    maxConcurrent: Number(o['max-concurrent']),
    deviceTimeoutMs: Number(o['timeout-ms']),
    store: STORE === 'sqlite' ? 'sqlite' : 'postgres',
    command: `npm run bench:jobs -- ${process.argv.slice(2).join(' ')}`.trim(),
    machine: { cores: cpus().length, memGb: round(totalmem() / 2 ** 30), node: process.version, code },
    settingsChanged: 'rateLimit.perPrincipalPerMinute and perAddressPerMinute 100000 (the bench polls 4×/s); everything else at its default (jobs.tickIntervalMs 200)',
    sessions,
    full,
    cancel,
    ...(trace ? { storeTrace: trace.rows(N) } : {}),
  };
  writeReport(report, o.out ?? 'bench/results');
} finally {
  await fleet?.close();
  for (const fn of cleanups.reverse()) await fn();
}

/** Creates a twin-patch job over the group, watches it until it settles (cancelling it after `cancelAfterS`, if given), and reads what every device saw. */
async function runJob(api: Api, fleet: SimulatedFleet, version: number, profile: boolean, cancelAfterS?: number): Promise<JobRun> {
  const label = cancelAfterS === undefined ? `job ${version}` : `job ${version} (cancelled after ${cancelAfterS} s)`;
  const loop = monitorEventLoopDelay({ resolution: 10 });
  const session = profile ? new Session() : undefined;
  if (session) {
    session.connect();
    await session.post('Profiler.enable');
    await session.post('Profiler.start');
  }
  const cpu0 = { self: process.cpuUsage(), devices: cpuMs(fleet.pid), machine: machineBusyMs(), at: performance.now() };
  loop.enable();
  const posted = performance.now();
  const created = await must(
    'create job',
    201,
    api('POST', '/api/v1/jobs', {
      name: `bench ${label}`,
      group: 'jobs-bench',
      operation: { type: 'twin-patch', patch: { reportIntervalS: 30 + version, benchJob: version } },
      pacing: { ratePerSecond: RATE, maxConcurrent: Number(o['max-concurrent']) },
      deviceTimeoutMs: Number(o['timeout-ms']),
    }),
  );
  const postMs = round(performance.now() - posted);
  const id = created.id as string;
  const createdAt = created.createdAt as number;
  progress(`jobs: ${label} ${id} created over ${created.deviceCount} devices (POST took ${postMs} ms)`);
  let cancelled: Promise<JobRun['cancel']> | undefined;
  if (cancelAfterS !== undefined) {
    cancelled = delay(createdAt + cancelAfterS * 1000 - Date.now()).then(async () => {
      const sentAt = Date.now();
      const view = await must('cancel', 200, api('POST', `/api/v1/jobs/${id}/cancel`, { reason: 'bench: cancel phase' }));
      const answeredAt = Date.now();
      progress(`jobs: ${label}: cancel answered in ${answeredAt - sentAt} ms (${view.counts.queued} queued, ${view.counts.in_progress} in progress then)`);
      return { sentAt, answeredAt, answerMs: answeredAt - sentAt };
    });
  }
  const polls: JobPoll[] = [];
  const deadline = Date.now() + (N / RATE) * 1000 + Number(o['timeout-ms']) + 120_000;
  let final: any; // eslint-disable-line @typescript-eslint/no-explicit-any -- the API's JSON
  for (let lastLog = Date.now(); ;) {
    const t0 = performance.now();
    const v = await must('job', 200, api('GET', `/api/v1/jobs/${id}`));
    const getMs = round(performance.now() - t0);
    const k = v.counts as Record<string, number>;
    const p: JobPoll = {
      t: round((Date.now() - createdAt) / 1000, 2),
      state: v.state,
      queued: k.queued ?? 0,
      inProgress: k.in_progress ?? 0,
      succeeded: k.succeeded ?? 0,
      failed: k.failed ?? 0,
      timedOut: k.timed_out ?? 0,
      cancelled: k.cancelled ?? 0,
      finished: v.progress.finished,
      percent: v.progress.percent,
      getMs,
    };
    polls.push(p);
    if (Date.now() - lastLog >= 2000) {
      lastLog = Date.now();
      progress(`jobs: ${label} ${p.t.toFixed(1)} s: ${v.state}, ${p.percent}% finished (${p.succeeded} ok, ${p.failed} failed, ${p.timedOut} timed out, ${p.cancelled} cancelled), ${p.inProgress} in progress, ${p.queued} queued`);
    }
    if (v.settledAt !== null) {
      final = v;
      break;
    }
    if (Date.now() > deadline) throw new Error(`${label} has not settled by its deadline: ${JSON.stringify(v.counts)}`);
    await delay(Math.max(0, POLL_MS - (performance.now() - t0)));
  }
  const wallMs = performance.now() - cpu0.at;
  loop.disable();
  const self = process.cpuUsage(cpu0.self);
  const selfMs = (self.user + self.system) / 1000;
  const devicesMs = cpuMs(fleet.pid) - cpu0.devices;
  if (session) {
    const { profile: prof } = await session.post('Profiler.stop');
    const dir = join(o.out ?? 'bench/results', 'profile', 'jobs');
    mkdirSync(dir, { recursive: true });
    const path = join(dir, `job-${startedAt}.cpuprofile`);
    writeFileSync(path, JSON.stringify(prof));
    session.disconnect();
    progress(`jobs: CPU profile of ${label} in ${path} (node --import tsx bench/profile-top.ts ${path})`);
  }
  const cancelInfo = await cancelled;
  progress(`jobs: ${label} settled: ${final.reason} in ${((final.settledAt - createdAt) / 1000).toFixed(1)} s; reading its ${N.toLocaleString('en')} device entries`);
  const entries: Entry[] = [];
  for (let after: string | undefined; ;) {
    const page = (await must('job devices', 200, api('GET', `/api/v1/jobs/${id}/devices?limit=5000${after ? `&after=${after}` : ''}`))) as Entry[];
    entries.push(...page.map((e) => ({ deviceId: e.deviceId, state: e.state, ref: e.ref, dispatchedAt: e.dispatchedAt, finishedAt: e.finishedAt, reason: e.reason })));
    if (page.length < 5000) break;
    after = page.at(-1)?.deviceId;
  }
  const seen = (await fleet.stats([version], true)).versions[String(version)];
  if (!seen) throw new Error(`the devices report nothing for version ${version}`);
  return {
    id,
    version,
    createdAt,
    postMs,
    settledAt: final.settledAt,
    state: final.state,
    reason: final.reason,
    counts: final.counts,
    progress: final.progress,
    polls,
    entries,
    devices: seen,
    ...(cancelInfo ? { cancel: cancelInfo } : {}),
    cpu: {
      wallS: round(wallMs / 1000),
      serverCores: round(selfMs / wallMs, 2),
      devicesCores: round(devicesMs / wallMs, 2),
      otherCores: round(Math.max(0, (machineBusyMs() - cpu0.machine - selfMs - devicesMs) / wallMs), 2),
    },
    loop: { p50: round(loop.percentile(50) / 1e6), p99: round(loop.percentile(99) / 1e6), max: round(loop.max / 1e6) },
  };
}
