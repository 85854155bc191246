import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { Agent, type AgentConfig, type Identity, QueueDatabase, Validator, resolveConfig, seededRng, skewedClock } from '@bulwark/agent';
import type { FirmwareSpec, Misbehaviour, Profile, Scenario } from './scenario.js';
import { SendTimes } from './send-times.js';
import { FieldSeries, chooseShare, rng } from './values.js';

/** One virtual device: its identity, what it sends, how it misbehaves, and the real agent running it. */
export interface VirtualDevice {
  readonly index: number;
  readonly id: string;
  readonly profile: Profile;
  readonly identity: Identity;
  readonly skewMs: number;
  readonly misbehaves: Misbehaviour | null;
  readonly crashes: boolean;
  /** A new firmware image fails its health check on this device (it reverts). */
  readonly failsHealth: boolean;
  readonly series: ReadonlyMap<string, FieldSeries>;
  agent: Agent | undefined;
}

/** Agent settings a caller may change: connection timing, the queue's ack timeout, the reconnect backoff. */
export interface AgentTuning {
  readonly mqtt?: Partial<Pick<AgentConfig['mqtt'], 'keepaliveS' | 'connectTimeoutMs'>>;
  readonly queue?: Partial<Pick<AgentConfig['queue'], 'ackTimeoutMs'>>;
  readonly reconnect?: AgentConfig['reconnect'];
}

/** What the fleet counted while it ran; the report reads it. */
export interface FleetCounts {
  /** When each reading the agents queued (durable on the device) was handed to its agent. */
  readonly sendTimes: SendTimes;
  sent: number;
  /** Misbehaving messages sent on purpose (expected to be dead-lettered, not stored). */
  badSent: number;
  sendErrors: number;
  restarts: number;
  /** Reboots into another firmware slot (an update, or a revert). */
  reboots: number;
  commandsAnswered: number;
  configsApplied: number;
}

/** Which devices skew, misbehave and crash: chosen from the whole fleet by the seed, so every worker agrees. */
export interface FleetChoices {
  readonly skewed: ReadonlySet<number>;
  readonly bad: ReadonlySet<number>;
  readonly crashing: ReadonlySet<number>;
  readonly failingHealth: ReadonlySet<number>;
}

export function fleetChoices(s: Scenario): FleetChoices {
  const rollout = s.actions.find((a) => a.kind === 'rollout');
  return {
    skewed: chooseShare(s.devices, s.clockSkew.share, s.seed, 1),
    bad: chooseShare(s.devices, s.misbehaving.share, s.seed, 2),
    crashing: chooseShare(s.devices, s.crashLoop.share, s.seed, 3),
    failingHealth: chooseShare(s.devices, rollout?.kind === 'rollout' ? rollout.failHealth : 0, s.seed, 5),
  };
}

/** Device `index`'s profile, skew, misbehaviour and crash loop, the same wherever it is worked out. */
export function planDevice(s: Scenario, runId: string, index: number, identity: Identity, c: FleetChoices): VirtualDevice {
  const total = s.profiles.reduce((sum, p) => sum + p.share, 0);
  // Profiles take consecutive slices of the fleet by share.
  let acc = 0;
  const at = ((index + 0.5) / s.devices) * total;
  const profile: Profile = s.profiles.find((p) => (acc += p.share) >= at) ?? (s.profiles.at(-1) as Profile);
  return {
    index,
    id: deviceId(s, runId, index),
    profile,
    identity,
    skewMs: c.skewed.has(index) ? Math.round((rng(s.seed ^ Math.imul(index + 1, 0x2545f491))() * 2 - 1) * s.clockSkew.maxMs) : 0,
    misbehaves: c.bad.has(index) ? (s.misbehaving.kinds[index % s.misbehaving.kinds.length] as Misbehaviour) : null,
    crashes: c.crashing.has(index),
    failsHealth: c.failingHealth.has(index),
    series: new Map(Object.entries(profile.fields).map(([f, spec], i) => [f, new FieldSeries(spec, rng(s.seed + index * 7919 + i))])),
    agent: undefined,
  };
}

export const deviceId = (s: Scenario, runId: string, index: number, width = String(s.devices).length): string => `${s.idPrefix}${runId}-${String(index).padStart(width, '0')}`;

/** Agents closed at once when a fleet ends. */
const CLOSE_WINDOW = 200;

/**
 * Runs the virtual devices: real agents (their queue, backoff, time sync, commands and twin),
 * each reading on its own timer at a random phase, misbehaving ones adding messages the
 * platform must refuse, crashing ones restarting their agent now and then.
 */
export class VirtualFleet {
  readonly counts: FleetCounts = { sendTimes: new SendTimes(), sent: 0, badSent: 0, sendErrors: 0, restarts: 0, reboots: 0, commandsAnswered: 0, configsApplied: 0 };
  readonly #timers: NodeJS.Timeout[] = [];
  /**
   * One queue file and one validator for every agent of this fleet (decision 0027): a file
   * each would cost 3 descriptors and a page cache per device, an Ajv each ~100 KB.
   */
  #queues: QueueDatabase | undefined;
  readonly #validator = new Validator();
  #sending = false;
  #closing = false;

