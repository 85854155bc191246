import { execFileSync } from 'node:child_process';
import Database from 'better-sqlite3';
import type { Broker } from './broker.js';
import { type BulwarkSetup, spawnBulwark, startBulwark } from './bulwark.js';
import { histogramOf, histogramQuantileMs, loopDelayOf, readCounts, scrapeMetrics } from './bulwark-api.js';
import { type Engines, masterKeyOf, startBalancer, startEngines } from './cluster-engines.js';
import { type PacedResult, type PidGroups, pacedQos1 } from './cluster-load.js';
import { progress, removeDir, stopChild, tempDir } from './children.js';
import { drained } from './drain.js';
import { Load, type LoadSettings } from './load.js';
import { round, settledRssKb } from './proc.js';
import { type LagTrace, StreamProbe, type WriterDrain, backlogRecords, measureDrain, rawCopyRowsPerSec } from './stream-writer.js';

/**
 * Issue 14's comparison: the same paced MQTT 5 QoS 1 load against one embedded node (SQLite,
 * in-memory bus) and against cluster-mode nodes (PostgreSQL + NATS JetStream + Redis), in one
 * run, round after round. Bulwark's own CPU per stored message is the target's figure; the
 * engines' CPU is measured beside it. The cluster's database is the embedded template copied
 * by `bulwark store migrate`, so both modes serve the same devices with the same credentials.
 */

export type ModeKey = 'embedded' | 'cluster1' | 'cluster2';
export const MODE_TITLE: Record<ModeKey, string> = { embedded: 'embedded, 1 node', cluster1: 'cluster, 1 node', cluster2: 'cluster, 2 nodes + HAProxy' };
/** CPU groups, in the order reported. */
export const GROUPS = ['bulwark', 'nats', 'redis', 'pgBackends', 'pgBackground', 'haproxy'] as const;
export type Group = (typeof GROUPS)[number];

export interface ClusterPlan {
  readonly devices: number;
  readonly rate: number;
  readonly durationS: number;
  readonly warmupS: number;
  readonly repeats: number;
  readonly modes: readonly ModeKey[];
  /** Readings put into the telemetry stream before the cluster nodes start, for the store writers' drain rate. */
  readonly backlog: number;
  /** The PostgreSQL server (a database on it is used for the admin connection; the bench makes its own). */
  readonly pgUrl: string;
  /** Node flags for the first round's Bulwark processes (--cpu-prof), or none. */
  readonly profileFlags: (mode: ModeKey, node: number) => readonly string[];
}

export interface ModeRound {
  readonly mode: ModeKey;
  readonly round: number;
  readonly nodes: number;
  readonly msgPerSec: number;
  readonly paced: Omit<PacedResult, 'window'>;
  /** Stored during the phase: rows counted in the database (SQLite file or the bench's PostgreSQL database) and Bulwark's own `stored` counter. */
  readonly storedDb: number;
  readonly storedMetric: number;
  /** Acknowledged publishes not found in the database (0 = nothing lost). */
  readonly lost: number;
  readonly cpuMs: Partial<Record<Group, number>>;
  readonly usPerMsg: Partial<Record<Group, number>>;
  /** Each Bulwark node's share of the window's Bulwark CPU, in cores. */
  readonly nodeCores: number[];
  readonly pgBackends: number;
  readonly loadGenCores: number;
  readonly otherCores: number;
  readonly rssIdleMb: number;
  readonly rssConnectedMb: number;
  readonly mbPer1000Sessions: number;
  readonly drained: boolean;
  /** Event-loop delay over the paced load (warm-up and window), the largest of the nodes' (ms). */
  readonly loopDelayMs?: { p99: number; max: number };
  /** Cluster modes: time from a reading leaving the pipeline to the stream's acknowledgement, over the paced load, every node (ms, bucket upper bounds). */
  readonly appendMs?: { p50: number | null; p99: number | null };
  /** Cluster modes: the store writers' drain of a backlog, raw COPY on the same database, and the writers' lag during the paced load. */
  readonly stream?: StreamRound;
}

export interface StreamRound {
  readonly drain: WriterDrain;
  readonly rawCopyRowsPerSec: number;
  readonly lag: LagTrace;
}

