import { execFileSync } from 'node:child_process';
import { parseArgs } from 'node:util';
import { BROKERS, type BrokerName, type Protocol } from './broker.js';
import type { LoadSettings } from './load.js';
import type { Plan } from './measure.js';

/** The command line of `npm run bench`. */

const USAGE = `usage: npm run bench -- [options]
  --duration S     seconds of each measured window (CPU, latency, flood)        default 60
  --warmup S       seconds of load before a saturation/paced window             default 5
  --repeats N      rounds of every broker; ratios are medians of the rounds      default 3
  --protocol P     4, 5 or both: MQTT version(s) of the message phases           default both (Aedes: 4 only)
  --pin on|off     load generator on core 1, brokers on core 0 (taskset)         default on
  --devices N      load devices                                                  default 100
  --sessions N     idle mTLS sessions                                            default 19000 (less if the open-files limit is lower)
  --storm N        full handshakes in the connect storm                          default 1000
  --concurrency N  handshakes at a time                                          default 20
  --window N       QoS 1 in flight per device at saturation                      default 10
  --rate N         offered msg/s of the paced run                                default 10000
  --live N         devices the live subscriber follows                           default 4
  --single S       seconds of the one-device flood (Bulwark, default settings)   default 20
  --only NAME      bulwark, mosquitto or aedes (repeatable)
  --profile        Bulwark's first message-phase process runs with --cpu-prof (bench/results/profile/; the cluster phase's first round: profile/cluster/)
cluster phase (issue 14: the same paced load against one embedded node and cluster-mode nodes on PostgreSQL + NATS + Redis):
  --cluster on|off|only   run it after the phases above, skip it, or run only it       default on
  --cluster-nodes 1|2|both  one cluster node, two behind HAProxy, or both in turn      default both
  --cluster-devices N     MQTT 5 sessions publishing                                   default 500
  --cluster-rate N        offered QoS 1 msg/s, spread over the sessions                default 5000 (the stream target's p99 comparison is at 5k/s)
  --cluster-backlog N     readings put into the telemetry stream before the cluster nodes start; their store writers' drain is timed   default 200000
  --cluster-duration S    seconds of each measured window (after --warmup)            default 30
  --cluster-repeats N     rounds (each: embedded, then the cluster modes)             default --repeats
  --pg URL                PostgreSQL server where the bench makes its database         default $BULWARK_TEST_PG_URL or postgres://root@127.0.0.1:5432/test
alerts phase (issue 16: one embedded node, no rules against N rules matching every device, notifications to a local receiver):
  --alerts on|off|only    run it after the phases above, skip it, or run only it       default on
  --alerts-rules N        rules (one fires on 1 % of readings, the rest stay quiet)     default 100
  --alerts-devices N      MQTT 5 sessions publishing                                   default 500
  --alerts-rate N         offered QoS 1 msg/s                                          default 5000
  --alerts-duration S     seconds of each measured window (after --warmup)            default 15
  --alerts-repeats N      pairs of windows on one node (no rules / the rules)          default 4
  --alerts-settle N       pairs run first and not counted (a fresh node is cheaper)    default 1
  --alerts-channel K      the webhook channel: batch (what is due in one POST) or single default batch`;

