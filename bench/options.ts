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
  --profile        Bulwark's first message-phase process runs with --cpu-prof (bench/results/profile/)`;

export function options() {
  const { values: o } = parseArgs({
    options: {
      duration: { type: 'string', default: '60' }, warmup: { type: 'string', default: '5' }, repeats: { type: 'string', default: '3' },
      protocol: { type: 'string', default: 'both' }, pin: { type: 'string', default: 'on' }, devices: { type: 'string', default: '100' },
      sessions: { type: 'string' }, storm: { type: 'string', default: '1000' }, concurrency: { type: 'string', default: '20' },
      window: { type: 'string', default: '10' }, rate: { type: 'string', default: '10000' }, live: { type: 'string', default: '4' },
      single: { type: 'string', default: '20' }, only: { type: 'string', multiple: true }, profile: { type: 'boolean', default: false },
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
    devices, durationS: int('duration', o.duration, 1, 3600), warmupS: int('warmup', o.warmup, 0, 600), window: int('window', o.window, 1, 100),
    liveDevices: Math.min(devices, int('live', o.live, 0, 100)), pacedRate: int('rate', o.rate, 1, 1_000_000),
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
  return {
    load, plan, sessions, storm, concurrency, singleS, protocols, openFiles, profile: o.profile, pin: o.pin === 'on',
    repeats: int('repeats', o.repeats, 1, 20), brokers: BROKERS.filter((b) => only.length === 0 || only.includes(b)),
  };
}
