import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { type BootPosture, OTA_CANCELLABLE_STATES, type OtaCancel, OTA_TERMINAL_STATES } from '@bulwark/protocol';
import { verifyRunningSlot } from './boot-check.js';
import { checkJobMessage, decideJob, statusOf } from './job.js';
import { type JobRecord, type OtaPersisted, OtaStateFile, RECENT_JOBS, type SlotImage, activeSlot, bootPlan, factoryState, otherSlot, settled } from './state.js';
import { type Outcome, STEPS, type StepContext, learntFrom } from './steps.js';
import type { UpdaterDeps, UpdaterOptions } from './updater-types.js';

export type { UpdaterDeps, UpdaterEvent, UpdaterOptions } from './updater-types.js';

const TERMINAL = OTA_TERMINAL_STATES;
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

  constructor(
    readonly opts: UpdaterOptions,
    private readonly deps: UpdaterDeps,
  ) {
    this.#file = new OtaStateFile(opts.dir);
    this.#s = this.#file.load() ?? factoryState(opts.factory);
  }

  /** What the device runs now. */
  running(): SlotImage & { readonly slot: 'a' | 'b'; readonly trial: boolean } {
    const slot = activeSlot(this.#s);
    const img = this.#s.slots[slot] ?? { version: this.opts.factory.version, securityVersion: this.opts.factory.securityVersion, sha256: null, size: null };
    return { ...img, slot, trial: this.#s.trial !== null };
  }

  /** Verified boot: whether the running slot's image matches the signed manifest it was installed from. */
  verifyRunning(): Promise<BootPosture> {
    return verifyRunningSlot(this.opts, this.#s, this.deps.slots);
  }

  get state(): OtaPersisted {
    return this.#s;
  }

  /**
   * Runs once per start, before anything else: the bootloader's try-once accounting and a
   * check of what it really started, then whatever the last start left unfinished (a switch
   * or reboot that never happened, a download to resume, a new image to judge).
   */
  boot(): void {
    const booted = this.deps.slots.booted?.();
    const plan = bootPlan(this.#s, this.opts.maxTrialBoots, booted, this.deps.slots.bootId?.());
    this.#save(plan.state);
    const rec = this.#s.job;
    if (rec) this.#emit(rec);
    const committed = this.#s.committed;
    if (plan.kind === 'finish-switch') return this.#kick();
    if (plan.kind === 'realign' || (plan.kind === 'fell-back' && booted !== committed)) {
      this.deps.log.error('booting the committed slot', { committed, booted, why: plan.kind === 'realign' ? 'the bootloader started another slot' : rec?.detail });
      return void this.#reportThenReboot().catch((err: unknown) => this.deps.log.error('could not reboot', { err: String(err) }));
    }
    if (plan.kind === 'stuck') this.deps.log.error(`the bootloader keeps starting slot ${booted ?? '?'} instead of the committed ${committed}: check its environment`, {});
    if (!this.#s.trial) void this.#hook('commit', () => this.deps.slots.commit?.(committed));
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
    const decision = decideJob(s, job);
    const answer = (reason: string, detail: string) => void this.deps.report({ jobId: job.jobId, state: 'failed', ts: this.deps.now(), reason, detail });
    const recentJobs = s.recentJobs.includes(job.jobId) ? s.recentJobs : [...s.recentJobs, job.jobId].slice(-RECENT_JOBS);
    switch (decision) {
      case 'repeat':
        return void this.#report();
      case 'old':
        return;
      case 'cancelled':
        return answer('cancelled', 'the job was cancelled before it arrived');
      case 'busy':
        this.#save({ ...s, recentJobs });
        return answer('busy', `already updating to artifact ${s.job?.job.artifactId ?? '?'} (${s.job?.state ?? '?'})`);
      case 'adopt':
        // The platform retried the update in progress under a new id (it timed out on us), with the same signed metadata.
        this.#save({ ...s, recentJobs, job: { ...s.job!, job, reported: false } });
        return void this.#report();
      case 'start':
        // Whatever an earlier job left is not part of this image.
        rmSync(this.#downloadFile, { force: true });
        this.#save({ ...s, recentJobs, job: { job, state: 'queued', slot: otherSlot(s.committed), reported: false } });
        this.#transitioned();
        this.#kick();
    }
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
    const cancelled = [...(s.cancelled ?? []).filter((id) => id !== c.jobId), c.jobId].slice(-RECENT_JOBS);
    if (cur && cur.job.jobId === c.jobId) {
      if (!OTA_CANCELLABLE_STATES.includes(cur.state)) {
        this.deps.log.info('cancel ignored: the update is past the point of stopping', { jobId: c.jobId, state: cur.state });
        return void this.#report();
      }
      this.#jobAbort.abort();
      this.#save({ ...s, recentJobs, cancelled, job: settled(cur, 'failed', 'cancelled', c.reason) });
      rmSync(this.#downloadFile, { force: true });
      this.deps.log.info('update cancelled', { jobId: c.jobId, reason: c.reason });
      return this.#transitioned();
    }
    // Not the job in progress (never seen, or already over): answered every time it comes, since an earlier answer may have been lost.
    this.#save({ ...s, recentJobs, cancelled });
    void this.deps.report({ jobId: c.jobId, state: 'failed', ts: this.deps.now(), reason: 'cancelled', detail: c.reason });
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
    try {
      if (healthy) await this.#commit();
      else await this.#revert('health_check_failed', 'the application health check failed on the new image');
    } catch (err) {
      this.deps.log.error('could not settle the trial; it is judged again at the next start', { err: String(err) });
    }
  }

  close(): void {
    this.#cancelWindow?.();
    this.#abort.abort();
  }

  /**
   * The bootloader is told first: a cut after that leaves a trial that the next start judges
   * again. The floors come from what was verified and installed, recorded with the switch.
   */
  async #commit(): Promise<void> {
    const s = this.#s;
    const trial = s.trial;
    const v = s.job?.verified;
    if (!trial || !s.job) return;
    if (!v) return this.#revert('install_failed', 'no record of the verified image on trial');
    this.#cancelWindow?.();
    await this.#hook('commit', () => this.deps.slots.commit?.(trial.slot));
    const now = this.#s;
    if (!now.trial || !now.job || now.job.job.jobId !== s.job.job.jobId) return;
    this.#save({
      ...now,
      committed: trial.slot,
      trial: null,
      minSecurityVersion: Math.max(now.minSecurityVersion, v.securityVersion),
      delegationVersion: Math.max(now.delegationVersion, v.delegationVersion),
      job: settled(now.job, 'committed'),
    });
    this.deps.log.info('new firmware committed', { version: v.version, slot: trial.slot });
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
    void this.#run()
      .catch((err: unknown) => {
        if (!this.#abort.signal.aborted) this.deps.log.error('the update stopped on an unexpected error; it resumes at the next start', { err: String(err) });
      })
      .finally(() => {
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
    const learnt = 'issuedAt' in o || 'root' in o ? learntFrom(s, o) : {};
    if ('root' in learnt) this.deps.log.info('trusting a rotated root key set', { version: learnt.root?.version });
    if (o.next === 'rebooting') {
      // One write: the slot holds the new image, the bootloader will try it once, the job says what was verified.
      const verified = { version: o.image.version, securityVersion: o.image.securityVersion, sha256: o.image.sha256 ?? '', delegationVersion: o.delegationVersion };
      this.#save({ ...s, slots: { ...s.slots, [rec.slot]: o.image }, trial: { slot: rec.slot, boots: 0 }, job: { ...rec, state: 'rebooting', verified, switched: false, reported: false } });
      rmSync(this.#downloadFile, { force: true });
    } else if (o.next === 'failed') {
      this.#save({ ...s, job: settled(rec, 'failed', o.reason, o.detail) });
      rmSync(this.#downloadFile, { force: true });
      this.deps.log.warn('update refused', { jobId: rec.job.jobId, reason: o.reason, detail: o.detail });
    } else if (o.next === 'committed') {
      this.#save({ ...s, ...learnt, job: settled(rec, 'committed') });
    } else {
      this.#save({ ...s, ...learnt, job: { ...rec, state: o.next, reported: false, ...(o.next === 'downloading' ? { bytes: 0 } : {}) } });
    }
    this.#transitioned();
  }

  /** Points the bootloader at the active slot (the new image on trial, or the committed one), reports, reboots. */
  async #reportThenReboot(): Promise<void> {
    const s = this.#s;
    await this.deps.slots.switchTo?.(activeSlot(s), s.trial ? 'trial' : 'committed');
    const rec = this.#s.job;
    if (this.#s.trial && rec?.state === 'rebooting' && !rec.switched) {
      const bootId = this.deps.slots.bootId?.();
      this.#save({ ...this.#s, job: { ...rec, switched: true, ...(bootId ? { switchedInBoot: bootId } : {}) } });
    }
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([this.#report(), new Promise((resolve) => (timer = setTimeout(resolve, REPORT_BEFORE_REBOOT_MS)))]);
    clearTimeout(timer);
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
      rec,
      state: this.#s,
      opts: this.opts,
      deps: this.deps,
      downloadFile: this.#downloadFile,
      signal,
      progress: (state, done) => this.#progress(rec, state, done),
    };
  }

  #progress(rec: JobRecord, state: 'downloading' | 'installing', done: number): void {
    const total = rec.job.manifest.release.signed.size;
    this.deps.onEvent?.({ type: 'progress', jobId: rec.job.jobId, state, done, total });
    // Progress of this image's download (possibly under a newer job id since), nothing else.
    if (state !== 'downloading' || this.#s.job?.job.artifactId !== rec.job.artifactId || this.#s.job.state !== 'downloading') return;
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
    let acked = false;
    try {
      acked = await this.deps.report(statusOf(rec, this.running(), this.deps.now()));
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