export function options() {
  const { values: o } = parseArgs({
    options: {
      duration: { type: 'string', default: '60' },
      warmup: { type: 'string', default: '5' },
      repeats: { type: 'string', default: '3' },
      protocol: { type: 'string', default: 'both' },
      pin: { type: 'string', default: 'on' },
      devices: { type: 'string', default: '100' },
      sessions: { type: 'string' },
      storm: { type: 'string', default: '1000' },
      concurrency: { type: 'string', default: '20' },
      window: { type: 'string', default: '10' },
      rate: { type: 'string', default: '10000' },
      live: { type: 'string', default: '4' },
      single: { type: 'string', default: '20' },
      only: { type: 'string', multiple: true },
      profile: { type: 'boolean', default: false },
      cluster: { type: 'string', default: 'on' },
      'cluster-nodes': { type: 'string', default: 'both' },
      'cluster-devices': { type: 'string', default: '500' },
      'cluster-rate': { type: 'string', default: '5000' },
      'cluster-backlog': { type: 'string', default: '200000' },
      'cluster-duration': { type: 'string', default: '30' },
      'cluster-repeats': { type: 'string' },
      pg: { type: 'string' },
      alerts: { type: 'string', default: 'on' },
      'alerts-rules': { type: 'string', default: '100' },
      'alerts-devices': { type: 'string', default: '500' },
      'alerts-rate': { type: 'string', default: '5000' },
      'alerts-duration': { type: 'string', default: '15' },
      'alerts-repeats': { type: 'string', default: '4' },
      'alerts-settle': { type: 'string', default: '1' },
      'alerts-channel': { type: 'string', default: 'batch' },
      help: { type: 'boolean', default: false },
    },
  });
  if (o.help) {
    console.log(USAGE);
    process.exit(0);
  }
  const int = (name: string, v: string | undefined, min: number, max: number): number => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < min || n > max) throw new Error(`--${name} must be an integer from ${min} to ${max}`);
    return n;
  };
  const devices = int('devices', o.devices, 1, 5000);
  const load: LoadSettings = {
    devices,
    durationS: int('duration', o.duration, 1, 3600),
    warmupS: int('warmup', o.warmup, 0, 600),
    window: int('window', o.window, 1, 100),
    liveDevices: Math.min(devices, int('live', o.live, 0, 100)),
    pacedRate: int('rate', o.rate, 1, 1_000_000),
  };
  // The bench process holds every idle session's socket, and each broker one per session.
  const openFiles = Number(execFileSync('sh', ['-c', 'ulimit -n'], { encoding: 'utf8' }).trim()) || 1024;
  const maxSessions = Math.max(1, openFiles - devices - 400);
  const sessions = o.sessions === undefined ? Math.min(19_000, maxSessions) : int('sessions', o.sessions, 1, maxSessions);
  const protocols: Protocol[] = o.protocol === 'both' ? [4, 5] : o.protocol === '4' ? [4] : o.protocol === '5' ? [5] : [];
  if (protocols.length === 0) throw new Error('--protocol takes 4, 5 or both');
  if (o.pin !== 'on' && o.pin !== 'off') throw new Error('--pin takes on or off');
  const only = (o.only ?? []) as BrokerName[];
  for (const n of only) if (!BROKERS.includes(n)) throw new Error(`--only takes ${BROKERS.join(', ')}`);
  const storm = int('storm', o.storm, 1, 1_000_000);
  const concurrency = Math.min(devices, int('concurrency', o.concurrency, 1, 1000));
  const singleS = int('single', o.single, 1, 3600);
  const plan: Plan = { settings: load, sessions, storm, concurrency, singleS, protocols };
  const cluster = clusterOptions(o, int, openFiles);
  const repeats = int('repeats', o.repeats, 1, 20);
  if (o.alerts !== 'on' && o.alerts !== 'off' && o.alerts !== 'only') throw new Error('--alerts takes on, off or only');
  if (o['alerts-channel'] !== 'batch' && o['alerts-channel'] !== 'single') throw new Error('--alerts-channel takes batch or single');
  // Annotated: a narrowed literal would widen to string inside the object literal.
  const alertsWhen: 'on' | 'off' | 'only' = o.alerts;
  const alertsChannel: 'batch' | 'single' = o['alerts-channel'];
  const alerts = {
    when: alertsWhen,
    rules: int('alerts-rules', o['alerts-rules'], 1, 10_000),
    devices: int('alerts-devices', o['alerts-devices'], 1, Math.min(5000, openFiles - 400)),
    rate: int('alerts-rate', o['alerts-rate'], 1, 1_000_000),
    durationS: int('alerts-duration', o['alerts-duration'], 1, 3600),
    repeats: int('alerts-repeats', o['alerts-repeats'], 1, 20),
    settlePairs: int('alerts-settle', o['alerts-settle'], 0, 5),
    channel: alertsChannel,
    warmupS: load.warmupS,
  };
  return {
    alerts,
    cluster: { ...cluster, repeats: o['cluster-repeats'] === undefined ? repeats : int('cluster-repeats', o['cluster-repeats'], 1, 20) },
    load,
    plan,
    sessions,
    storm,
    concurrency,
    singleS,
    protocols,
    openFiles,
    profile: o.profile,
    pin: o.pin === 'on',
    repeats,
    brokers: BROKERS.filter((b) => only.length === 0 || only.includes(b)),
  };
}

/** The cluster phase's options (issue 14). */
function clusterOptions(o: Record<string, string | boolean | string[] | undefined>, int: (name: string, v: string | undefined, min: number, max: number) => number, openFiles: number) {
  const when = o.cluster;
  if (when !== 'on' && when !== 'off' && when !== 'only') throw new Error('--cluster takes on, off or only');
  const nodes = o['cluster-nodes'];
  if (nodes !== '1' && nodes !== '2' && nodes !== 'both') throw new Error('--cluster-nodes takes 1, 2 or both');
  const mode: 'on' | 'off' | 'only' = when;
  return {
    when: mode,
    modes: ['embedded', ...(nodes !== '2' ? ['cluster1'] : []), ...(nodes !== '1' ? ['cluster2'] : [])] as ('embedded' | 'cluster1' | 'cluster2')[],
    // The bench holds every session's socket, HAProxy two descriptors per session.
    devices: int('cluster-devices', o['cluster-devices'] as string, 1, Math.min(5000, Math.floor((openFiles - 400) / 2))),
    rate: int('cluster-rate', o['cluster-rate'] as string, 1, 1_000_000),
    durationS: int('cluster-duration', o['cluster-duration'] as string, 1, 3600),
    backlog: int('cluster-backlog', o['cluster-backlog'] as string, 1000, 10_000_000),
    pgUrl: (o.pg as string | undefined) ?? process.env.BULWARK_TEST_PG_URL ?? 'postgres://root@127.0.0.1:5432/test',
  };
}
