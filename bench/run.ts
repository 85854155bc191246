import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { type BrokerName, protocolName } from './broker.js';
import { type BulwarkSetup, setUpBulwark, startBulwark } from './bulwark.js';
import { makePki } from './certs.js';
import { type ModeRound, measureCluster } from './cluster.js';
import { alertsMarkdown, measureAlerts } from './alerts.js';
import { type ClusterResult, clusterChart, clusterMarkdown, clusterText, summarize } from './cluster-report.js';
import { STREAM_NOTES, streamChart } from './stream-report.js';
import { profiling } from './drain.js';
import { pinning } from './pin.js';
import { installCleanup, progress, removeDir, tempDir } from './children.js';
import { type BrokerRound, type Contender, measureRound } from './measure.js';
import { options } from './options.js';
import { startAedes, startMosquitto } from './passthrough.js';
import { setUpPinning } from './pin.js';
import { round } from './proc.js';
import { type RunResult, markdownReport, textReport } from './report.js';
import { chart, targetChart } from './svg.js';
import { evaluateTargets } from './targets.js';

/**
 * npm run bench -- [options]   (see bench/README.md, or --help)
 * Runs the same load against Bulwark (full pipeline), Mosquitto and plain Aedes, all over mutual
 * TLS on 127.0.0.1, `--repeats` rounds of each in turn, and checks issue 13's targets; then
 * (`--cluster on`, the default) the cluster phase: one paced load against an embedded node and
 * cluster-mode nodes, checked against issue 14's target (bench/cluster.ts).
 */
const opt = options();
installCleanup();
const pin = setUpPinning(opt.pin);
progress(`CPU pinning: ${pin.note}`);
const root = tempDir('bulwark-bench-');
const startedAt = new Date().toISOString().replace(/\.\d+Z$/, 'Z');
const profileDir = new URL('./results/profile/', import.meta.url).pathname;
const resultsDir = new URL('./results/', import.meta.url).pathname;

/** The commit measured, and whether the server's sources had uncommitted changes (they are what runs). */
function codeVersion(): string {
  const git = (args: string[]) => execFileSync('git', args, { encoding: 'utf8' }).trim();
  try {
    const dirty = git(['status', '--porcelain', '--', 'packages']).split('\n').filter(Boolean).length;
    return `${git(['rev-parse', '--short', 'HEAD'])}${dirty ? ` + ${dirty} uncommitted files in packages/` : ''}`;
  } catch {
    return 'unknown';
  }
}

function contender(name: BrokerName, pki: Awaited<ReturnType<typeof makePki>>, bulwark: BulwarkSetup | undefined): Contender {
  if (name === 'mosquitto') return { name, protocols: opt.protocols, start: () => startMosquitto(tempDir('bench-mosq-'), pki) };
  if (name === 'aedes') return { name, protocols: [4], start: () => startAedes(pki) };
  return {
    name,
    protocols: opt.protocols,
    start: (kind, n) => startBulwark(bulwark as BulwarkSetup, tempDir('bench-bulwark-'), kind === 'load' ? 'load' : 'default', opt.profile && n === 1 && kind === 'load' ? ['--cpu-prof', `--cpu-prof-dir=${profileDir}`] : []),
  };
}

const codeAtStart = codeVersion();

function result(rounds: BrokerRound[]): RunResult {
  return {
    startedAt,
    machine: { cpus: cpus().length, cpu: cpus()[0]?.model ?? '?', memGb: round(totalmem() / 2 ** 30), node: process.version, openssl: process.versions.openssl ?? '?', bulwark: codeAtStart, bulwarkAtEnd: codeVersion(), openFiles: opt.openFiles },
    settings: {
      ...opt.load,
      sessions: opt.sessions,
      storm: opt.storm,
      concurrency: opt.concurrency,
      singleDeviceS: opt.singleS,
      repeats: opt.repeats,
      protocols: opt.protocols.map(protocolName).join(' + '),
      loadGenerator: 'one process, mqtt.js 5.16.0 (idle sessions and the storm: bare TLS sockets)',
    },
    pinning: pin.note,
    rounds,
    targets: evaluateTargets(rounds),
  };
}

