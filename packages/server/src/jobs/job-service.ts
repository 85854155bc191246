import { type Clock, type IdGen, type Logger, PlatformError, Serial } from '@bulwark/core';
import { COMMAND_NAME_PATTERN, DEVICE_MESSAGE_LIMITS } from '@bulwark/protocol';
import type { GroupSelector, RegistryService } from '../registry/index.js';
import { type EngineDeps, counted, moveJob, runJob } from './job-engine.js';
import { JOB_DEVICE_STATES, JOB_ENDED, type Job, type JobAbortRule, type JobDevice, type JobDeviceState, type JobOperation, type JobPacing, type JobRepository, type JobState, type LiveJobDevice } from './jobs.js';
import { type JobTargets, type Outcome, commandOutcome, twinOutcome } from './operations.js';

export interface JobSettings {
  readonly tickIntervalMs: number;
  readonly maxDevices: number;
  readonly maxRatePerSecond: number;
  readonly defaultRatePerSecond: number;
  readonly defaultDeviceTimeoutMs: number;
}

export interface NewJob {
  readonly name: string;
  readonly group: string;
  readonly operation: JobOperation;
  readonly pacing?: Partial<JobPacing>;
  readonly deviceTimeoutMs?: number;
  readonly maxRetries?: number;
  readonly abort?: JobAbortRule;
}

export interface JobView extends Job {
  readonly counts: Readonly<Record<JobDeviceState, number>>;
  /** Devices finished (any end state) of deviceCount, and that as a percentage. */
  readonly progress: { readonly finished: number; readonly total: number; readonly percent: number };
  /** Why devices failed, timed out or were cancelled, by reason, most first. */
  readonly reasons: { state: JobDeviceState; reason: string; count: number }[];
}

export interface JobServiceDeps {
  readonly clock: Clock;
  readonly ids: IdGen;
  readonly log: Logger;
  readonly registry: Pick<RegistryService, 'list'>;
  readonly groups: { selector(id: string): Promise<GroupSelector> };
  readonly targets: JobTargets & {
    /** The device's last twin report, for a device that answered before its dispatch was recorded. */
    reported(deviceId: string): Promise<{ version: number; status: string; reason: string | null; detail: string | null } | null>;
    commandResult(deviceId: string, commandId: string): Promise<{ status: string; reason: string | null; detail: string | null } | undefined>;
  };
  readonly onStop?: (job: Job) => void;
}

const PAGE = 1000;

/**
 * Jobs over device groups: one operation applied to a snapshot of a group's members, paced
 * (rate, concurrency, maintenance window), with an entry per device that ends succeeded,
 * failed, timed out or cancelled, and a summary. The engine passes run on one node (the
 * `jobs` singleton); answers from devices end their entries on whichever node hears them.
 * Everything is in the store, so a job survives restarts and moves with the singleton.
 */
