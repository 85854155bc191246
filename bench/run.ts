import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { type BrokerName, protocolName } from './broker.js';
import { type BulwarkSetup, setUpBulwark, startBulwark } from './bulwark.js';
import { makePki } from './certs.js';
import { profiling } from './drain.js';
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
 * TLS on 127.0.0.1, `--repeats` rounds of each in turn, and checks issue 13's targets.
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
    name, protocols: opt.protocols,
    start: (kind, n) => startBulwark(bulwark as BulwarkSetup, tempDir('bench-bulwark-'), kind === 'load' ? 'load' : 'default',
      opt.profile && n === 1 && kind === 'load' ? ['--cpu-prof', `--cpu-prof-dir=${profileDir}`] : []),
  };
}

const codeAtStart = codeVersion();

function result(rounds: BrokerRound[]): RunResult {
  return {
    startedAt,
    machine: { cpus: cpus().length, cpu: cpus()[0]?.model ?? '?', memGb: round(totalmem() / 2 ** 30), node: process.version, openssl: process.versions.openssl ?? '?', bulwark: codeAtStart, bulwarkAtEnd: codeVersion(), openFiles: opt.openFiles },
    settings: {
      ...opt.load, sessions: opt.sessions, storm: opt.storm, concurrency: opt.concurrency, singleDeviceS: opt.singleS, repeats: opt.repeats,
      protocols: opt.protocols.map(protocolName).join(' + '), loadGenerator: 'one process, mqtt.js 5.16.0 (idle sessions and the storm: bare TLS sockets)',
    },
    pinning: pin.note, rounds, targets: evaluateTargets(rounds),
  };
}

if (opt.profile) profiling();

try {
  progress(`making a CA, a server certificate and ${opt.load.devices + 1} client certificates with openssl`);
  const pki = await makePki(tempDir('bench-pki-'), opt.load.devices);
  let bulwark: BulwarkSetup | undefined;
  if (opt.brokers.includes('bulwark')) {
    progress('bulwark: setting up (devices enrolled once, in a template data directory every process starts from)');
    bulwark = await setUpBulwark(tempDir('bench-bulwark-template-'), opt.load.devices, opt.sessions);
  }
  const contenders = opt.brokers.map((n) => contender(n, pki, bulwark));
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
  removeDir(root);
} catch (err) {
  progress(`failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
  process.exitCode = 1;
}
// Children and temp dirs are removed by the exit handler; open client sockets must not keep us alive.
process.exit();