if (opt.profile) profiling();

function clusterResult(rounds: ModeRound[]): ClusterResult {
  const c = opt.cluster;
  return {
    startedAt,
    machine: { cpus: cpus().length, cpu: cpus()[0]?.model ?? '?', node: process.version, bulwark: codeAtStart, bulwarkAtEnd: codeVersion() },
    settings: { devices: c.devices, rate: c.rate, durationS: c.durationS, warmupS: opt.load.warmupS, repeats: c.repeats, protocol: 'MQTT 5, QoS 1, mTLS', modes: c.modes.join(' + '), streamBacklog: c.backlog, streamReplicas: 1 },
    pinning: pinning().on ? 'taskset: load generator on core 1, every Bulwark process on core 0; NATS, Redis, HAProxy and PostgreSQL not pinned' : pin.note,
    notes: [
      'Bulwark CPU: utime+stime of every Bulwark node process (all threads) over the window, summed over the nodes; per message = divided by the PUBACKs of the window (a PUBACK follows the commit).',
      `PostgreSQL backends: the client backends pg_stat_activity lists for the bench's own database (listed at the start and at the end of the window, read from /proc); PostgreSQL background: the server's processes with no database (WAL writer, checkpointer, background writer, autovacuum launcher, …), shared with whatever else uses that server.`,
      'Stored: rows added to `telemetry` in the database during the phase (SQLite file for embedded, the bench database for the cluster) against every PUBACK of the phase (warm-up and window); lost = acknowledged but not in the database.',
      'MB per 1k sessions: RSS growth of the Bulwark process(es) from idle to all sessions connected, per 1,000 sessions (one sample, settled).',
      "The machine is shared with other people's work (others' cores): read the ratios, not the absolute figures.",
      ...STREAM_NOTES,
      "Cluster nodes run bench/bulwark-server.ts (the server `bulwark start` builds) with store=postgres://…, bus=nats://…, counters=redis://… and the message phases' settings (per-device rate bound lifted); the database is the embedded template copied by `bulwark store migrate`.",
    ],
    rounds,
    ...summarize(rounds, c.rate),
  };
}