interface Node {
  readonly broker: Broker;
  readonly url: string;
  readonly pid: number;
}

/** A cluster-mode node: bench/bulwark-server.ts (what `bulwark start` builds) with --store, --bus and --counters. */
async function startClusterNode(setup: BulwarkSetup, engines: Engines, masterKey: string, nodeId: string, flags: readonly string[]): Promise<Node> {
  const dataDir = tempDir(`bench-${nodeId}-`);
  const settings = {
    ...setup.overrides.settings,
    store: engines.storeUrl,
    bus: engines.nats.url,
    counters: engines.redis.url,
    nodeId,
    // The load's clients are gone before a node stops: no need to keep it out of the balancer first.
    cluster: { drainLeaveMs: 0 },
  };
  const { child, url, mqttPort, controlPort, pid } = await spawnBulwark(dataDir, setup.adminKey, settings, flags, { BULWARK_MASTER_KEY: masterKey });
  const broker: Broker = {
    name: 'bulwark',
    pid,
    port: mqttPort,
    notes: [],
    device: (i) => setup.devices[i % setup.devices.length] as NonNullable<(typeof setup.devices)[number]>,
    sessionIdentities: () => Promise.reject(new Error('not in the cluster phase')),
    liveTap: () => Promise.reject(new Error('not in the cluster phase')),
    counts: () => readCounts(url),
    pending: async () => ((await fetch(`http://127.0.0.1:${controlPort}/`).then((r) => r.json())) as { pending: number }).pending,
    async stop() {
      await stopChild(child, 30_000);
      removeDir(dataDir);
    },
  };
  return { broker, url, pid };
}

const storedOf = async (nodes: readonly Node[]) => (await Promise.all(nodes.map((n) => readCounts(n.url)))).reduce((a, c) => a + (c.outcomes.stored ?? 0), 0);

function sqliteRows(dataDir: string): number {
  const db = new Database(`${dataDir}/bulwark.db`, { readonly: true, fileMustExist: true });
  try {
    return (db.prepare('SELECT count(*) AS n FROM telemetry').get() as { n: number }).n;
  } finally {
    db.close();
  }
}

