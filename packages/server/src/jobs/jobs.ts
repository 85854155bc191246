import type { MaintenanceWindow } from '../ota/index.js';

/** What a job does to each device of its group. */
export type JobOperation =
  /** Merged over the device's desired configuration (a `null` value removes the key); done when the device reports it applied. */
  | { readonly type: 'twin-patch'; readonly patch: Readonly<Record<string, unknown>> }
  /** A typed remote command; done when the device answers it. */
  | { readonly type: 'command'; readonly name: string; readonly params: Readonly<Record<string, unknown>>; readonly ttlS?: number }
  /** Asks the device's agent to renew its certificate now (built-in command `certs.renew`); done when it answers. */
  | { readonly type: 'rotate-certificate' }
  /** Lifecycle changes, done at once on the platform. */
  | { readonly type: 'suspend' }
  | { readonly type: 'resume' }
  | { readonly type: 'decommission' };

export type OperationType = JobOperation['type'];
export const OPERATION_TYPES: readonly OperationType[] = ['twin-patch', 'command', 'rotate-certificate', 'suspend', 'resume', 'decommission'];

export interface JobPacing {
  /** Dispatches a second at most. */
  readonly ratePerSecond: number;
  /** Devices dispatched and not answered yet, at most. */
  readonly maxConcurrent: number;
  /** Dispatch only inside this daily window (UTC minutes), when set. */
  readonly window: MaintenanceWindow | null;
}

/** Stop the job when this share of the finished devices failed or timed out, once at least minFinished have finished. */
export interface JobAbortRule {
  readonly failedPercent: number;
  readonly minFinished: number;
}

export type JobState = 'running' | 'paused' | 'cancelled' | 'aborted' | 'completed';
export const JOB_STATES: readonly JobState[] = ['running', 'paused', 'cancelled', 'aborted', 'completed'];
export const JOB_ENDED: readonly JobState[] = ['cancelled', 'aborted', 'completed'];

export type JobDeviceState = 'queued' | 'in_progress' | 'succeeded' | 'failed' | 'timed_out' | 'cancelled';
export const JOB_DEVICE_STATES: readonly JobDeviceState[] = ['queued', 'in_progress', 'succeeded', 'failed', 'timed_out', 'cancelled'];

export interface JobEvent {
  readonly at: number;
  readonly state: JobState;
  readonly actor: string;
  readonly reason: string;
}

export interface Job {
  readonly id: string;
  readonly name: string;
  readonly operation: JobOperation;
  /** The group whose members (when the job was made) it runs over. */
  readonly group: string;
  readonly pacing: JobPacing;
  /** A dispatched device that has not answered within this is timed out (or retried). */
  readonly deviceTimeoutMs: number;
  /** Dispatches again after a timeout, at most this many times. */
  readonly maxRetries: number;
  readonly abort: JobAbortRule | null;
  readonly state: JobState;
  /** Why it is paused, cancelled, aborted or completed. */
  readonly reason: string | null;
  readonly deviceCount: number;
  /** Members of the group left out when the job was made, by why (e.g. decommissioned). */
  readonly skipped: Readonly<Record<string, number>>;
  readonly history: JobEvent[];
  readonly createdBy: string;
  readonly createdAt: number;
  readonly updatedAt: number;
  /** When it ended and its last dispatched device answered or timed out (its summary is final); null before. */
  readonly settledAt: number | null;
}

export interface JobDevice {
  readonly jobId: string;
  readonly deviceId: string;
  readonly state: JobDeviceState;
  readonly attempts: number;
  /** What the dispatch made: the command id, or the desired configuration version. */
  readonly ref: string | null;
  readonly reason: string | null;
  readonly detail: string | null;
  readonly dispatchedAt: number | null;
  readonly finishedAt: number | null;
  readonly updatedAt: number;
}

/** A device's live job entries, with what their job does (for answers from the device). */
export interface LiveJobDevice extends JobDevice {
  readonly operation: OperationType;
}

export interface JobDeviceEnd {
  readonly state: Extract<JobDeviceState, 'succeeded' | 'failed' | 'timed_out' | 'cancelled'>;
  readonly reason: string | null;
  readonly detail: string | null;
  readonly at: number;
}

export interface JobRepository {
  /** The job and one queued entry per device, in one transaction. */
  insert(job: Job, deviceIds: readonly string[]): Promise<void>;
  get(id: string): Promise<Job | undefined>;
  /** Newest first; `before` is the last id of the previous page. */
  list(f: { readonly states?: readonly JobState[]; readonly before?: string; readonly groups?: readonly string[]; readonly limit: number }): Promise<Job[]>;
  /** Jobs not settled yet (running, paused, or ended with devices still dispatched), oldest first. */
  unsettled(limit: number): Promise<Job[]>;
  /** State, reason, history and settledAt; compare-and-set on updatedAt. */
  update(job: Job, expectedUpdatedAt: number): Promise<boolean>;
  /** Moves up to `limit` queued entries to in_progress (attempt + 1, dispatched now) and returns them; no two callers get the same one. */
  claim(jobId: string, limit: number, at: number): Promise<JobDevice[]>;
  /** Claimed entries never sent go back to queued, their attempt not counted. */
  requeue(jobId: string, deviceIds: readonly string[]): Promise<void>;
  /** Records what the dispatch of an in-progress entry made. */
  setRef(jobId: string, deviceId: string, ref: string): Promise<void>;
  /** Ends one entry that is in one of `from`; false when it was not. */
  finish(jobId: string, deviceId: string, from: readonly JobDeviceState[], end: JobDeviceEnd): Promise<boolean>;
  /** In-progress entries dispatched before `before`: those with attempts left go back to queued, the rest time out. */
  expire(jobId: string, before: number, maxAttempts: number, at: number): Promise<{ retried: number; timedOut: number }>;
  /** Every queued entry ends as cancelled with `reason`; returns how many. */
  cancelQueued(jobId: string, reason: string, at: number): Promise<number>;
  counts(jobId: string): Promise<Partial<Record<JobDeviceState, number>>>;
  /** How many ended in each failing state, by reason, most first. */
  reasons(jobId: string, limit: number): Promise<{ state: JobDeviceState; reason: string; count: number }[]>;
  devices(jobId: string, f: { readonly states?: readonly JobDeviceState[]; readonly after?: string; readonly limit: number }): Promise<JobDevice[]>;
  /** The device's dispatched entries (in any job), and its queued ones in running or paused jobs. */
  live(deviceId: string): Promise<LiveJobDevice[]>;
}