try {
  const onlyOne = opt.cluster.when === 'only' || opt.alerts.when === 'only';
  const issue13 = !onlyOne;
  if (issue13) progress(`making a CA, a server certificate and ${opt.load.devices + 1} client certificates with openssl`);
  const withCluster = opt.cluster.when === 'only' || (opt.cluster.when === 'on' && !onlyOne);
  const withAlerts = opt.alerts.when === 'only' || (opt.alerts.when === 'on' && !onlyOne);
  const pki = issue13 ? await makePki(tempDir('bench-pki-'), opt.load.devices) : (undefined as unknown as Awaited<ReturnType<typeof makePki>>);
  let bulwark: BulwarkSetup | undefined;
  if (opt.brokers.includes('bulwark') || withCluster || withAlerts) {
    progress('bulwark: setting up (devices enrolled once, in a template data directory every process starts from)');
    const devices = Math.max(issue13 ? opt.load.devices : 0, withCluster ? opt.cluster.devices : 0, withAlerts ? opt.alerts.devices : 0);
    bulwark = await setUpBulwark(tempDir('bench-bulwark-template-'), devices, issue13 ? opt.sessions : 0);
  }
  const contenders = issue13 ? opt.brokers.map((n) => contender(n, pki, bulwark)) : [];
  const rounds: BrokerRound[] = [];
  const stamp = startedAt.replace(/[:]/g, '-');
  mkdirSync(resultsDir, { recursive: true });
  for (let n = 1; n <= opt.repeats; n += 1) {
    for (const c of contenders) {
      progress(`round ${n}/${opt.repeats}: ${c.name}`);
      rounds.push({ ...(await measureRound(c, n, opt.plan)), code: codeVersion() });
      // Written after every broker round, so that a long run that fails keeps what it measured.
      writeFileSync(`${resultsDir}${stamp}.json`, `${JSON.stringify(result(rounds), null, 2)}\n`);
    }
  }
  if (issue13) {
    const run = result(rounds);
    console.log(`\n${textReport(run)}\n`);
    for (const note of new Set(rounds.flatMap((r) => r.notes.map((x) => `${r.name}: ${x}`)))) console.log(note);
    const md = markdownReport(run);
    for (const base of [stamp, 'latest']) {
      writeFileSync(`${resultsDir}${base}.json`, `${JSON.stringify(run, null, 2)}\n`);
      writeFileSync(`${resultsDir}${base}.md`, md);
    }
    writeFileSync(`${resultsDir}latest.svg`, chart(run));
    writeFileSync(`${resultsDir}latest-targets.svg`, targetChart(run));
    progress(`results: bench/results/${stamp}.{json,md}, latest.{json,md,svg}, latest-targets.svg`);
  }
  if (withCluster && bulwark) {
    const c = opt.cluster;
    const profileFlags = (mode: string, n: number) => (opt.profile && n === 1 ? ['--cpu-prof', `--cpu-prof-dir=${profileDir}cluster/${mode}`] : []);
    const save = (r: ModeRound[]) => writeFileSync(`${resultsDir}${stamp}-cluster.json`, `${JSON.stringify(clusterResult(r), null, 2)}\n`);
    const modeRounds = await measureCluster({ ...c, warmupS: opt.load.warmupS, profileFlags }, bulwark, save);
    const cr = clusterResult(modeRounds);
    console.log(`\n${clusterText(cr)}\n`);
    for (const base of [`${stamp}-cluster`, 'cluster-latest']) {
      writeFileSync(`${resultsDir}${base}.json`, `${JSON.stringify(cr, null, 2)}\n`);
      writeFileSync(`${resultsDir}${base}.md`, clusterMarkdown(cr));
    }
    writeFileSync(`${resultsDir}cluster-latest.svg`, clusterChart(cr));
    writeFileSync(`${resultsDir}cluster-latest-stream.svg`, streamChart(cr));
    progress(`results: bench/results/${stamp}-cluster.{json,md}, cluster-latest.{json,md,svg}, cluster-latest-stream.svg`);
  }
  if (withAlerts && bulwark) {
    const rounds = await measureAlerts(bulwark, { ...opt.alerts, profileFlags: (mode, n) => (opt.profile && n === 1 ? ['--cpu-prof', `--cpu-prof-dir=${profileDir}alerts/${mode}`] : []) });
    const md = alertsMarkdown(
      opt.alerts,
      rounds,
      `Machine: cpus ${cpus().length}, ${cpus()[0]?.model ?? '?'}, node ${process.version}, bulwark ${codeAtStart}${codeVersion() === codeAtStart ? '' : ` (at end ${codeVersion()})`}; ${pinning().on ? 'taskset: load generator on core 1, Bulwark on core 0' : 'not pinned'}.`,
    );
    console.log(`\n${md}\n`);
    for (const base of [`${stamp}-alerts`, 'alerts-latest']) {
      writeFileSync(`${resultsDir}${base}.json`, `${JSON.stringify({ plan: opt.alerts, rounds }, null, 2)}\n`);
      writeFileSync(`${resultsDir}${base}.md`, `${md}\n`);
    }
    progress(`results: bench/results/${stamp}-alerts.{json,md}, alerts-latest.{json,md}`);
  }
  removeDir(root);
} catch (err) {
  progress(`failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
  process.exitCode = 1;
}
// Children and temp dirs are removed by the exit handler; open client sockets must not keep us alive.
process.exit();
