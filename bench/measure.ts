import { type Broker, type BrokerName, type Protocol, protocolName } from './broker.js';
import { bulwarkDefault } from './bulwark.js';
import { progress } from './children.js';
import { drained } from './drain.js';
import { qos0Flood } from './flood.js';
import { Load, type LoadSettings, type PhaseResult } from './load.js';
import { round, settledRssKb } from './proc.js';
import { type IdleResult, type StormResult, connectStorm, idleSessions } from './sessions.js';
import { type SingleResult, singleDevice } from './single.js';

/**
 * One round of one broker, on three fresh processes: the message phases (QoS 1 flat out and
 * paced, for each protocol; then the QoS 0 flood), the connect storm (and, for Bulwark, one
 * device flooding with default settings), and the idle sessions. Before each phase the broker
 * is left to drain, so that no phase is charged with the work of the one before.
 */

export interface Contender {
  readonly name: BrokerName;
  /** The protocols its message phases run with (Aedes speaks MQTT 3.1.1 only). */
  readonly protocols: readonly Protocol[];
  /** `load`: for the message phases; `default`: settings as shipped (only Bulwark differs). */
  start(kind: 'load' | 'default', round: number): Promise<Broker>;
}

export interface Plan {
  readonly settings: LoadSettings;
  readonly sessions: number;
  readonly storm: number;
  readonly concurrency: number;
  /** Seconds of the one-device flood (Bulwark). */
  readonly singleS: number;
  /** Protocols of the one-device flood. */
  readonly protocols: readonly Protocol[];
}

export interface BrokerRound {
  readonly name: BrokerName;
  readonly round: number;
  readonly notes: readonly string[];
  readonly tls: string;
  /** RSS of the message-phase process after start-up, before any load (MB). */
  readonly rssStartMb: number;
  readonly qos1: PhaseResult[];
  readonly paced: PhaseResult[];
  readonly qos0: PhaseResult;
  readonly storm: StormResult;
  readonly idle: IdleResult;
  readonly single: SingleResult[];
  /** The commit (and uncommitted files in packages/) when the round ended: the working tree may change during a long run. */
  code?: string;
}

async function phase(broker: Broker, what: string, run: () => Promise<PhaseResult>): Promise<PhaseResult> {
  const d = await drained(broker, `before ${what}`);
  const r = await run();
  r.drainMs = d.ms;
  r.drained = d.drained;
  return r;
}

export async function measureRound(c: Contender, n: number, plan: Plan): Promise<BrokerRound> {
  const tag = `${c.name} (round ${n})`;
  progress(`${tag}: starting for the message phases`);
  let broker = await c.start('load', n);
  const rssStartKb = await settledRssKb(broker.pid);
  const notes = broker.notes;
  progress(`${tag}: pid ${broker.pid}, port ${broker.port}, RSS ${round(rssStartKb / 1024)} MB`);
  const qos1: PhaseResult[] = [];
  const paced: PhaseResult[] = [];
  let tls = '';
  for (const p of c.protocols) {
    progress(`${tag}: connecting ${plan.settings.devices} devices with ${protocolName(p)}`);
    const load = await Load.connect(broker, plan.settings, p);
    tls ||= load.tlsInfo();
    const q = await phase(broker, 'QoS 1', () => load.qos1());
    qos1.push(q);
    progress(`${tag}: ${protocolName(p)} QoS 1 ${q.msgPerSec} msg/s, ${q.serverCpuUsPerMsg} µs CPU/msg, PUBACK p99 ${q.puback?.p99 ?? '-'} ms`);
    const pc = await phase(broker, 'paced QoS 1', () => load.paced());
    paced.push(pc);
    progress(`${tag}: ${protocolName(p)} paced ${pc.msgPerSec} msg/s, PUBACK p99 ${pc.puback?.p99 ?? '-'} ms, live p99 ${pc.live?.p99 ?? '-'} ms`);
    await load.close();
  }
  const floodLoad = await Load.connect(broker, plan.settings, 4);
  const qos0 = await phase(broker, 'QoS 0 flood', () => qos0Flood(floodLoad, rssStartKb));
  progress(`${tag}: QoS 0 ${qos0.msgPerSec} msg/s taken in, peak RSS ${qos0.peakRssMb} MB${qos0.extra.healthzMaxMs !== undefined ? `, /healthz worst ${qos0.extra.healthzMaxMs} ms` : ''}`);
  await floodLoad.close();
  await broker.stop();

  progress(`${tag}: restarting for the connect storm`);
  broker = await c.start('default', n);
  await drained(broker, 'before the connect storm');
  const storm = await connectStorm(broker, plan.storm, plan.concurrency);
  progress(`${tag}: ${storm.perSec} handshakes/s, ${storm.serverCpuMsPerHandshake} ms CPU each`);
  const single: SingleResult[] = [];
  if (broker.counts) {
    const bound = bulwarkDefault('mqtt.publishRatePerSecond');
    for (const p of plan.protocols) {
      await drained(broker, 'before the one-device flood');
      const r = await singleDevice(broker, p, plan.singleS, bound, bulwarkDefault('mqtt.publishBurst'), p === 5 ? bulwarkDefault('mqtt.receiveMaximum') : 0);
      single.push(r);
      progress(`${tag}: one device (${protocolName(p)}): ${r.ratePerSec} msg/s past the burst (bound ${bound}), ${r.stored}/${r.sent} stored, ${r.closes} disconnects`);
    }
  }
  await broker.stop();

  progress(`${tag}: restarting for ${plan.sessions} idle sessions`);
  broker = await c.start('default', n);
  await drained(broker, 'before the idle sessions');
  const idle = await idleSessions(broker, plan.sessions);
  progress(`${tag}: ${idle.kbPerSession} KB/idle session (RSS ${idle.rssBeforeMb} → ${idle.rssAfterMb} MB)`);
  await broker.stop();
  return { name: c.name, round: n, notes, tls, rssStartMb: round(rssStartKb / 1024), qos1, paced, qos0, storm, idle, single };
}
