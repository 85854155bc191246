import { type Clock, type IdGen, type Logger, PlatformError } from '@bulwark/core';
import { COMMAND_NAME_PATTERN, type CommandRequest, type CommandResult, DEVICE_MESSAGE_LIMITS, deviceTopics } from '@bulwark/protocol';
import type { CounterStore } from '../access/index.js';
import type { EventBus } from '../bus/index.js';
import type { DeviceLink } from '../twin/index.js';
import type { CommandFilter, CommandRecord, CommandRepository } from './diagnostics.js';

export interface CommandSettings {
  readonly defaultTtlS: number;
  readonly maxTtlS: number;
  readonly resultTimeoutMs: number;
  readonly perDevicePerMinute: number;
  readonly perPrincipalPerMinute: number;
  readonly maxOpenPerDevice: number;
  readonly retentionDays: number;
}

export interface IssueOptions {
  readonly actor: string;
  readonly ttlS?: number;
  /** `queue` (default): keep it for the device until it expires; `refuse`: 409 DEVICE_OFFLINE now. */
  readonly ifOffline?: 'queue' | 'refuse';
  /** The caller paces its own commands (a job): the per-principal limit does not apply, the per-device one does. */
  readonly paced?: boolean;
}

/** Checks run before a command is recorded (built-in commands validate their params); throw to refuse. */
export type IssueGuard = (deviceId: string, name: string, params: Readonly<Record<string, unknown>>) => void;

const MINUTE_MS = 60_000;
/** A command not delivered to a device that is connected (its session moving between nodes) is tried again: this many times, this far apart (times the attempt). */
const SEND_RETRIES = 5;
const SEND_RETRY_MS = 1_000;
const requestOf = (c: CommandRecord): CommandRequest => ({ id: c.id, params: c.params, issuedAt: c.issuedAt, expiresAt: c.expiresAt });

/**
 * Typed remote commands: recorded first, sent over QoS 1 while the device is connected and
 * re-sent when it (re)subscribes until it answers or the command expires; answers from the
 * device move the record along. Rate limited per device and per principal.
 *
 * In a cluster the node that records a command may not see the device's session yet (it is
 * moving to another node, and this node's view of the session directory lags): when the
 * first delivery fails it says so on the bus (`commands.waiting`), and the node holding the
 * session sends what waits. The event follows the record, so either the device's own look
 * for open commands (on subscribe) finds the command, or its session was already on a node
 * when the event came.
 */
export class CommandService {
  readonly #guards = new Map<string, IssueGuard>();
  readonly #issued: ((c: CommandRecord) => void | Promise<void>)[] = [];
  readonly #answered: ((deviceId: string, r: { commandId: string; status: string; reason: string | null; detail: string | null }) => Promise<void>)[] = [];

  constructor(
    private readonly repo: CommandRepository,
    private readonly settings: CommandSettings,
    private readonly deps: { clock: Clock; ids: IdGen; link: DeviceLink; counters: CounterStore; bus: EventBus; log: Logger; assertDevice: (id: string) => Promise<void> },
  ) {
    deps.bus.subscribe('commands.waiting', async (e) => {
      if (!deps.link.isHere(e.deviceId)) return;
      await this.#deliver(e.deviceId, (c) => c.sentAt === null, false).catch((err: unknown) => deps.log.warn({ err, deviceId: e.deviceId }, 'could not send the commands waiting for a device'));
    });
  }

  guard(name: string, g: IssueGuard): void {
    this.#guards.set(name, g);
  }

  /** `fn` runs (and is awaited) after a command is recorded and before it is sent. */
  onIssued(fn: (c: CommandRecord) => void | Promise<void>): void {
    this.#issued.push(fn);
  }

