import { EventEmitter } from 'node:events';
import { join } from 'node:path';
import type { MqttClient } from 'mqtt';
import { BUILTIN_COMMANDS, type DeviceEvent, ENVELOPE_LIMITS, type TelemetryEnvelope, deviceTopics, matchDeviceTopic } from '@bulwark/protocol';
import type { AgentDeps, AgentEvents, AgentState, AgentStatus } from './agent-types.js';
import { Backoff } from './backoff.js';
import { newBootId, systemAgentClock } from './clock.js';
import { type CommandHandler, CommandRouter } from './commands.js';
import type { AgentConfig } from './config.js';
import { Connection } from './connection.js';
import { RestartTracker, healthReport } from './health.js';
import type { Identity } from './identity.js';
import { type AgentLogger, LOGS_STREAM_SCHEMA, RemoteLogs } from './logs.js';
import { Publisher } from './publisher.js';
import { type QueuedRow, SqliteQueue, droppedOf } from './queue.js';
import { Renewal } from './renewal.js';
import { TimeExchange, TimeSync } from './time-sync.js';
import { type ConfigHandler, Twin, loadTwinState, saveTwinState } from './twin.js';
import { type JsonSchema, Validator } from './validator.js';
import { agentUpdater, firmwareStatus } from './ota/agent-ota.js';
import type { Updater } from './ota/updater.js';
import { AgentPosture, defaultPostureProbe } from './posture/agent-posture.js';

export type { AgentDeps, AgentEvents, AgentState, AgentStatus } from './agent-types.js';

/** The device agent: one per device identity. Build with `createAgent`. */
export class Agent extends EventEmitter<AgentEvents> {
  readonly config: AgentConfig;
  readonly boot = newBootId();
  readonly log: AgentLogger;
  readonly #d: Required<Pick<AgentDeps, 'clock' | 'rng'>> & AgentDeps;
  readonly #topics: ReturnType<typeof deviceTopics>;
  readonly #queue: SqliteQueue;
  readonly #publisher: Publisher;
  readonly #conn: Connection;
  readonly #time: TimeSync;
  readonly #exchange: TimeExchange;
  readonly #commands: CommandRouter;
  readonly #twin: Twin;
  readonly #logs: RemoteLogs;
  readonly #restart: RestartTracker;
  readonly #renewal: Renewal;
  readonly #timers: NodeJS.Timeout[] = [];
  readonly #ota: Updater | undefined;
  readonly #posture: AgentPosture;
  #identity: Identity;
  #state: AgentState = 'connecting';
  #seq = 0;
  #eventSeq = 0;
  #lastRefusal: AgentStatus['lastRefusal'];