  constructor(
    readonly devices: readonly VirtualDevice[],
    private readonly o: {
      dir: string;
      mqttUrl: (d: VirtualDevice) => string;
      servername: string;
      commandNames: readonly string[];
      seed: number;
      /** How often a crash-looping device's agent crashes. */
      crashEveryMs: number;
      /** Agent settings over the simulator's (a test measuring failover with the agent's own backoff). */
      agent?: AgentTuning | undefined;
      /** Firmware updates: what the devices run and trust, and where they download images (the device HTTPS listener). */
      firmware?: { readonly spec: FirmwareSpec; readonly downloadUrl: string } | undefined;
      /** Where the agents' own log lines go (info and up), when asked for. */
      agentLog?: ((deviceId: string, line: string) => void) | undefined;
    },
  ) {}

  /** Starts every agent at once (they connect on their own, with their backoff): what a fleet does after an outage. */
  start(): void {
    this.#openQueues();
    for (const d of this.devices) this.#startAgent(d);
  }

  /**
   * Starts the agents a window at a time: the next one when one of the window is online, or
   * has had `allowanceMs` to get there (it goes on trying with its own backoff). Resolves
   * when every agent has started and none is left waiting. A real fleet comes online over
   * minutes; 10,000 TLS handshakes begun in one tick would time each other out, as would a
   * thundering herd on any gateway.
   */
  async connect(o: { window: number; allowanceMs: number; onProgress?: (started: number) => void }): Promise<void> {
    this.#openQueues();
    const pending = [...this.devices];
    let waiting = 0;
    await new Promise<void>((resolve) => {
      const launch = (): void => {
        while (waiting < o.window && pending.length > 0 && !this.#closing) {
          const d = pending.shift() as VirtualDevice;
          waiting += 1;
          let settled = false;
          const settle = (): void => {
            if (settled) return;
            settled = true;
            clearTimeout(timer);
            waiting -= 1;
            o.onProgress?.(this.devices.length - pending.length - waiting);
            launch();
          };
          const timer = setTimeout(settle, o.allowanceMs);
          this.#startAgent(d, settle);
        }
        if (waiting === 0 && (pending.length === 0 || this.#closing)) resolve();
      };
      launch();
    });
  }

  #openQueues(): void {
    mkdirSync(this.o.dir, { recursive: true, mode: 0o700 });
    // One file per fleet (per process): two processes must not share an owner, and need not share a file.
    // Readings arrive spread over each second: gather 20 ms of them (and their acknowledgements) per commit.
    this.#queues ??= new QueueDatabase(join(this.o.dir, `queues-${this.devices[0]?.index ?? 0}.db`), { commitDelayMs: 20 });
  }

  #startAgent(d: VirtualDevice, onOnline?: () => void): void {
    const dataDir = join(this.o.dir, d.id);
    mkdirSync(dataDir, { recursive: true, mode: 0o700 });
    const tuning = this.o.agent ?? {};
    const fw = this.o.firmware;
    const config = resolveConfig({
      deviceId: d.id,
      dataDir,
      mqtt: { url: this.o.mqttUrl(d), servername: this.o.servername, keepaliveS: 30, connectTimeoutMs: 10_000, ...tuning.mqtt },
      queue: { ackTimeoutMs: 10_000, ...tuning.queue },
      logs: { level: this.o.agentLog ? 'info' : 'error' },
      health: { intervalMs: 60_000 },
      reconnect: tuning.reconnect ?? { baseMs: 500, capMs: 30_000, stableAfterMs: 5_000, refusedDelayMs: 30_000 },
      ...(fw
        ? {
            ota: {
              rootKeysFile: fw.spec.rootKeysFile,
              downloadUrl: fw.downloadUrl,
              model: fw.spec.model,
              hardwareRevision: fw.spec.hardwareRevision,
              factoryVersion: fw.spec.version,
              factorySecurityVersion: fw.spec.securityVersion,
              healthWindowMs: 30_000,
            },
          }
        : {}),
    });
    const agent = new Agent(config, d.identity, {
      ...(this.#queues ? { queues: this.#queues } : {}),
      validator: this.#validator,
      // A reboot into a new image is a restart of the agent from its directory (its slots are there).
      ...(fw ? { ota: { reboot: () => void this.#restart(d, 'reboot'), healthCheck: () => !d.failsHealth } } : {}),
      rng: seededRng(this.o.seed + d.index),
      logSink: this.o.agentLog ? (line) => this.o.agentLog?.(d.id, line) : () => undefined,
      ...(d.skewMs !== 0 ? { clock: skewedClock(d.skewMs) } : {}),
    });
    for (const name of this.o.commandNames) {
      agent.onCommand(name, { type: 'object' }, () => {
        this.counts.commandsAnswered += 1;
        return { ok: true };
      });
    }
    agent.onConfig({ type: 'object', additionalProperties: true }, () => {
      this.counts.configsApplied += 1;
    });
    const log = this.o.agentLog;
    if (log) agent.on('state', (state) => log(d.id, JSON.stringify({ ts: Date.now(), level: 'info', msg: 'connection state', data: { state, reconnects: agent.status().reconnects } })));
    if (onOnline) {
      const online = (state: string): void => {
        if (state !== 'online') return;
        agent.off('state', online);
        onOnline();
      };
      agent.on('state', online);
    }
    d.agent = agent;
    agent.start();
  }

  /** Readings from now on: each device on its profile's interval (and bursts), from a random phase. */
  startReadings(): void {
    this.#sending = true;
    const random = rng(this.o.seed ^ 0x5eed);
    for (const d of this.devices) {
      const { intervalMs, burst } = d.profile;
      const first = setTimeout(
        () => {
          void this.#read(d);
          this.#timers.push(setInterval(() => void this.#read(d), intervalMs));
        },
        Math.floor(random() * intervalMs),
      );
      this.#timers.push(first);
      if (burst) this.#timers.push(setInterval(() => void this.#burst(d, burst.readings), burst.everyMs));
      if (d.crashes) this.#timers.push(setInterval(() => void this.#crash(d), this.o.crashEveryMs));
    }
  }

  async #read(d: VirtualDevice): Promise<void> {
    const agent = d.agent;
    if (!this.#sending || !agent) return;
    const data: Record<string, number | string> = {};
    for (const [f, series] of d.series) data[f] = series.next();
    try {
      const sentAt = Date.now();
      const { seq } = await agent.send(d.profile.schema, data);
      this.counts.sent += 1;
      this.counts.sendTimes.add(d.id, agent.boot, seq, sentAt);
      if (d.misbehaves) await this.#misbehave(d, agent);
    } catch {
      // The agent closed under it (a crash-loop restart): that reading was never queued.
      this.counts.sendErrors += 1;
    }
  }

  async #misbehave(d: VirtualDevice, agent: Agent): Promise<void> {
    const [first] = d.series.keys();
    if (d.misbehaves === 'bad_payload') await agent.send(d.profile.schema, { [first ?? 'value']: 'not a number' });
    else await agent.send('sim-unknown-schema@1', { value: 1 });
    this.counts.badSent += 1;
  }

  async #burst(d: VirtualDevice, n: number): Promise<void> {
    for (let i = 0; i < n; i += 1) await this.#read(d);
  }

  /** Closes the agent as a crash would end it (unclean) and starts it again from its data directory. */
  async #crash(d: VirtualDevice): Promise<void> {
    if (this.#sending) await this.#restart(d, 'crash');
  }

  /** Stops the device's agent and starts it again from its directory: a crash, or a reboot into another firmware slot. */
  async #restart(d: VirtualDevice, reason: 'crash' | 'reboot'): Promise<void> {
    const agent = d.agent;
    if (!agent || this.#closing) return;
    d.agent = undefined;
    await agent.close(reason).catch(() => undefined);
    if (reason === 'crash') this.counts.restarts += 1;
    else this.counts.reboots += 1;
    if (!this.#closing) this.#startAgent(d);
  }

  stopReadings(): void {
    this.#sending = false;
    for (const t of this.#timers.splice(0)) clearInterval(t);
  }

  /** Readings still queued on the devices (not yet acknowledged by the platform). */
  get queued(): number {
    let n = 0;
    for (const d of this.devices) n += d.agent?.status().queue.depth ?? 0;
    return n;
  }

  /** Agents online now, reconnects so far, messages acknowledged so far. */
  sample(): { online: number; reconnects: number; acked: number; dropped: number } {
    let online = 0;
    let reconnects = 0;
    let acked = 0;
    let dropped = 0;
    for (const d of this.devices) {
      const s = d.agent?.status();
      if (!s) continue;
      if (s.state === 'online') online += 1;
      reconnects += s.reconnects;
      acked += s.queue.acked;
      dropped += s.queue.dropped_count + s.queue.dropped_bytes + s.queue.dropped_age;
    }
    return { online, reconnects, acked, dropped };
  }

  /**
   * Closes the agents 200 at a time: 10,000 closes at once (each a DISCONNECT, a queue flush
   * and a durable write of its restart file) added 130 MB to the simulator's peak memory.
   */
  async close(): Promise<void> {
    this.#closing = true;
    this.stopReadings();
    const pending = [...this.devices];
    const closeNext = async (): Promise<void> => {
      for (let d = pending.shift(); d; d = pending.shift()) await d.agent?.close('simulation ended').catch(() => undefined);
    };
    await Promise.all(Array.from({ length: CLOSE_WINDOW }, closeNext));
    this.#queues?.close();
  }
}