  async issue(deviceId: string, name: string, params: Record<string, unknown>, o: IssueOptions): Promise<CommandRecord> {
    if (!COMMAND_NAME_PATTERN.test(name)) throw new PlatformError('BULWARK_ERR_VALIDATION', `"${name}" is not a command name (letters, digits, ".", "_", "-"; at most 64)`);
    await this.deps.assertDevice(deviceId);
    this.#guards.get(name)?.(deviceId, name, params);
    const ttlS = o.ttlS ?? this.settings.defaultTtlS;
    if (ttlS < 1 || ttlS > this.settings.maxTtlS) throw new PlatformError('BULWARK_ERR_VALIDATION', `ttlS must be 1..${this.settings.maxTtlS}`);
    const now = this.deps.clock.now();
    const record: CommandRecord = {
      id: this.deps.ids.next('cmd'),
      deviceId,
      name,
      params,
      status: 'pending',
      issuedBy: o.actor,
      issuedAt: now,
      expiresAt: now + ttlS * 1000,
      sentAt: null,
      sendCount: 0,
      answeredAt: null,
      reason: null,
      detail: null,
      output: null,
      updatedAt: now,
    };
    const size = Buffer.byteLength(JSON.stringify(requestOf(record)));
    if (size > DEVICE_MESSAGE_LIMITS.commandMaxBytes) {
      throw new PlatformError('BULWARK_ERR_DEVICE_MESSAGE_TOO_LARGE', `the command is ${size} bytes on the wire; devices accept at most ${DEVICE_MESSAGE_LIMITS.commandMaxBytes}`);
    }
    const connected = this.deps.link.isConnected(deviceId);
    if (!connected && o.ifOffline === 'refuse') throw new PlatformError('BULWARK_ERR_DEVICE_OFFLINE', `device ${deviceId} is not connected`);
    await this.#limit(`cmd:dev:${deviceId}`, this.settings.perDevicePerMinute, 'device');
    if (o.paced !== true) await this.#limit(`cmd:prin:${o.actor}`, this.settings.perPrincipalPerMinute, 'principal');
    await this.repo.expire(now, this.settings.resultTimeoutMs);
    if ((await this.repo.countOpen(deviceId, now)) >= this.settings.maxOpenPerDevice) {
      throw new PlatformError('BULWARK_ERR_CONFLICT', `device ${deviceId} already has ${this.settings.maxOpenPerDevice} commands waiting (commands.maxOpenPerDevice)`);
    }
    await this.repo.insert(record);
    for (const fn of this.#issued) await fn(record);
    // Asked again now that the record is stored: a device that connected (and looked for open
    // commands) between the first look and the insert would otherwise wait for its next connect.
    if (this.deps.link.isConnected(deviceId)) await this.#send(record);
    else await this.#announce(deviceId);
    return (await this.repo.get(deviceId, record.id)) ?? record;
  }

  async #limit(key: string, max: number, per: string): Promise<void> {
    const w = await this.deps.counters.increment(key, MINUTE_MS);
    if (w.count > max) {
      throw new PlatformError('BULWARK_ERR_RATE_LIMITED', `at most ${max} commands a minute per ${per}`, {
        retryAfterSeconds: Math.max(1, Math.ceil((w.resetAtMs - this.deps.clock.now()) / 1000)),
        details: { limit: max, per },
      });
    }
  }

