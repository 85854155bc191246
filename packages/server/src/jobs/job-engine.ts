import type { Clock, Logger } from '@bulwark/core';
import { inWindow } from '../ota/index.js';
import type { Job, JobDevice, JobDeviceState, JobRepository, JobState } from './jobs.js';
import { JOB_ENDED } from './jobs.js';
import { type Dispatched, type JobTargets, type Outcome, dispatch } from './operations.js';

export interface EngineDeps {
  readonly repo: JobRepository;
  readonly targets: JobTargets;
  readonly clock: Clock;
  readonly log: Logger;
  /** Whether a dispatched device already answered (twin report or command result stored). */
  readonly answered: (job: Job, entry: JobDevice) => Promise<Outcome | undefined>;
  /** Called when a job stops on its own (aborted or completed), for the audit log. */
  readonly onStop?: (job: Job) => void;
}

/** Dispatches in flight at once (each is a few store round trips): enough for 500 a second on two cores. */
const PARALLEL = 32;

export const counted = (c: Partial<Record<JobDeviceState, number>>, s: JobDeviceState): number => c[s] ?? 0;

/** Moves a job to `state` with a reason in its history (compare-and-set; on a lost race, the stored job). */
export async function moveJob(d: EngineDeps, job: Job, state: JobState, reason: string, actor: string, settled = false): Promise<Job> {
  const at = Math.max(d.clock.now(), job.updatedAt + 1);
  const next: Job = {
    ...job,
    state,
    reason: state === 'running' ? null : reason,
    updatedAt: at,
    settledAt: settled ? at : job.settledAt,
    history: job.state === state ? job.history : [...job.history, { at, state, actor, reason }],
  };
  if (!(await d.repo.update(next, job.updatedAt))) return (await d.repo.get(job.id)) ?? job;
  if (JOB_ENDED.includes(state) && job.state !== state) {
    await d.repo.cancelQueued(job.id, state === 'aborted' ? 'job_aborted' : 'job_cancelled', at);
    if (actor === 'system') d.onStop?.(next);
  }
  return next;
}

/**
 * One pass over one job: time out (or requeue) devices that did not answer, stop the job when
 * its abort rule trips or nothing is left, then dispatch as many queued devices as its pace
 * allows. `tokens` carries the pace between passes. Between dispatch batches the job is read
 * again, so a cancel from any node stops new dispatches within one batch.
 */
export async function runJob(d: EngineDeps, start: Job, tokens: { value: number; at: number }, stopped: () => boolean): Promise<Job> {
  let job = start;
  const now = d.clock.now();
  await d.repo.expire(job.id, now - job.deviceTimeoutMs, job.maxRetries + 1, now);
  const c = await d.repo.counts(job.id);
  const open = counted(c, 'queued') + counted(c, 'in_progress');
  if (JOB_ENDED.includes(job.state)) {
    if (counted(c, 'in_progress') === 0) job = await moveJob(d, job, job.state, job.reason ?? job.state, 'system', true);
    return job;
  }
  const failed = counted(c, 'failed') + counted(c, 'timed_out');
  const finished = failed + counted(c, 'succeeded');
  if (job.abort && finished >= job.abort.minFinished && failed * 100 >= job.abort.failedPercent * finished) {
    return moveJob(d, job, 'aborted', `${failed} of ${finished} finished devices failed or timed out (abort at ${job.abort.failedPercent}%)`, 'system', counted(c, 'in_progress') === 0);
  }
  if (open === 0) return moveJob(d, job, 'completed', summaryLine(c), 'system', true);
  if (job.state !== 'running' || !inWindow(job.pacing.window, now)) return job;
  // Token bucket: ratePerSecond refills, at most one second's worth saved up, and never less
  // than one device (a rate below 1, "one every 5 s", must still fill to a whole dispatch).
  const rate = job.pacing.ratePerSecond;
  tokens.value = Math.min(Math.max(1, rate), tokens.value + (rate * Math.max(0, now - tokens.at)) / 1000);
  tokens.at = now;
  const budget = Math.min(Math.floor(tokens.value), job.pacing.maxConcurrent - counted(c, 'in_progress'));
  if (budget <= 0) return job;
  const claimed = await d.repo.claim(job.id, budget, now);
  tokens.value -= claimed.length;
  // A pool of PARALLEL dispatches in flight (not lock-step batches: one slow device does not hold the others back).
  // Every PARALLEL dispatches the job is read again, so a cancel from any node stops it.
  let next = 0;
  let sinceRead = 0;
  let stop = false;
  const worker = async () => {
    while (!stop && next < claimed.length) {
      if (sinceRead >= PARALLEL) {
        sinceRead = 0;
        job = (await d.repo.get(job.id)) ?? job;
      }
      if (job.state !== 'running' || stopped()) {
        stop = true;
        break;
      }
      const e = claimed[next++]!;
      sinceRead += 1;
      await dispatchOne(d, job, e);
    }
  };
  await Promise.all(Array.from({ length: Math.min(PARALLEL, claimed.length) }, worker));
  const unsent = claimed.slice(next);
  // The workers may have read the job again (TypeScript keeps the narrowing from before the loop).
  const after = job;
  if (unsent.length > 0) {
    // Claimed but never sent: back to the queue (paused), or ended with the job.
    if (after.state === 'paused')
      await d.repo.requeue(
        after.id,
        unsent.map((e) => e.deviceId),
      );
    else await Promise.all(unsent.map((e) => d.repo.finish(after.id, e.deviceId, ['in_progress'], { state: 'cancelled', reason: after.state === 'aborted' ? 'job_aborted' : 'job_cancelled', detail: null, at: d.clock.now() })));
  }
  return after;
}

async function dispatchOne(d: EngineDeps, job: Job, e: JobDevice): Promise<void> {
  let result: Dispatched;
  try {
    result = await dispatch(job.operation, e.deviceId, `job:${job.id}`, d.targets);
  } catch (err) {
    d.log.error({ err, jobId: job.id, deviceId: e.deviceId }, 'job dispatch failed');
    result = { end: { state: 'failed', reason: 'internal', detail: 'the platform could not act on this device; see its log' } };
  }
  const at = d.clock.now();
  if ('end' in result) {
    await d.repo.finish(job.id, e.deviceId, ['in_progress'], { ...result.end, at });
    return;
  }
  await d.repo.setRef(job.id, e.deviceId, result.ref);
  // The device may have answered before the ref was stored: its answer found nothing to end.
  const early = await d.answered(job, { ...e, ref: result.ref });
  if (early) await d.repo.finish(job.id, e.deviceId, ['in_progress'], { ...early, at });
}

/** "9,998 succeeded, 1 failed, 1 timed out" */
export function summaryLine(c: Partial<Record<JobDeviceState, number>>): string {
  const parts = (['succeeded', 'failed', 'timed_out', 'cancelled'] as const).filter((s) => counted(c, s) > 0).map((s) => `${counted(c, s)} ${s.replace('_', ' ')}`);
  return parts.length === 0 ? 'no device' : parts.join(', ');
}