async function measureMode(mode: ModeKey, n: number, plan: ClusterPlan, setup: BulwarkSetup, engines: Engines, masterKey: string, probe: StreamProbe): Promise<ModeRound> {
  const tag = `${MODE_TITLE[mode]} (round ${n})`;
  const count = mode === 'cluster2' ? 2 : 1;
  const nodes: Node[] = [];
  let embeddedDir = '';
  let stopBalancer = async () => undefined as void;
  let groups: PidGroups;
  let streamRound: StreamRound | undefined;
  let port: number;
  if (mode === 'embedded') {
    embeddedDir = tempDir('bench-bulwark-');
    const broker = await startBulwark(setup, embeddedDir, 'load', plan.profileFlags(mode, n));
    nodes.push({ broker, url: broker.url ?? '', pid: broker.pid });
    groups = { 'bulwark:1': [broker.pid] };
    port = broker.port;
  } else {
    // A backlog in the stream while no node runs; the nodes' writers store it as they start (timed), before any device connects.
    const records = backlogRecords(
      setup.devices.map((d) => d.id),
      plan.backlog,
      `backlog-${mode}-${n}-${Date.now()}`,
    );
    progress(`${tag}: putting ${plan.backlog} readings into the telemetry stream (no node running)`);
    const publishPerSec = await probe.publish(records, tag);
    const draining = measureDrain(() => nodes.map((x) => x.url), plan.backlog, publishPerSec, `${tag}: backlog`);
    for (let i = 1; i <= count; i += 1) nodes.push(await startClusterNode(setup, engines, masterKey, `bench-node-${i}`, plan.profileFlags(mode, n)));
    const drain = await draining;
    for (let t = 0; t < 600 && (await probe.lag()) > 0; t += 1) await new Promise((r) => setTimeout(r, 100));
    const rawCopy = await rawCopyRowsPerSec(engines.storeUrl, records);
    streamRound = { drain, rawCopyRowsPerSec: rawCopy, lag: { max: 0, atEnd: 0, backToZeroS: null } };
    progress(
      `${tag}: writers stored the backlog at ${drain.rowsPerSec} rows/s over ${drain.seconds} s (${drain.inserted} inserted, ${drain.repeats} repeats; mean batch ${drain.meanBatch} readings, ${drain.meanBatchMs} ms; the bench published it at ${drain.publishPerSec} msg/s); raw COPY ${rawCopy} rows/s`,
    );
    groups = { nats: [engines.nats.pid], redis: [engines.redis.pid], pgBackends: async () => (await engines.pgPids()).backends, pgBackground: async () => (await engines.pgPids()).background };
    nodes.forEach((node, i) => {
      groups[`bulwark:${i + 1}`] = [node.pid];
    });
    port = nodes[0]?.broker.port ?? 0;
    if (count > 1) {
      const lb = await startBalancer(nodes.map((node, i) => ({ name: `bench-node-${i + 1}`, mqttPort: node.broker.port, httpPort: Number(new URL(node.url).port) })));
      groups.haproxy = [lb.pid];
      port = lb.port;
      stopBalancer = () => lb.stop();
      await new Promise((r) => setTimeout(r, 1500)); // the first health checks
    }
  }
  const first = nodes[0] as Node;
  const storedNow = async () => (mode === 'embedded' ? ((await first.broker.counts?.())?.outcomes.stored ?? 0) : storedOf(nodes));
  const rowsNow = async () => (mode === 'embedded' ? sqliteRows(embeddedDir) : engines.telemetryRows());
  // One scrape per node: the event-loop delay since the previous scrape (the largest node's) and the stream appends so far.
  const scrape = async () => {
    const texts = await Promise.all(nodes.map((node) => scrapeMetrics(node.url).catch(() => '')));
    const delays = texts.map(loopDelayOf);
    return {
      loopDelay: { p99: round(Math.max(...delays.map((d) => d.p99)), 1), max: round(Math.max(...delays.map((d) => d.max)), 1) },
      appends: texts.map((text) => histogramOf(text, 'bulwark_stream_append_seconds')),
    };
  };
  try {
    progress(`${tag}: pids ${nodes.map((x) => x.pid).join(', ')}, MQTT port ${port}`);
    for (const node of nodes) await drained(node.broker, 'before connecting');
    const rssIdle = (await Promise.all(nodes.map((x) => settledRssKb(x.pid)))).reduce((a, b) => a + b, 0);
    const settings: LoadSettings = { devices: plan.devices, durationS: plan.durationS, warmupS: plan.warmupS, window: 10, liveDevices: 0, pacedRate: plan.rate };
    progress(`${tag}: connecting ${plan.devices} devices (MQTT 5, mTLS)`);
    const load = await Load.connect({ ...first.broker, port }, settings, 5);
    const rssConnected = (await Promise.all(nodes.map((x) => settledRssKb(x.pid)))).reduce((a, b) => a + b, 0);
    let isDrained = true;
    for (const node of nodes) isDrained = (await drained(node.broker, 'before the paced window')).drained && isDrained;
    const [stored0, rows0] = [await storedNow(), await rowsNow()];
    const lagWatch = streamRound ? probe.watch(1000) : undefined;
    const before = await scrape();
    const r = await pacedQos1(load, plan.rate, plan.warmupS, plan.durationS, groups, `${tag}: QoS 1 paced at ${plan.rate} msg/s`);
    const after = await scrape();
    const loopDelayMs = after.loopDelay;
    const appendMs = mode === 'embedded' ? undefined : { p50: histogramQuantileMs(before.appends, after.appends, 0.5), p99: histogramQuantileMs(before.appends, after.appends, 0.99) };
    if (streamRound && lagWatch) {
      streamRound = { ...streamRound, lag: await lagWatch.stop(60_000) };
      progress(`${tag}: store writers' lag: max ${streamRound.lag.max}, ${streamRound.lag.atEnd} when the load stopped, 0 after ${streamRound.lag.backToZeroS ?? '> 60'} s`);
    }
    await load.close();
    for (const node of nodes) await drained(node.broker, 'after the window');
    const [stored1, rows1] = [await storedNow(), await rowsNow()];
    const { window, ...paced } = r;
    const cpuMs: Partial<Record<Group, number>> = {};
    const nodeCores: number[] = [];
    for (const [k, v] of Object.entries(window.cpuMs)) {
      const g = (k.startsWith('bulwark:') ? 'bulwark' : k) as Group;
      cpuMs[g] = (cpuMs[g] ?? 0) + v;
      if (g === 'bulwark') nodeCores.push(round(v / window.wallMs, 2));
    }
    const usPerMsg: Partial<Record<Group, number>> = {};
    for (const [g, v] of Object.entries(cpuMs)) usPerMsg[g as Group] = round((v * 1000) / Math.max(1, r.ackedInWindow), 1);
    const result: ModeRound = {
      mode,
      round: n,
      nodes: count,
      msgPerSec: round(r.ackedInWindow / (window.wallMs / 1000), 0),
      paced,
      storedDb: rows1 - rows0,
      storedMetric: stored1 - stored0,
      lost: Math.max(0, r.acked - (rows1 - rows0)),
      cpuMs: Object.fromEntries(Object.entries(cpuMs).map(([k, v]) => [k, round(v, 0)])),
      usPerMsg,
      nodeCores,
      pgBackends: window.pids.pgBackends ?? 0,
      loadGenCores: round(window.loadGenCores, 2),
      otherCores: round(window.otherCores, 2),
      rssIdleMb: round(rssIdle / 1024, 1),
      rssConnectedMb: round(rssConnected / 1024, 1),
      mbPer1000Sessions: round(((rssConnected - rssIdle) / 1024 / plan.devices) * 1000, 1),
      drained: isDrained,
      loopDelayMs,
      ...(appendMs ? { appendMs } : {}),
      ...(streamRound ? { stream: streamRound } : {}),
    };
    progress(
      `${tag}: ${result.msgPerSec} msg/s, PUBACK p99 ${paced.puback?.p99 ?? '-'} ms (${paced.skipped} skipped), event-loop delay p99 ${loopDelayMs.p99} / max ${loopDelayMs.max} ms,${appendMs ? ` stream append p50 ≤ ${appendMs.p50} / p99 ≤ ${appendMs.p99} ms,` : ''} Bulwark ${usPerMsg.bulwark} µs/msg${mode === 'embedded' ? '' : `, NATS ${usPerMsg.nats}, Redis ${usPerMsg.redis}, PG backends ${usPerMsg.pgBackends} (${result.pgBackends}), PG background ${usPerMsg.pgBackground}`}; stored ${result.storedDb} of ${r.acked} acked (${result.lost} lost)`,
    );
    return result;
  } finally {
    await stopBalancer();
    for (const node of nodes) await node.broker.stop();
  }
}

