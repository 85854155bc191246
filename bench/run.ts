import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { parseArgs } from 'node:util';
import { BROKERS, type Broker, type BrokerName } from './broker.js';
import { startBulwark } from './bulwark.js';
import { makePki } from './certs.js';
import { installCleanup, progress, removeDir, tempDir } from './children.js';
import { type LoadSettings, Load } from './load.js';
import { startAedes, startMosquitto } from './passthrough.js';
import { round, settledRssKb } from './proc.js';
import { type BrokerResult, type RunResult, markdownReport, targets, textTable } from './report.js';
import { connectStorm, idleSessions } from './sessions.js';
import { chart } from './svg.js';

/**
 * npm run bench -- [--duration S] [--devices N] [--sessions N] [--only bulwark|mosquitto|aedes]
 * Runs the same load against Bulwark (full pipeline), Mosquitto and plain Aedes, all over
 * mutual TLS on 127.0.0.1, one after the other; see bench/README.md.
 */
const { values: opt } = parseArgs({
  options: {
    duration: { type: 'string', default: '10' }, warmup: { type: 'string', default: '2' }, devices: { type: 'string', default: '100' },
    sessions: { type: 'string', default: '2000' }, storm: { type: 'string', default: '1000' }, concurrency: { type: 'string', default: '20' },
    window: { type: 'string', default: '10' }, rate: { type: 'string', default: '10000' }, live: { type: 'string', default: '4' },
    only: { type: 'string', multiple: true }, profile: { type: 'boolean', default: false }, help: { type: 'boolean', default: false },
  },
});
if (opt.help) {
  console.log('usage: npm run bench -- [--duration 10] [--warmup 2] [--devices 100] [--sessions 2000] [--storm 1000] [--concurrency 20]\n'
    + '                       [--window 10] [--rate 10000] [--live 4] [--only bulwark|mosquitto|aedes]... [--profile]');
  process.exit(0);
}
const int = (name: string, v: string | undefined, min: number, max: number): number => {
  const n = Number(v);
  if (!Number.isInteger(n) || n < min || n > max) throw new Error(`--${name} must be an integer from ${min} to ${max}`);
  return n;
};
const devices = int('devices', opt.devices, 1, 5000);
const settings: LoadSettings = {
  devices, durationS: int('duration', opt.duration, 1, 600), warmupS: int('warmup', opt.warmup, 0, 60), window: int('window', opt.window, 1, 1000),
  liveDevices: Math.min(devices, int('live', opt.live, 0, 100)), pacedRate: int('rate', opt.rate, 1, 1_000_000),
};
// The open-files limit here is 20,000 and this process holds every session's socket.
const sessions = int('sessions', opt.sessions, 1, 19_500 - devices);
const storm = int('storm', opt.storm, 1, 1_000_000);
const concurrency = Math.min(devices, int('concurrency', opt.concurrency, 1, 1000));
const only = (opt.only ?? []) as BrokerName[];
for (const o of only) if (!BROKERS.includes(o)) throw new Error(`--only takes ${BROKERS.join(', ')}`);
const selected = BROKERS.filter((b) => only.length === 0 || only.includes(b));

installCleanup();
const root = tempDir('bulwark-bench-');
const startedAt = new Date().toISOString().replace(/\.\d+Z$/, 'Z');
const profileDir = new URL('./results/profile/', import.meta.url).pathname;

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

async function start(name: BrokerName, pki: Awaited<ReturnType<typeof makePki>>, round: number): Promise<Broker> {
  if (name === 'mosquitto') return startMosquitto(tempDir('bench-mosq-'), pki);
  if (name === 'aedes') return startAedes(pki);
  const flags = opt.profile && round === 1 ? ['--cpu-prof', `--cpu-prof-dir=${profileDir}`] : [];
  return startBulwark(tempDir('bench-bulwark-'), devices, sessions, flags);
}

async function measure(name: BrokerName, pki: Awaited<ReturnType<typeof makePki>>): Promise<BrokerResult> {
  // Messages first, on a fresh process; sessions and handshakes on another fresh one, so neither inherits the other's heap.
  progress(`${name}: starting`);
  let broker = await start(name, pki, 1);
  const rssStartMb = round((await settledRssKb(broker.pid)) / 1024);
  progress(`${name}: pid ${broker.pid}, port ${broker.port}, RSS ${rssStartMb} MB; connecting ${devices} devices`);
  const load = await Load.connect(broker, settings);
  const tls = load.tlsInfo();
  progress(`${name}: QoS 1 flat out, window ${settings.window}/device, ${settings.warmupS}+${settings.durationS} s`);
  const qos1 = await load.qos1();
  progress(`${name}: QoS 1 ${qos1.msgPerSec} msg/s, ${qos1.serverCpuUsPerMsg} µs CPU/msg; QoS 0 flood`);
  const qos0 = await load.qos0();
  progress(`${name}: QoS 0 ${qos0.msgPerSec} msg/s; QoS 1 paced at ${settings.pacedRate} msg/s`);
  const paced = await load.paced();
  progress(`${name}: paced PUBACK p99 ${paced.puback?.p99 ?? '-'} ms, live p99 ${paced.live?.p99 ?? '-'} ms`);
  await load.close();
  const notes = broker.notes;
  await broker.stop();
  progress(`${name}: restarting for sessions and handshakes`);
  broker = await start(name, pki, 2);
  const idle = await idleSessions(broker, sessions);
  progress(`${name}: ${idle.kbPerSession} KB/idle session; connect storm of ${storm} (${concurrency} at a time)`);
  const stormResult = await connectStorm(broker, storm, concurrency);
  progress(`${name}: ${stormResult.perSec} handshakes/s, ${stormResult.serverCpuMsPerHandshake} ms CPU each`);
  await broker.stop();
  return { name, notes, tls, qos1, qos0, paced, idle, storm: stormResult, rssStartMb };
}

try {
  progress(`making a CA, a server certificate and ${devices + 1} client certificates with openssl`);
  const pki = await makePki(tempDir('bench-pki-'), devices);
  const results: BrokerResult[] = [];
  for (const name of selected) results.push(await measure(name, pki));
  const run: RunResult = {
    startedAt,
    machine: { cpus: cpus().length, cpu: cpus()[0]?.model ?? '?', memGb: round(totalmem() / 2 ** 30), node: process.version, openssl: process.versions.openssl ?? '?', bulwark: codeVersion() },
    settings: { ...settings, sessions, storm, concurrency, loadGenerator: 'one process, mqtt.js 5.16.0, protocolVersion 4' },
    brokers: results,
  };
  const text = textTable(run);
  console.log(`\n${text}\n\n${targets(run).join('\n')}\n`);
  for (const r of results) for (const n of r.notes) console.log(`${r.name}: ${n}`);
  const dir = new URL('./results/', import.meta.url).pathname;
  mkdirSync(dir, { recursive: true });
  const stamp = startedAt.replace(/[:]/g, '-');
  const md = markdownReport(run);
  for (const base of [stamp, 'latest']) {
    writeFileSync(`${dir}${base}.json`, `${JSON.stringify(run, null, 2)}\n`);
    writeFileSync(`${dir}${base}.md`, md);
  }
  writeFileSync(`${dir}latest.svg`, chart(run));
  progress(`results: bench/results/${stamp}.{json,md}, latest.{json,md,svg}`);
  removeDir(root);
} catch (err) {
  progress(`failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
  process.exitCode = 1;
}
// Children and temp dirs are removed by the exit handler; open client sockets must not keep us alive.
process.exit();
