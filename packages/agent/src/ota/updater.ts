import { rmSync } from 'node:fs';
import { unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { type FirmwareManifest, OTA_CANCELLABLE_STATES, type OtaCancel, type OtaJob, type OtaState, type OtaStatus, OTA_TERMINAL_STATES, type RootKeySet } from '@bulwark/protocol';
import type { AgentLogger } from '../logs.js';
import type { FirmwareFetcher } from './download.js';
import { checkJobMessage } from './job.js';
import type { SlotStore } from './slots.js';
import { type JobRecord, type OtaPersisted, OtaStateFile, RECENT_JOBS, type SlotImage, activeSlot, bootSelect, factoryState, otherSlot } from './state.js';
import { type Outcome, STEPS, type StepContext } from './steps.js';

export interface UpdaterOptions {
  /** Holds state.json and the image being downloaded. */
  readonly dir: string;
  /** The pinned root key set: the only trust anchor for firmware. */
  readonly root: RootKeySet;
  readonly device: { readonly model: string; readonly hardwareRevision: string };
  /** What slot A holds on a device that never updated. */
  readonly factory: { readonly version: string; readonly securityVersion: number };
  readonly maxTrialBoots: number;
  /** A new image must connect and report healthy within this long after it boots, or it is reverted. */
  readonly healthWindowMs: number;
  readonly downloadRetries: number;
}

export type UpdaterEvent =
  | { readonly type: 'state'; readonly jobId: string; readonly state: OtaState; readonly reason?: string }
  | { readonly type: 'progress'; readonly jobId: string; readonly state: 'downloading' | 'installing'; readonly done: number; readonly total: number };

export interface UpdaterDeps {
  readonly fetcher: FirmwareFetcher;
  readonly slots: SlotStore;
  /** Best estimate of the platform's time: metadata expiry is judged against it. */
  readonly now: () => number;
  /** Sends a status on `devices/{id}/ota/status`; resolves true once the platform has it (PUBACK). */
  readonly report: (s: OtaStatus) => Promise<boolean>;
  /** Restarts the device so that it boots the active slot. */
  readonly reboot: () => void | Promise<void>;
  /** The application's own verdict on a new image, asked once it has connected and reported (default: healthy). */
  readonly healthCheck?: () => boolean | Promise<boolean>;
  readonly log: Pick<AgentLogger, 'info' | 'warn' | 'error'>;
  readonly onEvent?: (e: UpdaterEvent) => void;
  /** Timer for the health window (injectable for simulated fleets); returns a cancel function. */
  readonly schedule?: (ms: number, fn: () => void) => () => void;
  readonly retryDelayMs?: (attempt: number) => number;
}

const TERMINAL = OTA_TERMINAL_STATES as readonly OtaState[];
const REPORT_BEFORE_REBOOT_MS = 5_000;
const defaultSchedule = (ms: number, fn: () => void) => {
  const t = setTimeout(fn, ms);
  t.unref();
  return () => clearTimeout(t);
};

/**
 * The device's update state machine (issue 6): one job at a time, every transition
 * persisted before it takes effect and reported on `devices/{id}/ota/status`. A/B slots:
 * the image goes to the slot that is not committed; the switch is a try-once boot of it;
 * the new image is committed only after it connected and reported healthy inside the
 * window, else the device boots the committed slot again. Anti-rollback floors (security
 * version, delegation version) are raised only by a commit.
 */
export class Updater {
  readonly #file: OtaStateFile;
  readonly #abort = new AbortController();
  /** Stops the step under way when its job is cancelled. */
  #jobAbort = new AbortController();
  #s: OtaPersisted;
  #running = false;
  #runAgain = false;
  #cancelWindow: (() => void) | undefined;
  #lastProgress = 0;

  constructor(readonly opts: UpdaterOptions, private readonly deps: UpdaterDeps) {
    this.#file = new OtaStateFile(opts.dir);
    this.#s = this.#file.load() ?? factoryState(opts.factory);
  }

  /** What the device runs now. */
  running(): SlotImage & { readonly slot: 'a' | 'b'; readonly trial: boolean } {
    const slot = activeSlot(this.#s);
    const img = this.#s.slots[slot] ?? { version: this.opts.factory.version, securityVersion: this.opts.factory.securityVersion, sha256: null, size: null };
    return { ...img, slot, trial: this.#s.trial !== null };
  }

  get state(): OtaPersisted {
    return this.#s;
  }

  /**
   * Runs once per start, before anything else: the bootloader's try-once accounting, then
   * whatever the last start left unfinished (a download to resume, a new image to judge).
   */
  boot(): void {
    const booted = this.deps.slots.booted?.();
    const { state, fellBack } = bootSelect(this.#s, this.opts.maxTrialBoots, booted);
    let next = state;
    if (next.trial && next.job?.state === 'rebooting') next = { ...next, job: { ...next.job, state: 'verifying-health', reported: false } };
    this.#save(next);
    const rec = this.#s.job;
    if (rec) this.#emit(rec);
    if (fellBack) {
      this.deps.log.error('the new image never became healthy: falling back to the committed slot', { slot: this.#s.committed, reason: rec?.detail });
      // Unless the bootloader already started the committed slot, this process may run the failed image: boot the good one.
      if (booted !== this.#s.committed) return void this.#reportThenReboot().catch((err: unknown) => this.deps.log.error('could not reboot', { err: String(err) }));
    }
    if (!this.#s.trial) void this.#hook('commit', () => this.deps.slots.commit?.(this.#s.committed));
    if (rec && !rec.reported) void this.#report();
    if (this.#s.trial) {
      this.#cancelWindow = (this.deps.schedule ?? defaultSchedule)(this.opts.healthWindowMs, () => {
        void this.#revert('health_check_failed', `no healthy report within ${this.opts.healthWindowMs} ms of booting the new image`);
      });
    }
    this.#kick();
  }

  /** A message on `devices/{id}/ota/job`. */
  async onJob(payload: Buffer): Promise<void> {
    const checked = checkJobMessage(payload);
    if (!checked.ok) {
      this.deps.log.warn('update job refused', { reason: checked.reason, detail: checked.detail });
      if (checked.id) void this.deps.report({ jobId: checked.id, state: 'failed', ts: this.deps.now(), reason: checked.reason, detail: checked.detail.slice(0, 500) });
      return;
    }
    if (checked.value.kind === 'cancel') return this.#cancel(checked.value.cancel);
    const job = checked.value.job;
    const s = this.#s;
    if (s.recentJobs.includes(job.jobId)) {
      if (s.job?.job.jobId === job.jobId) void this.#report();
      return;
    }
    const recentJobs = [...s.recentJobs, job.jobId].slice(-RECENT_JOBS);
    const cur = s.job;
    if (cur && !TERMINAL.includes(cur.state)) {
      if (cur.job.artifactId === job.artifactId) {
        // The platform retried the same update under a new id (it timed out on us): carry on under the new id.
        this.#save({ ...s, recentJobs, job: { ...cur, job, reported: false } });
        void this.#report();
        return;
      }
      this.#save({ ...s, recentJobs });
      void this.deps.report({ jobId: job.jobId, state: 'failed', ts: this.deps.now(), reason: 'busy', detail: `already updating to artifact ${cur.job.artifactId} (${cur.state})` });
      return;
    }
    // Whatever an earlier job left is not part of this image.
    rmSync(this.#downloadFile, { force: true });
    this.#save({ ...s, recentJobs, job: { job, state: 'queued', slot: otherSlot(s.committed), reported: false } });
    this.#transitioned();
    this.#kick();
  }

  /**
   * The rollout was aborted. Before installing, the job stops and what was downloaded is
   * dropped; from installing on it finishes (the slot is being written or already tried).
   * A cancel of a job never seen is remembered, so that a late copy of it never starts.
   */
  #cancel(c: OtaCancel): void {
    const s = this.#s;
    const cur = s.job;
    const recentJobs = s.recentJobs.includes(c.jobId) ? s.recentJobs : [...s.recentJobs, c.jobId].slice(-RECENT_JOBS);
    if (cur && cur.job.jobId === c.jobId) {
      if (!OTA_CANCELLABLE_STATES.includes(cur.state)) {
        this.deps.log.info('cancel ignored: the update is past the point of stopping', { jobId: c.jobId, state: cur.state });
        return void this.#report();
      }
      this.#jobAbort.abort();
      this.#save({ ...s, recentJobs, job: settled(cur, 'failed', 'cancelled', c.reason) });
      void unlink(this.#downloadFile).catch(() => undefined);
      this.deps.log.info('update cancelled', { jobId: c.jobId, reason: c.reason });
      return this.#transitioned();
    }
    this.#save({ ...s, recentJobs });
    if (!s.recentJobs.includes(c.jobId)) void this.deps.report({ jobId: c.jobId, state: 'failed', ts: this.deps.now(), reason: 'cancelled', detail: c.reason });
  }

  /** The connection is up: the platform may have missed the last status. */
  onConnected(): void {
    if (this.#s.job && !this.#s.job.reported) void this.#report();
  }

  /**
   * The new image connected and its health report reached the platform: ask the
   * application, then commit or revert. Does nothing outside a trial boot.
   */
  async confirmHealthy(): Promise<void> {
    if (!this.#s.trial || this.#s.job?.state !== 'verifying-health') return;
    let healthy = false;
    try {
      healthy = (await this.deps.healthCheck?.()) ?? true;
    } catch (err) {
      this.deps.log.warn('the health check threw', { err: String(err) });
    }
    if (!this.#s.trial) return;
    if (healthy) this.#commit();
    else await this.#revert('health_check_failed', 'the application health check failed on the new image');
  }

  close(): void {
    this.#cancelWindow?.();
    this.#abort.abort();
  }

  #commit(): void {
    const s = this.#s;
    if (!s.trial || !s.job) return;
    const manifest = s.job.job.manifest as FirmwareManifest;
    this.#cancelWindow?.();
    this.#save({
      ...s, committed: s.trial.slot, trial: null,
      minSecurityVersion: Math.max(s.minSecurityVersion, manifest.release.signed.securityVersion),
      delegationVersion: Math.max(s.delegationVersion, manifest.delegation.signed.version),
      job: settled(s.job, 'committed'),
    });
    this.deps.log.info('new firmware committed', { version: manifest.release.signed.version, slot: this.#s.committed });
    void this.#hook('commit', () => this.deps.slots.commit?.(this.#s.committed));
    this.#transitioned();
  }

  async #revert(reason: string, detail: string): Promise<void> {
    const s = this.#s;
    if (!s.trial || !s.job) return;
    this.#cancelWindow?.();
    this.#save({ ...s, trial: null, job: settled(s.job, 'rolled-back', reason, detail) });
    this.deps.log.error('the new firmware failed its health check: reverting to the committed slot', { reason, detail, slot: s.committed });
    this.#transitioned();
    await this.#reportThenReboot();
  }

  /** Runs steps until the job ends, waits for a reboot, or the updater closes. */
  #kick(): void {
    if (this.#running) {
      this.#runAgain = true;
      return;
    }
    this.#running = true;
    void this.#run().catch((err: unknown) => {
      if (!this.#abort.signal.aborted) this.deps.log.error('the update stopped on an unexpected error; it resumes at the next start', { err: String(err) });
    }).finally(() => {
      this.#running = false;
      if (this.#runAgain) {
        this.#runAgain = false;
        this.#kick();
      }
    });
  }

  async #run(): Promise<void> {
    for (;;) {
      const rec = this.#s.job;
      if (!rec || this.#abort.signal.aborted) return;
      if (rec.state === 'rebooting') return void (await this.#reportThenReboot());
      const step = STEPS[rec.state];
      if (!step) return;
      if (this.#jobAbort.signal.aborted) this.#jobAbort = new AbortController();
      const jobAbort = this.#jobAbort;
      let outcome: Outcome | undefined;
      try {
        outcome = await step(this.#context(rec, AbortSignal.any([this.#abort.signal, jobAbort.signal])));
      } catch (err) {
        if (!jobAbort.signal.aborted) throw err;
      }
      // Cancelled, closed, or moved on under a newer job id: what the step found no longer applies as is.
      const now = this.#s.job;
      if (this.#abort.signal.aborted || jobAbort.signal.aborted || !outcome || now?.job.artifactId !== rec.job.artifactId || now.state !== rec.state) continue;
      this.#apply(outcome);
    }
  }

  #apply(o: Outcome): void {
    const s = this.#s;
    const rec = s.job;
    if (!rec) return;
    if (o.next === 'rebooting') {
      // One write: the slot holds the new image, the bootloader will try it once, the job says so.
      this.#save({ ...s, slots: { ...s.slots, [rec.slot]: o.image }, trial: { slot: rec.slot, boots: 0 }, job: { ...rec, state: 'rebooting', reported: false } });
      rmSync(this.#downloadFile, { force: true });
    } else if (o.next === 'failed') {
      this.#save({ ...s, job: settled(rec, 'failed', o.reason, o.detail) });
      void unlink(this.#downloadFile).catch(() => undefined);
      this.deps.log.warn('update refused', { jobId: rec.job.jobId, reason: o.reason, detail: o.detail });
    } else if (o.next === 'committed') {
      this.#save({ ...s, job: settled(rec, 'committed') });
    } else {
      const root = 'root' in o && o.root ? { root: o.root } : {};
      if (root.root) this.deps.log.info('trusting a rotated root key set', { version: root.root.version });
      this.#save({ ...s, ...root, job: { ...rec, state: o.next, reported: false, ...(o.next === 'downloading' ? { bytes: 0 } : {}) } });
    }
    this.#transitioned();
  }

  /** Points the bootloader at the active slot (the new image on trial, or the committed one), reports, reboots. */
  async #reportThenReboot(): Promise<void> {
    const s = this.#s;
    await this.deps.slots.switchTo?.(activeSlot(s), s.trial ? 'trial' : 'committed');
    await Promise.race([this.#report(), new Promise((resolve) => setTimeout(resolve, REPORT_BEFORE_REBOOT_MS).unref())]);
    if (this.#abort.signal.aborted) return;
    await this.deps.reboot();
  }

  async #hook(name: string, fn: () => Promise<void> | undefined): Promise<void> {
    try {
      await fn();
    } catch (err) {
      this.deps.log.error(`the slot store's ${name} failed; it is tried again at the next start`, { err: String(err) });
    }
  }

  #context(rec: JobRecord, signal: AbortSignal): StepContext {
    return {
      rec, state: this.#s, opts: this.opts, deps: this.deps, downloadFile: this.#downloadFile, signal,
      progress: (state, done) => this.#progress(rec, state, done),
    };
  }

  #progress(rec: JobRecord, state: 'downloading' | 'installing', done: number): void {
    const total = (rec.job.manifest as FirmwareManifest).release.signed.size;
    this.deps.onEvent?.({ type: 'progress', jobId: rec.job.jobId, state, done, total });
    if (state !== 'downloading' || this.#s.job !== rec && this.#s.job?.job.jobId !== rec.job.jobId) return;
    // Status on the wire at most every tenth of the image; the byte count on disk is what the next start trusts.
    if (done < total && done - this.#lastProgress < total / 10) return;
    this.#lastProgress = done;
    const cur = this.#s.job;
    if (cur) {
      this.#s = { ...this.#s, job: { ...cur, bytes: done } };
      void this.#report();
    }
  }

  get #downloadFile(): string {
    return join(this.opts.dir, 'download.img');
  }

  #transitioned(): void {
    const rec = this.#s.job;
    if (!rec) return;
    this.#lastProgress = 0;
    this.#emit(rec);
    void this.#report();
  }

  #emit(rec: JobRecord): void {
    this.deps.onEvent?.({ type: 'state', jobId: rec.job.jobId, state: rec.state, ...(rec.reason ? { reason: rec.reason } : {}) });
  }

  /** Sends the job's current status; once the platform has it, it is not sent again on reconnect. */
  async #report(): Promise<boolean> {
    const rec = this.#s.job;
    if (!rec) return false;
    const firmware = TERMINAL.includes(rec.state) ? this.running() : undefined;
    const status: OtaStatus = {
      jobId: rec.job.jobId, state: rec.state, ts: this.deps.now(),
      ...(rec.state === 'downloading' && rec.bytes !== undefined ? { bytes: rec.bytes } : {}),
      ...(rec.reason ? { reason: rec.reason } : {}), ...(rec.detail ? { detail: rec.detail.slice(0, 500) } : {}),
      ...(firmware ? { firmware: { version: firmware.version, securityVersion: firmware.securityVersion } } : {}),
    };
    let acked = false;
    try {
      acked = await this.deps.report(status);
    } catch {
      acked = false;
    }
    const now = this.#s.job;
    if (acked && now && now.job.jobId === rec.job.jobId && now.state === rec.state && !now.reported && TERMINAL.includes(now.state)) this.#save({ ...this.#s, job: { ...now, reported: true } });
    return acked;
  }

  #save(s: OtaPersisted): void {
    this.#file.save(s);
    this.#s = s;
  }
}

function settled(rec: JobRecord, state: 'committed' | 'rolled-back' | 'failed', reason?: string, detail?: string): JobRecord {
  const { reason: _r, detail: _d, bytes: _b, ...rest } = rec;
  return { ...rest, state, reported: false, ...(reason ? { reason } : {}), ...(detail ? { detail } : {}) };
}

export type { OtaJob };