  /** Tells the node holding the device's session (if any) that a command waits for it. */
  async #announce(deviceId: string): Promise<void> {
    await this.deps.bus.publish({ type: 'commands.waiting', deviceId }).catch((err: unknown) => this.deps.log.warn({ err, deviceId }, 'could not announce a waiting command'));
  }

  async #send(c: CommandRecord, attempt = 1, announce = true): Promise<void> {
    // MQTT 5 devices also get the expiry, and where to answer with which correlation data.
    const topics = deviceTopics(c.deviceId);
    const options = { expiresAt: c.expiresAt, responseTopic: topics.commandResult(c.name), correlationData: Buffer.from(c.id) };
    if (await this.deps.link.publish(c.deviceId, topics.command(c.name), requestOf(c), options)) {
      await this.repo.markSent(c.deviceId, c.id, this.deps.clock.now());
      return;
    }
    if (!announce) return;
    if (attempt === 1 || attempt === SEND_RETRIES) await this.#announce(c.deviceId);
    if (attempt < SEND_RETRIES && this.deps.link.isConnected(c.deviceId)) {
      // Connected but not delivered: in a cluster the session may be moving to another node
      // (its old node died). Tried again shortly, while the command is still waiting.
      setTimeout(() => void this.#retry(c, attempt + 1), SEND_RETRY_MS * attempt).unref();
    }
  }

  async #retry(c: CommandRecord, attempt: number): Promise<void> {
    try {
      const now = await this.repo.get(c.deviceId, c.id);
      if (now?.status === 'pending' && now.sentAt === null && now.expiresAt > this.deps.clock.now()) await this.#send(now, attempt);
    } catch (err) {
      this.deps.log.warn({ err, deviceId: c.deviceId, commandId: c.id }, 'could not retry a command delivery');
    }
  }

  /** Sends the commands still waiting for the device whose topic `wants` (on subscribe or connect). */
  deliverOpen(deviceId: string, wants: (topic: string) => boolean = () => true): Promise<number> {
    return this.#deliver(deviceId, (c) => wants(deviceTopics(deviceId).command(c.name)), true);
  }

  async #deliver(deviceId: string, due: (c: CommandRecord) => boolean, announce: boolean): Promise<number> {
    if (!this.deps.link.isConnected(deviceId)) return 0;
    const open = (await this.repo.listOpen(deviceId, this.deps.clock.now(), this.settings.maxOpenPerDevice)).filter(due);
    for (const c of open) await this.#send(c, 1, announce);
    return open.length;
  }

  async get(deviceId: string, id: string): Promise<CommandRecord> {
    await this.deps.assertDevice(deviceId);
    await this.repo.expire(this.deps.clock.now(), this.settings.resultTimeoutMs);
    const c = await this.repo.get(deviceId, id);
    if (!c) throw new PlatformError('BULWARK_ERR_NOT_FOUND', `no command ${id} for device ${deviceId}`);
    return c;
  }

  async list(f: CommandFilter): Promise<CommandRecord[]> {
    await this.deps.assertDevice(f.deviceId);
    await this.repo.expire(this.deps.clock.now(), this.settings.resultTimeoutMs);
    return this.repo.list(f);
  }

  /** `fn` runs (and is awaited) after a device's answer to a command is stored. */
  onAnswered(fn: (deviceId: string, r: { commandId: string; status: string; reason: string | null; detail: string | null }) => Promise<void>): void {
    this.#answered.push(fn);
  }

  /** A validated result from the device on `commands/{name}/result`; resolves with the outcome to count. */
  async onResult(deviceId: string, name: string, r: CommandResult): Promise<string> {
    if (r.id === null) {
      this.deps.log.warn({ deviceId, name, reason: r.reason, detail: r.detail }, 'the device refused a command it could not identify');
      return 'unidentified';
    }
    const c = await this.repo.get(deviceId, r.id);
    if (!c || c.name !== name) {
      this.deps.log.warn({ deviceId, name, commandId: r.id }, 'result for an unknown command; ignored');
      return 'unknown_id';
    }
    const answered = await this.repo.answer(deviceId, r.id, { status: r.status, reason: r.reason ?? null, detail: r.detail ?? null, output: r.output ?? null, at: this.deps.clock.now() });
    if (answered) {
      const result = { commandId: r.id, status: r.status, reason: r.reason ?? null, detail: r.detail ?? null };
      for (const fn of this.#answered) await fn(deviceId, result).catch((err: unknown) => this.deps.log.warn({ err, deviceId }, 'a command result listener failed'));
    }
    return answered ? r.status : 'duplicate';
  }

  /** Marks expired commands and deletes ended ones past retention. */
  async sweep(): Promise<void> {
    const now = this.deps.clock.now();
    await this.repo.expire(now, this.settings.resultTimeoutMs);
    await this.repo.deleteEndedBefore(now - this.settings.retentionDays * 86_400_000);
  }
}