export class JobService {
  readonly #engine: EngineDeps;
  readonly #tokens = new Map<string, { value: number; at: number }>();
  readonly #stopped = new Set<string>();
  readonly #serial = new Serial();
  #passing = false;
  #timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly repo: JobRepository,
    private readonly settings: JobSettings,
    private readonly deps: JobServiceDeps,
  ) {
    this.#engine = {
      repo,
      targets: deps.targets,
      clock: deps.clock,
      log: deps.log,
      answered: async (job, e) => {
        if (e.ref === null) return undefined;
        const live = { ...e, operation: job.operation.type };
        if (job.operation.type === 'twin-patch') {
          const r = await deps.targets.reported(e.deviceId);
          return r ? twinOutcome(live, r) : undefined;
        }
        const c = await deps.targets.commandResult(e.deviceId, e.ref);
        return c ? commandOutcome(live, { commandId: e.ref, ...c }) : undefined;
      },
      ...(deps.onStop ? { onStop: deps.onStop } : {}),
    };
  }

  async create(input: NewJob, by: string): Promise<JobView> {
    this.#check(input);
    const selector = await this.deps.groups.selector(input.group);
    const ids: string[] = [];
    const skipped: Record<string, number> = {};
    for (let after: string | undefined; ;) {
      const page = await this.deps.registry.list({ group: selector, limit: PAGE, ...(after !== undefined ? { after } : {}) });
      for (const d of page) {
        if (d.state === 'decommissioned') skipped.decommissioned = (skipped.decommissioned ?? 0) + 1;
        else ids.push(d.id);
      }
      if (ids.length > this.settings.maxDevices) {
        throw new PlatformError('BULWARK_ERR_BAD_REQUEST', `group ${input.group} has more than ${this.settings.maxDevices} devices; a job takes at most jobs.maxDevices (split the group)`, { details: { maxDevices: this.settings.maxDevices } });
      }
      if (page.length < PAGE) break;
      after = page.at(-1)?.id;
    }
    if (ids.length === 0) throw new PlatformError('BULWARK_ERR_BAD_REQUEST', `group ${input.group} has no device to act on${skipped.decommissioned ? ` (${skipped.decommissioned} decommissioned)` : ''}`, { details: { skipped } });
    const now = this.deps.clock.now();
    const p = input.pacing ?? {};
    const job: Job = {
      id: this.deps.ids.next('job'),
      name: input.name,
      operation: input.operation,
      group: input.group,
      pacing: { ratePerSecond: p.ratePerSecond ?? this.settings.defaultRatePerSecond, maxConcurrent: p.maxConcurrent ?? 1000, window: p.window ?? null },
      deviceTimeoutMs: input.deviceTimeoutMs ?? this.settings.defaultDeviceTimeoutMs,
      maxRetries: input.maxRetries ?? 0,
      abort: input.abort ?? null,
      state: 'running',
      reason: null,
      deviceCount: ids.length,
      skipped,
      createdBy: by,
      createdAt: now,
      updatedAt: now,
      settledAt: null,
      history: [{ at: now, state: 'running', actor: by, reason: `created: ${ids.length} devices of group ${input.group}` }],
    };
    // One transaction: the job exists with every entry, or not at all.
    await this.repo.insert(job, ids);
    this.schedule();
    return this.view(job.id);
  }

  #check(input: NewJob): void {
    const problems: string[] = [];
    const op = input.operation;
    if (op.type === 'twin-patch') {
      if (Object.keys(op.patch).length === 0) problems.push('the twin patch changes nothing');
      const size = Buffer.byteLength(JSON.stringify(op.patch));
      if (size > DEVICE_MESSAGE_LIMITS.twinMaxBytes) problems.push(`the twin patch is ${size} bytes; devices accept at most ${DEVICE_MESSAGE_LIMITS.twinMaxBytes}`);
    }
    if (op.type === 'command' && !COMMAND_NAME_PATTERN.test(op.name)) problems.push(`"${op.name}" is not a command name`);
    const rate = input.pacing?.ratePerSecond;
    if (rate !== undefined && rate > this.settings.maxRatePerSecond) problems.push(`ratePerSecond is at most ${this.settings.maxRatePerSecond} (jobs.maxRatePerSecond)`);
    if (problems.length > 0) throw new PlatformError('BULWARK_ERR_VALIDATION', `invalid job: ${problems.join('; ')}`, { details: { problems } });
  }

  /** `groups`: the caller is limited to these device groups; a job over another is not found. */
  async get(id: string, groups: readonly string[] | null = null): Promise<Job> {
    const job = await this.repo.get(id);
    if (!job || (groups !== null && !groups.includes(job.group))) throw new PlatformError('BULWARK_ERR_NOT_FOUND', `no job ${id}`);
    return job;
  }

  async view(id: string, groups: readonly string[] | null = null): Promise<JobView> {
    return this.#view(await this.get(id, groups));
  }

  async #view(job: Job): Promise<JobView> {
    const c = await this.repo.counts(job.id);
    const counts = Object.fromEntries(JOB_DEVICE_STATES.map((s) => [s, counted(c, s)])) as Record<JobDeviceState, number>;
    const finished = counts.succeeded + counts.failed + counts.timed_out + counts.cancelled;
    return {
      ...job,
      counts,
      reasons: await this.repo.reasons(job.id, 20),
      progress: { finished, total: job.deviceCount, percent: job.deviceCount === 0 ? 100 : Math.floor((finished * 1000) / job.deviceCount) / 10 },
    };
  }

  async list(f: { states?: readonly JobState[]; before?: string; groups?: readonly string[]; limit: number }): Promise<JobView[]> {
    return Promise.all((await this.repo.list(f)).map((j) => this.#view(j)));
  }

  async devices(id: string, groups: readonly string[] | null, f: { states?: readonly JobDeviceState[]; after?: string; limit: number }): Promise<JobDevice[]> {
    await this.get(id, groups);
    return this.repo.devices(id, f);
  }

  /** cancel: no device is dispatched after it, queued ones end as cancelled, dispatched ones still report; pause / resume: dispatching stops and goes on. */
  async control(id: string, action: 'cancel' | 'pause' | 'resume', reason: string, by: string, groups: readonly string[] | null = null): Promise<JobView> {
    await this.get(id, groups);
    const allowed: Record<typeof action, JobState[]> = { cancel: ['running', 'paused'], pause: ['running'], resume: ['paused'] };
    const to: JobState = action === 'cancel' ? 'cancelled' : action === 'pause' ? 'paused' : 'running';
    if (action !== 'resume') this.#stopped.add(id);
    for (let attempt = 0; ; attempt += 1) {
      const job = await this.get(id);
      if (!allowed[action].includes(job.state)) {
        if (action !== 'resume' && job.state !== 'running') this.#stopped.delete(id);
        throw new PlatformError('BULWARK_ERR_JOB_STATE', `cannot ${action} job ${id}: it is ${job.state}`, { details: { state: job.state } });
      }
      const moved = await moveJob(this.#engine, job, to, reason, by);
      if (moved.state === to && moved.updatedAt !== job.updatedAt) break;
      if (attempt >= 5) throw new PlatformError('BULWARK_ERR_CONFLICT', `job ${id} changed while this request ran; retry`);
    }
    if (action === 'resume') this.#stopped.delete(id);
    this.schedule();
    return this.view(id);
  }

  /** The device left the fleet or changed hands: its queued and dispatched entries end as cancelled with `reason`. */
  async cancelDevice(deviceId: string, reason: string, exceptJob?: string): Promise<number> {
    let n = 0;
    for (const e of await this.repo.live(deviceId)) {
      if (e.jobId === exceptJob) continue;
      if (await this.repo.finish(e.jobId, deviceId, ['queued', 'in_progress'], { state: 'cancelled', reason, detail: null, at: this.deps.clock.now() })) n += 1;
    }
    return n;
  }

  /** A twin report stored for the device: ends its twin-patch entries that it settles. */
  onTwinReported(deviceId: string, report: { version: number; status: string; reason: string | null; detail: string | null }): Promise<void> {
    return this.#settle(deviceId, (e) => twinOutcome(e, report));
  }

  /** A command result stored for the device: ends the entry that issued the command. */
  onCommandResult(deviceId: string, result: { commandId: string; status: string; reason: string | null; detail: string | null }): Promise<void> {
    return this.#settle(deviceId, (e) => commandOutcome(e, result));
  }

  /** Ends the device's dispatched entries that an answer settles. */
  async #settle(deviceId: string, judge: (e: LiveJobDevice) => Outcome | undefined): Promise<void> {
    for (const e of await this.repo.live(deviceId)) {
      const out = judge(e);
      if (out) await this.repo.finish(e.jobId, deviceId, ['in_progress'], { ...out, at: this.deps.clock.now() });
    }
  }

  /** One engine pass over every job not settled yet (a pass asked for while one runs is skipped, not queued). */
  tick(): Promise<void> {
    if (this.#passing) return this.#serial.idle();
    this.#passing = true;
    return this.#serial.run(async () => {
      this.#passing = false;
      for (const job of await this.repo.unsettled(100)) {
        try {
          const tokens = this.#tokens.get(job.id) ?? this.#tokens.set(job.id, { value: 0, at: this.deps.clock.now() }).get(job.id)!;
          const after = await runJob(this.#engine, job, tokens, () => this.#stopped.has(job.id));
          if (after.settledAt !== null || JOB_ENDED.includes(after.state)) this.#tokens.delete(job.id);
          if (after.settledAt !== null) this.#stopped.delete(job.id);
        } catch (err) {
          this.deps.log.error({ err, jobId: job.id }, 'job pass failed');
        }
      }
    });
  }

  /** A pass soon, on the node running the engine. */
  schedule(): void {
    if (this.#timer !== undefined) setImmediate(() => void this.tick());
  }

  /** The singleton: passes every jobs.tickIntervalMs on this node. */
  start(): void {
    if (this.settings.tickIntervalMs <= 0 || this.#timer) return;
    this.#timer = setInterval(() => void this.tick(), this.settings.tickIntervalMs);
    this.#timer.unref();
  }

  async stop(): Promise<void> {
    clearInterval(this.#timer);
    this.#timer = undefined;
    await this.idle();
  }

  /** Resolves when every pass started so far has finished. */
  idle(): Promise<void> {
    return this.#serial.idle();
  }
}
