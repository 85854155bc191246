import { type ChildProcess, fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { setFlagsFromString } from 'node:v8';
import type { Identity } from '@bulwark/agent';
import { type AgentTuning, VirtualFleet, fleetChoices, planDevice } from './fleet.js';
import type { FirmwareSpec, Scenario } from './scenario.js';
import type { SendSeries } from './send-times.js';

/** What one part of the fleet (this process's, or a worker's) says about itself, once a second. */
export interface Snapshot {
  readonly online: number;
  readonly reconnects: number;
  readonly acked: number;
  readonly dropped: number;
  readonly sent: number;
  readonly queued: number;
  readonly badSent: number;
  readonly sendErrors: number;
  readonly restarts: number;
  readonly reboots: number;
  readonly commandsAnswered: number;
  readonly configsApplied: number;
  /** The process's own: RSS now, the highest RSS since it started, CPU used since it started. */
  readonly rssBytes: number;
  readonly peakRssBytes: number;
  readonly cpuSeconds: number;
}

export const EMPTY_SNAPSHOT: Snapshot = { online: 0, reconnects: 0, acked: 0, dropped: 0, sent: 0, queued: 0, badSent: 0, sendErrors: 0, restarts: 0, reboots: 0, commandsAnswered: 0, configsApplied: 0, rssBytes: 0, peakRssBytes: 0, cpuSeconds: 0 };

/**
 * How far V8 lets the heap of a process running a fleet grow past its live size before a
 * full collection (decision 0028). Left to itself V8 grows it by up to four times while memory
 * is plentiful, and a process whose heap is mostly long-lived agents doubled its RSS between
 * collections (10,000 devices: a saw-tooth from 1.6 to 2.4 GiB; with 10 %: flat at 1.37 GiB,
 * for more CPU). Read by V8 at each collection, so setting it at run time works.
 */
export const HEAP_GROWING_PERCENT = 10;

export function keepHeapTight(): void {
  setFlagsFromString(`--heap-growing-percent=${HEAP_GROWING_PERCENT}`);
}

/** Devices `from` to `to` (exclusive) of the run, with what they need to connect. */
export interface PartSpec {
  readonly scenario: Scenario;
  readonly runId: string;
  readonly from: number;
  readonly identities: readonly Identity[];
  readonly urls: readonly string[];
  readonly servername: string;
  readonly commandNames: readonly string[];
  readonly dir: string;
  readonly agentLog: boolean;
  readonly agent?: AgentTuning | undefined;
  readonly firmware?: { readonly spec: FirmwareSpec; readonly downloadUrl: string } | undefined;
}

/** A share of the virtual devices, run here or in a worker process. */
export interface FleetPart {
  /** Starts the agents, a window at a time; resolves when every one has started (and come online, or had its allowance). */
  connect(): Promise<void>;
  startReadings(): Promise<void>;
  stopReadings(): Promise<void>;
  /** The latest snapshot. */
  readonly snapshot: Snapshot;
  /** Closes the agents; hands over when each reading was sent, by device and message id. */
  finish(): Promise<SendSeries[]>;
}

/**
 * How a part brings its devices online: at most 100 handshaking at once, each given 15 s
 * (twice the agent's connect timeout would be a retry already under way).
 */
export const CONNECT = { window: 100, allowanceMs: 15_000 } as const;

/** Builds the devices of a part and the fleet that runs them (here, or in a worker). */
export function fleetOf(spec: PartSpec, agentLog: ((deviceId: string, line: string) => void) | undefined): VirtualFleet {
  const choices = fleetChoices(spec.scenario);
  const devices = spec.identities.map((identity, i) => planDevice(spec.scenario, spec.runId, spec.from + i, identity, choices));
  return new VirtualFleet(devices, {
    dir: spec.dir,
    seed: spec.scenario.seed,
    servername: spec.servername,
    commandNames: spec.commandNames,
    agentLog,
    crashEveryMs: spec.scenario.crashLoop.everyMs,
    agent: spec.agent,
    firmware: spec.firmware,
    mqttUrl: (d) => spec.urls[d.index - spec.from] as string,
  });
}

export function snapshotOf(fleet: VirtualFleet): Snapshot {
  const c = fleet.counts;
  return {
    ...fleet.sample(),
    sent: c.sent,
    queued: fleet.queued,
    badSent: c.badSent,
    sendErrors: c.sendErrors,
    restarts: c.restarts,
    reboots: c.reboots,
    commandsAnswered: c.commandsAnswered,
    configsApplied: c.configsApplied,
    rssBytes: process.memoryUsage.rss(),
    peakRssBytes: process.resourceUsage().maxRSS * 1024,
    cpuSeconds: cpuSeconds(),
  };
}

function cpuSeconds(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
}

/** The part in this process (its snapshot's RSS and CPU are the whole process's: the runner's included). */
export class LocalPart implements FleetPart {
  readonly #fleet: VirtualFleet;
  readonly #timer: NodeJS.Timeout;
  snapshot: Snapshot = EMPTY_SNAPSHOT;

  constructor(spec: PartSpec, agentLog: ((deviceId: string, line: string) => void) | undefined) {
    this.#fleet = fleetOf(spec, agentLog);
    this.#timer = setInterval(() => (this.snapshot = snapshotOf(this.#fleet)), 1000);
  }

  async connect(): Promise<void> {
    await this.#fleet.connect(CONNECT);
  }

  async startReadings(): Promise<void> {
    this.#fleet.startReadings();
  }

  async stopReadings(): Promise<void> {
    this.#fleet.stopReadings();
  }

  async finish(): Promise<SendSeries[]> {
    clearInterval(this.#timer);
    this.snapshot = snapshotOf(this.#fleet);
    await this.#fleet.close();
    return this.#fleet.counts.sendTimes.toSeries();
  }
}

type FromWorker = { kind: 'ready' } | { kind: 'snapshot'; snapshot: Snapshot } | { kind: 'log'; deviceId: string; line: string } | { kind: 'done'; snapshot: Snapshot; sendTimes: SendSeries[] };

const WORKER = fileURLToPath(new URL('../../bin/simulate-worker.mjs', import.meta.url));

/** A part run by a child process (bin/simulate-worker.mjs), to use another core. */
export class WorkerPart implements FleetPart {
  snapshot: Snapshot = EMPTY_SNAPSHOT;
  readonly #child: ChildProcess;
  readonly #waiting = new Map<FromWorker['kind'], (m: FromWorker) => void>();
  #exited: Error | undefined;

  private constructor(agentLog: ((deviceId: string, line: string) => void) | undefined) {
    this.#child = fork(WORKER, [], { serialization: 'advanced', stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    this.#child.on('message', (m: FromWorker) => {
      if (m.kind === 'snapshot' || m.kind === 'done') this.snapshot = m.snapshot;
      if (m.kind === 'log') agentLog?.(m.deviceId, m.line);
      const waiter = this.#waiting.get(m.kind);
      this.#waiting.delete(m.kind);
      waiter?.(m);
    });
    this.#child.once('exit', (code) => {
      this.#exited = new Error(`a simulator worker exited (${code}) before it finished`);
      for (const w of this.#waiting.values()) w({ kind: 'ready' });
    });
  }

  static async start(spec: PartSpec, agentLog: ((deviceId: string, line: string) => void) | undefined): Promise<WorkerPart> {
    const part = new WorkerPart(agentLog);
    await part.#ask({ kind: 'init', spec }, 'ready');
    return part;
  }

  #ask<K extends FromWorker['kind']>(message: unknown, answer: K): Promise<Extract<FromWorker, { kind: K }>> {
    if (this.#exited) return Promise.reject(this.#exited);
    return new Promise((resolve, reject) => {
      this.#waiting.set(answer, (m) => (this.#exited ? reject(this.#exited) : resolve(m as Extract<FromWorker, { kind: K }>)));
      this.#child.send(message as object);
    });
  }

  async connect(): Promise<void> {
    await this.#ask({ kind: 'connect' }, 'ready');
  }

  async startReadings(): Promise<void> {
    await this.#ask({ kind: 'readings' }, 'ready');
  }

  async stopReadings(): Promise<void> {
    await this.#ask({ kind: 'stop' }, 'ready');
  }

  async finish(): Promise<SendSeries[]> {
    const done = await this.#ask({ kind: 'finish' }, 'done');
    this.#child.disconnect();
    return done.sendTimes;
  }

  kill(): void {
    if (this.#child.exitCode === null) this.#child.kill();
  }
}