  constructor(config: AgentConfig, identity: Identity, deps: AgentDeps) {
    super();
    this.config = config;
    this.#identity = identity;
    const clock = deps.clock ?? systemAgentClock;
    this.#d = { ...deps, clock, rng: deps.rng ?? Math.random };
    this.#topics = deviceTopics(config.deviceId);
    this.#logs = new RemoteLogs({ ...config.logs, rng: this.#d.rng, mono: clock.mono, wall: clock.wall, ...(deps.logSink ? { sink: deps.logSink } : {}) });
    this.log = this.#logs;
    this.#queue = new SqliteQueue(deps.queues ? { db: deps.queues, owner: config.deviceId } : join(config.dataDir, 'queue.db'), config.queue, clock.wall);
    this.#queue.afterCommit = () => this.#checkDrained();
    this.#time = new TimeSync(config.timeSync.keepSamples);
    this.#exchange = new TimeExchange(this.#time, clock);
    const validator = deps.validator ?? new Validator();
    this.#commands = new CommandRouter(validator, { rememberIds: config.commands.rememberIds, platformNow: this.#platformNow.bind(this), wallNow: clock.wall });
    this.#twin = new Twin(validator, loadTwinState(config.dataDir), clock.wall);
    this.#restart = new RestartTracker(join(config.dataDir, 'restarts.json'), clock.wall(), config.health.restartLoopThreshold, config.health.restartLoopWindowMs);
    this.#publisher = new Publisher(this.#queue, {
      window: config.queue.inflightWindow,
      ackTimeoutMs: config.queue.ackTimeoutMs,
      mono: clock.mono,
      render: this.#render.bind(this),
      onStall: this.#onStall.bind(this),
    });
    this.#conn = new Connection({
      url: config.mqtt.url,
      clientId: config.deviceId,
      keepaliveS: config.mqtt.keepaliveS,
      connectTimeoutMs: config.mqtt.connectTimeoutMs,
      ...(config.mqtt.servername ? { servername: config.mqtt.servername } : {}),
      tls: this.#tlsMaterial.bind(this),
      subscriptions: [this.#topics.command('+'), this.#topics.twinDesired, this.#topics.timeReply, this.#topics.certsRotateResult, this.#topics.errors, ...(config.ota ? [this.#topics.otaJob] : [])],
      backoff: new Backoff(config.reconnect, this.#d.rng),
      rng: this.#d.rng,
      stableAfterMs: config.reconnect.stableAfterMs,
      refusedDelayMs: config.reconnect.refusedDelayMs,
      mono: clock.mono,
    });
    this.#renewal = new Renewal({
      dir: config.identity.dir ?? config.dataDir,
      deviceId: config.deviceId,
      fraction: config.identity.renewAtFraction,
      topic: this.#topics.certsRotate,
      now: this.now.bind(this),
      log: this.log,
      onRenewed: this.#onRenewed.bind(this),
    });
    this.#ota = config.ota
      ? agentUpdater(config.ota, config.dataDir, {
          tls: this.#tlsMaterial.bind(this),
          now: this.now.bind(this),
          log: this.log,
          // Next turn: the first events come from start(), before the caller of createAgent could listen.
          onEvent: (e) => {
            deps.ota?.onEvent?.(e);
            setImmediate(() => this.emit('ota', e));
          },
          report: (status) => this.#conn.publishAcked(this.#topics.otaStatus, status),
          reboot:
            deps.ota?.reboot ??
            (async () => {
              await this.close('ota reboot');
              this.emit('reboot');
            }),
          ...(deps.ota?.healthCheck ? { healthCheck: deps.ota.healthCheck } : {}),
          ...(deps.ota?.slots ? { slots: deps.ota.slots } : {}),
        })
      : undefined;
    this.#posture = new AgentPosture(deps.posture === false ? undefined : (deps.posture ?? defaultPostureProbe()), this.log);
    this.#wire();
    this.onCommand(BUILTIN_COMMANDS.logsStream, LOGS_STREAM_SCHEMA, (p: { level: 'info'; durationS: number; sample?: number }) => {
      this.#logs.start(p.level, p.durationS, p.sample ?? 1);
      return { streaming: true, untilS: p.durationS };
    });
    this.onCommand(BUILTIN_COMMANDS.logsStop, { type: 'object' }, () => {
      this.#logs.stop();
      return { streaming: false };
    });
    this.onCommand(BUILTIN_COMMANDS.certsRenew, { type: 'object', additionalProperties: false }, () => {
      const client = this.#conn.client;
      if (!client) throw new Error('not connected');
      return this.#renewal.now(client, this.#identity);
    });
  }

  /** Queues one reading; resolves once it is durable on the device (and will reach the platform exactly once). */
  async send(schema: string, data: Record<string, unknown>, stream?: string): Promise<{ id: string; seq: number }> {
    if (typeof schema !== 'string' || !/^[^@\s]+@[0-9]+$/.test(schema) || schema.length > ENVELOPE_LIMITS.schemaMaxLength) throw new TypeError(`schema must be "name@version", got ${JSON.stringify(schema)}`);
    if (!data || typeof data !== 'object' || Array.isArray(data)) throw new TypeError('data must be an object');
    const seq = ++this.#seq;
    const mono = this.#d.clock.mono();
    const envelope: TelemetryEnvelope = { id: `${this.boot}.${seq}`, seq, ts: this.#stamp(mono), mono, boot: this.boot, schema, data };
    await this.#queue.add({ topic: this.#topics.telemetry(stream), body: JSON.stringify(envelope), boot: this.boot, mono });
    this.#publisher.kick();
    return { id: envelope.id, seq };
  }

  /** Queues a device event (boot, crash, state change) on `devices/{id}/events`, with the same guarantees as `send`. */
  async event(type: string, data?: Record<string, unknown>): Promise<void> {
    const mono = this.#d.clock.mono();
    const ev: DeviceEvent = { id: `${this.boot}.e${++this.#eventSeq}`, type, ts: this.#stamp(mono), ...(data ? { data } : {}) };
    await this.#queue.add({ topic: this.#topics.events, body: JSON.stringify(ev), boot: this.boot, mono });
    this.#publisher.kick();
  }

  onCommand<P = Record<string, unknown>>(name: string, paramsSchema: JsonSchema, handler: CommandHandler<P>): this {
    this.#commands.on(name, paramsSchema, handler);
    return this;
  }

  /** Remote configuration (twin desired): validated against `schema`, then applied by `handler`. */
  onConfig<C = Record<string, unknown>>(schema: JsonSchema, handler: ConfigHandler<C>): this {
    this.#twin.setHandler(schema, handler);
    return this;
  }

  /** Best estimate of platform time (wall clock when never synced). */
  now(): number {
    return this.#stamp(this.#d.clock.mono());
  }

  status(): AgentStatus {
    const best = this.#time.best();
    return {
      state: this.#state,
      deviceId: this.config.deviceId,
      boot: this.boot,
      queue: { ...this.#queue.counters(), depth: this.#queue.depth, bytes: this.#queue.bytes, inflight: this.#publisher.inflight },
      commands: this.#commands.counters,
      twin: { ...this.#twin.counters, version: this.#twin.state.version },
      reconnects: this.#conn.reconnects,
      attempts: this.#conn.attempts,
      ...(this.#lastRefusal ? { lastRefusal: this.#lastRefusal } : {}),
      ...(best ? { timeOffsetMs: best.offsetMs } : {}),
      certificate: { serial: this.#identity.serial, notAfter: this.#identity.notAfter },
      ...(this.#ota ? { firmware: firmwareStatus(this.#ota) } : {}),
    };
  }

  start(): void {
    const r = this.#restart.state;
    void this.event('boot', { restartReason: r.restartReason, crashCount: r.crashCount, recentRestarts: r.recentRestarts });
    if (r.restartLoop) void this.event('restart_loop', { recentRestarts: r.recentRestarts, windowMs: this.config.health.restartLoopWindowMs });
    const every = (ms: number, fn: () => void) => this.#timers.push(setInterval(fn, ms).unref());
    every(this.config.health.intervalMs, () => this.#publishHealth());
    every(this.config.timeSync.intervalMs, () => this.#requestTime());
    every(Math.max(250, Math.floor(this.config.queue.ackTimeoutMs / 4)), () => this.#publisher.checkStall());
    every(this.config.logs.flushIntervalMs, () => this.#flushLogs());
    every(60_000, () => this.#queue.purgeAged());
    this.#queue.purgeAged();
    this.#ota?.boot();
    if (this.#ota) this.#posture.checkBoot(this.#ota.verifyRunning.bind(this.#ota));
    this.#conn.start();
  }

  /** Stops cleanly: the queue keeps what is not acknowledged, the next start sends it. `reason` is the next start's restart reason. */
  async close(reason?: string): Promise<void> {
    if (this.#state === 'closed') return;
    this.#setState('closed');
    this.#ota?.close();
    for (const t of this.#timers) clearInterval(t);
    await this.#conn.close();
    // A publish scheduled before the close must not reach the closed queue.
    this.#publisher.detach();
    this.#queue.close();
    await this.#restart.markCleanExit(reason);
  }

  #wire(): void {
    this.#conn.on('connected', (client) => void this.#onConnected(client));
    this.#conn.on('disconnected', () => {
      this.#publisher.detach();
      if (this.#state !== 'closed') this.#setState('offline');
    });
    this.#conn.on('refused', (r) => {
      this.#publisher.detach();
      this.#lastRefusal = r;
      this.log.error('the platform refused this device; backing off', r);
      this.#setState('refused');
      this.emit('refused', r);
      void this.event('connection.refused', { reason: r.reason, detail: r.detail.slice(0, 200) }).catch(() => undefined);
    });
    this.#conn.on('message', (topic, payload) => void this.#onMessage(topic, payload));
  }

  async #onConnected(client: MqttClient): Promise<void> {
    this.#setState('online');
    this.emit('connected');
    if (!this.#time.synced) {
      const synced = new Promise<void>((resolve) => {
        const t = setTimeout(resolve, this.config.timeSync.waitOnConnectMs);
        this.once('timeSynced', () => {
          clearTimeout(t);
          resolve();
        });
      });
      this.#requestTime();
      await synced;
    } else this.#requestTime();
    if (this.#conn.client !== client) return;
    this.#publisher.attach(client);
    this.#publishDirect(this.#topics.twinReported, this.#twin.current());
    this.#ota?.onConnected();
    this.#publishHealth();
    this.#renewal.check(client, this.#identity);
  }

  async #onMessage(topic: string, payload: Buffer): Promise<void> {
    const t = this.#topics;
    const match = topic.startsWith(`${t.root}/`) ? matchDeviceTopic(topic.slice(t.root.length + 1)) : undefined;
    try {
      switch (match?.name) {
        case 'timeReply':
          return this.#onTimeReply(payload);
        case 'certsRotateResult':
          return this.#renewal.onResult(payload);
        case 'otaJob':
          return await this.#ota?.onJob(payload);
        case 'twinDesired':
          return await this.#onDesired(payload);
        case 'errors':
          this.log.warn('the platform refused a message', { notice: payload.toString('utf8').slice(0, 1000) });
          return;
        case 'command': {
          const name = match.params.name ?? '';
          const result = await this.#commands.handle(name, payload);
          if (result.status === 'rejected') this.log.warn('command refused', { name, id: result.id, reason: result.reason, detail: result.detail });
          this.#publishDirect(t.commandResult(name), result);
          this.emit('commandResult', name, result);
          return;
        }
      }
    } catch (err) {
      this.log.error('could not handle an incoming message', { topic, err: String(err) });
    }
  }

  async #onDesired(payload: Buffer): Promise<void> {
    const outcome = await this.#twin.handle(payload);
    if (outcome.kind === 'report') {
      if (outcome.report.status === 'applied') saveTwinState(this.config.dataDir, this.#twin.state);
      this.#publishDirect(this.#topics.twinReported, outcome.report);
    } else if (outcome.kind === 'unreadable') {
      this.log.warn('desired configuration refused', { reason: outcome.reason, detail: outcome.detail });
      await this.event('twin.refused', { reason: outcome.reason, detail: outcome.detail.slice(0, 500) });
    }
  }

  #onTimeReply(payload: Buffer): void {
    const s = this.#exchange.reply(payload);
    if (s) this.emit('timeSynced', { offsetMs: s.offsetMs, rttMs: s.rttMs });
  }

  #requestTime(): void {
    this.#conn.client?.publish(this.#topics.time, this.#exchange.request(), { qos: 0 });
  }

  /** A new image on trial is healthy once it connected and the platform acknowledged its health report. */
  #publishHealth(): void {
    const c = this.#d.clock;
    const running = this.#ota?.running();
    void this.#posture
      .add(
        healthReport({
          ts: this.now(),
          boot: this.boot,
          uptimeS: c.mono() / 1000,
          dataDir: this.config.dataDir,
          restart: this.#restart.state,
          queueDepth: this.#queue.depth,
          queueDropped: droppedOf(this.#queue.counters()),
          reconnects: this.#conn.reconnects,
          battery: this.#d.battery,
          firmware: running ? { version: running.version, securityVersion: running.securityVersion } : this.#d.firmware,
        }),
      )
      .then((report) => {
        if (this.#state === 'closed') return;
        if (!running?.trial) return this.#publishDirect(this.#topics.health, report, 0);
        void this.#conn.publishAcked(this.#topics.health, report).then((acked) => (acked ? this.#ota?.confirmHealthy() : undefined));
      });
  }

  #flushLogs(): void {
    if (!this.#conn.client) return;
    for (const batch of this.#logs.takeBatches()) this.#publishDirect(this.#topics.logs, batch, 0);
  }

  /** Results, reports and health go straight out (they only make sense while connected). */
  #publishDirect(topic: string, body: unknown, qos: 0 | 1 = 1): void {
    this.#conn.client?.publish(topic, JSON.stringify(body), { qos }, (err) => {
      if (err) this.log.debug('publish failed', { topic, err: err.message });
    });
  }

  // The callbacks the agent's parts call, as methods bound once: arrow functions in object
  // literals are each given a name property by the TypeScript loader (esbuild keepNames),
  // about 250 bytes per function per agent — 40 MB for a simulator running 10,000 agents.
  #platformNow(): number | undefined {
    return this.#time.platformTime(this.#d.clock.mono());
  }

  #tlsMaterial(): { key: string; cert: string; ca: string } {
    return { key: this.#identity.keyPem, cert: this.#identity.certPem, ca: this.#identity.caPem };
  }

  #onStall(): void {
    this.log.warn('no PUBACK within the ack timeout: reconnecting', { ackTimeoutMs: this.config.queue.ackTimeoutMs });
    this.#conn.drop();
  }

  #onRenewed(id: Identity): void {
    this.#identity = id;
    this.emit('renewed', { serial: id.serial });
    void this.event('certificate.renewed', { serial: id.serial, notAfter: id.notAfter });
    this.#conn.drop(0);
  }

  /** Platform time for a monotonic reading of this boot when synced, else the device's wall clock. */
  #stamp(mono: number): number {
    return this.#time.platformTime(mono) ?? this.#d.clock.wall() - (this.#d.clock.mono() - mono);
  }

  /** A reading of this boot queued before the first sync gets its time placed now that we know the offset. */
  #render(row: QueuedRow): string {
    if (row.boot !== this.boot || !this.#time.synced) return row.body;
    const body = JSON.parse(row.body) as { ts?: number };
    body.ts = this.#stamp(row.mono);
    return JSON.stringify(body);
  }

  #checkDrained(): void {
    if (this.#publisher.idle) this.emit('drained');
  }

  #setState(s: AgentState): void {
    if (this.#state === s) return;
    this.#state = s;
    this.emit('state', s);
  }
}