/** Copies the embedded template into the bench database, as an operator moves to a cluster. */
function migrate(setup: BulwarkSetup, engines: Engines): void {
  const main = new URL('../apps/bulwark/src/main.ts', import.meta.url).pathname;
  const out = execFileSync(process.execPath, ['--import', 'tsx', main, 'store', 'migrate', '--from', setup.template, '--to', engines.storeUrl, '--master-key-file', `${setup.template}/master.key`], {
    encoding: 'utf8',
    env: Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('BULWARK_'))),
    timeout: 600_000,
  });
  progress(`cluster: ${out.trim().split('\n')[0] ?? 'migrated'}`);
}

/** Every round: each mode in turn (embedded first), so that a noisy stretch of the machine falls on all of them. */
export async function measureCluster(plan: ClusterPlan, setup: BulwarkSetup, onRound: (rounds: ModeRound[]) => void): Promise<ModeRound[]> {
  const engines = await startEngines(plan.pgUrl);
  const rounds: ModeRound[] = [];
  let probe: StreamProbe | undefined;
  try {
    progress(`cluster: bulwark store migrate of the embedded template into ${engines.dbName}`);
    migrate(setup, engines);
    const masterKey = masterKeyOf(setup.template);
    probe = await StreamProbe.open(engines.nats.url);
    for (let n = 1; n <= plan.repeats; n += 1) {
      for (const mode of plan.modes) {
        progress(`cluster phase round ${n}/${plan.repeats}: ${MODE_TITLE[mode]}`);
        rounds.push(await measureMode(mode, n, plan, setup, engines, masterKey, probe));
        onRound(rounds);
      }
    }
  } finally {
    await probe?.close().catch(() => undefined);
    await engines.stop();
  }
  return rounds;
}
